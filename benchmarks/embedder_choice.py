"""Which runtime should serve the default embedder: sentence-transformers (torch) or ONNX?

Compares three runtimes of the bundled all-MiniLM-L6-v2 — sentence-transformers on torch
(``sentence-transformers:all-MiniLM-L6-v2``; the ``minilm`` alias now names the int8 ONNX
build), onnxruntime fp32 (``onnx:all-MiniLM-L6-v2``) and onnxruntime int8
(``onnx:all-MiniLM-L6-v2-int8``) — on:

- speed: passages/s on ``--n`` real passages of the first folder (corpus entries cut to
  ``--words`` words), batch 32, max_length 256; and cold start: import + load + first embedding
  in a fresh process. Every figure is measured in its own subprocess, the runtimes interleaved
  repetition by repetition, and reported as the median of ``--repeats`` with a ratio to
  sentence-transformers (other load on the machine slows all alike);
- fidelity: cosine of each passage's vector to the sentence-transformers vector (mean, min);
- retrieval: dense-only, exact-cosine nDCG@10 (document level, trec_eval definition) on the test
  queries of every further folder (``title\\ntext`` embedded, truncated at max_length), with a
  paired randomisation test against sentence-transformers.

Embeddings are cached in ``benchmarks/.cache/embedder_choice/`` (keyed by embedder id and a hash
of the texts), so re-runs only re-measure speed. The ONNX files come from the usual cache
(``$DOMAINRAG_CACHE``); the one-off export time is measured in a temporary cache.

    python benchmarks/embedder_choice.py ../shared/data/medquad ../shared/data/pubmedqa \\
        ../shared/data/tatqa ../shared/data/policyqa
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from domainrag.config import EmbedderConfig
from domainrag.evaluate.beir_qrels import load_beir_qrels, load_beir_queries, qrels_path
from domainrag.evaluate.metrics import evaluate_run, per_query
from domainrag.models.embedders import load_embedder

#: Runtime label -> embedder spec; the first is the reference.
RUNTIMES = {
    # By full spec: the "minilm" alias now names the ONNX int8 build (see models/embedders.py).
    "sentence-transformers": "sentence-transformers:all-MiniLM-L6-v2",
    "onnx-fp32": "onnx:all-MiniLM-L6-v2",
    "onnx-int8": "onnx:all-MiniLM-L6-v2-int8",
}
REFERENCE = "sentence-transformers"
BATCH = 32
MAX_LENGTH = 256
METRICS = ("ndcg@10", "recall@10")
HERE = Path(__file__).parent
RESULTS = HERE / "results" / "embedder_choice.json"
CACHE = HERE / ".cache" / "embedder_choice"

#: Runs in a fresh interpreter: cold start, then timed embedding of the passages.
WORKER = r"""
import time
t0 = time.perf_counter()
import json, sys
from domainrag.config import EmbedderConfig
from domainrag.models.embedders import load_embedder
spec, batch, max_length, texts_path, vectors_path = sys.argv[1:6]
config = EmbedderConfig(model=spec, batch_size=int(batch), max_length=int(max_length))
embedder = load_embedder(config)
loaded = time.perf_counter() - t0
embedder.embed(["What are the symptoms of diabetes?"])
first = time.perf_counter() - t0
heavy = ("torch", "transformers", "sentence_transformers", "onnx")
heavy = sorted(m for m in heavy if m in sys.modules)
if texts_path != "-":
    import numpy as np
    with open(texts_path, encoding="utf-8") as handle:
        texts = json.load(handle)
    embedder.embed(texts[: int(batch)])  # warm-up
    start = time.perf_counter()
    vectors = embedder.embed(texts)
    seconds = time.perf_counter() - start
    np.save(vectors_path, vectors)
else:
    seconds = None
print(json.dumps({"id": embedder.id, "load_s": loaded, "first_embedding_s": first,
                  "embed_s": seconds, "heavy_modules": heavy}))
"""


def main() -> None:
    args = _parse_args()
    folders = [Path(f) for f in args.folders]
    retrieval_folders = folders[1:] or folders
    texts = _passages(folders[0] / "corpus.jsonl", args.n, args.words, args.seed)
    load_before = os.getloadavg()
    print(f"speed: {len(texts)} passages from {folders[0]}, {args.repeats} repetitions",
          file=sys.stderr)
    speed, vectors = _speed(texts, args.repeats)
    export = _export_cost()
    fidelity = _fidelity(vectors)
    retrieval = {folder.name: _retrieval(folder, args.split) for folder in retrieval_folders}
    report = {
        "question": "sentence-transformers vs ONNX fp32 vs ONNX int8 for the bundled MiniLM",
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": _machine(),
        # Other processes on the machine skew speed; ratios measured side by side stay fair.
        "load_average_1_5_15": {"before": load_before, "after": os.getloadavg()},
        "settings": {"batch": BATCH, "max_length": MAX_LENGTH, "passages": len(texts),
                     "words_per_passage": args.words, "seed": args.seed,
                     "repeats": args.repeats, "split": args.split},
        "token_lengths": _token_lengths(texts),
        "runtimes": RUNTIMES,
        "speed": speed,
        "export_once": export,
        "fidelity_vs_sentence_transformers": fidelity,
        "retrieval": retrieval,
    }
    _print(report)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"\nwrote {out}")


def _parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folders", nargs="+", help="BEIR folders: the first for speed and "
                        "fidelity, the others (or the first alone) for retrieval")
    parser.add_argument("--n", type=int, default=256, help="passages to time")
    parser.add_argument("--words", type=int, default=200, help="words kept per passage")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--split", default="test", help="qrels split for retrieval")
    parser.add_argument("--out", default=str(RESULTS))
    return parser.parse_args()


# --- speed, cold start, fidelity -------------------------------------------------------------


def _passages(corpus: Path, n: int, words: int, seed: int) -> list[str]:
    """``n`` corpus entries drawn at random (fixed seed), ``title\\ntext`` cut to ``words``."""
    records = _jsonl(corpus)
    chosen = random.Random(seed).sample(records, min(n, len(records)))
    texts = ["\n".join(p for p in (r.get("title"), r.get("text")) if p) for r in chosen]
    return [" ".join(text.split(" ")[:words]) for text in texts]


def _speed(texts: list[str], repeats: int) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Per runtime: medians of passages/s and cold start, each run in a fresh process."""
    for spec in RUNTIMES.values():  # export ONNX files now so no timed run includes it
        _worker(spec, "-", "-")
    runs: dict[str, list[dict[str, Any]]] = {label: [] for label in RUNTIMES}
    vectors: dict[str, np.ndarray] = {}
    with tempfile.TemporaryDirectory() as tmp:
        texts_path = Path(tmp) / "texts.json"
        texts_path.write_text(json.dumps(texts), encoding="utf-8")
        for rep in range(repeats):
            for label, spec in RUNTIMES.items():
                out = Path(tmp) / f"{label}.npy"
                runs[label].append(_worker(spec, str(texts_path), str(out)))
                vectors[label] = np.load(out)
                print(f"  rep {rep + 1} {label}: {runs[label][-1]}", file=sys.stderr)
    speed = {label: _summarise(rows, len(texts)) for label, rows in runs.items()}
    ref = speed[REFERENCE]
    for row in speed.values():
        row["speed_ratio"] = row["passages_per_s"] / ref["passages_per_s"]
        row["cold_start_ratio"] = row["cold_start_s"] / ref["cold_start_s"]
    return speed, vectors


def _worker(spec: str, texts_path: str, vectors_path: str, env: dict[str, str] | None = None
            ) -> dict[str, Any]:
    command = [sys.executable, "-c", WORKER, spec, str(BATCH), str(MAX_LENGTH), texts_path,
               vectors_path]
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"worker for {spec} failed:\n{done.stderr[-3000:]}")
    row = json.loads(done.stdout.strip().splitlines()[-1])
    row["process_wall_s"] = wall
    return row


def _summarise(rows: list[dict[str, Any]], n: int) -> dict[str, Any]:
    embed = [r["embed_s"] for r in rows]
    cold = [r["first_embedding_s"] for r in rows]
    return {
        "id": rows[0]["id"],
        "embed_seconds": embed,
        "passages_per_s": n / statistics.median(embed),
        "cold_start_seconds": cold,
        "cold_start_s": statistics.median(cold),
        "load_s": statistics.median(r["load_s"] for r in rows),
        "heavy_modules_imported": rows[0]["heavy_modules"],
    }


def _export_cost() -> dict[str, Any]:
    """First use of each ONNX variant from an empty cache (export, check, quantise), once."""
    result: dict[str, Any] = {}
    for label, spec in RUNTIMES.items():
        if not spec.startswith("onnx:"):
            continue
        with tempfile.TemporaryDirectory() as cache:
            env = dict(os.environ, DOMAINRAG_CACHE=cache)
            row = _worker(spec, "-", "-", env=env)
            sizes = {p.name: p.stat().st_size for p in Path(cache, "models").glob("*.onnx")}
        result[label] = {"first_use_s": row["first_embedding_s"], "onnx_bytes": sizes}
        print(f"  export {label}: {result[label]}", file=sys.stderr)
    return result


def _fidelity(vectors: dict[str, np.ndarray]) -> dict[str, dict[str, float]]:
    ref = vectors[REFERENCE]
    result = {}
    for label, vecs in vectors.items():
        cos = np.sum(vecs * ref, axis=1)
        result[label] = {"mean": float(cos.mean()), "min": float(cos.min()),
                         "p05": float(np.percentile(cos, 5))}
    return result


def _token_lengths(texts: list[str]) -> dict[str, float]:
    from tokenizers import Tokenizer

    from domainrag.models.bundled import bundled_path

    tokenizer = Tokenizer.from_file(str(bundled_path() / "tokenizer.json"))
    tokenizer.no_truncation()
    tokenizer.no_padding()
    lengths = np.array([len(e.ids) for e in tokenizer.encode_batch(texts)])
    return {"mean": float(lengths.mean()), "median": float(np.median(lengths)),
            "share_truncated": float(np.mean(lengths > MAX_LENGTH))}


# --- retrieval -------------------------------------------------------------------------------


def _retrieval(folder: Path, split: str) -> dict[str, Any]:
    """nDCG@10 of exact cosine search per runtime, with a paired test against the reference."""
    corpus = _jsonl(folder / "corpus.jsonl")
    doc_ids = [str(r["_id"]) for r in corpus]
    doc_texts = ["\n".join(p for p in (r.get("title"), r.get("text")) if p) for r in corpus]
    qrels = load_beir_qrels(qrels_path(folder, split))
    queries = load_beir_queries(folder / "queries.jsonl")
    query_ids = [q for q in qrels if q in queries]
    query_texts = [queries[q] for q in query_ids]
    print(f"retrieval: {folder.name}: {len(doc_ids)} docs, {len(query_ids)} queries",
          file=sys.stderr)
    result: dict[str, Any] = {"docs": len(doc_ids), "queries": len(query_ids)}
    scores: dict[str, dict[str, dict[str, float]]] = {}
    for label, spec in RUNTIMES.items():
        docs = _embedded(folder.name, label, spec, "corpus", doc_texts)
        qvecs = _embedded(folder.name, label, spec, "queries", query_texts)
        run = _search(qvecs, docs, query_ids, doc_ids, k=100)
        scores[label] = per_query(run, qrels, METRICS)
        result[label] = evaluate_run(run, qrels, METRICS)
    for label in RUNTIMES:
        if label != REFERENCE:
            result[label]["vs_reference"] = _paired(scores[label], scores[REFERENCE], "ndcg@10")
    return result


def _embedded(dataset: str, label: str, spec: str, part: str, texts: list[str]) -> np.ndarray:
    """Vectors of ``texts``, from ``benchmarks/.cache`` when the same embedder made them (the
    key holds the spec, not only the label: an alias or label that changes its model misses)."""
    digest = hashlib.sha256("\x00".join([spec, *texts]).encode("utf-8")).hexdigest()[:16]
    path = CACHE / dataset / f"{label}-{part}-{MAX_LENGTH}-{digest}.npy"
    if path.is_file():
        return np.load(path)
    embedder = load_embedder(EmbedderConfig(model=spec, batch_size=BATCH, max_length=MAX_LENGTH))
    start = time.perf_counter()
    vectors = embedder.embed(texts)
    print(f"  {dataset} {label} {part}: {len(texts)} in {time.perf_counter() - start:.0f} s",
          file=sys.stderr)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, vectors)
    return vectors


def _search(queries: np.ndarray, docs: np.ndarray, query_ids: list[str], doc_ids: list[str],
            k: int) -> dict[str, list[str]]:
    """Exact cosine top-k (vectors are L2-normalised)."""
    scores = queries @ docs.T
    k = min(k, docs.shape[0])
    top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    run = {}
    for row, qid in enumerate(query_ids):
        best = top[row][np.argsort(-scores[row, top[row]], kind="stable")]
        run[qid] = [doc_ids[i] for i in best]
    return run


def _paired(a: dict[str, dict[str, float]], b: dict[str, dict[str, float]], name: str,
            rounds: int = 10000) -> dict[str, float]:
    """Mean per-query difference a - b and a two-sided sign-flip randomisation p-value."""
    diff = np.array([a[q][name] - b[q][name] for q in b])
    observed = abs(diff.mean())
    signs = np.random.default_rng(0).choice((-1.0, 1.0), size=(rounds, diff.size))
    p = (np.sum(np.abs((signs * diff).mean(axis=1)) >= observed - 1e-12) + 1) / (rounds + 1)
    return {"mean_diff": float(diff.mean()), "p_value": float(p),
            "queries_changed": int(np.sum(np.abs(diff) > 1e-9))}


# --- output ----------------------------------------------------------------------------------


def _jsonl(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def _machine() -> dict[str, Any]:
    import onnxruntime
    import torch

    return {"platform": platform.platform(), "processor": platform.processor() or
            platform.machine(), "cpus": os.cpu_count(), "python": platform.python_version(),
            "torch": torch.__version__, "onnxruntime": onnxruntime.__version__}


def _print(report: dict[str, Any]) -> None:
    speed, fid, export = report["speed"], report["fidelity_vs_sentence_transformers"], \
        report["export_once"]
    datasets = list(report["retrieval"])
    head = f"{'runtime':22} {'pass/s':>7} {'ratio':>6} {'cold s':>7} {'cos mean':>9} {'cos min':>8}"
    head += "".join(f" {d[:10]:>11}" for d in datasets)
    print("\n" + head)
    for label in RUNTIMES:
        s, f = speed[label], fid[label]
        line = (f"{label:22} {s['passages_per_s']:7.1f} {s['speed_ratio']:6.2f} "
                f"{s['cold_start_s']:7.2f} {f['mean']:9.4f} {f['min']:8.4f}")
        for d in datasets:
            line += f" {report['retrieval'][d][label]['ndcg@10']:11.4f}"
        print(line)
    print("\n(nDCG@10 per dataset; paired sign-flip test vs sentence-transformers:)")
    for d in datasets:
        for label in RUNTIMES:
            if label != REFERENCE:
                v = report["retrieval"][d][label]["vs_reference"]
                print(f"  {d:10} {label:10} diff {v['mean_diff']:+.4f}  p={v['p_value']:.3f}  "
                      f"queries changed {v['queries_changed']}")
    for label, row in export.items():
        print(f"first use (export) {label}: {row['first_use_s']:.1f} s, {row['onnx_bytes']}")


if __name__ == "__main__":
    main()
