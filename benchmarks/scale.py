"""Retrieval latency, build time and memory at scale, on synthetic chunks (no model call).

Question answered: how fast is retrieval (lexical BM25, dense exact, dense HNSW, hybrid) at
100k and 1M chunks on this machine, how long do the indexes take to build, and how much memory
does it take?

Data: ``--chunks N`` synthetic chunks of ~60 tokens (Poisson) drawn from a Zipf(s=1.07)
vocabulary of 200k words, and clustered Gaussian vectors (1,000 centres, L2-normalised float32)
of ``--dim`` dimensions. Queries are 6 words drawn from a random chunk (skipping the 100 most
frequent words, as a stopword list would) and that chunk's centre plus noise, so both retrievers
have something to find. Query text goes through the real analyzer; query vectors are made up
front (no embedding model is timed).

Components are the project's own: ``Analyzer``, ``LexicalIndex`` (bm25s), ``VectorIndex`` (exact
NumPy and faiss HNSW, the configured M and efSearch) and ``retrieve.fusion.fuse`` with the
configured default fusion. Each size runs in a fresh subprocess so that peak RSS
(``ru_maxrss``) belongs to that size alone. Latencies: one warm-up pass over the queries, then
``--repeats`` timed passes; p50/p95 are the medians over the passes.

``--kb-chunks N`` adds an end-to-end run through ``KnowledgeBase.search`` (SQLite catalog, hit
construction, the ``hash`` embedder so that no model is timed) on N synthetic documents.

Usage::

    python benchmarks/scale.py --chunks 100000 --chunks 1000000 --dim 384 --queries 200 \\
        --json benchmarks/results/scale.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

VOCAB = 200_000
ZIPF_S = 1.07
MEAN_TOKENS = 60
CENTRES = 1_000
QUERY_WORDS = 6
STOP_RANKS = 100
DEPTH = 100  # candidates per retriever, as the retriever's default


# --- synthetic data ---------------------------------------------------------------------------


def zipf_token_ids(n_chunks: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Token ids of all chunks, concatenated, and the chunk offsets (``n_chunks + 1``)."""
    lengths = np.maximum(rng.poisson(MEAN_TOKENS, n_chunks), 5)
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    weights = 1.0 / np.arange(1, VOCAB + 1) ** ZIPF_S
    cdf = np.cumsum(weights / weights.sum())
    ids = np.searchsorted(cdf, rng.random(int(offsets[-1])), side="right")
    return np.minimum(ids, VOCAB - 1).astype(np.int32), offsets


def vocabulary() -> np.ndarray:
    """Pseudo-words that the analyzer keeps as they are (lower-case letters, no stopwords)."""
    letters = np.array(list("bcdfghjklmnpqrstvwxz"))
    words = []
    for i in range(VOCAB):
        digits, n = [], i
        for _ in range(5):
            digits.append(letters[n % 20])
            n //= 20
        words.append("q" + "".join(digits))
    return np.array(words, dtype=object)


def clustered_vectors(n: int, dim: int, centres: np.ndarray, labels: np.ndarray,
                      rng: np.random.Generator, noise: float = 0.6) -> np.ndarray:
    """Normalised float32 vectors around their cluster centres (built in blocks)."""
    out = np.empty((n, dim), dtype=np.float32)
    for start in range(0, n, 100_000):
        stop = min(n, start + 100_000)
        block = centres[labels[start:stop]] + rng.normal(0, noise / np.sqrt(dim), (stop - start, dim))
        out[start:stop] = block / np.linalg.norm(block, axis=1, keepdims=True)
    return out


def make_queries(ids: np.ndarray, offsets: np.ndarray, vocab: np.ndarray, centres: np.ndarray,
                 labels: np.ndarray, n: int, rng: np.random.Generator) -> tuple[list[str], np.ndarray]:
    """Query texts (words of a random chunk) and vectors (that chunk's centre plus noise)."""
    texts, vectors = [], []
    for row in rng.choice(len(offsets) - 1, n, replace=False):
        words = ids[offsets[row]:offsets[row + 1]]
        words = words[words >= STOP_RANKS]
        chosen = rng.choice(words, min(QUERY_WORDS, len(words)), replace=False) if len(words) else []
        texts.append(" ".join(vocab[chosen]))
        v = centres[labels[row]] + rng.normal(0, 0.6 / np.sqrt(centres.shape[1]), centres.shape[1])
        vectors.append(v / np.linalg.norm(v))
    return texts, np.asarray(vectors, dtype=np.float32)


# --- measuring --------------------------------------------------------------------------------


def rss_mb() -> float:
    """Current resident set size in MiB (Linux /proc)."""
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def latency(fn: Callable[[int], Any], n: int, repeats: int) -> dict[str, float]:
    """p50/p95 in ms of ``fn(i)`` over ``i < n``: a warm-up pass, then medians over passes."""
    for i in range(n):
        fn(i)
    p50s, p95s, means = [], [], []
    for _ in range(repeats):
        times = []
        for i in range(n):
            t0 = time.perf_counter()
            fn(i)
            times.append((time.perf_counter() - t0) * 1000)
        p50s.append(float(np.percentile(times, 50)))
        p95s.append(float(np.percentile(times, 95)))
        means.append(float(np.mean(times)))
    return {"p50_ms": float(np.median(p50s)), "p95_ms": float(np.median(p95s)),
            "mean_ms": float(np.median(means))}


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    t0 = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - t0


def overlap_at(a: np.ndarray, b: np.ndarray, k: int) -> float:
    return len(set(a[:k].tolist()) & set(b[:k].tolist())) / max(1, min(k, len(b)))


# --- one size (runs in a child process) --------------------------------------------------------


def measure_components(n_chunks: int, dim: int, n_queries: int, repeats: int, seed: int,
                       hnsw: bool) -> dict[str, Any]:
    from domainrag.config import KBConfig
    from domainrag.index.analyzer import Analyzer
    from domainrag.index.lexical import LexicalIndex
    from domainrag.index.vectors import VectorIndex
    from domainrag.retrieve.fusion import fuse

    config = KBConfig()
    rng = np.random.default_rng(seed)
    result: dict[str, Any] = {"chunks": n_chunks, "dim": dim, "queries": n_queries}
    vocab = vocabulary()
    (ids, offsets), t_tokens = timed(lambda: zipf_token_ids(n_chunks, rng))
    centres = rng.normal(0, 1, (CENTRES, dim))
    labels = rng.integers(0, CENTRES, n_chunks)
    matrix, t_vectors = timed(lambda: clustered_vectors(n_chunks, dim, centres, labels, rng))
    result["tokens_total"] = int(offsets[-1])
    result["synthesis_s"] = round(t_tokens + t_vectors, 2)
    texts, qvecs = make_queries(ids, offsets, vocab, centres, labels, n_queries, rng)
    rss0 = rss_mb()

    def corpus_tokens(token_ids: np.ndarray):
        for row in range(n_chunks):
            yield vocab[token_ids[offsets[row]:offsets[row + 1]]].tolist()

    lexical, t_lex = timed(lambda tokens=ids: LexicalIndex.build(corpus_tokens(tokens)))
    del ids
    result["build_s"] = {"lexical": round(t_lex, 2)}
    result["rss_after_lexical_mb"] = round(rss_mb(), 1)
    exact = VectorIndex(matrix, config.index.model_copy(update={"ann_threshold": 10**12}))
    result["memory_mb"] = {"vectors": round(matrix.nbytes / 2**20, 1),
                           "lexical_and_synthesis_rss_delta": round(rss_mb() - rss0, 1)}

    analyzer = Analyzer()
    tokens = [analyzer.tokenize(t) for t in texts]
    lex = [lexical.search(t, DEPTH) for t in tokens]
    den = [exact.search(v, DEPTH) for v in qvecs]
    method = config.retrieval.fusion
    fuse_kw = {"method": method, "dense_weight": config.retrieval.dense_weight,
               "rrf_k": config.retrieval.rrf_k}
    result["fusion"] = fuse_kw
    lat: dict[str, dict[str, float]] = {}
    lat["lexical"] = latency(lambda i: lexical.search(analyzer.tokenize(texts[i]), DEPTH), n_queries, repeats)
    lat["dense_exact"] = latency(lambda i: exact.search(qvecs[i], DEPTH), n_queries, repeats)
    lat["fuse_only"] = latency(lambda i: fuse(lex[i], den[i], **fuse_kw), n_queries, repeats)
    lat["hybrid_exact"] = latency(
        lambda i: fuse(lexical.search(analyzer.tokenize(texts[i]), DEPTH),
                       exact.search(qvecs[i], DEPTH), **fuse_kw), n_queries, repeats)
    result["lexical_hits_per_query_mean"] = float(np.mean([len(r) for r in lex]))
    if hnsw:
        ann = VectorIndex(matrix, config.index.model_copy(update={"ann_threshold": 1}))
        rss1 = rss_mb()
        _, t_hnsw = timed(ann.ensure_ann)
        result["build_s"]["hnsw"] = round(t_hnsw, 2)
        result["memory_mb"]["hnsw_graph_rss_delta"] = round(rss_mb() - rss1, 1)
        result["hnsw"] = {"M": config.index.hnsw_m, "ef_search": config.index.hnsw_ef_search,
                          "ef_construction": 80}
        approx = [ann.search(v, DEPTH) for v in qvecs]
        result["hnsw_recall"] = {
            f"@{k}": float(np.mean([overlap_at(a.rows, e.rows, k) for a, e in zip(approx, den, strict=False)]))
            for k in (10, 100)}
        lat["dense_hnsw"] = latency(lambda i: ann.search(qvecs[i], DEPTH), n_queries, repeats)
        lat["hybrid_hnsw"] = latency(
            lambda i: fuse(lexical.search(analyzer.tokenize(texts[i]), DEPTH),
                           ann.search(qvecs[i], DEPTH), **fuse_kw), n_queries, repeats)
    result["latency"] = lat
    result["rss_end_mb"] = round(rss_mb(), 1)
    result["peak_rss_mb"] = round(peak_rss_mb(), 1)
    return result


def measure_kb(n_docs: int, n_queries: int, repeats: int, seed: int) -> dict[str, Any]:
    """End to end through ``KnowledgeBase``: ingest a synthetic BEIR corpus, time ``search``."""
    from domainrag import KnowledgeBase

    rng = np.random.default_rng(seed)
    vocab = vocabulary()
    ids, offsets = zipf_token_ids(n_docs, rng)
    with tempfile.TemporaryDirectory(prefix="domainrag-scale-") as tmp:
        corpus = Path(tmp) / "corpus"
        corpus.mkdir()
        with (corpus / "corpus.jsonl").open("w") as out:
            for row in range(n_docs):
                text = " ".join(vocab[ids[offsets[row]:offsets[row + 1]]])
                out.write(json.dumps({"_id": f"d{row}", "title": "", "text": text}) + "\n")
        queries = [" ".join(rng.choice(vocab[ids[offsets[r]:offsets[r + 1]]], QUERY_WORDS))
                   for r in rng.choice(n_docs, n_queries, replace=False)]
        (corpus / "queries.jsonl").write_text("")
        kb = KnowledgeBase.open(Path(tmp) / "kb", create=True, overrides={"embedder.model": "hash:384"})
        report, t_ingest = timed(lambda: kb.ingest([corpus], format="beir"))
        result: dict[str, Any] = {"docs": n_docs, "ingest_s": round(t_ingest, 1),
                                  "ingest_report": _plain(report), "latency": {}}
        for mode in ("lexical", "dense", "hybrid"):
            result["latency"][mode] = latency(lambda i, mode=mode: kb.search(queries[i], k=10, mode=mode),
                                              n_queries, repeats)
        result["peak_rss_mb"] = round(peak_rss_mb(), 1)
        close = getattr(kb, "close", None)
        if close:
            close()
    return result


def _plain(value: Any) -> Any:
    """A JSON-able summary of an ingest report (dataclass or anything with counters)."""
    try:
        from dataclasses import asdict, is_dataclass

        if is_dataclass(value):
            return {k: v for k, v in asdict(value).items() if isinstance(v, (int, float, str, bool))}
    except TypeError:
        pass
    return str(value)[:500]


# --- orchestration ----------------------------------------------------------------------------


def run_child(args: list[str]) -> dict[str, Any]:
    cmd = [sys.executable, __file__, *args]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr)
        raise SystemExit(f"child failed: {' '.join(args)}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def machine() -> dict[str, Any]:
    model = ""
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        model = next((line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("Model name")), "")
    except OSError:
        pass
    return {"cpu": model, "cores": os.cpu_count(), "python": platform.python_version(),
            "platform": platform.platform()}


def print_table(results: list[dict[str, Any]], kb: dict[str, Any] | None) -> None:
    header = f"{'chunks':>9} {'mode':<13} {'p50 ms':>8} {'p95 ms':>8}"
    print(header)
    print("-" * len(header))
    for r in results:
        for mode, lat in r["latency"].items():
            print(f"{r['chunks']:>9} {mode:<13} {lat['p50_ms']:>8.2f} {lat['p95_ms']:>8.2f}")
        builds = ", ".join(f"{k} {v:.1f} s" for k, v in r["build_s"].items())
        print(f"{'':>9} build: {builds}; peak RSS {r['peak_rss_mb']:.0f} MiB; "
              f"vectors {r['memory_mb']['vectors']:.0f} MiB")
        if "hnsw_recall" in r:
            print(f"{'':>9} HNSW recall vs exact: @10 {r['hnsw_recall']['@10']:.3f}, "
                  f"@100 {r['hnsw_recall']['@100']:.3f}")
    if kb:
        print(f"\nKnowledgeBase.search end to end, {kb['docs']} docs (hash embedder), "
              f"ingest {kb['ingest_s']} s, peak RSS {kb['peak_rss_mb']:.0f} MiB")
        for mode, lat in kb["latency"].items():
            print(f"{kb['docs']:>9} {mode:<13} {lat['p50_ms']:>8.2f} {lat['p95_ms']:>8.2f}")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--chunks", type=int, action="append", help="corpus size (repeatable)")
    p.add_argument("--dim", type=int, default=384)
    p.add_argument("--queries", type=int, default=200)
    p.add_argument("--repeats", type=int, default=3, help="timed passes per mode")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-hnsw", action="store_true", help="skip the HNSW build and search")
    p.add_argument("--kb-chunks", type=int, default=0,
                   help="also time KnowledgeBase.search end to end on this many docs (0: skip)")
    p.add_argument("--json", type=Path, default=Path("benchmarks/results/scale.json"))
    p.add_argument("--_child", type=int, help=argparse.SUPPRESS)
    p.add_argument("--_kb_child", type=int, help=argparse.SUPPRESS)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    common = ["--dim", str(args.dim), "--queries", str(args.queries),
              "--repeats", str(args.repeats), "--seed", str(args.seed)]
    if args._child:
        out = measure_components(args._child, args.dim, args.queries, args.repeats, args.seed,
                                 hnsw=not args.no_hnsw)
        print(json.dumps(out))
        return
    if args._kb_child:
        print(json.dumps(measure_kb(args._kb_child, args.queries, args.repeats, args.seed)))
        return
    results = []
    for n in args.chunks or [100_000]:
        print(f"measuring {n} chunks...", file=sys.stderr, flush=True)
        results.append(run_child(["--_child", str(n), *common, *(["--no-hnsw"] if args.no_hnsw else [])]))
    kb = None
    if args.kb_chunks:
        print(f"measuring KnowledgeBase end to end at {args.kb_chunks} docs...", file=sys.stderr, flush=True)
        kb = run_child(["--_kb_child", str(args.kb_chunks), *common])
    print_table(results, kb)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    payload = {"date": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "machine": machine(),
               "command": "python " + " ".join([Path(__file__).as_posix(), *(argv or sys.argv[1:])]),
               "components": results, "knowledge_base": kb}
    args.json.write_text(json.dumps(payload, indent=2))
    print(f"\nwrote {args.json}")


if __name__ == "__main__":
    main()
