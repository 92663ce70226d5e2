"""Searches during concurrent update ingests: any exception, any result from a mixed state?

A writer process ingests generation after generation of the corpus of
:mod:`domainrag.testing.concurrency` (core files rewritten, one extra file added and the previous
one pruned: two commits per generation) into a knowledge base, while this process — one
long-lived ``KnowledgeBase`` — searches it ``--searches`` times, cycling lexical, hybrid and dense
mode. Every result set must equal one committed state (``state_of``); exceptions and mixed states
are counted, not raised.

    python benchmarks/concurrency.py --searches 50000
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import domainrag
from domainrag.kb import KnowledgeBase
from domainrag.testing.concurrency import CORE, OVERRIDES, QUERY, state_of, write_generation

MODES = ("lexical", "hybrid", "dense")
RESULTS = Path(__file__).parent / "results" / "concurrency.json"


def main() -> None:
    args = _parse_args()
    with tempfile.TemporaryDirectory(prefix="concurrency-") as scratch:
        report = _run(Path(scratch), args.searches)
    report.update(
        question="searches during concurrent update ingests: exceptions and mixed-state results",
        command=" ".join([Path(sys.executable).name, *sys.argv]),
        date=datetime.now(UTC).isoformat(timespec="seconds"),
        machine={"platform": platform.platform(), "cpus": os.cpu_count(), "python": platform.python_version()},
    )
    print(json.dumps(report, indent=2))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {out}", file=sys.stderr)


def _parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--searches", type=int, default=50_000)
    parser.add_argument("--out", default=str(RESULTS))
    return parser.parse_args()


def _run(scratch: Path, searches: int) -> dict[str, Any]:
    kb_dir, folder = scratch / "kb", scratch / "docs"
    write_generation(folder, 0)
    exceptions: collections.Counter[str] = collections.Counter()
    mixed: list[str] = []
    states: set[tuple[int, bool]] = set()
    went_back = 0
    with KnowledgeBase.open(kb_dir, create=True, overrides=dict(OVERRIDES)) as kb:
        kb.ingest([folder], prune=True)
        views = _count_views(kb)
        writer = _start_writer(kb_dir, folder)
        first = kb.store.generation
        while kb.store.generation == first and writer.poll() is None:  # the writer has started
            time.sleep(0.05)
        started = time.perf_counter()
        last = (0, True)
        for i in range(searches):
            try:
                state = state_of(kb.search(QUERY, k=CORE + 3, mode=MODES[i % len(MODES)]))  # type: ignore[arg-type]
            except AssertionError as exc:
                mixed.append(str(exc)[:300])
                continue
            except Exception as exc:  # noqa: BLE001 - counted: the benchmark is that none happens
                exceptions[f"{type(exc).__name__}: {str(exc)[:200]}"] += 1
                continue
            states.add(state)
            went_back += state < last
            last = max(last, state)
            if writer.poll() is not None:
                break
        seconds = time.perf_counter() - started
        writer.terminate()  # our own child, stopped between (or inside) crash-safe ingests
        _, err = writer.communicate()
        final = state_of(kb.search(QUERY, k=CORE + 3))
    done = i + 1
    return {
        "searches": done,
        "seconds": round(seconds, 1),
        "searches_per_s": round(done / seconds, 1),
        "exceptions": sum(exceptions.values()),
        "exception_kinds": dict(exceptions),
        "mixed_state_results": len(mixed),
        "mixed_examples": mixed[:5],
        "went_back_in_time": went_back,
        # a search whose chunks a commit replaced before it read them is repeated on a newer view
        "searches_repeated_on_a_newer_view": views[0] - done - 1,
        "committed_states_seen": len(states),
        "generations_seen": len({g for g, _ in states}),
        "writer_generations": final[0],
        "writer_stopped_early": writer.returncode not in (0, -15),
        "writer_stderr_tail": err[-500:],
    }


def _count_views(kb: KnowledgeBase) -> list[int]:
    """Count the store views the searches take (one per attempt): a measurement hook."""
    count = [0]
    view = kb.store.view

    def counted() -> Any:
        count[0] += 1
        return view()

    kb.store.view = counted  # type: ignore[method-assign]
    return count


def _start_writer(kb_dir: Path, folder: Path) -> subprocess.Popen[str]:
    env = dict(os.environ, PYTHONPATH=str(Path(domainrag.__file__).parents[1]))
    command = [sys.executable, "-m", "domainrag.testing.concurrency", str(kb_dir), str(folder), str(10**9)]
    return subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


if __name__ == "__main__":
    main()
