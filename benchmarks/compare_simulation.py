"""Simulations of ``domainrag.compare.paired_stats.paired``: false positives, Holm, power at the MDE.

Question answered: when two runs are compared case by case, does ``paired`` call a difference
"better"/"worse" at most ``alpha`` of the time when there is none (overall, and across scenarios
with Holm's correction), and does it detect an effect the size of the minimum detectable effect
(MDE) it reports about ``power`` (80%) of the time?

Per-case scores come from four shapes of *true* per-case score, plus per-run noise drawn the same
way for both runs (so under H0 the two runs of a case are exchangeable):

* ``beta(2,2)`` — bell-shaped scores (e.g. a judge's 0-1 grade): true ~ Beta(2, 2), each run
  observes ``clip(true + N(0, 0.1), 0, 1)``;
* ``beta(0.5,0.5)`` — U-shaped (e.g. token F1: mostly right or wrong), same noise; clipping piles
  scores at 0 and 1, so many differences tie;
* ``mostly-zeros`` — retrieval-like (e.g. nDCG@10 of hard queries): true is 0 for 60% of cases,
  Beta(2, 2) otherwise; each run keeps the true score for 60% of cases (a configuration change
  leaves most rankings alone) and draws ``clip(true + N(0, 0.2), 0, 1)`` for the rest. Skewed,
  with many exactly-zero differences;
* ``binary p=0.6`` — pass/fail (e.g. exact match): true pass ~ Bernoulli(0.6), each run flips the
  outcome with probability 0.1 (McNemar's exact test).
* ``empirical`` (only with ``--scores FILE``, a JSON list of per-case scores in [0, 1] from a
  real run): true scores resampled from the file, noise as ``beta(2,2)``.

For each shape and n in ``--ns``:

* **A/A** (``--reps`` comparisons): both runs observe the same true scores with independent noise.
  Reported: the share called "better"/"worse" at ``alpha`` (should be <= alpha; 95% Wilson
  interval), and with the cases split into 5 equal scenarios, the family-wise rate of *any*
  scenario called significant, raw and after :func:`holm_adjusted` (Holm should be <= alpha).
* **MDE**: the MDE as a comparison *reports* it: the mean ``mde`` of ``paired`` over 200 pilot
  A/A samples (``mde_aa``; the range a single pilot gives is in the JSON, ``mde_pilot_range``),
  then re-read twice from 200 A/B samples with an effect of the current value planted (the
  fixed point: an effect can change the spread of the deltas — for pass/fail metrics it adds
  discordant pairs, so the MDE reported on an A/B comparison is larger than on an A/A one).
* **A/B at the MDE** (``--reps`` comparisons): B gets an effect whose *expected mean delta equals
  the MDE* — continuous: ``clip(observed + shift, 0, 1)`` with ``shift`` calibrated on 400,000
  simulated cases so that clipping does not shrink it; binary: each observed failure of B turns
  into a pass with the probability that raises the mean by the MDE. Reported: detection rate
  (verdict "better"), should be near ``power``.
* **CI ≡ verdict**: on the first ``--ci-reps`` A/B comparisons, the share where the bootstrap CI
  excluding 0 agrees with the test's verdict (the JSON counts each kind of disagreement).

Inside simulations ``paired`` runs with ``n_resamples=--n-resamples`` (default 1000) and
``ci=False`` (the p-value alone). Everything is seeded (``--seed``); each comparison's
resampling seed is drawn from the setting's generator, so no two comparisons share sign flips.

Usage::

    python benchmarks/compare_simulation.py
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # one BLAS thread: the machine is shared

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))

from retrieval import machine, markdown_table, write_json

from domainrag.compare.paired_stats import holm_adjusted, paired

SCENARIOS = 5
PILOTS = 200
CALIBRATION_CASES = 400_000
FIXED_POINT_ROUNDS = 2


# --- score models -----------------------------------------------------------------------------


class Shape:
    """True per-case scores and the per-run noise around them."""

    def __init__(self, name: str, truth: Callable[[np.random.Generator, int], np.ndarray],
                 observe: Callable[[np.random.Generator, np.ndarray], np.ndarray],
                 binary: bool = False) -> None:
        self.name, self.truth, self.observe, self.binary = name, truth, observe, binary

    def effect(self, rng: np.random.Generator, obs: np.ndarray, size: float) -> np.ndarray:
        """Observed scores of B with the planted effect ``size`` (a shift or an upgrade rate)."""
        if self.binary:
            return np.where((obs == 0) & (rng.random(obs.size) < size), 1.0, obs)
        return np.clip(obs + size, 0.0, 1.0)

    def calibrate(self, mde: float, seed: int) -> float:
        """The effect ``size`` whose expected mean delta (B - A) equals ``mde``."""
        rng = np.random.default_rng([seed, 99])
        obs = self.observe(rng, self.truth(rng, CALIBRATION_CASES))
        if self.binary:
            return min(1.0, mde / float((obs == 0).mean()))
        lo, hi = 0.0, 1.0
        for _ in range(50):
            mid = (lo + hi) / 2
            gain = float(np.clip(obs + mid, 0.0, 1.0).mean() - obs.mean())
            lo, hi = (mid, hi) if gain < mde else (lo, mid)
        return (lo + hi) / 2


def gaussian_noise(sd: float) -> Callable[[np.random.Generator, np.ndarray], np.ndarray]:
    def observe(rng: np.random.Generator, true: np.ndarray) -> np.ndarray:
        return np.clip(true + rng.normal(0.0, sd, true.size), 0.0, 1.0)
    return observe


def mostly_zeros_truth(rng: np.random.Generator, n: int) -> np.ndarray:
    return np.where(rng.random(n) < 0.6, 0.0, rng.beta(2, 2, n))


def mostly_zeros_observe(rng: np.random.Generator, true: np.ndarray) -> np.ndarray:
    moved = np.clip(true + rng.normal(0.0, 0.2, true.size), 0.0, 1.0)
    return np.where(rng.random(true.size) < 0.6, true, moved)


def binary_truth(rng: np.random.Generator, n: int) -> np.ndarray:
    return (rng.random(n) < 0.6).astype(float)


def binary_observe(rng: np.random.Generator, true: np.ndarray) -> np.ndarray:
    flip = rng.random(true.size) < 0.1
    return np.where(flip, 1.0 - true, true)


def shapes(scores: Path | None) -> list[Shape]:
    out = [
        Shape("beta(2,2)", lambda rng, n: rng.beta(2, 2, n), gaussian_noise(0.1)),
        Shape("beta(0.5,0.5)", lambda rng, n: rng.beta(0.5, 0.5, n), gaussian_noise(0.1)),
        Shape("mostly-zeros", mostly_zeros_truth, mostly_zeros_observe),
        Shape("binary p=0.6", binary_truth, binary_observe, binary=True),
    ]
    if scores is not None:
        pool = np.clip(np.asarray(json.loads(scores.read_text()), dtype=float), 0.0, 1.0)
        out.append(Shape("empirical", lambda rng, n: rng.choice(pool, n), gaussian_noise(0.1)))
    return out


# --- simulation -------------------------------------------------------------------------------


def wilson(k: int, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    """95% Wilson score interval of a binomial proportion k/n."""
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def rate(k: int, n: int) -> dict[str, float]:
    low, high = wilson(k, n)
    return {"rate": k / n, "low": low, "high": high, "k": k, "n": n}


def draw(rng: np.random.Generator) -> int:
    """A fresh seed for one comparison's resampling."""
    return int(rng.integers(2**62))


def simulate(shape: Shape, n: int, args: argparse.Namespace, seed: int) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    options = {"alpha": args.alpha, "power": args.power, "n_resamples": args.n_resamples,
               "binary": shape.binary}
    edges = np.linspace(0, n, SCENARIOS + 1).astype(int)
    started = time.perf_counter()

    # A/A: overall and per scenario (raw and Holm).
    significant = raw_any = holm_any = 0
    for _rep in range(args.reps):
        true = shape.truth(rng, n)
        a, b = shape.observe(rng, true), shape.observe(rng, true)
        significant += paired(a, b, seed=draw(rng), ci=False, **options).p < args.alpha
        ps = {f"s{i}": paired(a[lo:hi], b[lo:hi], seed=draw(rng), ci=False, **options).p
              for i, (lo, hi) in enumerate(itertools.pairwise(edges))}
        raw_any += min(ps.values()) < args.alpha
        holm_any += min(holm_adjusted(ps).values()) < args.alpha
    aa_seconds = time.perf_counter() - started

    # The MDE as a comparison reports it: A/A pilots give a first value; then B gets an effect
    # of that size and the MDE is re-read from A/B pilots, until it settles (an effect can
    # change the spread of the deltas — for pass/fail metrics it adds discordant pairs).
    def pilot_mdes(size: float | None) -> list[float]:
        values = []
        for _ in range(PILOTS):
            true = shape.truth(rng, n)
            b = shape.observe(rng, true)
            if size is not None:
                b = shape.effect(rng, b, size)
            values.append(paired(shape.observe(rng, true), b, seed=draw(rng), ci=False,
                                 **options).mde)
        return values

    pilots = pilot_mdes(None)
    mde_aa = mde = float(np.mean(pilots))
    for _ in range(FIXED_POINT_ROUNDS):
        mde = float(np.mean(pilot_mdes(shape.calibrate(mde, seed))))
    size = shape.calibrate(mde, seed)
    detected = 0
    deltas, ci_checked, ci_only, test_only = [], 0, 0, 0
    for rep in range(args.reps):
        true = shape.truth(rng, n)
        a = shape.observe(rng, true)
        b = shape.effect(rng, shape.observe(rng, true), size)
        with_ci = rep < args.ci_reps
        r = paired(a, b, seed=draw(rng), ci=with_ci, **options)
        detected += r.verdict == "better"
        deltas.append(r.delta)
        if with_ci:
            ci_checked += 1
            excludes_zero = r.ci[0] > 0 or r.ci[1] < 0
            significant_ab = r.verdict != "no detectable difference"
            ci_only += excludes_zero and not significant_ab
            test_only += significant_ab and not excludes_zero
    return {
        "shape": shape.name, "n": n, "test": "mcnemar" if shape.binary else "permutation",
        "aa_false_positive": rate(significant, args.reps),
        "scenario_fwer_raw": rate(raw_any, args.reps),
        "scenario_fwer_holm": rate(holm_any, args.reps),
        "mde": mde, "mde_aa": mde_aa,
        "mde_pilot_range": [float(min(pilots)), float(max(pilots))],
        "planted_size": size, "mean_realised_delta": float(np.mean(deltas)),
        "ab_power": rate(detected, args.reps),
        "ci_agrees_with_verdict": (rate(ci_checked - ci_only - test_only, ci_checked)
                                   if ci_checked else None),
        "ci_excludes_zero_test_not_significant": ci_only,
        "test_significant_ci_includes_zero": test_only,
        "seconds": round(time.perf_counter() - started, 1), "aa_seconds": round(aa_seconds, 1),
    }


def pct(r: dict[str, float]) -> str:
    return f"{100 * r['rate']:.1f}% [{100 * r['low']:.1f}, {100 * r['high']:.1f}]"


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--ns", type=int, nargs="+", default=[50, 200, 1000], help="cases per run")
    p.add_argument("--reps", type=int, default=1000, help="simulated comparisons per setting")
    p.add_argument("--ci-reps", type=int, default=200,
                   help="A/B comparisons per setting that also compute the bootstrap CI")
    p.add_argument("--n-resamples", type=int, default=1000, help="permutation/bootstrap draws")
    p.add_argument("--alpha", type=float, default=0.05)
    p.add_argument("--power", type=float, default=0.8)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--scores", type=Path, default=None,
                   help="optional JSON list of real per-case scores in [0, 1] (adds 'empirical')")
    p.add_argument("--json", type=Path,
                   default=Path("benchmarks/results/compare_simulation.json"))
    args = p.parse_args(argv)

    started = time.perf_counter()
    results = []
    for i, shape in enumerate(shapes(args.scores)):
        for n in args.ns:
            r = simulate(shape, n, args, seed=args.seed * 1000 + i * 100 + n)
            results.append(r)
            print(f"{shape.name} n={n}: A/A {pct(r['aa_false_positive'])}, "
                  f"power {pct(r['ab_power'])} ({r['seconds']} s)", file=sys.stderr)
    header = ["shape", "n", "test", "A/A significant [95% CI]", "5 scenarios: any raw",
              "5 scenarios: any after Holm", "MDE (A/A)", "MDE (A/B, reported)", "realised Δ", "power at MDE [95% CI]",
              "CI ≡ verdict"]
    rows = [[r["shape"], r["n"], r["test"], pct(r["aa_false_positive"]),
             f"{100 * r['scenario_fwer_raw']['rate']:.1f}%", pct(r["scenario_fwer_holm"]),
             f"{r['mde_aa']:.3f}", f"{r['mde']:.3f}", f"{r['mean_realised_delta']:.3f}",
             pct(r["ab_power"]),
             f"{100 * r['ci_agrees_with_verdict']['rate']:.0f}%"
             if r["ci_agrees_with_verdict"] else "-"] for r in results]
    table = markdown_table(header, rows)
    print(table)
    write_json(args.json, {
        "command": " ".join(sys.argv), "machine": machine(),
        "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "seconds": round(time.perf_counter() - started, 1), "results": results, "table": table})


if __name__ == "__main__":
    main()
