"""Where does ingest time go? Profiles ingesting a BEIR corpus (cold caches, fresh KB).

    python benchmarks/ingest_profile.py ../shared/data/medquad --limit 2000 [--embedder minilm]

Prints the share of the ingest's wall time spent in each stage (cumulative time of the stage's
entry function under cProfile) and writes benchmarks/results/ingest_profile_<dataset>.json.
The target: only the embedding model may take more than 20% of the time.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import platform
import pstats
import tempfile
import time
from pathlib import Path

STAGES = {
    "embedding model": ("models/", "embed"),
    "loading (parse records)": ("ingest/beir_corpus.py", "beir_document"),
    "chunking": ("ingest/chunking.py", "split"),
    "lexical analysis": ("index/analyzer.py", "tokenize"),
    "catalog writes": ("index/sqlite_store.py", "write"),
    "embedding cache": ("index/sqlite_store.py", "cached_vectors"),
    "index rebuild (BM25 + vectors)": ("index/sqlite_store.py", "refresh"),
}


def subset(corpus: Path, limit: int, out: Path) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    with corpus.open(encoding="utf-8") as src, (out / "corpus.jsonl").open("w", encoding="utf-8") as dst:
        for i, line in enumerate(src):
            if i >= limit:
                break
            dst.write(line)
    return out


def stage_seconds(stats: pstats.Stats) -> dict[str, float]:
    totals = dict.fromkeys(STAGES, 0.0)
    for (filename, _, func), (_, _, _, cumtime, _) in stats.stats.items():  # type: ignore[attr-defined]
        for stage, (path_part, name) in STAGES.items():
            if path_part in filename.replace("\\", "/") and func == name and "domainrag" in filename:
                totals[stage] = max(totals[stage], cumtime)
    return totals


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data_dir", type=Path)
    parser.add_argument("--limit", type=int, default=2000, help="corpus entries to ingest")
    parser.add_argument("--embedder", default="minilm")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()

    from domainrag import KnowledgeBase

    with tempfile.TemporaryDirectory() as tmp:
        data = subset(args.data_dir / "corpus.jsonl", args.limit, Path(tmp) / "beir")
        os.environ["DOMAINRAG_CACHE_DIR"] = str(Path(tmp) / "cache")  # a fresh shared cache: embed every passage
        kb = KnowledgeBase.open(Path(tmp) / "kb", create=True, overrides={"embedder.model": args.embedder})
        _ = kb.embedder  # load the model outside the profile: a one-off start-up cost
        profiler = cProfile.Profile()
        started = time.perf_counter()
        profiler.enable()
        report = kb.ingest([data], format="beir")
        profiler.disable()
        wall = time.perf_counter() - started
        kb.close()
    seconds = stage_seconds(pstats.Stats(profiler))
    rows = {stage: {"seconds": round(s, 3), "share": round(s / wall, 4)} for stage, s in seconds.items()}
    print(f"{args.data_dir.name}: {args.limit} entries, {report.chunks} chunks, {wall:.1f}s wall "
          f"({report.chunks / wall:.1f} chunks/s) with {args.embedder}")
    for stage, row in sorted(rows.items(), key=lambda kv: -kv[1]["seconds"]):
        print(f"  {stage:32s} {row['seconds']:8.2f}s  {100 * row['share']:5.1f}%")
    result = {
        "dataset": args.data_dir.name, "entries": args.limit, "chunks": report.chunks,
        "embedder": args.embedder, "wall_seconds": round(wall, 2), "stages": rows,
        "machine": platform.processor() or platform.machine(), "date": time.strftime("%Y-%m-%d"),
    }
    out = args.json or Path(__file__).parent / "results" / f"ingest_profile_{args.data_dir.name}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
