"""Cold start, side by side: what a fresh ``domainrag search`` / ``ask`` process costs, per source tree.

    git worktree add /tmp/before <commit>      # the tree to compare against
    python benchmarks/cold_start.py --variant before=/tmp/before/src --variant after=src \
        --kb /tmp/cs-kb --repeats 7

Every measurement is one fresh Python process with that variant's ``src`` first on the path,
timed from outside: wall time (spawn to exit) and CPU time (user + system of the child, all its
threads, from ``getrusage(RUSAGE_CHILDREN)``). The CLI runs through ``domainrag.cli.main`` in a
three-line wrapper that also reports the CPU time of the main thread (``time.thread_time()``):
work a background thread does beside it (the embedder's preload) is not on the critical path,
so on a machine with a free core the wall time approaches the main thread's share. Commands, in
that order for each repetition:

- ``import``: ``python -c "import domainrag"`` (the library's import must stay light);
- ``kb open``: ``import domainrag.kb`` and ``KnowledgeBase.open(KB)`` (no preload, no search);
- ``search lexical``: ``python -m domainrag.cli search QUERY --kb KB -k 10 --mode lexical``;
- ``search hybrid``: the same with the configured (hybrid) mode — the first hybrid result a
  user waits for, embedder load included;
- ``search --json``: hybrid, printed as JSON (its output is compared across variants);
- ``ask``: ``python -m domainrag.cli ask QUESTION --kb KB`` with the offline extractive answerer.

Variants alternate within each repetition (before, after, before, ...), so load from other
processes falls on both; one unmeasured warm-up round first fills the page cache. The 1-minute
load average is recorded before each process: on a shared machine wall times mean little when it
exceeds the number of cores — CPU time is the steadier figure there. Medians are printed and
written to benchmarks/results/cold_start.json. The hybrid ``--json`` output of every variant must
be identical (the same hits, scores and order): the script exits 1 if it is not.

``--bytecode``: byte-compile each variant's tree first (``compileall``), as ``pip install`` does;
without it a process whose environment sets ``PYTHONDONTWRITEBYTECODE`` (this machine's does)
compiles every domainrag module from source, every time.

``--kb``: a knowledge base to search; without it the bundled sample is ingested once into a
temporary folder (``domainrag quickstart``'s ingest, with the first variant).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

QUERY = "metformin dose for kidney disease"
CLI = (
    "import sys, time\nfrom domainrag.cli import main\nsys.argv = ['domainrag', *sys.argv[1:]]\n"
    "try:\n    main()\nfinally:\n    print(f'MAIN_THREAD_CPU {time.thread_time()}', file=sys.stderr)\n"
)
OPEN = "import sys\nfrom domainrag.kb import KnowledgeBase\nwith KnowledgeBase.open(sys.argv[1]):\n    pass\n"
QUESTION = "What medication is used to treat hypothyroidism?"
BUILD = r"""
import sys
from domainrag import KnowledgeBase
from domainrag.quickstart import sample_folders
with KnowledgeBase.open(sys.argv[1], create=True) as kb:
    kb.ingest(sample_folders())
"""


def commands(kb: Path) -> dict[str, list[str]]:
    cli = [sys.executable, "-c", CLI]
    return {
        "import": [sys.executable, "-c", "import domainrag"],
        "kb open": [sys.executable, "-c", OPEN, str(kb)],
        "search lexical": [*cli, "search", QUERY, "--kb", str(kb), "-k", "10", "--mode", "lexical"],
        "search hybrid": [*cli, "search", QUERY, "--kb", str(kb), "-k", "10"],
        "search --json": [*cli, "search", QUERY, "--kb", str(kb), "-k", "10", "--json"],
        "ask": [*cli, "ask", QUESTION, "--kb", str(kb)],
    }


def run_once(src: Path, argv: list[str]) -> tuple[dict[str, float], str]:
    env = {**os.environ, "PYTHONPATH": str(src.resolve()), "COLUMNS": "120"}
    env.pop("DOMAINRAG_MODEL", None)
    load = os.getloadavg()[0]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    out = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if out.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} with {src} failed:\n{out.stderr[-3000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    result = {"wall_s": wall, "cpu_s": cpu, "load_before": load}
    marks = [line for line in out.stderr.splitlines() if line.startswith("MAIN_THREAD_CPU ")]
    if marks:
        result["main_thread_cpu_s"] = float(marks[-1].split()[1])
    return result, out.stdout


def build_kb(src: Path, kb: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(src.resolve())}
    subprocess.run([sys.executable, "-c", BUILD, str(kb)], env=env, check=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variant", action="append", required=True, help="NAME=PATH of a source tree (its src/)")
    parser.add_argument("--kb", type=Path, default=None, help="knowledge base [default: the sample, ingested]")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--only", action="append", default=None, help="measure only these commands")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--bytecode", action="store_true", help="byte-compile each variant's tree first")
    args = parser.parse_args()
    variants = {name: Path(path) for name, path in (v.split("=", 1) for v in args.variant)}
    if args.bytecode:
        for src in variants.values():
            subprocess.run([sys.executable, "-m", "compileall", "-q", str(src)], check=True, capture_output=True)

    with tempfile.TemporaryDirectory() as tmp:
        kb = args.kb
        if kb is None:
            kb = Path(tmp) / "kb"
            build_kb(next(iter(variants.values())), kb)
        cmds = {name: argv for name, argv in commands(kb).items() if not args.only or name in args.only}
        runs: dict[str, dict[str, list[dict[str, float]]]] = {v: {c: [] for c in cmds} for v in variants}
        outputs: dict[str, str] = {}
        for rep in range(args.repeats + 1):  # round 0 warms the page cache and is not counted
            for cmd, argv in cmds.items():
                for name, src in variants.items():
                    result, stdout = run_once(src, argv)
                    if cmd == "search --json":
                        outputs[name] = stdout
                    if rep:
                        runs[name][cmd].append(result)
                        print(f"  rep {rep} {cmd:15s} {name:8s} wall {result['wall_s']:5.3f}s "
                              f"cpu {result['cpu_s']:5.3f}s main thread "
                              f"{result.get('main_thread_cpu_s', result['cpu_s']):5.3f}s "
                              f"(load {result['load_before']:.1f})", flush=True)

    summary = {name: {cmd: {"wall_s": round(statistics.median(r["wall_s"] for r in rs), 3),
                            "cpu_s": round(statistics.median(r["cpu_s"] for r in rs), 3),
                            "main_thread_cpu_s": round(statistics.median(r.get("main_thread_cpu_s", r["cpu_s"])
                                                                         for r in rs), 3),
                            "load_median": round(statistics.median(r["load_before"] for r in rs), 2),
                            "runs": rs}
                      for cmd, rs in by_cmd.items()}
               for name, by_cmd in runs.items()}
    names = list(variants)
    print(f"\nmedians of {args.repeats} fresh processes (wall s / CPU s / main-thread CPU s):")
    print("| command | " + " | ".join(names) + " |\n|---|" + "---|" * len(names))
    for cmd in cmds:
        cells = [f"{summary[n][cmd]['wall_s']:.3f} / {summary[n][cmd]['cpu_s']:.3f} / "
                 f"{summary[n][cmd]['main_thread_cpu_s']:.3f}" for n in names]
        print(f"| {cmd} | " + " | ".join(cells) + " |")
    same = len(set(outputs.values())) <= 1
    if outputs:
        print("hybrid --json output identical across variants:", same)
    result = {"kb": str(args.kb or "bundled sample"), "query": QUERY, "question": QUESTION,
              "repeats": args.repeats, "bytecode": args.bytecode, "variants": {n: str(p) for n, p in variants.items()},
              "identical_hits": same, "summary": summary, "cpus": os.cpu_count(),
              "python": platform.python_version(), "machine": platform.processor() or platform.machine(),
              "date": time.strftime("%Y-%m-%d %H:%M")}
    out = args.json or Path(__file__).parent / "results" / "cold_start.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    if not same:
        raise SystemExit("the variants' hybrid hits differ")


if __name__ == "__main__":
    main()
