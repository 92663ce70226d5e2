"""What the pair default adds to a search at 100k chunks, by parts (issue 21): the query embedding
(multilingual-e5 alone against e5 + MiniLM) and the exact dense scan (384 against 768 columns).

Embedding 100k real chunks with both models would take hours on this 2-core machine, so the scan
runs over ``--chunks`` random unit vectors (``VectorIndex.search``, the store's own exact path,
top 100), and the query embedding over real questions (``--queries`` test questions of each data
set given, English and Chinese; each embedded afresh). BM25 and the fusion do not change with the
embedder: RESULTS §2 measured them at 100k chunks (lexical 0.24/0.34 ms; hybrid minus dense
≈ 0.3 ms). One warm-up pass, then ``--repeats`` timed passes, alternating the two embedders so
that load hits both alike; p50/p95 are medians over the passes. CPU time is recorded too: on a
loaded machine wall time measures the queue.

Usage::

    nice -n 10 python benchmarks/pair_latency.py ../shared/data/{tatqa,medquad,cmrc2018} --chunks 100000 \\
        --json benchmarks/results/pair_latency.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))

from retrieval import split_queries  # noqa: E402

EMBEDDERS = {"e5 (old default)": ("multilingual", 384), "pair (new default)": ("default", 768)}


def timed(fn: Callable[[int], Any], n: int) -> tuple[list[float], list[float]]:
    wall, cpu = [], []
    for i in range(n):
        t0, c0 = time.perf_counter(), time.process_time()
        fn(i)
        wall.append((time.perf_counter() - t0) * 1000)
        cpu.append((time.process_time() - c0) * 1000)
    return wall, cpu


def summary(passes: list[tuple[list[float], list[float]]]) -> dict[str, float]:
    return {"p50_ms": round(float(np.median([np.percentile(w, 50) for w, _ in passes])), 2),
            "p95_ms": round(float(np.median([np.percentile(w, 95) for w, _ in passes])), 2),
            "cpu_p50_ms": round(float(np.median([np.percentile(c, 50) for _, c in passes])), 2)}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("datasets", nargs="+", type=Path)
    p.add_argument("--chunks", type=int, default=100_000)
    p.add_argument("--queries", type=int, default=50, help="test questions per data set")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--json", type=Path)
    args = p.parse_args()

    from domainrag.config import EmbedderConfig
    from domainrag.index.vectors import VectorIndex
    from domainrag.models.embedders import load_embedder
    from domainrag.models.embedding import normalize

    queries: list[str] = []
    for d in args.datasets:
        texts, _ = split_queries(d, "test", args.queries)
        queries += list(texts.values())
    rng = np.random.default_rng(0)
    setups = {}
    for label, (spec, dim) in EMBEDDERS.items():
        index = VectorIndex(normalize(rng.standard_normal((args.chunks, dim), dtype=np.float32)))
        embedder = load_embedder(EmbedderConfig(model=spec))
        vectors = np.stack([embedder.embed_query(q) for q in queries])   # warm-up pass
        setups[label] = (index, embedder, vectors)
    embed: dict[str, list[Any]] = {label: [] for label in setups}
    scan: dict[str, list[Any]] = {label: [] for label in setups}
    for _ in range(args.repeats):
        for label, (index, embedder, vectors) in setups.items():
            embed[label].append(timed(lambda i, e=embedder: e.embed_query(queries[i]), len(queries)))
            scan[label].append(timed(lambda i, x=index, v=vectors: x.search(v[i], 100), len(queries)))
    result: dict[str, Any] = {"chunks": args.chunks, "queries": len(queries), "repeats": args.repeats,
                              "machine": {"python": platform.python_version(), "cpus": os.cpu_count(),
                                          "load": os.getloadavg()}, "parts": {}}
    for label in setups:
        e, s = summary(embed[label]), summary(scan[label])
        result["parts"][label] = {"query_embedding": e, "dense_scan": s,
                                  "hybrid_estimate_p50_ms": round(e["p50_ms"] + s["p50_ms"] + 0.6, 1),
                                  "hybrid_estimate_p95_ms": round(e["p95_ms"] + s["p95_ms"] + 0.6, 1)}
        print(f"{label:20s} query embedding {e}  dense scan {s}", flush=True)
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
