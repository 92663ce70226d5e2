"""Retrieval quality and latency on BEIR folders: lexical, dense and hybrid side by side.

Question answered: on each dataset, how good is each retriever (document-level nDCG@10,
Recall@10, Recall@100, MRR@10, MAP with trec_eval's definitions, see
``domainrag.evaluate.metrics``), how long does ingesting the corpus take, and how fast is
``KnowledgeBase.search`` in each mode (warm p50/p95)?

For each dataset folder the corpus is ingested into a cached knowledge base under
``--kb-cache/<dataset>-<embedder>`` (ingestion is incremental: a second run re-uses it). Each
query of ``--split`` that has a relevant document is run once through
``kb.retriever.candidates`` (``--depth`` chunks from each retriever); the lexical, dense and
hybrid (the configured default fusion) rankings are derived from the same candidates, then
mapped to documents (first occurrence of each document). Where the embedder does not cover a
query's language, hybrid leaves dense out (as ``kb.search`` does) while the dense column still
shows what ``kb.search(mode="dense")`` returns. A check compares the hybrid top 10
with ``kb.search(mode="hybrid")`` on a few queries.

``--sweep`` instead grids the fusion (convex with dense weight 0.1..0.9, RRF with k in 10, 30,
60, 100, and the parameter-free adaptive fusion) on each dataset's tuning split (the first of dev/validation/train that exists and is
not ``--split``; datasets without one are skipped) and reports nDCG@10 per dataset and the mean
across datasets, so that one default can be chosen that is best on average.

Usage::

    python benchmarks/retrieval.py ../shared/data/* --split test --embedder minilm
    python benchmarks/retrieval.py ../shared/data/* --sweep
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from domainrag.evaluate.beir_qrels import load_beir_qrels, load_beir_queries, qrels_path, qrels_splits
from domainrag.evaluate.metrics import dedupe, evaluate_run

METRICS = ("ndcg@10", "recall@10", "recall@100", "mrr@10", "map")
MODES = ("lexical", "dense", "hybrid")
TUNE_SPLITS = ("dev", "validation", "train")
CONVEX_WEIGHTS = tuple(round(0.1 * i, 1) for i in range(1, 10))
RRF_KS = (10, 30, 60, 100)


@dataclass(frozen=True)
class Fusion:
    """One fusion setting: ``method`` with its parameter."""

    method: str
    dense_weight: float = 0.5
    rrf_k: int = 60

    @property
    def label(self) -> str:
        if self.method == "convex":
            return f"convex w={self.dense_weight:.1f}"
        if self.method == "rrf":
            return f"rrf k={self.rrf_k}"
        return self.method

    def apply(self, lexical: Any, dense: Any) -> Any:
        from domainrag.retrieve.fusion import fuse

        return fuse(lexical, dense, method=self.method, dense_weight=self.dense_weight, rrf_k=self.rrf_k)


def sweep_grid() -> list[Fusion]:
    return [Fusion("convex", dense_weight=w) for w in CONVEX_WEIGHTS] + [
        Fusion("rrf", rrf_k=k) for k in RRF_KS
    ] + [Fusion("adaptive")]


# --- knowledge base and queries ---------------------------------------------------------------


def open_kb(dataset: Path, cache: Path, embedder: str, settings: Sequence[str] = ()
            ) -> tuple[Any, dict[str, Any]]:
    """Open (or build) the cached knowledge base of ``dataset``; returns it with ingest facts.
    ``settings`` (``KEY=VALUE`` configuration overrides) get their own cache folder."""
    from domainrag import KnowledgeBase

    overrides: dict[str, Any] = {"embedder.model": embedder}
    for item in settings:
        key, _, value = item.partition("=")
        try:
            overrides[key] = json.loads(value)   # numbers, lists, booleans; else the string
        except json.JSONDecodeError:
            overrides[key] = value
    suffix = "".join(f"-{item}" for item in settings)
    path = cache / f"{dataset.name}-{embedder}{suffix}".replace(":", "_").replace("/", "_")
    existed = path.exists()
    kb = KnowledgeBase.open(path, create=True, overrides=overrides)
    t0 = time.perf_counter()
    report = kb.ingest([dataset], format="beir", progress=True)
    seconds = time.perf_counter() - t0
    return kb, {"kb": str(path), "reused": existed, "ingest_s": round(seconds, 2),
                "report": summarise(report)}


def summarise(report: Any) -> dict[str, Any]:
    """A JSON-able summary of an ingest report (counts, with the first failures)."""
    summary = dict(report.summary())
    summary["partial"] = report.partial
    summary["first_failures"] = [list(f) for f in report.failed[:5]]
    return summary


def split_queries(dataset: Path, split: str, limit: int | None, seed: int = 0
                  ) -> tuple[dict[str, str], dict[str, dict[str, int]]]:
    """Texts and qrels of the split's queries that have a relevant document (sampled to limit)."""
    queries = load_beir_queries(dataset / "queries.jsonl")
    qrels = load_beir_qrels(qrels_path(dataset, split))
    qids = sorted(q for q, j in qrels.items() if q in queries and any(g >= 1 for g in j.values()))
    if limit and len(qids) > limit:
        qids = sorted(random.Random(seed).sample(qids, limit))
    return {q: queries[q] for q in qids}, {q: qrels[q] for q in qids}


def tune_split(dataset: Path, test_split: str) -> str | None:
    found = qrels_splits(dataset)
    return next((s for s in TUNE_SPLITS if s in found and s != test_split), None)


# --- candidates and rankings ------------------------------------------------------------------


def collect_candidates(kb: Any, queries: dict[str, str], depth: int) -> tuple[dict[str, Any], float]:
    """``kb.retriever.candidates`` for every query, and the queries per second it ran at."""
    out = {}
    t0 = time.perf_counter()
    for qid, text in queries.items():
        out[qid] = kb.retriever.candidates(text, n=depth)
    seconds = time.perf_counter() - t0
    return out, len(queries) / seconds if seconds else float("inf")


def doc_ranking(kb: Any, ranked: Any | None) -> list[str]:
    """Document ids in rank order (first occurrence) of a chunk-level ``Ranked``."""
    if ranked is None or len(ranked.rows) == 0:
        return []
    return dedupe(kb.store.view().doc_ids(ranked.rows))


def forced_dense(kb: Any, text: str, depth: int) -> Any:
    """The dense ranking ``kb.search(mode="dense")`` gives, also for a query whose language the
    embedder does not cover (hybrid leaves dense out there; dense mode still runs it)."""
    return kb.store.view().dense(kb.embedder.embed_query(text), depth)


def mode_runs(kb: Any, queries: dict[str, str], candidates: dict[str, Any], fusion: Fusion,
              depth: int) -> dict[str, dict[str, list[str]]]:
    runs: dict[str, dict[str, list[str]]] = {m: {} for m in MODES}
    for qid, cand in candidates.items():
        dense = cand.dense if cand.dense is not None else forced_dense(kb, queries[qid], depth)
        runs["lexical"][qid] = doc_ranking(kb, cand.lexical)
        runs["dense"][qid] = doc_ranking(kb, dense)
        runs["hybrid"][qid] = doc_ranking(kb, for_language(kb, fusion, cand).apply(cand.lexical, cand.dense))
    return runs


def for_language(kb: Any, fusion: Fusion, cand: Any) -> Fusion:
    """``fusion`` with the dense weight the knowledge base gives a query in the candidates'
    language (a composite embedder may weigh languages differently), unless it was swept."""
    if fusion.method == "rrf" or fusion.dense_weight != kb.retriever.dense_weight():
        return fusion
    return Fusion(fusion.method, dense_weight=kb.retriever.dense_weight(cand.language), rrf_k=fusion.rrf_k)


def default_fusion(kb: Any) -> Fusion:
    r = kb.config.retrieval
    return Fusion(r.fusion, dense_weight=kb.retriever.dense_weight(), rrf_k=r.rrf_k)


def hybrid_agreement(kb: Any, queries: dict[str, str], candidates: dict[str, Any], fusion: Fusion,
                     n: int = 50) -> float:
    """Share of sampled queries where ``kb.search(k=10, mode="hybrid")`` returns the documents of
    our fused top 10 chunks, in order (a check that the benchmark measures what users get)."""
    sample = list(queries)[:n]
    same = 0
    for qid in sample:
        hits = kb.search(queries[qid], k=10, mode="hybrid")
        cand = candidates[qid]
        ours = kb.store.view().doc_ids(for_language(kb, fusion, cand).apply(cand.lexical, cand.dense).rows[:10])
        same += [h.doc_id for h in hits] == ours
    return same / len(sample) if sample else 1.0


# --- latency ----------------------------------------------------------------------------------


def percentiles(times_ms: Sequence[float]) -> dict[str, float]:
    return {"p50_ms": round(float(np.percentile(times_ms, 50)), 2),
            "p95_ms": round(float(np.percentile(times_ms, 95)), 2)}


def search_latency(kb: Any, texts: Sequence[str], mode: str) -> dict[str, float]:
    """Warm latency of ``kb.search``: one untimed pass, then one timed pass."""
    for text in texts:
        kb.search(text, k=10, mode=mode)
    times = []
    for text in texts:
        t0 = time.perf_counter()
        kb.search(text, k=10, mode=mode)
        times.append((time.perf_counter() - t0) * 1000)
    return percentiles(times)


# --- per dataset ------------------------------------------------------------------------------


def evaluate_dataset(dataset: Path, args: argparse.Namespace) -> dict[str, Any]:
    kb, ingest = open_kb(dataset, args.kb_cache, args.embedder, args.set)
    queries, qrels = split_queries(dataset, args.split, args.max_queries)
    candidates, qps = collect_candidates(kb, queries, args.depth)
    fusion = default_fusion(kb)
    runs = mode_runs(kb, queries, candidates, fusion, args.depth)
    languages = sorted({str(getattr(c, "language", "")) for c in candidates.values()})
    no_dense = sum(1 for c in candidates.values() if c.dense is None)
    texts = list(queries.values())[: args.latency_queries]
    result = {
        "dataset": dataset.name,
        "split": args.split,
        "queries": len(queries),
        "ingest": ingest,
        "stats": kb_stats(kb),
        "fusion": fusion.label,
        "query_languages": languages,
        "queries_without_dense": no_dense,
        "candidates_qps": round(qps, 1),
        "metrics": {m: evaluate_run(runs[m], qrels, METRICS) for m in MODES},
        "hybrid_matches_search_top10": hybrid_agreement(kb, queries, candidates, fusion),
        "latency": {m: search_latency(kb, texts, m) for m in MODES} if texts else {},
        "latency_queries": len(texts),
    }
    close(kb)
    return result


def kb_stats(kb: Any) -> dict[str, Any]:
    status = kb.status()
    keys = ("sources", "documents", "chunks", "cached_embeddings", "ann")
    return {k: status[k] for k in keys if k in status}


def close(kb: Any) -> None:
    kb.close()


def sweep_dataset(dataset: Path, args: argparse.Namespace) -> dict[str, Any] | None:
    split = tune_split(dataset, args.split)
    if split is None:
        return None
    kb, ingest = open_kb(dataset, args.kb_cache, args.embedder, args.set)
    queries, qrels = split_queries(dataset, split, args.max_queries)
    candidates, _ = collect_candidates(kb, queries, args.depth)
    no_dense = sum(1 for c in candidates.values() if c.dense is None)
    scores: dict[str, float] = {}
    runs = mode_runs(kb, queries, candidates, default_fusion(kb), args.depth)
    for name in ("lexical", "dense"):
        scores[name] = evaluate_run(runs[name], qrels, ("ndcg@10",))["ndcg@10"]
    for fusion in sweep_grid():
        run = {q: doc_ranking(kb, fusion.apply(c.lexical, c.dense)) for q, c in candidates.items()}
        scores[fusion.label] = evaluate_run(run, qrels, ("ndcg@10",))["ndcg@10"]
    close(kb)
    return {"dataset": dataset.name, "split": split, "queries": len(queries),
            "queries_without_dense": no_dense, "ingest_s": ingest["ingest_s"], "ndcg@10": scores}


# --- output -----------------------------------------------------------------------------------


def markdown_table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    def cell(v: Any) -> str:
        return f"{v:.3f}" if isinstance(v, float) else str(v)

    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def quality_table(results: list[dict[str, Any]]) -> str:
    header = ["dataset", "n", "mode", *METRICS]
    rows = []
    for r in results:
        for mode in MODES:
            m = r["metrics"][mode]
            label = mode if mode != "hybrid" else f"hybrid ({r['fusion']})"
            rows.append([r["dataset"], r["queries"], label, *(m[k] for k in METRICS)])
    return markdown_table(header, rows)


def speed_table(results: list[dict[str, Any]]) -> str:
    header = ["dataset", "ingest s", "candidates q/s", *(f"{m} p50/p95 ms" for m in MODES),
              "hybrid = kb.search"]
    rows = []
    for r in results:
        lat = [f"{r['latency'][m]['p50_ms']:.1f} / {r['latency'][m]['p95_ms']:.1f}" if r["latency"] else "-"
               for m in MODES]
        ingest = f"{r['ingest']['ingest_s']:.1f}" + (" (cached)" if r["ingest"]["reused"] else "")
        rows.append([r["dataset"], ingest, f"{r['candidates_qps']:.0f}", *lat,
                     f"{r['hybrid_matches_search_top10']:.2f}"])
    return markdown_table(header, rows)


def sweep_table(results: list[dict[str, Any]]) -> tuple[str, dict[str, float]]:
    labels = list(results[0]["ndcg@10"]) if results else []
    means = {lab: float(np.mean([r["ndcg@10"][lab] for r in results])) for lab in labels}
    header = ["setting", *(f"{r['dataset']} ({r['split']})" for r in results), "mean"]
    rows = [[lab, *(r["ndcg@10"][lab] for r in results), means[lab]] for lab in labels]
    return markdown_table(header, rows), means


def machine() -> dict[str, Any]:
    model = ""
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        model = next((line.split(":", 1)[1].strip() for line in out.splitlines()
                      if line.startswith("Model name")), "")
    except OSError:
        pass
    return {"cpu": model, "cores": os.cpu_count(), "python": platform.python_version()}


def write_json(path: Path, payload: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2, ensure_ascii=False))
    print(f"\nwrote {path}")


# --- main -------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("data_dirs", nargs="+", type=Path, metavar="DATA_DIR", help="BEIR folders")
    p.add_argument("--split", default="test", help="evaluation split (default: test)")
    p.add_argument("--kb-cache", type=Path, default=Path("benchmarks/.cache"))
    p.add_argument("--embedder", default="minilm", help="embedder.model of the knowledge bases")
    p.add_argument("--max-queries", type=int, default=None, help="sample at most N queries (seed 0)")
    p.add_argument("--depth", type=int, default=100, help="chunks taken from each retriever")
    p.add_argument("--latency-queries", type=int, default=200, help="queries timed per mode (0: none)")
    p.add_argument("--sweep", action="store_true", help="grid the fusion on the tuning splits")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="configuration override for the knowledge bases (e.g. embedder.max_length=128); "
                        "repeatable; each combination is cached separately")
    p.add_argument("--json", type=Path, default=None,
                   help="output (default benchmarks/results/retrieval.json, or fusion_sweep.json)")
    return p.parse_args(argv)


def run_each(dirs: Sequence[Path], fn: Callable[[Path, argparse.Namespace], Any],
             args: argparse.Namespace) -> list[Any]:
    out = []
    for d in dirs:
        print(f"== {d.name}", file=sys.stderr, flush=True)
        t0 = time.perf_counter()
        r = fn(d, args)
        print(f"   done in {time.perf_counter() - t0:.1f} s", file=sys.stderr, flush=True)
        if r is not None:
            out.append(r)
    return out


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    header = {"date": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "machine": machine(),
              "command": " ".join(["python", *sys.argv]), "embedder": args.embedder,
              "settings": args.set, "depth": args.depth}
    if args.sweep:
        results = run_each(args.data_dirs, sweep_dataset, args)
        table, means = sweep_table(results)
        fused = {k: v for k, v in means.items() if k not in ("lexical", "dense")}
        best = max(fused, key=fused.__getitem__) if fused else None
        print(table)
        print(f"\nbest on average: {best} (mean nDCG@10 {fused.get(best, 0):.4f})")
        write_json(args.json or Path("benchmarks/results/fusion_sweep.json"),
                   {**header, "datasets": results, "mean_ndcg@10": means, "best": best})
        return
    results = run_each(args.data_dirs, evaluate_dataset, args)
    print(quality_table(results))
    print()
    print(speed_table(results))
    write_json(args.json or Path("benchmarks/results/retrieval.json"), {**header, "split": args.split,
                                                                        "datasets": results})


if __name__ == "__main__":
    main()
