"""Tests of the sequential comparison (domainrag.compare.sequential)."""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np
import pytest

from domainrag.compare.sequential import GRID, SequentialTest, log_wealth, run_sequential
from domainrag.errors import ConfigError


def _null_deltas(rng: np.random.Generator, n: int) -> np.ndarray:
    """Zero-mean paired deltas with many ties: b - a, a and b iid Bernoulli(0.6) or Beta."""
    if rng.random() < 0.5:
        a, b = rng.random(n) < 0.6, rng.random(n) < 0.6
        return b.astype(float) - a.astype(float)
    a, b = rng.beta(2, 2, n), rng.beta(2, 2, n)
    return b - a


def test_validity_on_simulated_nulls_under_continuous_monitoring() -> None:
    """Zero-mean sequences checked after every case *ever* call better/worse <= alpha of the
    time (futility off, so nothing else can stop them first)."""
    rng = np.random.default_rng(12345)
    alpha, reps, n = 0.05, 200, 500
    ever = sum(run_sequential(_null_deltas(rng, n), alpha=alpha, futility=None)["verdict"]
               in ("better", "worse") for _ in range(reps))
    # Binomial(200, 0.05) sd ~ 0.015: 2 sd of slack. (The mixture is conservative: ~0.5%.)
    assert ever / reps <= alpha + 0.03


def test_detects_clear_effect_early_in_both_directions() -> None:
    rng = np.random.default_rng(3)
    n = 1000
    a = (rng.random(n) < 0.5).astype(float)
    b = np.where(rng.random(n) < 0.75, 1.0, 0.0)  # mean delta +0.25
    out = run_sequential(b - a, alpha=0.05, total=n)
    assert out["verdict"] == "better" and "betting" in out["reason"]
    assert out["n_used"] < 150
    low, high = out["interval"]
    assert 0.0 < low < 0.25 < high
    worse = run_sequential(a - b, alpha=0.05, total=n)
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


def test_first_step_matches_formula() -> None:
    """Wealth after one delta of +1: the mean of (1 + lam) over the grid, and of (1 - lam)."""
    test = SequentialTest(alpha=0.05, min_cases=1)
    test.update(1.0)
    e = test.e_values
    assert e["better"] == pytest.approx(sum(1 + lam for lam in GRID) / len(GRID))
    assert e["worse"] == pytest.approx(sum(1 - lam for lam in GRID) / len(GRID))
    assert test.n == 1 and not test.decided and test.verdict == "undecided"


def test_interval_inverts_the_test() -> None:
    """The interval is the set of means the betting test does not reject (checked on a grid),
    contains the sample mean, and excludes 0 exactly when the test has decided at 0."""
    rng = np.random.default_rng(11)
    d = rng.choice([-1.0, 0.0, 0.0, 0.0, 0.5, 1.0], size=300)
    test = SequentialTest(alpha=0.1, min_cases=1, futility=None)
    assert test.interval == (-1.0, 1.0)
    for value in d:
        test.update(value)
    low, high = test.interval
    assert -1.0 <= low < float(d.mean()) < high <= 1.0
    threshold = math.log(2 / 0.1)
    for m in np.linspace(-0.99, 0.99, 199):
        kept = (log_wealth(d, m, 1) < threshold) and (log_wealth(d, m, -1) < threshold)
        if m < low - 1e-5 or m > high + 1e-5:
            assert not kept, m
        elif low + 1e-5 < m < high - 1e-5:
            assert kept, m
    assert (low > 0 or high < 0) == (test.verdict in ("better", "worse"))


def test_wealth_is_monotone_in_the_tested_mean() -> None:
    d = np.random.default_rng(4).uniform(-1, 1, 200)
    plus = [log_wealth(d, m, 1) for m in np.linspace(-0.9, 0.9, 50)]
    minus = [log_wealth(d, m, -1) for m in np.linspace(-0.9, 0.9, 50)]
    assert all(x >= y - 1e-12 for x, y in zip(plus, plus[1:], strict=False))
    assert all(x <= y + 1e-12 for x, y in zip(minus, minus[1:], strict=False))


def test_deterministic() -> None:
    d = np.random.default_rng(5).uniform(-1, 1, 300) * 0.5 + 0.1
    first = run_sequential(d, alpha=0.05, margin=0.05, total=600)
    second = run_sequential(list(d), alpha=0.05, margin=0.05, total=600)
    assert first == second


def test_min_cases_guard() -> None:
    test = SequentialTest(alpha=0.05, min_cases=50)
    for _ in range(49):
        test.update(1.0)
    assert test.interval[0] > 0 and not test.decided and test.verdict == "undecided"
    test.update(1.0)
    assert test.decided and test.verdict == "better"


def test_futility_stops_when_a_full_run_would_not_find_a_difference() -> None:
    rng = np.random.default_rng(2)
    d = rng.choice([-1.0, 0.0, 0.0, 0.0, 0.0, 1.0], size=1000)
    out = run_sequential(d, alpha=0.05, total=1000)
    assert out["verdict"] == "no detectable difference"
    assert "futility" in out["reason"] and "1000 cases" in out["reason"]
    assert 20 <= out["n_used"] < 1000
    # Without the suite size (or with futility off) only better/worse can stop the run.
    assert run_sequential(d, alpha=0.05)["verdict"] == "undecided"
    assert run_sequential(d, alpha=0.05, total=1000, futility=None)["n_used"] == 1000


def test_predictive_probability_formula() -> None:
    d = [0.5, -0.25, 0.25, 0.0, 0.5]
    test = SequentialTest(total=20)
    for value in d:
        test.update(value)
    mean, sd = float(np.mean(d)), float(np.std(d, ddof=1))
    centre, spread = mean * math.sqrt(20) / sd, math.sqrt(15 / 5)
    z = NormalDist().inv_cdf(0.975)
    expected = (1 - NormalDist(centre, spread).cdf(z)) + NormalDist(centre, spread).cdf(-z)
    assert test.predictive == pytest.approx(expected)
    assert test.mean == pytest.approx(mean)
    assert SequentialTest().predictive is None  # no suite size


def test_all_zero_deltas_decide_no_difference_without_dividing_by_zero() -> None:
    out = run_sequential([0.0] * 400, alpha=0.05, total=400)
    assert out["verdict"] == "no detectable difference" and out["n_used"] < 400
    test = SequentialTest(total=100)
    for _ in range(10):
        test.update(0.25)   # identical non-zero deltas: sd 0, a difference is certain
    assert test.predictive == 1.0


def test_margin_decision() -> None:
    # All-zero deltas: the interval shrinks around 0 and eventually fits in (-0.1, 0.1).
    zeros = [0.0] * 3000
    out = run_sequential(zeros, alpha=0.05, margin=0.1)
    assert out["verdict"] == "no detectable difference" and "equivalence" in out["reason"]
    low, high = out["interval"]
    assert -0.1 < low <= 0.0 <= high < 0.1
    assert out["n_used"] < 3000
    # Without a margin (and no suite size) the same data never decides.
    none = run_sequential(zeros, alpha=0.05)
    assert none["verdict"] == "undecided" and none["n_used"] == 3000


def test_clear_effect_beats_margin_and_futility() -> None:
    """An effect larger than the margin is never called equivalent or futile."""
    d = np.full(2000, 0.3)
    assert run_sequential(d, alpha=0.05, margin=0.1, total=2000)["verdict"] == "better"


@pytest.mark.parametrize("bad", [1.5, -1.01, float("nan"), float("inf"), "x", None])
def test_out_of_range_delta_raises(bad) -> None:
    test = SequentialTest()
    with pytest.raises(ConfigError):
        test.update(bad)
    with pytest.raises(ConfigError):
        run_sequential([0.0, bad])


def test_rounding_at_the_bounds_is_accepted() -> None:
    test = SequentialTest()
    test.update(1.0 + 1e-15)
    test.update(-1.0 - 1e-15)
    assert test.n == 2


@pytest.mark.parametrize("kwargs", [{"alpha": 0.0}, {"alpha": 1.0}, {"min_cases": 0},
                                    {"min_cases": 2.5}, {"equivalence_margin": 0.0},
                                    {"equivalence_margin": -0.1}, {"total": 0},
                                    {"total": 2.5}, {"futility": 0.0}, {"futility": 0.5}])
def test_bad_parameters_raise(kwargs) -> None:
    with pytest.raises(ConfigError):
        SequentialTest(**kwargs)
