"""Sequential comparison of two runs: stop as soon as the verdict is decided.

``eval --compare-to X --adaptive`` evaluates the cases in a random order and feeds each case's
paired difference ``d = score_B - score_A`` (scores in [0, 1], so ``d`` in [-1, 1]) to a
:class:`SequentialTest`; it stops at the first case where the test is :attr:`~SequentialTest.decided`.
Re-running :func:`domainrag.compare.paired_stats.paired` after every case instead would inflate the
false-positive rate far beyond ``alpha`` ("peeking"); the rules here do not.

**"Better" / "worse" — a betting test (anytime-valid).** For the null "mean delta <= 0" a
gambler starts with wealth 1 and, at each case, stakes a fixed fraction ``lam`` of it on the
delta being positive: ``K_t(lam) = prod_{i<=t} (1 + lam * d_i)``. Under the null this is a
nonnegative supermartingale, so by Ville's inequality ``P(sup_t K_t >= 2/alpha) <= alpha/2``:
the test may be checked after every case and stopped at any time. Not knowing the effect, the
gambler splits the starting wealth equally over a geometric grid of fractions
``lam = 0.75 * 2**-k``, k = 0..8 (0.75 down to 0.003) — the "diversified Kelly" mixture of
Waudby-Smith & Ramdas (2023), *Estimating means of bounded random variables by betting*,
JRSS-B, §5 — which grows almost as fast as the best fixed fraction in hindsight (a large effect
is caught by a large ``lam`` after a few dozen cases, a small one by a small ``lam`` later).
"Better" when the mixture wealth betting on positive deltas reaches ``2/alpha``, "worse" when
the one betting on negative deltas does (``alpha/2`` each). Once reached, the rejection stands.

**The interval** is the confidence sequence obtained by inverting the same test at every
candidate mean ``m`` (bets on ``d - m``, fractions scaled by ``1/(1 + m)`` or ``1/(1 - m)`` to
stay solvent): ``{m : both wealths < 2/alpha}``. The wealths are monotone in ``m``, so the set
is an interval, found by bisection; at the case where the test decides, it excludes 0. With
``equivalence_margin`` set, the test also decides "no detectable difference" once the points
``-margin`` and ``+margin`` have both been rejected (an equivalence claim with the same
``alpha`` guarantee).

**"No detectable difference" — futility (needs the suite size).** With ``total`` (the number of
cases a full run would judge) the test also stops when a full run is unlikely to find a
difference: after ``t`` cases with mean ``m`` and sd ``s``, the mean of all ``total`` cases is
predicted as ``N(m, s**2 (total - t) / (total * t))`` (finite-population sampling; the flat-prior
predictive distribution), so the full run's z statistic ``mean * sqrt(total) / s`` is
``N(m sqrt(total)/s, (total - t)/t)``. When the probability that it ends beyond the two-sided
critical value falls below ``futility`` (default 0.05), the verdict is "no detectable
difference". Stopping for futility can only *remove* "better"/"worse" calls, so it never adds
false positives; its cost is power — it can end a run that the full suite would (just) have
called significant. ``benchmarks/sequential_simulation.py`` measures that cost against the full
run's verdict (RESULTS §12).

Assumptions and guarantees:

* **Cases are an i.i.d. sample of the population the suite stands for (what the full-run test
  assumes too) and are evaluated in a uniformly random order**, so that under "no difference"
  each delta has conditional mean 0 (<= 0 for the one-sided nulls) given the ones before. A
  fixed, non-random order (easy cases first, grouped by topic) voids the guarantee.
* **False "better"/"worse"**: probability at most ``alpha`` under continuous monitoring and
  any stopping rule (futility, budget, Ctrl-C). The interval covers the true mean delta at every
  ``t`` simultaneously with probability at least ``1 - alpha``.
* **"No detectable difference"** by futility is a prediction about the full run, not a proof of
  equivalence; with a margin it is a proof (at ``alpha``) that ``|delta| < margin``.
* The futility rule uses the normal approximation to the full run's test (the sign-flip and
  McNemar tests of :func:`~domainrag.compare.paired_stats.paired` are close to it at the sizes where
  stopping early matters).
* ``min_cases`` guards against deciding on a handful of cases; it does not affect validity.

Only the standard library (and numpy for the interval) is used; everything is deterministic:
the caller shuffles the cases.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from statistics import NormalDist
from typing import Any

import numpy as np

from ..errors import ConfigError
from .paired_stats import BETTER, SAME, WORSE

UNDECIDED = "undecided"
#: Betting fractions of the mixture (equal weights): 0.75, 0.375, ..., 0.0029.
GRID = tuple(0.75 * 2.0 ** -k for k in range(9))
#: Default futility threshold: stop when a full run has < 5% chance to find a difference.
FUTILITY = 0.05
#: Tolerance for deltas a hair outside [-1, 1] from float rounding (e.g. 1.0000000000000002).
_RANGE_TOL = 1e-12
_LOG_G = math.log(len(GRID))
_GRID = np.array(GRID)


def _check_params(alpha: float, min_cases: int, equivalence_margin: float | None,
                  total: int | None, futility: float | None) -> None:
    if not (isinstance(alpha, (int, float)) and 0.0 < alpha < 1.0):
        raise ConfigError(f"alpha must be in (0, 1), got {alpha!r}")
    if isinstance(min_cases, bool) or not isinstance(min_cases, int) or min_cases < 1:
        raise ConfigError(f"min_cases must be an integer >= 1, got {min_cases!r}")
    if equivalence_margin is not None and not (
            isinstance(equivalence_margin, (int, float)) and 0.0 < equivalence_margin <= 1.0):
        raise ConfigError(f"equivalence_margin must be in (0, 1] or None, got "
                          f"{equivalence_margin!r}")
    if total is not None and (isinstance(total, bool) or not isinstance(total, int) or total < 1):
        raise ConfigError(f"total (the suite size) must be an integer >= 1 or None, got {total!r}")
    if futility is not None and not (isinstance(futility, (int, float)) and 0.0 < futility < 0.5):
        raise ConfigError(f"futility must be in (0, 0.5) or None (off), got {futility!r}")


def _check_delta(delta: Any) -> float:
    try:
        value = float(delta)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"a paired delta must be a number, got {delta!r}") from exc
    if not math.isfinite(value) or not -1.0 - _RANGE_TOL <= value <= 1.0 + _RANGE_TOL:
        raise ConfigError(f"a paired delta must be in [-1, 1] (scores in [0, 1]), got {delta!r}; "
                          "rescale the metric to [0, 1] first")
    return min(1.0, max(-1.0, value))


def _log_mean_exp(values: Iterable[float]) -> float:
    values = list(values)
    top = max(values)
    return top + math.log(sum(math.exp(v - top) for v in values)) - _LOG_G


def log_wealth(deltas: np.ndarray, m: float, side: int) -> float:
    """Log of the mixture wealth after ``deltas`` betting that the mean exceeds ``m``
    (``side=+1``) or falls below it (``side=-1``). Non-increasing in ``m`` for ``side=+1``,
    non-decreasing for ``side=-1``."""
    scale = 1.0 + m if side > 0 else 1.0 - m
    if scale <= 0.0 or deltas.size == 0:
        return 0.0
    return _log_mean_exp(np.log1p(np.outer(side * (deltas - m) / scale, _GRID)).sum(axis=0).tolist())


class SequentialTest:
    """Sequential two-sided comparison of the mean paired delta with 0 (see module docstring).

    Feed deltas one at a time with :meth:`update` (cases in a uniformly random order); read
    :attr:`verdict`, :attr:`decided`, :attr:`reason`, :attr:`interval` and
    :attr:`predictive` at any time. ``total`` (the suite size) enables the futility stop;
    ``equivalence_margin`` (None: off) the equivalence stop. Nothing is decided before
    ``min_cases`` deltas.
    """

    def __init__(self, alpha: float = 0.05, min_cases: int = 20,
                 equivalence_margin: float | None = None, total: int | None = None,
                 futility: float | None = FUTILITY) -> None:
        _check_params(alpha, min_cases, equivalence_margin, total, futility)
        self.alpha = float(alpha)
        self.min_cases = min_cases
        self.equivalence_margin = (None if equivalence_margin is None
                                   else float(equivalence_margin))
        self.total = total
        self.futility = futility
        self.threshold = math.log(2.0 / self.alpha)
        self._critical = NormalDist().inv_cdf(1.0 - self.alpha / 2.0)
        self._deltas: list[float] = []
        self._mean = 0.0
        self._m2 = 0.0
        # Log wealth per betting fraction, for each monitored (mean, side).
        points = [(0.0, 1), (0.0, -1)]
        if self.equivalence_margin is not None:
            points += [(-self.equivalence_margin, 1), (self.equivalence_margin, -1)]
        self._logs = {p: [0.0] * len(GRID) for p in points}
        self._rejected: dict[tuple[float, int], int] = {}   # point -> n at first rejection

    def update(self, delta: float) -> None:
        """Add one case's paired delta (``score_B - score_A``, in [-1, 1])."""
        d = _check_delta(delta)
        self._deltas.append(d)
        n = len(self._deltas)
        step = d - self._mean
        self._mean += step / n
        self._m2 += step * (d - self._mean)
        for (m, side), logs in self._logs.items():
            x = side * (d - m) / (1.0 + side * m)
            for g, lam in enumerate(GRID):
                logs[g] += math.log1p(lam * x)
            if (m, side) not in self._rejected and _log_mean_exp(logs) >= self.threshold:
                self._rejected[(m, side)] = n

    @property
    def n(self) -> int:
        """Number of deltas seen."""
        return len(self._deltas)

    @property
    def mean(self) -> float:
        """Mean of the deltas seen (0.0 before any)."""
        return self._mean

    @property
    def e_values(self) -> dict[str, float]:
        """Current mixture wealth of the two one-sided tests of 0 (``2/alpha`` decides)."""
        return {BETTER: math.exp(_log_mean_exp(self._logs[(0.0, 1)])),
                WORSE: math.exp(_log_mean_exp(self._logs[(0.0, -1)]))}

    @property
    def interval(self) -> tuple[float, float]:
        """Confidence-sequence interval for the mean delta at the current ``n``;
        ``(-1.0, 1.0)`` before any data."""
        if not self._deltas:
            return (-1.0, 1.0)
        d = np.asarray(self._deltas)
        return (self._bound(d, 1), self._bound(d, -1))

    def _bound(self, d: np.ndarray, side: int) -> float:
        """Lowest (side +1) or highest (side -1) mean not rejected, by bisection."""
        inner, outer = (-1.0, 1.0) if side > 0 else (1.0, -1.0)   # rejected .. kept ends
        if log_wealth(d, inner + side * 1e-9, side) < self.threshold:
            return inner
        rejected, kept = inner, outer
        for _ in range(50):
            mid = (rejected + kept) / 2.0
            if log_wealth(d, mid, side) >= self.threshold:
                rejected = mid
            else:
                kept = mid
            if abs(kept - rejected) < 1e-7:
                break
        return kept

    @property
    def predictive(self) -> float | None:
        """Predicted probability that a full run over ``total`` cases finds a difference at
        ``alpha`` (None without ``total``, before 2 cases, or once every case is in)."""
        n, total = self.n, self.total
        if total is None or n < 2 or n >= total:
            return None
        sd = math.sqrt(self._m2 / (n - 1))
        if sd == 0.0:
            if self._mean != 0.0:
                return 1.0
            centre = 0.0
        else:
            centre = self._mean * math.sqrt(total) / sd
        spread = math.sqrt((total - n) / n)
        upper = NormalDist(centre, spread)
        return (1.0 - upper.cdf(self._critical)) + upper.cdf(-self._critical)

    def _decision(self) -> tuple[str, str]:
        if self.n < self.min_cases:
            return UNDECIDED, ""
        better, worse = self._rejected.get((0.0, 1)), self._rejected.get((0.0, -1))
        if better or worse:
            side = BETTER if better and (not worse or better <= worse) else WORSE
            return side, (f"betting test: wealth reached 2/alpha = {2 / self.alpha:g} "
                          f"(alpha {self.alpha:g}, anytime-valid)")
        margin = self.equivalence_margin
        if margin is not None and (-margin, 1) in self._rejected and (margin, -1) in self._rejected:
            return SAME, f"equivalence: |delta| < {margin:g} at alpha {self.alpha:g}"
        predictive = self.predictive
        if self.futility is not None and predictive is not None and predictive < self.futility:
            return SAME, (f"futility: a full run over {self.total} cases would find a difference "
                          f"with probability {predictive:.3g} < {self.futility:g}")
        return UNDECIDED, ""

    @property
    def verdict(self) -> str:
        """``"better"`` / ``"worse"`` / ``"no detectable difference"`` once decided, else
        ``"undecided"``."""
        return self._decision()[0]

    @property
    def reason(self) -> str:
        """Which rule decided, in words ("" while undecided)."""
        return self._decision()[1]

    @property
    def decided(self) -> bool:
        """True once ``n >= min_cases`` and a rule has decided."""
        return self.verdict != UNDECIDED


def run_sequential(deltas_in_order: Iterable[float], alpha: float = 0.05, min_cases: int = 20,
                   margin: float | None = None, total: int | None = None,
                   futility: float | None = FUTILITY) -> dict[str, Any]:
    """Feed deltas in the given (random) order and stop at the first decision.

    ``deltas_in_order`` may be a lazy iterator (e.g. evaluating cases on demand): nothing after
    the deciding case is consumed. Returns ``{"verdict", "n_used", "interval", "reason"}``;
    verdict is ``"undecided"`` when the deltas ran out first (the caller then falls back to the
    full-run test on every case).
    """
    test = SequentialTest(alpha=alpha, min_cases=min_cases, equivalence_margin=margin,
                          total=total, futility=futility)
    for delta in deltas_in_order:
        test.update(delta)
        if test.decided:
            break
    return {"verdict": test.verdict, "n_used": test.n, "interval": test.interval,
            "reason": test.reason}
