"""Can a cross-encoder rerank the fused top 30 within the budget (≤ 60 ms p50 on 2 cores)? Issue 21, item 2.

No registry package ships reranker weights runnable without torch (RESULTS §18, §30, §32), so the
architecture is measured with the cross-encoder domainrag already ships: the claim–evidence
verifier (``src/domainrag/models/verifier/``: all-MiniLM-L6-v2 fine-tuned as a cross-encoder, int8
ONNX, one text pair per run, as many pairs at a time as there are CPUs). A MiniLM-L6 reranker
trained for relevance would cost the same per pair: the graph, the quantisation and the runtime
are the ones a reranker would ship.

For each data set's cached knowledge base (``benchmarks/robust_retrieval.py`` builds them) and
``--queries`` test questions: the hybrid top ``--top`` chunks, then the time to score the
(question, chunk) pairs truncated at ``--max-length`` tokens (each value given), p50/p95 wall
time, and the CPU time of the process (all its threads) — on a loaded machine the wall time
measures the queue, CPU time / cores is the quiet machine's floor. With
``--quality``, nDCG@10 of the hybrid ranking against the same ranking reordered by the
verifier's logit (a relevance model it is not: an upper bound on nothing, a hint of what the
architecture reads), paired per query.

Usage::

    nice -n 10 python benchmarks/rerank_budget.py ../shared/data/{tatqa,pubmedqa} --queries 30 \\
        --max-length 128 --max-length 256 --json benchmarks/results/rerank_budget.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))

from retrieval import open_kb, split_queries  # noqa: E402

from domainrag.compare.paired_stats import paired  # noqa: E402
from domainrag.evaluate.metrics import dedupe, per_query  # noqa: E402
from domainrag.models.verifier_onnx import OnnxVerifier  # noqa: E402

EMBEDDER = "pair:multilingual+minilm"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("datasets", nargs="+", type=Path)
    p.add_argument("--queries", type=int, default=30)
    p.add_argument("--top", type=int, default=30)
    p.add_argument("--max-length", type=int, action="append")
    p.add_argument("--quality", action="store_true")
    p.add_argument("--kb-cache", type=Path, default=Path("benchmarks/.cache/robust"))
    p.add_argument("--json", type=Path)
    args = p.parse_args()
    lengths = args.max_length or [256]
    verifier = OnnxVerifier()
    result: dict[str, Any] = {"top": args.top, "machine": {"python": platform.python_version(),
                              "cpus": os.cpu_count(), "load_before": os.getloadavg()}, "sets": {}}
    for dataset in args.datasets:
        kb, _ = open_kb(dataset, args.kb_cache, EMBEDDER)
        texts, qrels = split_queries(dataset, "test", args.queries)
        hits = {q: kb.search(t, k=args.top, mode="hybrid") for q, t in texts.items()}
        row: dict[str, Any] = {"queries": len(texts)}
        for length in lengths:
            verifier.tokenizer.enable_truncation(length, strategy="only_second")
            verifier.logits([(texts[next(iter(texts))], "warm up")])
            times, cpu, logits = [], [], {}
            for q, t in texts.items():
                pairs = [(t, h.text) for h in hits[q]]
                t0, c0 = time.perf_counter(), time.process_time()
                logits[q] = verifier.logits(pairs)
                times.append((time.perf_counter() - t0) * 1000)
                cpu.append((time.process_time() - c0) * 1000)
            # CPU time is what a quiet machine would spend across its cores: on a loaded machine the
            # wall time measures the queue; CPU ms / usable cores is the quiet wall-time floor
            row[f"len{length}"] = {"p50_ms": round(float(np.percentile(times, 50)), 1),
                                   "p95_ms": round(float(np.percentile(times, 95)), 1),
                                   "cpu_p50_ms": round(float(np.percentile(cpu, 50)), 1),
                                   "pairs_p50": int(np.median([len(hits[q]) for q in texts]))}
            if args.quality:
                base = {q: dedupe([h.doc_id for h in hits[q]]) for q in texts}
                rer = {q: dedupe([hits[q][i].doc_id for i in np.argsort(-np.asarray(logits[q]), kind="stable")])
                       for q in texts}
                a, b = per_query(base, qrels, ["ndcg@10"]), per_query(rer, qrels, ["ndcg@10"])
                qs = list(a)
                r = paired([a[q]["ndcg@10"] for q in qs], [b[q]["ndcg@10"] for q in qs], n_resamples=2000)
                row[f"len{length}"]["ndcg@10"] = {"hybrid": round(r.mean_a, 4), "reranked": round(r.mean_b, 4),
                                                  "delta": round(r.delta, 4), "ci": r.ci, "p": round(r.p, 4)}
            print(dataset.name, length, row[f"len{length}"], flush=True)
        result["sets"][dataset.name] = row
        kb.close()
    result["machine"]["load_after"] = os.getloadavg()
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
