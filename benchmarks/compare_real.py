"""Lexical vs hybrid retrieval on real datasets, judged by ``domainrag compare``.

Question answered: on real data, does the comparison's verdict agree with the retrieval
benchmark (§1 of RESULTS.md: hybrid beats lexical on the English sets, equals it on the Chinese
ones, where the bundled embedder does not read the language and hybrid falls back to lexical)?

For each dataset with a cached MiniLM knowledge base (``benchmarks/.cache/<name>-minilm``,
built by ``retrieval.py``), two retrieval-only runs of the test split (first ``--limit`` cases)
— ``--mode lexical`` and ``--mode hybrid`` — are stored in a temporary run store and compared
(A = lexical, B = hybrid) with ``compare_runs``.

Usage::

    python benchmarks/compare_real.py ../shared/data/medquad ../shared/data/tatqa \\
        ../shared/data/lecoqa ../shared/data/cmrc2018 --limit 1000
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from retrieval import machine, markdown_table, write_json  # noqa: E402

from domainrag import KnowledgeBase  # noqa: E402
from domainrag.compare.compare import compare_runs  # noqa: E402
from domainrag.evaluate.runner import EvalOptions, run_suite  # noqa: E402
from domainrag.evaluate.runs import RunStore  # noqa: E402
from domainrag.evaluate.suite import load_suite  # noqa: E402

METRICS = ("ndcg@10", "recall@10", "mrr@10")


def compare_dataset(dataset: Path, args: argparse.Namespace) -> dict[str, Any] | None:
    kb_dir = args.cache / f"{dataset.name}-minilm"
    if not (kb_dir / "catalog.sqlite3").exists():
        print(f"skip {dataset.name}: no cached knowledge base at {kb_dir}", file=sys.stderr)
        return None
    suite = load_suite(dataset, "test")
    started = time.perf_counter()
    with KnowledgeBase.open(kb_dir) as kb, tempfile.TemporaryDirectory() as tmp:
        store = RunStore(tmp)
        runs = {mode: run_suite(kb, suite, EvalOptions(mode=mode, limit=args.limit, name=mode), store)
                for mode in ("lexical", "hybrid")}
        store.close()
    report = compare_runs(runs["lexical"], runs["hybrid"])
    return {"dataset": dataset.name, "cases": report.cases.common,
            "seconds": round(time.perf_counter() - started, 1),
            "metrics": {m: report.metrics[m].to_dict() for m in METRICS if m in report.metrics}}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("data_dirs", nargs="+", type=Path)
    p.add_argument("--limit", type=int, default=1000)
    p.add_argument("--cache", type=Path, default=Path("benchmarks/.cache"))
    p.add_argument("--json", type=Path, default=Path("benchmarks/results/compare_real.json"))
    args = p.parse_args(argv)
    results = [r for d in args.data_dirs if (r := compare_dataset(d, args))]
    rows = [[r["dataset"], r["cases"], m, f"{v['a']:.3f}", f"{v['b']:.3f}", f"{v['delta']:+.3f}",
             f"[{v['ci'][0]:+.3f}, {v['ci'][1]:+.3f}]" if v["ci"] else "—", f"{v['p']:.2g}",
             "—" if v["mde"] is None else f"{v['mde']:.3f}", v["verdict"]]
            for r in results for m, v in r["metrics"].items()]
    table = markdown_table(["dataset", "n", "metric", "lexical", "hybrid", "Δ", "95% CI", "p", "MDE",
                            "verdict"], rows)
    print(table)
    write_json(args.json, {"command": " ".join(sys.argv), "machine": machine(), "limit": args.limit,
                           "results": results, "table": table})


if __name__ == "__main__":
    main()
