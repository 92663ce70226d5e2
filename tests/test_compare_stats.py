"""Paired comparison statistics: hand-checkable p-values, Holm, MDE, verdicts, edge cases."""

from __future__ import annotations

import itertools
import math
import warnings

import numpy as np
import pytest

from domainrag.compare.paired_stats import (
    PairedResult,
    holm,
    holm_adjusted,
    mcnemar_exact,
    mcnemar_mde,
    mcnemar_power,
    minimum_detectable_effect,
    paired,
    ratio_summary,
    sign_flip_p,
)
from domainrag.errors import ConfigError


def brute_force_sign_flip(d: list[float]) -> float:
    """Share of the 2**n sign vectors whose |sum| is at least the observed |sum|."""
    observed = abs(sum(d))
    hits = total = 0
    for signs in itertools.product((1, -1), repeat=len(d)):
        total += 1
        hits += abs(sum(s * x for s, x in zip(signs, d, strict=False))) >= observed - 1e-12
    return hits / total


# --- permutation test -------------------------------------------------------------------------


def test_exact_permutation_matches_brute_force() -> None:
    a = [0.2, 0.5, 0.4, 0.9, 0.1, 0.3, 0.6]
    b = [0.5, 0.6, 0.3, 1.0, 0.4, 0.7, 0.6]
    r = paired(a, b)
    d = [y - x for x, y in zip(a, b, strict=False)]
    assert r.test == "permutation"
    assert r.p == pytest.approx(brute_force_sign_flip(d), abs=1e-12)
    assert r.delta == pytest.approx(sum(d) / len(d))


def test_exact_permutation_by_hand() -> None:
    # d = (1, 2, 3): |sum| = 6 is reached only by all-plus and all-minus: p = 2/8.
    assert sign_flip_p([1.0, 2.0, 3.0]) == pytest.approx(0.25)
    # d = (1, 1, -1): |sum| = 1; |sum| >= 1 for every sign vector (sums are odd): p = 1.
    assert sign_flip_p([1.0, 1.0, -1.0]) == 1.0
    # Five positive differences: the smallest possible p at n = 5 is 2/32 > 0.05.
    assert sign_flip_p([0.1] * 5) == pytest.approx(2 / 32)


def test_exact_permutation_counts_float_ties() -> None:
    # 0.1 + 0.2 != 0.3 in floating point; flipped sums equal in exact arithmetic must tie.
    d = [0.1, 0.2, -0.3, 0.3, 0.05, 0.05]
    assert sign_flip_p(d) == pytest.approx(brute_force_sign_flip(d))


@pytest.mark.parametrize("seed", [0, 1])
def test_monte_carlo_permutation_near_exact(seed: int) -> None:
    rng = np.random.default_rng(seed)
    d = list(rng.normal(0.3, 1.0, size=16))
    exact = sign_flip_p(d)
    # n = 17 leaves exact enumeration; compare with a brute force over 2**17 for the same data.
    d17 = d + [0.0]  # a zero difference does not change any statistic
    mc = sign_flip_p(d17, n_resamples=20000, seed=seed)
    assert mc == pytest.approx(exact, abs=0.01)


def test_monte_carlo_correction_never_zero() -> None:
    d = [1.0] * 40  # observed sum is the maximum: only the all-plus/all-minus vectors match it
    assert sign_flip_p(d, n_resamples=999) == pytest.approx(1 / 1000)


# --- McNemar ----------------------------------------------------------------------------------


@pytest.mark.slow
def test_mcnemar_matches_scipy_binomtest() -> None:
    binomtest = pytest.importorskip("scipy.stats").binomtest
    for b_wins, a_wins in [(0, 1), (1, 0), (3, 0), (10, 2), (7, 7), (12, 30), (60, 40),
                           (600, 400), (1200, 800), (5000, 4800)]:
        expected = binomtest(b_wins, b_wins + a_wins, 0.5).pvalue
        assert mcnemar_exact(b_wins, a_wins) == pytest.approx(expected, rel=1e-9)


def test_binary_metric_uses_mcnemar_on_discordant_pairs() -> None:
    binomtest = pytest.importorskip("scipy.stats").binomtest
    # 20 cases: 8 concordant (5 both pass, 3 both fail), B wins 10 discordant, A wins 2.
    a = [1] * 5 + [0] * 3 + [0] * 10 + [1] * 2
    b = [1] * 5 + [0] * 3 + [1] * 10 + [0] * 2
    r = paired(a, b)
    assert r.test == "mcnemar"
    assert r.p == pytest.approx(binomtest(10, 12, 0.5).pvalue)
    assert r.delta == pytest.approx(8 / 20)
    assert r.verdict == "better"
    # binary=False forces the permutation test on the same data.
    assert paired(a, b, binary=False).test == "permutation"


def test_binary_true_rejects_non_binary_scores() -> None:
    with pytest.raises(ConfigError, match="0 or 1"):
        paired([0, 1, 0.5], [1, 1, 0], binary=True)


# --- CI, MDE, verdicts ------------------------------------------------------------------------


def test_mde_formula() -> None:
    d = [0.1, -0.2, 0.3, 0.0, 0.25, -0.05]
    z = 1.959963984540054 + 0.8416212335729143
    expected = z * float(np.std(d, ddof=1)) / math.sqrt(len(d))
    assert minimum_detectable_effect(d) == pytest.approx(expected)
    a = [0.5] * len(d)
    assert paired(a, [x + y for x, y in zip(a, d, strict=False)]).mde == pytest.approx(expected)
    assert minimum_detectable_effect([0.3]) is None
    assert paired([0.2], [0.7]).mde is None


def test_deterministic_with_seed_and_ci_contains_delta() -> None:
    rng = np.random.default_rng(3)
    a = rng.uniform(size=120)
    b = np.clip(a + rng.normal(0.02, 0.1, size=120), 0, 1)
    r1, r2 = paired(a, b, seed=7), paired(a, b, seed=7)
    assert r1 == r2
    assert isinstance(r1, PairedResult)
    low, high = r1.ci
    assert low <= r1.delta <= high
    other = paired(a, b, seed=8)
    assert other.ci != r1.ci  # the seed drives the resampling
    without_ci = paired(a, b, seed=7, ci=False)
    assert without_ci.ci is None and without_ci.p == r1.p and without_ci.verdict == r1.verdict


def test_all_identical_is_no_detectable_difference_without_warnings() -> None:
    scores = [0.1, 0.5, 0.9, 0.9, 0.0]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        r = paired(scores, list(scores))
        rb = paired([1, 0, 1], [1, 0, 1])
    for res in (r, rb):
        assert res.p == 1.0 and res.ci == (0.0, 0.0) and res.mde == 0.0 and res.delta == 0.0
        assert res.verdict == "no detectable difference" and res.test == "none"


def test_constant_nonzero_difference_has_zero_mde_without_warnings() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        r = paired([0.2] * 30, [0.3] * 30)
    assert r.mde == 0.0 and r.verdict == "better" and r.p < 0.001
    assert r.ci == pytest.approx((0.1, 0.1))


def test_clear_improvement_on_200_cases_is_better() -> None:
    rng = np.random.default_rng(0)
    a = rng.beta(2, 2, size=200)
    b = np.clip(a + 0.08 + rng.normal(0, 0.1, size=200), 0, 1)
    r = paired(a, b)
    assert r.verdict == "better" and r.p < 0.01 and r.ci[0] > 0
    assert paired(b, a).verdict == "worse"  # symmetric
    assert paired(b, a).delta == pytest.approx(-r.delta)


def test_verdict_respects_alpha() -> None:
    a = [0.0] * 10
    b = [0.1] * 8 + [-0.1, 0.1]  # exact p = 22/1024 ~ 0.0215
    r = paired(a, b)
    assert r.p == pytest.approx(brute_force_sign_flip(b))
    assert r.verdict == "better"
    assert paired(a, b, alpha=0.01).verdict == "no detectable difference"


# --- errors -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("a", "b", "match"),
    [
        ([], [], "no cases"),
        ([0.1, 0.2], [0.1], "same cases"),
        ([0.1, float("nan")], [0.1, 0.2], "NaN"),
        ([0.1, 0.2], [0.1, float("inf")], "NaN or infinity"),
    ],
)
def test_bad_input_raises_config_error(a: list[float], b: list[float], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        paired(a, b)


def test_bad_parameters_raise_config_error() -> None:
    with pytest.raises(ConfigError):
        paired([0.1], [0.2], alpha=0)
    with pytest.raises(ConfigError):
        paired([0.1], [0.2], power=1.0)
    with pytest.raises(ConfigError):
        paired([0.1], [0.2], n_resamples=0)


# --- Holm -------------------------------------------------------------------------------------


def test_holm_textbook_example() -> None:
    p = {"h1": 0.01, "h2": 0.04, "h3": 0.03, "h4": 0.005}
    # Sorted: 0.005 <= 0.05/4 reject; 0.01 <= 0.05/3 reject; 0.03 > 0.05/2 stop.
    assert holm(p, alpha=0.05) == {"h1": True, "h2": False, "h3": False, "h4": True}
    adjusted = holm_adjusted(p)
    assert list(adjusted) == list(p)  # input order kept
    assert adjusted == pytest.approx({"h4": 0.02, "h1": 0.03, "h3": 0.06, "h2": 0.06})



def test_holm_rejects_more_than_bonferroni() -> None:
    p = {"x": 0.01, "y": 0.015, "z": 0.02}
    # Bonferroni (p < 0.05 / 3) rejects x and y; Holm's thresholds 0.05/3, 0.05/2, 0.05 all three.
    assert [v < 0.05 / 3 for v in p.values()] == [True, True, False]
    assert holm(p) == {"x": True, "y": True, "z": True}


def test_holm_adjusted_monotone_and_capped() -> None:
    p = {"a": 0.5, "b": 0.3, "c": 0.9, "d": 0.001}
    adjusted = holm_adjusted(p)
    ordered = [adjusted[k] for k in sorted(p, key=p.get)]
    assert ordered == sorted(ordered)
    assert max(adjusted.values()) == 1.0
    assert all(adjusted[k] >= p[k] for k in p)
    assert holm_adjusted({}) == {} and holm({}) == {}


def test_holm_rejects_bad_p_values() -> None:
    with pytest.raises(ConfigError):
        holm_adjusted({"a": float("nan")})
    with pytest.raises(ConfigError):
        holm({"a": 1.5})


# --- ratio summary ----------------------------------------------------------------------------


def test_ratio_summary_words() -> None:
    assert ratio_summary(1.0, 0.63) == "37% cheaper"
    assert ratio_summary(1.0, 2.1) == "2.1× more expensive"
    assert ratio_summary(1.0, 1.25) == "25% more expensive"
    assert ratio_summary(200.0, 100.0, kind="latency") == "50% faster"
    assert ratio_summary(100.0, 310.0, kind="latency") == "3.1× slower"
    assert ratio_summary(100.0, 90.0, kind="tokens") == "10% fewer tokens"
    assert ratio_summary(1.0, 1.001) == "about the same cost"
    assert ratio_summary(0.0, 5.0) is None
    with pytest.raises(ConfigError):
        ratio_summary(1.0, 2.0, kind="quality")


def test_mcnemar_power_by_hand() -> None:
    """n = 2 pairs, psi = 1 (both discordant): McNemar's exact test can never reject at 0.05
    (smallest p = 2 * 0.5**2 = 0.5), so power is 0 whatever the effect."""
    assert mcnemar_power(2, 1.0, 1.0) == 0.0
    # n = 6, psi = 1: only 6-0 or 0-6 splits reject (p = 2/64); power = p_win**6 + (1-p_win)**6.
    p_win = (1.0 + 0.5) / 2.0
    assert mcnemar_power(6, 1.0, 0.5) == pytest.approx(p_win**6 + (1 - p_win) ** 6)


@pytest.mark.parametrize("n,psi,delta", [(50, 0.2, 0.15), (200, 0.18, 0.08), (1000, 0.2, 0.04)])
def test_mcnemar_power_matches_simulation(n, psi, delta) -> None:
    rng = np.random.default_rng(n)
    p_b, p_a = (psi + delta) / 2, (psi - delta) / 2
    reps, hits = 3000, 0
    for _ in range(reps):
        u = rng.random(n)
        hits += mcnemar_exact(int((u < p_b).sum()), int(((u >= p_b) & (u < p_b + p_a)).sum())) < 0.05
    # Binomial(3000, ~0.7) sd ~0.008: 3 sd.
    assert mcnemar_power(n, psi, delta) == pytest.approx(hits / reps, abs=0.025)


def test_mcnemar_mde_reaches_the_requested_power() -> None:
    for n in (80, 300, 2000, 20000):        # exact below n*psi = 600, normal above
        mde = mcnemar_mde(n, 0.18)
        assert 0 < mde < 0.18
        assert mcnemar_power(n, 0.18, mde) == pytest.approx(0.8, abs=0.01)
        assert mcnemar_power(n, 0.18, mde * 0.9) < 0.8
    assert mcnemar_mde(10, 0.2) == 0.2          # nothing detectable: the largest possible effect
    assert mcnemar_mde(1, 0.5) is None and mcnemar_mde(100, 0.0) == 0.0
