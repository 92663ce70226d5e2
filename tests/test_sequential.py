"""Tests of the anytime-valid sequential comparison (domainrag.compare.sequential)."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from domainrag.compare.sequential import (
    SequentialTest,
    confidence_sequence,
    run_sequential,
)
from domainrag.errors import ConfigError


def _null_deltas(rng: np.random.Generator, n: int) -> np.ndarray:
    """Zero-mean paired deltas with many ties: b - a, a and b iid Bernoulli(0.6) or Beta."""
    if rng.random() < 0.5:
        a, b = rng.random(n) < 0.6, rng.random(n) < 0.6
        return b.astype(float) - a.astype(float)
    a, b = rng.beta(2, 2, n), rng.beta(2, 2, n)
    return b - a


def test_validity_on_simulated_nulls() -> None:
    """Fraction of zero-mean sequences that *ever* decide "better"/"worse" stays <= alpha."""
    rng = np.random.default_rng(12345)
    alpha, reps, n, min_cases = 0.05, 300, 500, 20
    ever = 0
    for _ in range(reps):
        low, high = confidence_sequence(_null_deltas(rng, n), alpha)
        ever += bool(((low[min_cases - 1:] > 0) | (high[min_cases - 1:] < 0)).any())
    # Binomial(300, 0.05) sd ~ 0.0126: allow ~2 sd of slack. (PrPl-EB is conservative: ~0.)
    assert ever / reps <= alpha + 0.025


def test_validity_under_peeking_class_api() -> None:
    """The class API, monitored after every case, rarely calls a difference under H0."""
    rng = np.random.default_rng(7)
    calls = 0
    for _ in range(60):
        out = run_sequential(rng.uniform(-1, 1, 400), alpha=0.05)
        calls += out["verdict"] in ("better", "worse")
    assert calls <= 6


def test_detects_clear_effect_early() -> None:
    rng = np.random.default_rng(3)
    n = 1000
    a = (rng.random(n) < 0.5).astype(float)
    b = np.where(rng.random(n) < 0.75, 1.0, 0.0)  # mean delta +0.25
    out = run_sequential(b - a, alpha=0.05)
    assert out["verdict"] == "better"
    assert out["n_used"] < 400
    low, high = out["interval"]
    assert 0.0 < low < 0.25 < high
    worse = run_sequential(a - b, alpha=0.05)
    assert worse["verdict"] == "worse" and worse["n_used"] == out["n_used"]


def test_run_sequential_stops_consuming_at_decision() -> None:
    consumed = []

    def lazy():
        for i in range(10_000):
            consumed.append(i)
            yield 1.0

    out = run_sequential(lazy(), alpha=0.05, min_cases=20)
    assert out["verdict"] == "better"
    assert out["n_used"] == len(consumed) == 20  # all-ones decides as soon as min_cases allows


def test_interval_never_widens_and_matches_vectorised() -> None:
    rng = np.random.default_rng(11)
    d = rng.choice([-1.0, 0.0, 0.0, 0.0, 0.5, 1.0], size=600)
    test = SequentialTest(alpha=0.1)
    assert test.interval == (-1.0, 1.0)
    lows, highs = [], []
    for value in d:
        test.update(value)
        lows.append(test.interval[0])
        highs.append(test.interval[1])
    assert all(x <= y for x, y in itertools.pairwise(lows))
    assert all(x >= y for x, y in itertools.pairwise(highs))
    assert all(-1.0 <= lo <= hi <= 1.0 for lo, hi in zip(lows, highs))
    v_low, v_high = confidence_sequence(d, alpha=0.1)
    np.testing.assert_allclose(lows, v_low, atol=1e-12)
    np.testing.assert_allclose(highs, v_high, atol=1e-12)


def test_first_step_matches_formula() -> None:
    """Hand-computed PrPl-EB after one observation x_1 = 1 (delta = +1)."""
    alpha = 0.05
    log_term = math.log(2 / alpha)
    lam = min(math.sqrt(2 * log_term / (0.25 * 1 * math.log(2))), 0.5)
    v = 4 * (1.0 - 0.5) ** 2
    psi = (-math.log(1 - lam) - lam) / 4
    centre, radius = 1.0, (log_term + v * psi) / lam
    test = SequentialTest(alpha=alpha, min_cases=1)
    test.update(1.0)
    low, high = test.interval
    assert low == pytest.approx(2 * max(centre - radius, 0.0) - 1)
    assert high == pytest.approx(2 * min(centre + radius, 1.0) - 1)
    assert test.n == 1 and not test.decided and test.verdict == "undecided"


def test_deterministic() -> None:
    d = np.random.default_rng(5).uniform(-1, 1, 300) * 0.5 + 0.1
    first = run_sequential(d, alpha=0.05, margin=0.05)
    second = run_sequential(list(d), alpha=0.05, margin=0.05)
    assert first == second


def test_min_cases_guard() -> None:
    test = SequentialTest(alpha=0.05, min_cases=50)
    for _ in range(49):
        test.update(1.0)
    assert test.interval[0] > 0 and not test.decided and test.verdict == "undecided"
    test.update(1.0)
    assert test.decided and test.verdict == "better"


def test_margin_decision() -> None:
    # All-zero deltas: the interval shrinks around 0 and eventually fits in (-0.1, 0.1).
    zeros = [0.0] * 3000
    out = run_sequential(zeros, alpha=0.05, margin=0.1)
    assert out["verdict"] == "no detectable difference"
    low, high = out["interval"]
    assert -0.1 < low <= 0.0 <= high < 0.1
    assert out["n_used"] < 3000
    # Without a margin the same data never decides.
    none = run_sequential(zeros, alpha=0.05)
    assert none["verdict"] == "undecided" and none["n_used"] == 3000
    # Noisy zero-mean deltas with a generous margin also decide equivalence.
    rng = np.random.default_rng(2)
    d = rng.choice([-1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0], size=5000)
    eq = run_sequential(d, alpha=0.05, margin=0.1)
    assert eq["verdict"] == "no detectable difference"
    test = SequentialTest(alpha=0.05, equivalence_margin=0.1)
    for value in d[: eq["n_used"]]:
        test.update(value)
    assert test.decided and test.verdict == "no detectable difference"


def test_clear_effect_beats_margin() -> None:
    """An effect larger than the margin is never called equivalent."""
    d = np.full(2000, 0.3)
    assert run_sequential(d, alpha=0.05, margin=0.1)["verdict"] == "better"


@pytest.mark.parametrize("bad", [1.5, -1.01, float("nan"), float("inf"), "x", None])
def test_out_of_range_delta_raises(bad) -> None:
    test = SequentialTest()
    with pytest.raises(ConfigError):
        test.update(bad)
    with pytest.raises(ConfigError):
        run_sequential([0.0, bad])
    if not isinstance(bad, (str, type(None))):
        with pytest.raises(ConfigError):
            confidence_sequence([0.0, bad])


def test_rounding_at_the_bounds_is_accepted() -> None:
    test = SequentialTest()
    test.update(1.0 + 1e-15)
    test.update(-1.0 - 1e-15)
    assert test.n == 2


@pytest.mark.parametrize("kwargs", [{"alpha": 0.0}, {"alpha": 1.0}, {"min_cases": 0},
                                    {"min_cases": 2.5}, {"equivalence_margin": 0.0},
                                    {"equivalence_margin": -0.1}])
def test_bad_parameters_raise(kwargs) -> None:
    with pytest.raises(ConfigError):
        SequentialTest(**kwargs)
