"""Choose the verifier's thresholds on the development pairs (never on test data, never ExpertQA).

For each threshold t on a grid: per dataset, the true-accept rate (supported pairs scored >= t)
and false-accept rate (unsupported pairs scored >= t); their macro averages over datasets. The
``general`` threshold maximises the macro balanced accuracy (TA + 1 - FA) / 2; the ``strict``
one (medical, finance, legal) is the lowest with macro FA <= --max-fa (default 0.10) — read off
the *worst* dataset too, which is printed.

    python tools/verifier_thresholds.py /work/data/split/dev_calib.jsonl [--folder build/verifier]
"""

from __future__ import annotations

import argparse
import json
import random
from collections import defaultdict
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dev", type=Path)
    parser.add_argument("--folder", type=Path, default=None, help="a verifier folder (default: the shipped one)")
    parser.add_argument("--limit", type=int, default=600, help="pairs per dataset (seeded sample)")
    parser.add_argument("--max-fa", type=float, default=0.10)
    args = parser.parse_args()
    if "expertqa" in str(args.dev).lower():
        raise SystemExit("ExpertQA is the held-out measure")
    from domainrag.models.verifier_onnx import SHIPPED_DIR, OnnxVerifier

    verifier = OnnxVerifier(args.folder or SHIPPED_DIR)
    by: dict[str, list[dict]] = defaultdict(list)
    with open(args.dev, encoding="utf-8") as f:
        for line in f:
            row = json.loads(line)
            by[row["source"]].append(row)
    rng = random.Random(7)
    scored = {}
    for name, rows in sorted(by.items()):
        rows = rng.sample(rows, min(args.limit, len(rows)))
        scores = verifier.score([(r["hypothesis"], r["premise"]) for r in rows])
        scored[name] = [(s, r["label"]) for s, r in zip(scores, rows, strict=True)]
    grid = [round(0.05 * i, 2) for i in range(1, 20)]
    table = []
    for t in grid:
        ta = {n: _rate(v, t, 1) for n, v in scored.items()}
        fa = {n: _rate(v, t, 0) for n, v in scored.items()}
        macro_ta, macro_fa = sum(ta.values()) / len(ta), sum(fa.values()) / len(fa)
        table.append({"t": t, "ta": round(macro_ta, 3), "fa": round(macro_fa, 3),
                      "balanced": round((macro_ta + 1 - macro_fa) / 2, 3), "worst_fa": round(max(fa.values()), 3)})
        print(f"t={t:.2f} TA {macro_ta:.3f} FA {macro_fa:.3f} balanced {(macro_ta + 1 - macro_fa) / 2:.3f} "
              f"worst FA {max(fa.values()):.3f}")
    general = max(table, key=lambda r: (r["balanced"], -r["t"]))
    strict = next((r for r in table if r["fa"] <= args.max_fa), table[-1])
    print(json.dumps({"general": general, "strict": strict, "verifier": verifier.id,
                      "datasets": {n: len(v) for n, v in scored.items()}}, indent=1))


def _rate(pairs: list[tuple[float, int]], t: float, label: int) -> float:
    chosen = [s for s, y in pairs if y == label]
    return sum(s >= t for s in chosen) / len(chosen) if chosen else 0.0


if __name__ == "__main__":
    main()
