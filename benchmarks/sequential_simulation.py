"""Simulation of ``--adaptive`` comparisons: does stopping early reach the full run's verdict?

Target (from the issue): "Sequential mode reaches the same verdict as the full run in >= 95% of
simulations while judging on average >= 2x fewer cases".

Each simulation builds a suite of ``--n`` (200, 1000 and 5000) cases with per-case scores for run A and run B:

* ``binary`` — pass/fail: true pass ~ Bernoulli(0.6), each run flips it with probability 0.1;
  B's effect: each observed failure of B (or pass, for a negative effect) flips with the
  probability that moves the expected mean by the effect. Deltas in {-1, 0, 1}, mostly 0.
* ``beta(2,2)`` — graded scores: true ~ Beta(2, 2), each run observes
  ``clip(true + N(0, 0.1), 0, 1)``; B adds the effect before clipping (clipping shrinks it a
  little; the table reports the realised mean delta).
* ``mostly-zeros`` — retrieval-like: true 0 for 60% of cases, Beta(2, 2) otherwise; a run keeps
  the true score for 60% of cases and draws ``clip(true + N(0, 0.2), 0, 1)`` for the rest; B's
  effect is added (scaled by 1/0.4) only to its re-drawn cases. Many exact-zero deltas.

Planted effects (expected mean delta): 0 (none), +0.02 (small), +0.05 (medium), +0.10 (large),
and -0.05 (medium, worse).

* **Full run**: :func:`domainrag.compare.paired_stats.paired` on all N cases at alpha 0.05
  (``n_resamples=1000``, ``ci=False``) gives the reference verdict.
* **Sequential**: the cases in a random order fed to
  :class:`domainrag.compare.sequential.SequentialTest` (the real class, case by case) at alpha
  0.05, ``min_cases=20``, ``total=N``, stopping at the first decision, under several rules
  (``--rules``): ``futility=0.05`` (the default of ``--adaptive``: betting test for
  better/worse, futility stop for "no detectable difference"), ``futility=0.1``, ``betting``
  (no futility: only better/worse can stop a run early) and ``margin=0.02`` (betting test plus
  the equivalence stop, no futility).
* **Scoring**: a sequential run still undecided after all N cases falls back to the full-run
  test on all cases — so its verdict is the full run's by construction, and it costs N cases. A
  run that decided early scores "same" when its verdict equals the full run's. Reported per
  effect (pooled over shapes) and overall: same-verdict rate, the share of runs the sequential
  test called better/worse (under "none": its false positives), mean cases judged, savings
  factor N / mean cases, the share decided early.

Usage::

    python benchmarks/sequential_simulation.py [--reps 150] [--n 200 1000 5000]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # one BLAS thread: the machine is shared

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))

from retrieval import machine, markdown_table, write_json

from domainrag.compare.paired_stats import paired
from domainrag.compare.sequential import SequentialTest

EFFECTS = {"none": 0.0, "small": 0.02, "medium": 0.05, "large": 0.10, "medium-worse": -0.05}
SHAPES = ("binary", "beta(2,2)", "mostly-zeros")


def simulate(shape: str, effect: float, n: int, rng: np.random.Generator
             ) -> tuple[np.ndarray, np.ndarray]:
    """Scores of run A and run B for one suite of ``n`` cases."""
    if shape == "binary":
        true = rng.random(n) < 0.6
        a = true ^ (rng.random(n) < 0.1)
        b = true ^ (rng.random(n) < 0.1)
        p_fail = 0.6 * 0.1 + 0.4 * 0.9
        if effect > 0:
            b = b | (~b & (rng.random(n) < effect / p_fail))
        elif effect < 0:
            b = b & ~(rng.random(n) < -effect / (1 - p_fail))
        return a.astype(float), b.astype(float)
    if shape == "beta(2,2)":
        true = rng.beta(2, 2, n)
        a = np.clip(true + rng.normal(0, 0.1, n), 0, 1)
        b = np.clip(true + rng.normal(0, 0.1, n) + effect, 0, 1)
        return a, b
    true = np.where(rng.random(n) < 0.6, 0.0, rng.beta(2, 2, n))
    redraw_a, redraw_b = rng.random(n) >= 0.6, rng.random(n) >= 0.6
    a = np.where(redraw_a, np.clip(true + rng.normal(0, 0.2, n), 0, 1), true)
    b = np.where(redraw_b, np.clip(true + rng.normal(0, 0.2, n) + effect / 0.4, 0, 1), true)
    return a, b


RULES = {
    "futility=0.05": {"futility": 0.05},
    "futility=0.1": {"futility": 0.1},
    "betting": {"futility": None},
    "margin=0.02": {"futility": None, "margin": 0.02},
}


def sequential_verdict(d: np.ndarray, alpha: float, min_cases: int, rule: dict[str, Any]
                       ) -> tuple[str, int]:
    """First decision of :class:`SequentialTest` fed ``d`` case by case."""
    test = SequentialTest(alpha=alpha, min_cases=min_cases, total=d.size,
                          equivalence_margin=rule.get("margin"), futility=rule["futility"])
    for value in d:
        test.update(float(value))
        if test.decided:
            break
    return test.verdict, test.n


def summarise(rows: list[dict[str, Any]], n: int) -> dict[str, Any]:
    early = [r for r in rows if r["seq"] != "undecided"]
    mean_used = float(np.mean([r["used"] for r in rows]))
    return {
        "sims": len(rows),
        "realised_delta": float(np.mean([r["delta"] for r in rows])),
        "full_significant": float(np.mean([r["full"] != "no detectable difference"
                                           for r in rows])),
        "seq_significant": float(np.mean([r["seq"] in ("better", "worse") for r in rows])),
        "same_verdict": float(np.mean([r["same"] for r in rows])),
        "mean_cases": mean_used,
        "savings": n / mean_used,
        "decided_early": len(early) / len(rows),
        "agree_when_early": (float(np.mean([r["same"] for r in early])) if early else None),
    }


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--reps", type=int, default=150, help="simulations per shape and effect")
    p.add_argument("--n", type=int, nargs="+", default=[200, 1000, 5000], help="cases per suite")
    p.add_argument("--alpha", type=float, default=0.05)
    p.add_argument("--min-cases", type=int, default=20)
    p.add_argument("--rules", nargs="+", default=list(RULES), choices=list(RULES))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path,
                   default=Path(__file__).parent / "results" / "sequential_simulation.json")
    args = p.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    started = time.perf_counter()
    results: dict[str, Any] = {}
    header = ["effect", "mean Δ", "full run significant", "sequential significant",
              "same verdict", "mean cases", "savings ×", "decided early"]

    def line(label: str, s: dict[str, Any]) -> list[Any]:
        return [label, f"{s['realised_delta']:+.3f}", f"{s['full_significant']:.3f}",
                f"{s['seq_significant']:.3f}", f"{s['same_verdict']:.3f}",
                f"{s['mean_cases']:.0f}", f"{s['savings']:.2f}", f"{s['decided_early']:.3f}"]

    for n in args.n:
        rows: dict[str, list[dict[str, Any]]] = {r: [] for r in args.rules}
        for effect_name, effect in EFFECTS.items():
            for shape in SHAPES:
                for rep in range(args.reps):
                    a, b = simulate(shape, effect, n, rng)
                    full = paired(a, b, alpha=args.alpha, n_resamples=1000, seed=rep,
                                  ci=False).verdict
                    d = (b - a)[rng.permutation(n)]
                    for rule in args.rules:
                        seq, used = sequential_verdict(d, args.alpha, args.min_cases, RULES[rule])
                        same = True if seq == "undecided" else seq == full
                        rows[rule].append({"effect": effect_name, "shape": shape, "full": full,
                                           "seq": seq, "used": used, "same": same,
                                           "delta": float(d.mean())})
        results[str(n)] = {}
        for rule in args.rules:
            by_effect = {name: summarise([r for r in rows[rule] if r["effect"] == name], n)
                         for name in EFFECTS}
            by_cell = {f"{name}/{shape}": summarise([r for r in rows[rule] if r["effect"] == name
                                                     and r["shape"] == shape], n)
                       for name in EFFECTS for shape in SHAPES}
            overall = summarise(rows[rule], n)
            results[str(n)][rule] = {"by_effect": by_effect, "by_cell": by_cell,
                                     "overall": overall}
            print(f"\n### N={n}, rule {rule} (alpha={args.alpha}, {args.reps} sims per shape × "
                  "effect)\n")
            print(markdown_table(header, [line(k, v) for k, v in by_effect.items()]
                                 + [line("**overall**", overall)]))
            if rule == args.rules[0]:
                print("\nper shape:\n")
                print(markdown_table(header, [line(k, v) for k, v in by_cell.items()]))
    elapsed = time.perf_counter() - started
    print(f"\n{elapsed:.1f} s")
    write_json(args.out, {"config": {k: (str(v) if isinstance(v, Path) else v)
                                     for k, v in vars(args).items()},
                          "effects": EFFECTS, "shapes": list(SHAPES), "rules": RULES,
                          "seconds": elapsed, "machine": machine(), "results": results})


if __name__ == "__main__":
    main()
