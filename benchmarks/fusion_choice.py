"""Which fusion rule never loses to its own parts? Pooled over data sets and embedders.

Question answered: over every (data set, embedder) pair that ``benchmarks/ablation.py`` measured
(its JSON files), how far is each fusion rule above or below the better of its own lexical and
dense rankings (the *margin*, nDCG@10), on the tuning splits and on the test splits; which rule
a leave-one-dataset-out choice picks (best worst-case tuning margin on the other data sets, all
embedders pooled) and how that choice does on the held-out set's test split; and the paired
difference of the adaptive rule against the fixed convex w=0.5 per pair
(``domainrag.compare.paired_stats.paired``). Pairs where hybrid never used dense (the embedder
does not read the language) are left out: every rule equals lexical there.

Usage::

    python benchmarks/fusion_choice.py benchmarks/results/ablation_minilm.json \\
        benchmarks/results/ablation_multilingual*.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from retrieval import markdown_table, write_json  # noqa: E402

from domainrag.compare.paired_stats import paired  # noqa: E402

PARTS = ("lexical", "dense", "naive rrf")


def entries(paths: list[Path]) -> list[dict[str, Any]]:
    """One entry per (data set, embedder, subsample, split) where hybrid used dense."""
    out = []
    for path in paths:
        payload = json.loads(path.read_text(encoding="utf-8"))
        for r in payload["datasets"]:
            for split, e in r["contexts"]["headings"].items():
                if split not in ("tune", "test") or e["without_dense"] >= e["queries"]:
                    continue
                out.append({"dataset": r["dataset"], "embedder": payload["embedder"], "subset": r["subset"],
                            "split": split, "n": e["queries"], "ndcg@10": e["ndcg@10"],
                            "per_query": e["per_query"]})
    return out


def margin(m: dict[str, float], rule: str) -> float:
    return m[rule] - max(m["lexical"], m["dense"])


def leave_one_out(found: list[dict[str, Any]], rules: list[str]) -> list[list[str]]:
    """Per data set: the rule with the best worst-case margin (then mean) on the other sets'
    tuning splits, and its margin on each test split of the held-out set."""
    rows = []
    for held in sorted({e["dataset"] for e in found}):
        others = [e for e in found if e["split"] == "tune" and e["dataset"] != held]
        tests = [e for e in found if e["split"] == "test" and e["dataset"] == held]
        if not others or not tests:
            continue
        rule = max(rules, key=lambda r: (min(margin(e["ndcg@10"], r) for e in others),
                                         float(np.mean([e["ndcg@10"][r] for e in others]))))
        rows.append([held, rule, "; ".join(f"{e['embedder']} n={e['n']}: {margin(e['ndcg@10'], rule):+.3f}"
                                           for e in tests)])
    return rows


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("results", nargs="+", type=Path)
    p.add_argument("--json", type=Path, default=Path("benchmarks/results/fusion_choice.json"))
    args = p.parse_args(argv)
    found = entries(args.results)
    rules = [k for k in found[0]["ndcg@10"] if k not in PARTS]
    rows = []
    for e in found:
        rows.append([e["dataset"], e["embedder"], e["split"], e["n"], e["ndcg@10"]["lexical"], e["ndcg@10"]["dense"],
                     *(f"{margin(e['ndcg@10'], r):+.3f}" for r in rules)])
    margins = markdown_table(["set", "embedder", "split", "n", "BM25", "dense", *rules], rows)
    worst = {split: {r: min(margin(e["ndcg@10"], r) for e in found if e["split"] == split) for r in rules}
             for split in ("tune", "test")}
    summary = markdown_table(["rule", "worst tune margin", "worst test margin"],
                             [[r, f"{worst['tune'][r]:+.3f}", f"{worst['test'][r]:+.3f}"] for r in rules])
    loo_table = markdown_table(["held-out set", "rule chosen on the others' tuning splits", "its test margin"],
                               leave_one_out(found, rules))
    per_embedder = markdown_table(["embedder", "held-out set", "rule chosen on the others' tuning splits",
                                   "its test margin"],
                                  [[name, *row] for name in sorted({e["embedder"] for e in found})
                                   for row in leave_one_out([e for e in found if e["embedder"] == name], rules)])
    pair_rows = []
    for e in found:
        qids = sorted(e["per_query"])
        r = paired([e["per_query"][q]["convex w=0.5"] for q in qids], [e["per_query"][q]["adaptive"] for q in qids])
        ci = r.ci or (0.0, 0.0)
        pair_rows.append([e["dataset"], e["embedder"], e["split"], e["n"], f"{r.delta:+.4f}",
                          f"[{ci[0]:+.4f}, {ci[1]:+.4f}]", f"{r.p:.3f}"])
    pairs = markdown_table(["set", "embedder", "split", "n", "Δ adaptive − convex 0.5", "95% CI", "p"], pair_rows)
    for block in (margins, summary, loo_table, per_embedder, pairs):
        print(block, end="\n\n")
    write_json(args.json, {"date": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "inputs": [str(x) for x in args.results],
                           "margins": margins, "worst": worst, "leave_one_dataset_out": loo_table,
                           "leave_one_dataset_out_per_embedder": per_embedder,
                           "adaptive_vs_convex": pairs})


if __name__ == "__main__":
    main()
