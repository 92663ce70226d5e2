"""Adaptive evaluation against a baseline (domainrag.compare.adaptive) through the real runner."""

from __future__ import annotations

import pytest
from test_eval import kb, suite_file  # noqa: F401  (fixtures)

from domainrag import CaseRecord, Run
from domainrag.compare.adaptive import AdaptiveStop, headline_metric
from domainrag.errors import ConfigError
from domainrag.evaluate.runner import EvalOptions, run_suite
from domainrag.evaluate.runs import RunStore
from domainrag.evaluate.suite import load_suite
from domainrag.evaluation import Adaptive


def _baseline(scores: dict[str, float], metric: str = "ndcg@10") -> Run:
    return Run.from_dict({"run_id": "r-base", "cases": [{"id": i, "scores": {metric: v}} for i, v in scores.items()]})


def test_stop_pairs_cases_with_the_baseline_and_decides() -> None:
    ids = [f"c{i}" for i in range(200)]
    stop = AdaptiveStop(_baseline({i: 0.0 for i in ids}), ids, futility=None)
    assert stop.test.total == 200 and stop.metric == "ndcg@10"
    decided_at = next(n for n, i in enumerate(ids, 1) if stop(CaseRecord(id=i, question="", scores={"ndcg@10": 1.0})))
    assert decided_at == 20 and stop.result()["verdict"] == "better"     # min_cases
    assert stop.result()["interval"][0] > 0 and "betting test" in stop.result()["reason"]


def test_cases_missing_on_either_side_are_skipped_and_budget_caps() -> None:
    stop = AdaptiveStop(_baseline({"a": 0.5, "b": 0.5, "n": float("nan")}), ["a", "b", "x", "n"], budget=3)
    assert stop.test.total == 2                      # "x" has no baseline score, "n" a NaN
    assert not stop(CaseRecord(id="x", question="", scores={"ndcg@10": 1.0}))
    assert not stop(CaseRecord(id="b", question="", scores={"ndcg@10": None}))
    assert stop(CaseRecord(id="a", question="", scores={}))           # budget reached, nothing paired
    assert stop.result() | {"interval": None} == {
        "metric": "ndcg@10", "verdict": "undecided", "n": 0, "total": 2, "judged": 3,
        "interval": None, "alpha": 0.05, "reason": ""}


def test_bad_baseline_and_budget() -> None:
    with pytest.raises(ConfigError, match="no ndcg@10 score for any case"):
        AdaptiveStop(_baseline({"a": 1.0}), ["b"])
    with pytest.raises(ConfigError, match="budget"):
        AdaptiveStop(_baseline({"a": 1.0}), ["a"], budget=0)


def test_headline_metric() -> None:
    assert headline_metric(_baseline({"a": 1.0}, "token_f1"), answers=True) == "token_f1"
    assert headline_metric(_baseline({"a": 1.0}, "token_f1"), answers=False) == "ndcg@10"
    assert headline_metric(_baseline({"a": 1.0}), answers=True) == "ndcg@10"


def test_resumed_adaptive_run_replays_its_stored_cases(kb, suite_file) -> None:  # noqa: F811
    store = RunStore(kb.path)
    suite = load_suite(suite_file)
    baseline = run_suite(kb, suite, EvalOptions(name="base"), store)
    ids = [c.id for c in suite.cases]

    class Interrupting(AdaptiveStop):
        def __call__(self, record):
            if self.judged == 2:
                raise KeyboardInterrupt
            return super().__call__(record)

    first = Interrupting(baseline, ids, futility=None)
    options = EvalOptions(mode="lexical", name="cand")
    first.apply(options)
    with pytest.raises(KeyboardInterrupt):
        run_suite(kb, suite, options, store)
    assert first.judged == 2

    second = AdaptiveStop(baseline, ids, futility=None)
    options = EvalOptions(mode="lexical", name="cand")
    second.apply(options)
    run = run_suite(kb, suite, options, store)
    assert len(run.cases) == len(ids)
    # The two stored cases were fed again before the rest: the test saw every case once.
    # (The off-topic case has no gold document, hence no nDCG: it is judged but not paired.)
    assert second.judged == len(ids) and second.test.n == second.test.total == len(ids) - 1
    assert run.manifest["order"] == "random" and run.manifest.stop_rule == second.rule
    assert run.manifest.stop_result and run.manifest.stop_result["n"] == len(ids) - 1


def test_adaptive_through_the_python_api(kb, suite_file) -> None:  # noqa: F811
    baseline = kb.evaluate(suite_file, metrics=["retrieval"], name="base")
    kb.runs.pin(baseline.run_id, "production")
    run = kb.evaluate(suite_file, metrics=["retrieval"], mode="lexical",
                      adaptive=Adaptive(baseline="production", budget=2))
    assert len(run.cases) == 2 and "budget 2" in str(run.manifest.stop_rule)
    assert run.manifest.stop_result and run.manifest.stop_result["judged"] == 2
    comparison = kb.compare("production", run)
    assert comparison.cases.common == 2 and "adaptive rule" in comparison.cases.note
