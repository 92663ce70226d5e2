"""Anytime-valid sequential comparison of two runs: stop as soon as the verdict is decided.

``eval --compare-to X --adaptive`` evaluates the cases in a random order and feeds each case's
paired difference ``d = score_B - score_A`` (scores in [0, 1], so ``d`` in [-1, 1]) to a
:class:`SequentialTest`; it stops at the first case where the test is :attr:`~SequentialTest.decided`.
Unlike re-running :func:`domainrag.compare.stats.paired` after every case (which inflates the
false-positive rate far beyond ``alpha`` under such "peeking"), the error control here holds
under continuous monitoring and optional stopping.

Method — the predictable plug-in empirical-Bernstein confidence sequence ("PrPl-EB") of
Waudby-Smith & Ramdas (2023), *Estimating means of bounded random variables by betting*, JRSS-B,
Theorem 2, applied to ``x_i = (d_i + 1) / 2`` in [0, 1], two-sided at level ``alpha``
(``alpha / 2`` per side), and mapped back with ``delta = 2 x - 1``. At case ``t`` (1-based):

* running mean ``mu_t = (1/2 + sum_{i<=t} x_i) / (t + 1)`` and variance
  ``var_t = (1/4 + sum_{i<=t} (x_i - mu_i)^2) / (t + 1)`` (regularised; ``mu_0 = 1/2``,
  ``var_0 = 1/4``);
* predictable bet ``lambda_t = min(sqrt(2 log(2/alpha) / (var_{t-1} t log(1 + t))), 1/2)``;
* ``v_t = 4 (x_t - mu_{t-1})^2`` and ``psi_E(l) = (-log(1 - l) - l) / 4``;
* interval ``centre +- radius`` with ``centre = sum lambda_i x_i / sum lambda_i`` and
  ``radius = (log(2/alpha) + sum v_i psi_E(lambda_i)) / sum lambda_i``, clipped to [0, 1].

The reported interval is the **running intersection** of these intervals (still a valid
confidence sequence, and it never widens), so once it excludes 0 — or lies inside the
equivalence band — it stays that way.

Assumptions and guarantee:

* **Cases are evaluated in a uniformly random order** (a random permutation of the suite, or
  i.i.d. draws from it). The deltas are then exchangeable draws from the suite and the estimand
  is the **suite mean delta** — what the full run would measure. Strictly, the theorem is stated
  for draws with a constant conditional mean (sampling with replacement); sampling *without*
  replacement from a finite suite only makes the sample mean more concentrated, and the
  simulations in ``benchmarks/sequential_simulation.py`` stay well inside ``alpha``. A fixed,
  non-random order (easy cases first, grouped by topic) voids the guarantee.
* **Guarantee:** with probability at least ``1 - alpha``, the interval covers the true mean
  delta at *every* n simultaneously. Hence stopping the first time the interval excludes 0 (any
  data-dependent stopping rule, in fact) calls a false "better"/"worse" with probability at most
  ``alpha``, and a "no detectable difference" decided by an ``equivalence_margin`` is wrong (true
  |delta| >= margin) with probability at most ``alpha`` as well.
* The price of validity at every n is width: the interval is wider than a fixed-n interval at
  the same n (by a ``sqrt(log n)``-ish factor and a conservative constant). Effects near the
  full run's minimum detectable effect therefore need (almost) all the cases, and proving
  equivalence within a small margin needs many cases when the deltas are noisy.
* ``min_cases`` is a guard against deciding on a handful of cases; it does not affect validity.

Only the standard library and numpy are used; everything is deterministic (no randomness here:
the caller shuffles the cases).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np

from ..errors import ConfigError
from .stats import BETTER, SAME, WORSE

UNDECIDED = "undecided"
#: Cap on the bets (Waudby-Smith & Ramdas recommend 1/2 or 3/4).
LAMBDA_CAP = 0.5
#: Tolerance for deltas a hair outside [-1, 1] from float rounding (e.g. 1.0000000000000002).
_RANGE_TOL = 1e-12


def _check_params(alpha: float, min_cases: int, equivalence_margin: float | None) -> None:
    if not (isinstance(alpha, (int, float)) and 0.0 < alpha < 1.0):
        raise ConfigError(f"alpha must be in (0, 1), got {alpha!r}")
    if isinstance(min_cases, bool) or not isinstance(min_cases, int) or min_cases < 1:
        raise ConfigError(f"min_cases must be an integer >= 1, got {min_cases!r}")
    if equivalence_margin is not None and not (
            isinstance(equivalence_margin, (int, float)) and 0.0 < equivalence_margin <= 1.0):
        raise ConfigError(f"equivalence_margin must be in (0, 1] or None, got "
                          f"{equivalence_margin!r}")


def _check_delta(delta: Any) -> float:
    try:
        value = float(delta)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"a paired delta must be a number, got {delta!r}") from exc
    if not math.isfinite(value) or not -1.0 - _RANGE_TOL <= value <= 1.0 + _RANGE_TOL:
        raise ConfigError(f"a paired delta must be in [-1, 1] (scores in [0, 1]), got {delta!r}; "
                          "rescale the metric to [0, 1] first")
    return min(1.0, max(-1.0, value))


class SequentialTest:
    """Anytime-valid two-sided comparison of mean paired delta against 0 (see module docstring).

    Feed deltas one at a time with :meth:`update` (cases in a uniformly random order); read
    :attr:`interval` (on the delta scale, running intersection), :attr:`decided` and
    :attr:`verdict` at any time. ``equivalence_margin`` (None: off) additionally lets the test
    decide "no detectable difference" once the interval lies inside ``(-margin, margin)``.
    Nothing is decided before ``min_cases`` deltas.
    """

    def __init__(self, alpha: float = 0.05, min_cases: int = 20,
                 equivalence_margin: float | None = None) -> None:
        _check_params(alpha, min_cases, equivalence_margin)
        self.alpha = float(alpha)
        self.min_cases = min_cases
        self.equivalence_margin = (None if equivalence_margin is None
                                   else float(equivalence_margin))
        self._log_term = math.log(2.0 / self.alpha)
        self._n = 0
        self._sum_x = 0.0
        self._sum_sq = 0.0          # sum of (x_i - mu_i)^2
        self._mu_prev = 0.5         # mu_{t-1}
        self._var_prev = 0.25       # var_{t-1}
        self._sum_lam = 0.0
        self._sum_lam_x = 0.0
        self._sum_v_psi = 0.0
        self._low = 0.0             # running intersection, x scale
        self._high = 1.0

    def update(self, delta: float) -> None:
        """Add one case's paired delta (``score_B - score_A``, in [-1, 1])."""
        x = (_check_delta(delta) + 1.0) / 2.0
        t = self._n + 1
        lam = min(math.sqrt(2.0 * self._log_term / (self._var_prev * t * math.log1p(t))),
                  LAMBDA_CAP)
        v = 4.0 * (x - self._mu_prev) ** 2
        self._sum_lam += lam
        self._sum_lam_x += lam * x
        self._sum_v_psi += v * (-math.log1p(-lam) - lam) / 4.0
        self._n = t
        self._sum_x += x
        mu = (0.5 + self._sum_x) / (t + 1)
        self._sum_sq += (x - mu) ** 2
        self._mu_prev = mu
        self._var_prev = (0.25 + self._sum_sq) / (t + 1)
        centre = self._sum_lam_x / self._sum_lam
        radius = (self._log_term + self._sum_v_psi) / self._sum_lam
        self._low = max(self._low, centre - radius)
        self._high = min(self._high, centre + radius)

    @property
    def n(self) -> int:
        """Number of deltas seen."""
        return self._n

    @property
    def interval(self) -> tuple[float, float]:
        """Confidence-sequence interval for the mean delta, ``(-1.0, 1.0)`` before any data.

        Running intersection, so it never widens. In the rare (probability <= alpha) event that
        the intersection becomes empty, low > high is returned as is; the verdict then follows
        the side of 0 that the bounds exclude.
        """
        return (2.0 * self._low - 1.0, 2.0 * self._high - 1.0)

    @property
    def verdict(self) -> str:
        """``"better"`` / ``"worse"`` / ``"no detectable difference"`` once decided, else
        ``"undecided"``."""
        if self._n < self.min_cases:
            return UNDECIDED
        low, high = self.interval
        if low > 0.0:
            return BETTER
        if high < 0.0:
            return WORSE
        margin = self.equivalence_margin
        if margin is not None and -margin < low and high < margin:
            return SAME
        return UNDECIDED

    @property
    def decided(self) -> bool:
        """True once ``n >= min_cases`` and the interval excludes 0 (or lies inside the
        equivalence band when a margin is set)."""
        return self.verdict != UNDECIDED


def run_sequential(deltas_in_order: Iterable[float], alpha: float = 0.05, min_cases: int = 20,
                   margin: float | None = None) -> dict[str, Any]:
    """Feed deltas in the given (random) order and stop at the first decision.

    ``deltas_in_order`` may be a lazy iterator (e.g. evaluating cases on demand): nothing after
    the deciding case is consumed. Returns ``{"verdict", "n_used", "interval"}``; verdict is
    ``"undecided"`` when the deltas ran out first (the caller then falls back to the full-run
    test on every case).
    """
    test = SequentialTest(alpha=alpha, min_cases=min_cases, equivalence_margin=margin)
    for delta in deltas_in_order:
        test.update(delta)
        if test.decided:
            break
    return {"verdict": test.verdict, "n_used": test.n, "interval": test.interval}


def confidence_sequence(deltas: Iterable[float], alpha: float = 0.05
                        ) -> tuple[np.ndarray, np.ndarray]:
    """Vectorised PrPl-EB bounds after each delta: ``(low, high)`` arrays on the delta scale.

    The same numbers as :class:`SequentialTest` fed the deltas one by one (running intersection
    included), up to float rounding — for simulations and plots.
    """
    _check_params(alpha, 1, None)
    d = np.asarray(list(deltas) if not isinstance(deltas, np.ndarray) else deltas, dtype=float)
    if d.ndim != 1:
        raise ConfigError("deltas must be a flat sequence of numbers")
    if d.size and (not np.isfinite(d).all()
                   or d.min() < -1.0 - _RANGE_TOL or d.max() > 1.0 + _RANGE_TOL):
        raise ConfigError("paired deltas must be finite and in [-1, 1] (scores in [0, 1])")
    x = (np.clip(d, -1.0, 1.0) + 1.0) / 2.0
    n = x.size
    t = np.arange(1, n + 1, dtype=float)
    log_term = math.log(2.0 / alpha)
    mu = (0.5 + np.cumsum(x)) / (t + 1)                    # mu_t
    var = (0.25 + np.cumsum((x - mu) ** 2)) / (t + 1)      # var_t
    mu_prev = np.concatenate(([0.5], mu[:-1]))
    var_prev = np.concatenate(([0.25], var[:-1]))
    lam = np.minimum(np.sqrt(2.0 * log_term / (var_prev * t * np.log1p(t))), LAMBDA_CAP)
    v = 4.0 * (x - mu_prev) ** 2
    psi = (-np.log1p(-lam) - lam) / 4.0
    sum_lam = np.cumsum(lam)
    centre = np.cumsum(lam * x) / sum_lam
    radius = (log_term + np.cumsum(v * psi)) / sum_lam
    low = np.maximum.accumulate(np.maximum(centre - radius, 0.0)) if n else centre
    high = np.minimum.accumulate(np.minimum(centre + radius, 1.0)) if n else centre
    return 2.0 * low - 1.0, 2.0 * high - 1.0
