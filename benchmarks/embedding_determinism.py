"""What does a batch-independent onnx embedder cost? Batched runs against one text per call.

The bundled MiniLM (fp32 and int8) embeds passages from a BEIR folder two ways, on the same
onnxruntime session: ``batched`` — the former behaviour, batches of 32 sorted by length and cut
into padded runs of at most 2,048 tokens, mean-pooled over the mask — and ``alone`` — what
``OnnxEmbedder`` does now, one unpadded text per call. Reported per cell: passages/s (median and
best of interleaved repetitions), cosine to the fp32 ``alone`` vectors, and how many vectors are
bit-identical when the same passages are embedded in another order (other batch-mates).

    python benchmarks/embedding_determinism.py /work/shared/data/medquad --n 1000
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from domainrag.models.onnx_embedder import OnnxEmbedder

RESULTS = Path(__file__).parent / "results" / "embedding_determinism.json"
BATCH, TOKENS_PER_RUN = 32, 2048


def main() -> None:
    args = _parse_args()
    texts = _passages(Path(args.beir) / "corpus.jsonl", args.n, args.seed)
    embedders = {"fp32": OnnxEmbedder("all-MiniLM-L6-v2"), "int8": OnnxEmbedder("all-MiniLM-L6-v2-int8")}
    ways: dict[str, Callable[[OnnxEmbedder, list[str]], np.ndarray]] = {"batched": _batched, "alone": _alone}
    cells = [(variant, way) for variant in embedders for way in ways]
    load_before = os.getloadavg()
    for variant, way in cells:  # warm-up
        ways[way](embedders[variant], texts[:BATCH])
    seconds: dict[tuple[str, str], list[float]] = {cell: [] for cell in cells}
    vectors: dict[tuple[str, str], np.ndarray] = {}
    for round_ in range(args.repeats):
        for variant, way in cells:
            started = time.perf_counter()
            vectors[variant, way] = ways[way](embedders[variant], texts)
            seconds[variant, way].append(time.perf_counter() - started)
        print(f"round {round_ + 1}/{args.repeats} done", file=sys.stderr)
    order = np.random.default_rng(args.seed).permutation(len(texts))
    reference = vectors["fp32", "alone"]
    rows = []
    for variant, way in cells:
        shuffled = np.empty_like(reference)
        shuffled[order] = ways[way](embedders[variant], [texts[i] for i in order])
        cosine = np.sum(vectors[variant, way] * reference, axis=1)
        rows.append({
            "variant": variant, "way": way,
            "passages_per_s": len(texts) / statistics.median(seconds[variant, way]),
            "best_passages_per_s": len(texts) / min(seconds[variant, way]),
            "seconds": seconds[variant, way],
            "cosine_to_fp32_mean": float(cosine.mean()), "cosine_to_fp32_min": float(cosine.min()),
            "bit_identical_in_other_batches": float(np.mean((shuffled == vectors[variant, way]).all(axis=1))),
            "max_abs_difference_in_other_batches": float(np.abs(shuffled - vectors[variant, way]).max()),
        })
    for row in rows:
        batched = next(r for r in rows if r["variant"] == row["variant"] and r["way"] == "batched")
        row["speed_vs_batched"] = row["passages_per_s"] / batched["passages_per_s"]
    report = {
        "question": "cost and fidelity of embedding each text alone (batch-independent vectors)",
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "python": platform.python_version()},
        "load_average_1_5_15": {"before": load_before, "after": os.getloadavg()},
        "data": {"beir": args.beir, "passages": len(texts), "seed": args.seed,
                 "max_length": embedders["int8"].max_length},
        "cells": rows,
    }
    print(f"\n{'variant':8} {'way':8} {'median/s':>9} {'best/s':>8} {'vs batched':>10} {'cos fp32':>9} "
          f"{'min cos':>8} {'identical':>9}")
    for r in rows:
        print(f"{r['variant']:8} {r['way']:8} {r['passages_per_s']:>9.1f} {r['best_passages_per_s']:>8.1f} "
              f"{r['speed_vs_batched']:>9.2f}x {r['cosine_to_fp32_mean']:>9.5f} {r['cosine_to_fp32_min']:>8.5f} "
              f"{r['bit_identical_in_other_batches']:>9.1%}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"\nwrote {out}")


def _parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("beir", help="BEIR folder with corpus.jsonl")
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=str(RESULTS))
    return parser.parse_args()


def _passages(corpus: Path, n: int, seed: int) -> list[str]:
    with corpus.open(encoding="utf-8") as handle:
        records = [json.loads(line) for line in handle if line.strip()]
    chosen = random.Random(seed).sample(records, min(n, len(records)))
    return ["\n".join(p for p in (r.get("title"), r.get("text")) if p) for r in chosen]


def _alone(embedder: OnnxEmbedder, texts: list[str]) -> np.ndarray:
    return embedder.embed(texts)


def _batched(embedder: OnnxEmbedder, texts: list[str]) -> np.ndarray:
    """The former embed_batch: length-sorted padded runs, mean over the mask."""
    out = np.zeros((len(texts), embedder.dimensions), dtype=np.float32)
    for start in range(0, len(texts), BATCH):
        encodings = embedder.tokenizer.encode_batch(texts[start : start + BATCH])
        lengths = np.asarray([len(e.ids) for e in encodings])
        order = np.argsort(-lengths, kind="stable")
        i = 0
        while i < len(order):
            rows = order[i : i + max(1, TOKENS_PER_RUN // int(lengths[order[i]]))]
            out[start + rows] = _padded_run(embedder, [encodings[r] for r in rows])
            i += len(rows)
    return out / np.linalg.norm(out, axis=1, keepdims=True)


def _padded_run(embedder: OnnxEmbedder, encodings: list[Any]) -> np.ndarray:
    longest = max(len(e.ids) for e in encodings)
    ids = np.zeros((len(encodings), longest), dtype=np.int64)
    mask = np.zeros_like(ids)
    for row, encoding in enumerate(encodings):
        ids[row, : len(encoding.ids)] = encoding.ids
        mask[row, : len(encoding.ids)] = 1
    feed = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
    hidden = embedder.sessions.single.run(None, feed)[0]
    weights = mask[..., None].astype(np.float32)
    return (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)


if __name__ == "__main__":
    main()
