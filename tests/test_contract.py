"""The JSON contract of runs and comparisons is pinned: the typed records read and write it
byte for byte, and a fresh evaluation still produces the same shape (tests/contract_scenario.py
made the fixtures with the code before the typed records)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from contract_scenario import reply, scrub, write_inputs

from domainrag import Comparison, KnowledgeBase, Run

FIXTURES = Path(__file__).parent / "fixtures" / "contract"


@pytest.mark.parametrize("name", ["run_a", "run_b"])
def test_runs_round_trip_byte_for_byte(name: str) -> None:
    text = (FIXTURES / f"{name}.json").read_text(encoding="utf-8")
    run = Run.from_dict(json.loads(text))
    assert json.dumps(run.to_dict(), ensure_ascii=False, indent=1) == text
    assert run.cases[0].scores and run.manifest.model and run.summary is not None


def test_comparison_round_trips_byte_for_byte() -> None:
    text = (FIXTURES / "comparison.json").read_text(encoding="utf-8")
    comparison = Comparison.from_dict(json.loads(text))
    assert json.dumps(comparison.to_dict(), ensure_ascii=False, indent=1) == text
    assert comparison.gate is not None and comparison.axes["latency_ms"].role == "axis"


def test_a_fresh_evaluation_keeps_the_contract(kb_factory, tmp_path: Path, scripted) -> None:
    scripted.script = reply
    docs, suite = write_inputs(tmp_path)
    built = kb_factory()
    built.ingest([docs])
    built.close()
    kb = KnowledgeBase.open(built.path)  # no session overrides, as the fixtures were made
    a = kb.evaluate(suite, model="scripted:a", concurrency=1, name="A")
    b = kb.evaluate(suite, metrics=["retrieval", "answer", "citation", "judge"], model="scripted:b",
                    judge="scripted:judge", repeat=2, concurrency=1, name="B")
    comparison = kb.compare(a, b)
    kb.close()
    # Like the CLI's --judge, the API records the judge among the run's overrides too (the
    # fixtures were made with the runner directly, which does not).
    assert b.manifest["overrides"] == {"answer.judge": "scripted:judge"}
    shapes = {"run_a": a.to_dict(), "run_b": b.to_dict(), "comparison": comparison.to_dict()}
    shapes["run_b"]["manifest"]["overrides"] = {}
    del shapes["comparison"]["manifest_diff"]["overrides"]
    for name, produced in shapes.items():
        expected = json.loads((FIXTURES / f"{name}.shape.json").read_text(encoding="utf-8"))
        assert scrub(produced) == expected, name
