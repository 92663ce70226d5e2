"""Paired statistics for comparing two runs over the same cases.

Assumptions shared by every function here:

* **Cases are the unit.** Run A and run B scored the same cases; ``a[i]`` and ``b[i]`` belong to
  case ``i``. Each case contributes one difference ``d[i] = b[i] - a[i]``.
* **Pairs are independent across cases** (the cases are a sample from the population of questions
  you care about). Nothing is assumed about the two scores *within* a case: they may be strongly
  correlated, which is exactly what pairing exploits.
* Only mean differences are tested. Higher is better is the caller's convention: for cost or
  latency, flip the verdict.

Everything is deterministic: resampling uses ``numpy`` generators seeded with ``seed``. Only numpy
and the standard library are used (no scipy at run time); the exact binomial test behind McNemar
is computed with integer arithmetic and agrees with ``scipy.stats.binomtest``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any, TypeGuard

import numpy as np

from ..errors import ConfigError
from ..evaluate.intervals import bootstrap_ci

#: Largest n for which the permutation test enumerates all 2**n sign flips (65,536 rows).
EXACT_MAX_N = 16
#: Most random sign bits per block (32 MiB as float64); larger Monte Carlo jobs run in blocks.
_MAX_BLOCK_BITS = 1 << 22
#: Most discordant pairs for which McNemar's binomial tail is summed in exact integers.
_EXACT_BINOM_MAX = 1000
#: Relative tolerance when comparing permuted statistics with the observed one (float ties).
_TIE_RTOL = 1e-9

BETTER, WORSE, SAME = "better", "worse", "no detectable difference"
RATIO_WORDS = {
    "cost": ("cheaper", "more expensive", "cost"),
    "latency": ("faster", "slower", "latency"),
    "tokens": ("fewer tokens", "more tokens", "tokens"),
}


@dataclass(frozen=True)
class PairedResult:
    """The paired comparison of run A (baseline) and run B over ``n`` cases.

    ``delta`` is the mean of ``b - a``; ``ci`` its percentile-bootstrap interval at ``1 - alpha``
    (None when computed with ``ci=False``); ``p`` the two-sided p-value of ``test``
    (``"mcnemar"``, ``"permutation"``, or ``"none"`` when every difference is zero); ``mde`` the
    minimum detectable effect at this n (None when n < 2); ``verdict`` ``"better"``, ``"worse"``
    or ``"no detectable difference"``.
    """

    n: int
    mean_a: float
    mean_b: float
    delta: float
    ci: tuple[float, float] | None
    p: float
    test: str
    mde: float | None
    verdict: str


def paired(
    a: Sequence[float],
    b: Sequence[float],
    *,
    alpha: float = 0.05,
    power: float = 0.8,
    n_resamples: int = 4000,
    seed: int = 0,
    binary: bool | None = None,
    ci: bool = True,
) -> PairedResult:
    """Compare per-case scores ``a`` (baseline) and ``b`` (candidate) of the same cases.

    * **delta** — mean of ``b[i] - a[i]``.
    * **ci** — paired percentile bootstrap: case indices are resampled with replacement
      ``n_resamples`` times and the mean delta taken each time (:func:`bootstrap_ci` on the
      differences); the ``alpha/2`` and ``1 - alpha/2`` quantiles. Skipped (None) with
      ``ci=False`` when only the p-value is needed (simulations).
    * **p** — two-sided. For binary metrics (every score 0 or 1; ``binary=None`` detects it)
      McNemar's exact test: among the discordant cases (pass in one run only), the count that B
      won is Binomial(discordant, 1/2) under H0 (:func:`mcnemar_exact`). Otherwise a paired
      sign-flip permutation test of the mean delta (:func:`sign_flip_p`), exact for n <= 16,
      else Monte Carlo with ``n_resamples`` flips.
    * **mde** — the minimum detectable effect at this n: the true mean delta that a two-sided
      test at ``alpha`` would detect with probability ``power``, by the normal approximation
      ``(z[1 - alpha/2] + z[power]) * sd(d, ddof=1) / sqrt(n)``. Binary metrics use the exact
      power of McNemar's test instead (:func:`mcnemar_mde`). The sd (or the discordant share)
      is the one *observed in this comparison*, which already includes whatever spread the
      effect adds (an A/A pilot would understate it).
    * **verdict** — ``"better"`` / ``"worse"`` when ``p < alpha`` (by the sign of delta),
      otherwise ``"no detectable difference"``. Pass a corrected alpha for per-scenario use, or
      correct the p-values afterwards with :func:`holm`. The CI is built at the same
      ``1 - alpha`` level, so it excludes 0 when the test rejects except near the boundary
      (bootstrap and permutation are different approximations); the verdict follows the test.

    Every difference zero gives ``p = 1.0``, ``ci = (0, 0)``, ``mde = 0.0``, test ``"none"``.
    Raises :class:`ConfigError` for no cases, lengths that differ, a NaN or infinite score, or
    ``binary=True`` with a score that is not 0 or 1.
    """
    xa, xb = _validate(a, b, alpha, power, n_resamples)
    d = xb - xa
    n = d.size
    if binary is None:
        binary = bool(np.isin(xa, (0.0, 1.0)).all() and np.isin(xb, (0.0, 1.0)).all())
    elif binary and not (np.isin(xa, (0.0, 1.0)).all() and np.isin(xb, (0.0, 1.0)).all()):
        raise ConfigError("binary=True needs every score to be 0 or 1")
    delta = float(d.mean())
    mean_a, mean_b = float(xa.mean()), float(xb.mean())
    if not d.any():
        return PairedResult(n, mean_a, mean_b, 0.0, (0.0, 0.0) if ci else None, 1.0, "none",
                            0.0 if n >= 2 else None, SAME)
    if binary:
        test = "mcnemar"
        p = mcnemar_exact(int((d > 0).sum()), int((d < 0).sum()))
    else:
        test = "permutation"
        p = sign_flip_p(d, n_resamples=n_resamples, seed=seed)
    interval = None
    if ci:
        _, low, high = bootstrap_ci(d, 1.0 - alpha, n_resamples, seed)
        interval = (low, high)
    if binary:
        mde = mcnemar_mde(n, float((d != 0).mean()), alpha=alpha, power=power)
    else:
        mde = minimum_detectable_effect(d, alpha=alpha, power=power)
    verdict = SAME if p >= alpha else (BETTER if delta > 0 else WORSE)
    return PairedResult(n, mean_a, mean_b, delta, interval, p, test, mde, verdict)


#: Above this many expected discordant pairs the exact power sum is replaced by Connor's normal
#: approximation (discreteness no longer matters and the sum grows with n).
_EXACT_POWER_MAX = 600


def _power_curve(n: int, psi: float, alpha: float) -> Callable[[float], float]:
    """``delta -> power`` of McNemar's exact test on ``n`` pairs with discordant share ``psi``
    (see :func:`mcnemar_power`); the binomial tables are built once per curve."""
    z = NormalDist()
    if n * psi > _EXACT_POWER_MAX:
        za = z.inv_cdf(1.0 - alpha / 2)

        def normal(delta: float) -> float:
            sd = math.sqrt(max(psi - delta**2, 1e-300))
            return z.cdf((delta * math.sqrt(n) - za * math.sqrt(psi)) / sd)
        return normal
    spread = 7.0 * math.sqrt(n * psi * (1.0 - psi)) + 2.0
    counts = np.arange(max(1, int(n * psi - spread)), min(n, math.ceil(n * psi + spread)) + 1)
    log_fact = np.concatenate(([0.0], np.cumsum(np.log(np.arange(1, n + 1, dtype=float)))))
    j = np.arange(counts[-1] + 1)
    valid = j[None, :] <= counts[:, None]
    rest = np.where(valid, counts[:, None] - j[None, :], 0)
    log_comb = np.where(valid, log_fact[counts][:, None] - log_fact[j][None, :] - log_fact[rest],
                        -np.inf)
    # D ~ Binomial(n, psi): the weight of each discordant count.
    log_w = (log_fact[n] - log_fact[counts] - log_fact[n - counts] + counts * math.log(psi)
             + ((n - counts) * math.log1p(-psi) if psi < 1.0 else 0.0))
    weights = np.exp(log_w)
    # Rejection region of the exact test: k <= c or k >= D - c, c the largest with 2 P(X <= c) < alpha.
    null_cdf = np.cumsum(np.exp(log_comb - counts[:, None] * math.log(2.0)), axis=1)
    c = (2.0 * null_cdf < alpha).sum(axis=1) - 1
    reject = valid & (c[:, None] >= 0) & ((j[None, :] <= c[:, None])
                                          | (j[None, :] >= (counts - c)[:, None]))

    def exact(delta: float) -> float:
        p_win = (psi + delta) / (2.0 * psi)
        if p_win >= 1.0:
            hit = reject[np.arange(counts.size), counts].astype(float)
        else:
            log_pmf = log_comb + j[None, :] * math.log(p_win) + rest * math.log1p(-p_win)
            hit = np.where(reject, np.exp(log_pmf), 0.0).sum(axis=1)
        return float(min(1.0, (weights * np.minimum(hit, 1.0)).sum()))
    return exact


def mcnemar_power(n: int, discordant: float, delta: float, *, alpha: float = 0.05) -> float:
    """Probability that McNemar's exact two-sided test (:func:`mcnemar_exact`) at ``alpha``
    rejects on ``n`` independent pairs when a share ``discordant`` (ψ) of pairs differ and the
    pass rates differ by ``delta`` (δ = p[B only] - p[A only], |δ| <= ψ).

    Exact: the discordant count D is Binomial(n, ψ); given D, B's wins are Binomial(D,
    (ψ + δ) / 2ψ), and the test rejects when they fall in the two tails whose probability under
    Binomial(D, 1/2) is below ``alpha`` (the rejection region of :func:`mcnemar_exact`). The sum
    runs over D within 7 sd of nψ. Above nψ = 600, where the test's discreteness no longer
    matters (the MDE moves by ~1.5%), Connor's (1987) normal approximation is used instead.
    """
    if n < 1 or discordant <= 0:
        return 0.0
    psi = min(float(discordant), 1.0)
    return _power_curve(n, psi, alpha)(min(abs(float(delta)), psi))


def mcnemar_mde(n: int, discordant: float, *, alpha: float = 0.05, power: float = 0.8) -> float | None:
    """The smallest difference of pass rates McNemar's exact test detects with probability
    ``power`` on ``n`` pairs of which a share ``discordant`` (ψ) differ: the δ where
    :func:`mcnemar_power` reaches ``power`` (bisection; exact, so the conservativeness of the
    discrete test at small n is priced in). ψ is held fixed, as observed: pass the discordant
    share of the comparison itself. None when n < 2; 0 when no pair differs; ψ (the largest
    possible difference) when even that is not detectable at this n."""
    if n < 2:
        return None
    if discordant <= 0:
        return 0.0
    psi = min(float(discordant), 1.0)
    curve = _power_curve(n, psi, alpha)
    if curve(psi) < power:
        return psi
    low, high = 0.0, psi
    for _ in range(40):
        mid = (low + high) / 2
        low, high = (mid, high) if curve(mid) < power else (low, mid)
        if high - low < 1e-6:
            break
    return high


def minimum_detectable_effect(d: Sequence[float], *, alpha: float = 0.05,
                              power: float = 0.8) -> float | None:
    """``(z[1 - alpha/2] + z[power]) * sd(d, ddof=1) / sqrt(n)``, or None when n < 2.

    The smallest true mean difference a two-sided level-``alpha`` test on these n cases detects
    with probability ``power`` (normal approximation; assumes the sd of the differences stays
    what it was observed to be). Zero when every difference is equal.
    """
    diffs = np.asarray(d, dtype=float)
    if diffs.size < 2:
        return None
    # Equal differences have sd 0 exactly (std() would leave ~1e-17 of rounding).
    sd = 0.0 if np.ptp(diffs) == 0 else float(diffs.std(ddof=1))
    z = NormalDist()
    return (z.inv_cdf(1.0 - alpha / 2) + z.inv_cdf(power)) * sd / math.sqrt(diffs.size)


def is_score(value: Any) -> TypeGuard[float]:
    """A usable per-case score: a finite number (not None, NaN, a bool or a string). Pairs
    where either side is not are left out of a comparison."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def mcnemar_exact(b_wins: int, a_wins: int) -> float:
    """Two-sided p-value of McNemar's exact test from the discordant pair counts.

    ``b_wins`` cases pass in B and fail in A, ``a_wins`` the reverse; concordant cases carry no
    information about the difference. Under H0 (neither run more likely to win a discordant case,
    pairs independent) ``b_wins`` is Binomial(b_wins + a_wins, 1/2); the p-value is the
    probability of a split at least as uneven, ``min(1, 2 * P(X <= min(b_wins, a_wins)))`` —
    what ``scipy.stats.binomtest(b_wins, b_wins + a_wins).pvalue`` gives for p = 1/2. Exact
    integer arithmetic up to 1,000 discordant cases, log-space floating point above (relative
    error ~1e-12); 1.0 when there is no discordant case. Discrete, hence conservative.
    """
    if b_wins < 0 or a_wins < 0:
        raise ConfigError(f"discordant counts must be >= 0, got {b_wins}, {a_wins}")
    m, k = b_wins + a_wins, min(b_wins, a_wins)
    if m == 0 or 2 * k == m:
        return 1.0
    if m <= _EXACT_BINOM_MAX:
        tail = sum(math.comb(m, i) for i in range(k + 1))
        return min(1.0, float(2 * tail / 2**m))
    # Large m: log-space. log P(X = k), then the ratios P(X = i - 1) / P(X = i) = i / (m - i + 1)
    # walking down from k (the largest term of the lower tail), summed relative to P(X = k).
    log_top = math.lgamma(m + 1) - math.lgamma(k + 1) - math.lgamma(m - k + 1) - m * math.log(2)
    i = np.arange(k, 0, -1, dtype=float)
    rel = np.exp(np.concatenate(([0.0], np.cumsum(np.log(i / (m - i + 1))))))
    return min(1.0, 2.0 * math.exp(log_top) * float(rel.sum()))


def sign_flip_p(d: Sequence[float], *, n_resamples: int = 4000, seed: int = 0) -> float:
    """Two-sided p-value of the paired sign-flip permutation test of the mean difference.

    Under H0 each case's difference is as likely to be ``+d[i]`` as ``-d[i]`` (the two runs'
    scores of a case are exchangeable) and cases are independent, so the observed
    ``|sum(d)|`` is compared with ``|sum(s * d)|`` over random signs ``s``. For n <= 16 all 2**n
    sign vectors are enumerated (exact p; note that n <= 5 can never reach p < 0.05). Larger n
    draws ``n_resamples`` sign vectors (seeded) and returns ``(k + 1) / (n_resamples + 1)``, k
    counting those at least as extreme — a valid (slightly conservative) p-value that is never 0.
    Ties (equal statistics up to float rounding) count as "at least as extreme".
    """
    diffs = np.asarray(d, dtype=float)
    n = diffs.size
    observed = abs(float(diffs.sum()))
    threshold = observed - _TIE_RTOL * float(np.abs(diffs).sum())
    if threshold <= 0:
        return 1.0
    total = float(diffs.sum())
    if n <= EXACT_MAX_N:
        codes = np.arange(1 << n, dtype=np.int64)
        bits = ((codes[:, None] >> np.arange(n)) & 1).astype(float)
        # sum(s * d) with s = 2 * bit - 1.
        stats = np.abs(2.0 * (bits @ diffs) - total)
        return float((stats >= threshold).sum() / stats.size)
    if n_resamples < 1:
        raise ConfigError(f"n_resamples must be >= 1, got {n_resamples!r}")
    rng = np.random.default_rng([seed, 0x5F1])
    width = (n + 7) // 8
    block = max(1, _MAX_BLOCK_BITS // (8 * width))
    extreme = 0
    for done in range(0, n_resamples, block):
        rows = min(block, n_resamples - done)
        raw = np.frombuffer(rng.bytes(rows * width), dtype=np.uint8).reshape(rows, width)
        bits = np.unpackbits(raw, axis=1)[:, :n].astype(float)
        extreme += int((np.abs(2.0 * (bits @ diffs) - total) >= threshold).sum())
    return (extreme + 1) / (n_resamples + 1)


def holm(p_values: Mapping[str, float], alpha: float = 0.05) -> dict[str, bool]:
    """Holm–Bonferroni step-down: which hypotheses are rejected at family-wise level ``alpha``.

    Sort the m p-values ascending; reject the i-th smallest (i = 1..m) while
    ``p(i) < alpha / (m - i + 1)`` and stop at the first that fails. Equivalently: rejected
    exactly when its :func:`holm_adjusted` p-value is below ``alpha`` (strict, like the verdict
    rule of :func:`paired`; the textbook ``<=`` differs only on exact ties).

    Why Holm: it controls the family-wise error rate (the chance of *any* false "better"/"worse"
    among, say, the scenarios of a metric) at ``alpha``; it is valid under any dependence between
    the tests (scenarios share a model and may overlap); and it rejects everything Bonferroni
    rejects and sometimes more (uniformly more powerful), with no extra assumption.
    """
    if not 0.0 < alpha < 1.0:
        raise ConfigError(f"alpha must be in (0, 1), got {alpha!r}")
    return {name: p < alpha for name, p in holm_adjusted(p_values).items()}


def holm_adjusted(p_values: Mapping[str, float]) -> dict[str, float]:
    """Holm-adjusted p-values, in the input's order: ``max over j <= i of (m - j + 1) * p(j)``.

    For the i-th smallest of m p-values, capped at 1 and made monotone (never smaller than an
    adjusted value of a smaller p). Compare each with the family-wise ``alpha`` directly. Raises
    :class:`ConfigError` for a p-value outside [0, 1] or NaN.
    """
    for name, p in p_values.items():
        if not 0.0 <= p <= 1.0:  # also catches NaN
            raise ConfigError(f"p-value of {name!r} must be in [0, 1], got {p!r}")
    m = len(p_values)
    order = sorted(p_values, key=lambda name: p_values[name])
    adjusted: dict[str, float] = {}
    running = 0.0
    for i, name in enumerate(order):
        running = max(running, min(1.0, (m - i) * p_values[name]))
        adjusted[name] = running
    return {name: adjusted[name] for name in p_values}


def ratio_summary(a_total: float, b_total: float, kind: str = "cost") -> str | None:
    """B against A on a lower-is-better axis, in plain words: "37% cheaper", "2.1× slower".

    ``kind`` picks the words: ``"cost"`` (cheaper / more expensive), ``"latency"``
    (faster / slower) or ``"tokens"`` (fewer / more tokens). Ratios of 2 or more read as "2.1×";
    smaller changes as whole percentages of A; under half a percent reads "about the same cost".
    None when ``a_total`` is 0 (or negative or not finite): there is no ratio to state.
    A point estimate of totals — pair it with :func:`paired` for whether it is detectable.
    """
    if kind not in RATIO_WORDS:
        raise ConfigError(f"kind must be one of {sorted(RATIO_WORDS)}, got {kind!r}")
    if not (math.isfinite(a_total) and math.isfinite(b_total)) or a_total <= 0:
        return None
    less, more, noun = RATIO_WORDS[kind]
    ratio = b_total / a_total
    if ratio >= 2.0:
        return f"{ratio:.1f}× {more}"
    percent = round(abs(1.0 - ratio) * 100)
    if percent == 0:
        return f"about the same {noun}"
    return f"{percent}% {less if ratio < 1.0 else more}"


def _validate(a: Sequence[float], b: Sequence[float], alpha: float, power: float,
              n_resamples: int) -> tuple[np.ndarray, np.ndarray]:
    try:
        xa, xb = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"scores must be numbers: {exc}") from exc
    if xa.ndim != 1 or xb.ndim != 1:
        raise ConfigError("scores must be flat sequences of numbers, one per case")
    if xa.size != xb.size:
        raise ConfigError(f"paired scores need the same cases in both runs: A has {xa.size} "
                          f"scores, B has {xb.size}")
    if xa.size == 0:
        raise ConfigError("no cases to compare: both runs need at least one scored case")
    if not (np.isfinite(xa).all() and np.isfinite(xb).all()):
        raise ConfigError("scores contain NaN or infinity: drop cases a run did not score first")
    if not 0.0 < alpha < 1.0 or not 0.0 < power < 1.0:
        raise ConfigError(f"alpha and power must be in (0, 1), got {alpha!r}, {power!r}")
    if n_resamples < 1:
        raise ConfigError(f"n_resamples must be >= 1, got {n_resamples!r}")
    return xa, xb
