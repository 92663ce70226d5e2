"""Adaptive evaluation against a baseline run: the stop rule behind ``eval --adaptive``.

:class:`AdaptiveStop` pairs each newly scored case with the baseline's score of the same case
and feeds the delta of the headline metric to a :class:`~.sequential.SequentialTest`; the runner
calls it after storing every case and stops when it returns True. Use it through
:meth:`AdaptiveStop.apply`, which also makes the runner shuffle the cases (the test's
validity needs a random order) and record the rule and its outcome in the run's manifest::

    stop = AdaptiveStop(baseline_run, case_ids=[c.id for c in suite.cases], answers=True)
    stop.apply(options)
    run = run_suite(kb, suite, options, store)
    stop.result()   # {"verdict": ..., "n": ..., "total": ..., "interval": [...], "reason": ...}
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..errors import ConfigError
from ..evaluate.run_records import CaseRecord, Run
from ..evaluate.runner import EvalOptions
from .paired_stats import is_score
from .sequential import FUTILITY, SequentialTest


def headline_metric(baseline: Run, answers: bool) -> str:
    """The metric the adaptive test watches: token F1 when answers are scored (and the baseline
    has them), else nDCG@10."""
    if answers and any("token_f1" in c.scores for c in baseline.cases):
        return "token_f1"
    return "ndcg@10"


class AdaptiveStop:
    """Stop rule for one run compared with ``baseline`` on ``case_ids`` (the cases the run
    will judge). ``futility``/``margin`` 0 or None turn those stops off; ``budget`` caps the
    cases judged (decided or not)."""

    def __init__(self, baseline: Run, case_ids: Sequence[str], *, answers: bool = False,
                 alpha: float = 0.05, futility: float | None = FUTILITY,
                 margin: float | None = None, budget: int | None = None) -> None:
        self.baseline_id = baseline.run_id
        self.metric = headline_metric(baseline, answers)
        self._before = {c.id: c.scores.get(self.metric) for c in baseline.cases}
        total = sum(is_score(self._before.get(i)) for i in case_ids)
        if total == 0:
            raise ConfigError(f"Run {self.baseline_id} has no {self.metric} score for any case of this "
                              "suite: compare with a run of the same suite.")
        if budget is not None and budget < 1:
            raise ConfigError(f"budget must be >= 1 case, got {budget!r}")
        self.budget = budget
        self.test = SequentialTest(alpha=alpha, total=total, futility=futility or None,
                                   equivalence_margin=margin or None)
        self.judged = 0
        self.rule = (f"adaptive: betting test on {self.metric} vs {self.baseline_id}, alpha {alpha}, "
                     f"futility {futility or 'off'}, margin {margin or 'off'}, budget {budget or 'none'}")

    def __call__(self, record: CaseRecord) -> bool:
        """Take one stored case record; True when the run should stop."""
        self.judged += 1
        a, b = self._before.get(record.id), record.scores.get(self.metric)
        if is_score(a) and is_score(b):
            self.test.update(b - a)
        return self.test.decided or (self.budget is not None and self.judged >= self.budget)

    def apply(self, options: EvalOptions) -> None:
        """Make ``options`` evaluate in a random order and stop (and report) by this rule."""
        options.shuffle = True
        options.stop, options.stop_rule, options.stop_result = self, self.rule, self.result

    def result(self) -> dict[str, Any]:
        """The outcome so far: verdict (or "undecided"), cases used of the total, the
        anytime-valid interval of the mean delta, and which rule decided."""
        test = self.test
        low, high = test.interval
        return {"metric": self.metric, "verdict": test.verdict, "n": test.n, "total": test.total,
                "judged": self.judged, "interval": [low, high], "alpha": test.alpha,
                "reason": test.reason}
