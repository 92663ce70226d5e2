"""Evaluations against a slow one-request-at-a-time model server, simulated.

The issue: ``eval`` of 12 cases against llama.cpp + SmolLM2 on 2 cores (25-50 s per request,
one at a time) with ``--concurrency 4`` and the 60 s timeout aborted with a timeout. This
replays it at 1/100 of the time scale on the loopback OpenAI stub of the tests (one slot, each
request holding it ``service`` seconds; the timeout ``timeout`` seconds; the SDK's 2 retries):
the server either cancels requests whose client left (llama.cpp's server) or finishes them
anyway (llama-cpp-python's). For each setting: wall time, failed cases, requests sent, the
concurrency the run ended at, and the model calls of an unchanged re-run.

    python benchmarks/eval_faults.py [--out benchmarks/results/eval_faults.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "src")]

from conftest import FAKES  # noqa: E402 - the fake embedder (and scripted model) of the tests
from openai_stub import OpenAIStub  # noqa: E402

from domainrag import KnowledgeBase, registry  # noqa: E402
from domainrag.evaluate.runner import EvalOptions, run_suite  # noqa: E402
from domainrag.evaluate.runs import RunStore  # noqa: E402
from domainrag.evaluate.suite import load_suite  # noqa: E402

N = 12

for _group, _name, _obj in FAKES:  # no longer registered by importing conftest
    registry.register(_group, _name, _obj)


def corpus(root: Path) -> Path:
    docs = root / "docs"
    docs.mkdir()
    cases = []
    for k in range(2, N + 2):
        (docs / f"widget{k}.txt").write_text(f"The weight of the widget model W{k} is {7 * k} grams.")
        cases.append({"id": f"w{k}", "question": f"What is the weight of the widget model W{k}?",
                      "answers": [f"{7 * k} grams"], "gold": [f"docs/widget{k}.txt"]})
    (root / "suite.jsonl").write_text("\n".join(json.dumps(c) for c in cases))
    return docs


def one(service: float, timeout: float, concurrency: int | None, cancel: bool) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp, \
            OpenAIStub(api_key=None, slots=1, service_s=service, cancel_abandoned=cancel) as stub:
        root = Path(tmp)
        docs = corpus(root)
        kb = KnowledgeBase.open(root / "kb", create=True, overrides={
            "embedder.model": "fake-en:64", "answer.base_url": stub.url, "answer.timeout_s": timeout})
        kb.ingest([docs])
        kb.answerer.cache = kb.model_cache
        options = EvalOptions(metrics=frozenset({"retrieval", "answer"}), model="openai:smollm2",
                              concurrency=concurrency)
        notes: list[str] = []
        started = time.perf_counter()
        with RunStore(kb.path) as store:
            run = run_suite(kb, load_suite(root / "suite.jsonl"), options, store,
                            lambda line: notes.append(line) if line.startswith("note:") else None)
            wall = time.perf_counter() - started
            sent = len(stub.chat_requests)
            run_suite(kb, load_suite(root / "suite.jsonl"), options, store)
            rerun_calls = len(stub.chat_requests) - sent
        lowered = [n for n in notes if "lowering the concurrency to" in n]
        final = int(lowered[-1].split("lowering the concurrency to ")[1].split()[0]) if lowered else None
        kb.close()
    return {"service_s": service, "timeout_s": timeout, "server": "cancels" if cancel else "finishes abandoned",
            "concurrency": concurrency or "auto", "wall_s": round(wall, 1),
            "failed": (run.failed or {}).get("count", 0), "requests": sent,
            "final_concurrency": final or (concurrency or 1), "rerun_calls": rerun_calls}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "eval_faults.json")
    args = parser.parse_args()
    rows = [one(service, 0.6, concurrency, cancel)
            for service in (0.4, 0.5) for cancel in (True, False) for concurrency in (None, 4)]
    print("| service s | timeout s | server | concurrency | wall s | failed | requests | ended at | re-run calls |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['service_s']} | {r['timeout_s']} | {r['server']} | {r['concurrency']} | {r['wall_s']} | "
              f"{r['failed']} | {r['requests']} | {r['final_concurrency']} | {r['rerun_calls']} |")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"date": time.strftime("%Y-%m-%d"), "cases": N, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
