"""Ingest speed, side by side: wall time, CPU time and passages/s of two source trees, back to back.

    python benchmarks/ingest_speed.py ../shared/data/medquad --limit 1000 \
        --variant before=../main/src --variant after=src --repeats 3
    python benchmarks/ingest_speed.py ../shared/data/tatqa --variant now=src --embedder minilm,multilingual

``--embedder`` takes a comma-separated list: every variant then runs with each embedder in turn.

Each repetition of each variant runs in a fresh Python process with that variant's ``src`` first on
the path: a fresh knowledge base in a temporary folder, the embedder loaded outside the timing,
then ``KnowledgeBase.ingest`` of the first ``--limit`` corpus entries (BEIR layout). Variants
alternate (before, after, before, ...), so a load from other processes on a shared machine falls
on both. CPU time is the process's user + system time over all its threads (and reaped
children) during the ingest; CPU/wall near 1 means one core did the work. The 1-minute load
average before each run is recorded: on a shared machine, wall times mean little when it
exceeds the number of cores. Medians of the
repetitions are printed and written to benchmarks/results/ingest_speed_<dataset>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHILD = r"""
import json, resource, sys, time
from pathlib import Path
from domainrag import KnowledgeBase

data, kb_dir, embedder = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
kb = KnowledgeBase.open(kb_dir, create=True, overrides={"embedder.model": embedder})
_ = kb.embedder  # a one-off start-up cost, outside the timing


def cpu() -> float:
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


cpu0, wall0 = cpu(), time.perf_counter()
report = kb.ingest([data], format="beir")
wall, cpu_s = time.perf_counter() - wall0, cpu() - cpu0
kb.close()
print(json.dumps({"wall_s": wall, "cpu_s": cpu_s, "chunks": report.chunks, "embedded": report.embedded,
                  "failed": len(report.failed)}))
"""


def subset(corpus: Path, limit: int, out: Path) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    with corpus.open(encoding="utf-8") as src, (out / "corpus.jsonl").open("w", encoding="utf-8") as dst:
        for i, line in enumerate(src):
            if limit and i >= limit:
                break
            dst.write(line)
    return out


def run_once(src: Path, data: Path, tmp: Path, embedder: str) -> dict[str, float]:
    kb_dir = Path(tempfile.mkdtemp(dir=tmp))
    # a fresh shared embedding cache per run: every passage is embedded (the speed measured)
    env = {**os.environ, "PYTHONPATH": str(src.resolve()), "DOMAINRAG_CACHE_DIR": str(kb_dir / "cache")}
    out = subprocess.run([sys.executable, "-c", CHILD, str(data), str(kb_dir / "kb"), embedder],
                         env=env, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise SystemExit(f"ingest with {src} failed:\n{out.stderr[-3000:]}")
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data_dir", type=Path)
    parser.add_argument("--limit", type=int, default=0, help="corpus entries to ingest (0: all)")
    parser.add_argument("--variant", action="append", required=True, help="NAME=PATH of a source tree (its src/)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--embedder", default="minilm", help="embedder.model, or several separated by commas")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    trees = dict(v.split("=", 1) for v in args.variant)
    embedders = args.embedder.split(",")
    variants = {(name if len(embedders) == 1 else f"{name} {embedder}"): (src, embedder)
                for name, src in trees.items() for embedder in embedders}

    runs: dict[str, list[dict[str, float]]] = {name: [] for name in variants}
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        data = subset(args.data_dir / "corpus.jsonl", args.limit, tmp / "beir")
        for rep in range(args.repeats):
            for name, (src, embedder) in variants.items():
                load = os.getloadavg()[0]
                result = {**run_once(Path(src), data, tmp, embedder), "load_before": load}
                runs[name].append(result)
                print(f"  rep {rep + 1} {name:8s} wall {result['wall_s']:6.2f}s cpu {result['cpu_s']:6.2f}s "
                      f"{result['chunks'] / result['wall_s']:6.1f} passages/s (load average {load:.1f})", flush=True)

    summary = {}
    for name, results in runs.items():
        wall = statistics.median(r["wall_s"] for r in results)
        cpu = statistics.median(r["cpu_s"] for r in results)
        chunks = results[0]["chunks"]
        summary[name] = {"wall_s": round(wall, 2), "cpu_s": round(cpu, 2), "cpu_per_wall": round(cpu / wall, 2),
                         "passages": chunks, "passages_per_s": round(chunks / wall, 1),
                         "runs": results}
    print(f"\n{args.data_dir.name} ({args.limit or 'all'} entries), {args.embedder}, medians of {args.repeats}:")
    print("| variant | passages | wall s | CPU s | CPU/wall | passages/s |\n|---|---|---|---|---|---|")
    for name, s in summary.items():
        print(f"| {name} | {s['passages']} | {s['wall_s']} | {s['cpu_s']} | {s['cpu_per_wall']} | {s['passages_per_s']} |")
    result = {"dataset": args.data_dir.name, "entries": args.limit, "embedder": args.embedder,
              "repeats": args.repeats, "variants": variants, "summary": summary, "cpus": os.cpu_count(),
              "machine": platform.processor() or platform.machine(), "date": time.strftime("%Y-%m-%d %H:%M")}
    out = args.json or Path(__file__).parent / "results" / f"ingest_speed_{args.data_dir.name}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
