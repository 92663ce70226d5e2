"""One knowledge base, one ranking, whatever the store (issue 24, item 4).

The same documents in the embedded SQLite store and in PostgreSQL (the SQLite index migrated:
nothing re-embedded), searched with the same queries: per mode (lexical, dense, hybrid), how many
queries get the same top-1 chunk, the same top-10 chunk ids in order, and document nDCG@10 on each
store. For hybrid it also says where the rankings part: the candidate lists each retriever returns
(rows mapped to chunk ids) and their scores.

Usage::

    python benchmarks/store_parity.py ../shared/data/lecoqa --queries 200 --embedder multilingual
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from postgres import CACHE, drop_collection, machine, server_url  # noqa: E402

from domainrag.evaluate.beir_qrels import load_beir_qrels, load_beir_queries, qrels_path  # noqa: E402
from domainrag.evaluate.metrics import dedupe, ndcg_at_k  # noqa: E402

MODES = ("lexical", "dense", "hybrid")


def build(dataset: Path, embedder: str, url: str, via: str) -> tuple[Path, Path, int]:
    from domainrag import KnowledgeBase
    from domainrag.migrate import migrate

    sqlite_kb = CACHE / "parity" / f"{dataset.name}-{embedder}"
    with KnowledgeBase.open(sqlite_kb, create=True, overrides={"embedder.model": embedder}) as kb:
        if not kb.store.stats()["chunks"]:
            kb.ingest([dataset], format="beir")
        chunks = int(kb.store.stats()["chunks"])
    name = "parity_" + "".join(c if c.isalnum() else "_" for c in f"{dataset.name}_{embedder}".lower())
    drop_collection(url, name)
    if via == "migrate":
        migrate(str(sqlite_kb), f"{url}#{name}")
    pg_kb = CACHE / "parity" / f"{dataset.name}-{embedder}-pg"
    shutil.rmtree(pg_kb, ignore_errors=True)
    with KnowledgeBase.open(pg_kb, create=True, overrides={"embedder.model": embedder,
                                                         "store.url": f"{url}#{name}"}) as kb:
        if via == "ingest":
            kb.ingest([dataset], format="beir")
    return sqlite_kb, pg_kb, chunks


def ranking(kb: Any, query: str, mode: str) -> list[str]:
    return [h.chunk_id for h in kb.search(query, k=10, mode=mode)]


def candidate_ids(kb: Any, query: str) -> dict[str, list[tuple[str, float]]]:
    view = kb.store.view()
    cands = kb.retriever.candidates(query, view=view)
    out = {"lexical": list(zip([h.chunk_id for h in view.hits(cands.lexical)], cands.lexical.scores.tolist(), strict=True))}
    if cands.dense is not None:
        out["dense"] = list(zip([h.chunk_id for h in view.hits(cands.dense)], cands.dense.scores.tolist(), strict=True))
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("dataset", type=Path)
    p.add_argument("--queries", type=int, default=200)
    p.add_argument("--embedder", default="multilingual")
    p.add_argument("--split", default="test")
    p.add_argument("--via", choices=("ingest", "migrate"), default="ingest",
                   help="fill PostgreSQL by ingesting the same folder, or by migrating the SQLite index")
    p.add_argument("--url", help="postgresql:// URL (else pgserver is started)")
    p.add_argument("--pgdata", type=Path)
    p.add_argument("--json", type=Path)
    args = p.parse_args()
    from domainrag import KnowledgeBase

    url = server_url(args.url, args.pgdata)
    t0 = time.perf_counter()
    sqlite_kb, pg_kb, chunks = build(args.dataset, args.embedder, url, args.via)
    build_s = time.perf_counter() - t0
    texts = load_beir_queries(args.dataset / "queries.jsonl")
    qrels = load_beir_qrels(qrels_path(args.dataset, args.split))
    qids = sorted(q for q in qrels if q in texts)
    qids = sorted(random.Random(0).sample(qids, min(args.queries, len(qids))))
    result: dict[str, Any] = {"machine": machine(), "dataset": args.dataset.name, "embedder": args.embedder, "via": args.via,
                              "chunks": chunks, "queries": len(qids), "build_s": round(build_s, 1), "modes": {}}
    with KnowledgeBase.open(sqlite_kb) as lite, KnowledgeBase.open(pg_kb) as pg:
        for mode in MODES:
            top1 = top10 = 0
            ndcg: dict[str, list[float]] = {"sqlite": [], "postgres": []}
            for q in qids:
                a, b = ranking(lite, texts[q], mode), ranking(pg, texts[q], mode)
                top1 += a[:1] == b[:1]
                top10 += a == b
                for label, kb in (("sqlite", lite), ("postgres", pg)):
                    ndcg[label].append(ndcg_at_k(dedupe(kb.rank_documents(texts[q], 10, mode)), qrels[q], 10))
            result["modes"][mode] = {"same_top1": top1, "same_top10": top10,
                                     **{f"ndcg10_{k}": round(float(np.mean(v)), 4) for k, v in ndcg.items()}}
            print(mode, json.dumps(result["modes"][mode]), flush=True)
        parts = {"lexical_ids": 0, "lexical_scores_max_abs": 0.0, "dense_ids": 0, "dense_scores_max_abs": 0.0}
        for q in qids:
            ca, cb = candidate_ids(lite, texts[q]), candidate_ids(pg, texts[q])
            for part in ("lexical", "dense"):
                x, y = ca.get(part, []), cb.get(part, [])
                parts[f"{part}_ids"] += [i for i, _ in x] == [i for i, _ in y]
                if len(x) == len(y) and x:
                    diff = float(np.max(np.abs(np.array([s for _, s in x]) - np.array([s for _, s in y]))))
                    parts[f"{part}_scores_max_abs"] = max(parts[f"{part}_scores_max_abs"], diff)
        result["candidates_identical"] = parts
        print("candidates", json.dumps(parts), flush=True)
    if args.json:
        args.json.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
