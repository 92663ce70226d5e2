"""Ablation of issue 12 items 3 and 4: contextual chunks and adaptive fusion, alone and together.

Question answered: on each shared set, what does each component add to hybrid retrieval over
today's default (chunks indexed with title and heading path, convex fusion with dense weight
0.5), paired per query with our own statistics (``domainrag.compare.paired_stats.paired``), and
does hybrid ever fall more than 0.005 nDCG@10 below the better of its own lexical and dense
rankings?

Variants (document-level nDCG@10, the same queries and corpus for each):

* **baseline** — ``chunking.context = "headings"``, ``retrieval.fusion = "convex"`` (w = 0.5);
* **+context** — ``chunking.context = "full"`` (file name, table caption and header row, filing
  company and period; see ``domainrag.ingest.context``), convex 0.5;
* **+fusion** — ``"headings"``, the fusion rule ``--new-rule`` (default ``adaptive``:
  ``retrieval.fusion = "adaptive"``; ``"convex w=0.7"`` for the embedder weight of e5);
* **both** — ``"full"`` and that rule;

plus the plain baselines of the issue: BM25 (lexical), dense alone, naive RRF (k = 60).
Every fusion rule in :data:`RULES` is scored on the tuning split (dev/validation/train, where the
set has one) and on the test split, and a leave-one-dataset-out choice among them is reported:
for each set, the rule with the best worst-case margin on the *other* sets' tuning splits.

Subsample (seed 0): ``--queries`` queries of each split that have a relevant document; the
corpus is every document relevant to them plus random others up to ``--docs`` documents. The
subsets and knowledge bases are cached under ``--cache`` (git-ignored); the ``full``-context
knowledge base starts as a copy of the baseline one and is re-indexed, so only the chunks whose
indexed text changed are embedded again. Candidates (100 chunks per retriever) are cached too.

Usage::

    python benchmarks/ablation.py ../shared/data/* --embedder minilm --queries 300 --docs 3000
    python benchmarks/ablation.py ../shared/data/* --embedder multilingual --queries 100 --docs 400
"""

from __future__ import annotations

import argparse
import json
import pickle
import random
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from retrieval import machine, markdown_table  # noqa: E402

from domainrag.compare.paired_stats import paired  # noqa: E402
from domainrag.evaluate.beir_qrels import load_beir_qrels, load_beir_queries, qrels_path, qrels_splits  # noqa: E402
from domainrag.evaluate.metrics import dedupe, ndcg_at_k  # noqa: E402
from domainrag.index.ranked import Ranked  # noqa: E402
from domainrag.retrieve.fusion import fuse  # noqa: E402

TUNE_SPLITS = ("dev", "validation", "train")
CONTEXTS = ("headings", "full")
DEPTH = 100
MARGIN = 0.005


# --- subsample --------------------------------------------------------------------------------


def splits_of(dataset: Path) -> dict[str, str]:
    """``{"test": "test", "tune": <first tuning split>}`` as far as the set has them."""
    found = qrels_splits(dataset)
    out = {"test": "test"} if "test" in found else {}
    tune = next((s for s in TUNE_SPLITS if s in found), None)
    if tune:
        out["tune"] = tune
    return out


def subsample(dataset: Path, out: Path, n_queries: int, n_docs: int, seed: int = 0) -> Path:
    """A BEIR folder with up to ``n_queries`` queries per split (``qrels/test.tsv``,
    ``qrels/tune.tsv``), every document relevant to them and random others up to ``n_docs``."""
    target = out / f"{dataset.name}-q{n_queries}-d{n_docs}-s{seed}"
    if (target / "corpus.jsonl").exists():
        return target
    queries = load_beir_queries(dataset / "queries.jsonl")
    rng = random.Random(seed)
    chosen: dict[str, dict[str, dict[str, int]]] = {}
    for name, split in splits_of(dataset).items():
        qrels = load_beir_qrels(qrels_path(dataset, split))
        qids = sorted(q for q, j in qrels.items() if q in queries and any(g >= 1 for g in j.values()))
        if len(qids) > n_queries:
            qids = sorted(rng.sample(qids, n_queries))
        chosen[name] = {q: qrels[q] for q in qids}
    relevant = {d for split in chosen.values() for j in split.values() for d, g in j.items() if g >= 1}
    lines = (dataset / "corpus.jsonl").read_text(encoding="utf-8").splitlines()
    docs = {json.loads(line)["_id"]: line for line in lines if line.strip()}
    others = sorted(set(docs) - relevant)
    extra = rng.sample(others, max(0, min(len(others), n_docs - len(relevant))))
    keep = sorted((relevant & set(docs)) | set(extra))
    (target / "qrels").mkdir(parents=True, exist_ok=True)
    (target / "corpus.jsonl").write_text("".join(docs[d] + "\n" for d in keep), encoding="utf-8")
    qids = sorted({q for split in chosen.values() for q in split})
    (target / "queries.jsonl").write_text(
        "".join(json.dumps({"_id": q, "text": queries[q]}, ensure_ascii=False) + "\n" for q in qids),
        encoding="utf-8")
    for name, split in chosen.items():
        rows = [f"{q}\t{d}\t{g}" for q, j in split.items() for d, g in sorted(j.items()) if d in docs]
        (target / "qrels" / f"{name}.tsv").write_text("query-id\tcorpus-id\tscore\n" + "\n".join(rows) + "\n",
                                                      encoding="utf-8")
    return target


# --- knowledge bases and candidates -------------------------------------------------------------


def kb_path(cache: Path, subset: Path, embedder: str, context: str) -> Path:
    return cache / "kb" / f"{subset.name}-{embedder}-{context}".replace(":", "_").replace("/", "_")


def open_kb(cache: Path, subset: Path, embedder: str, context: str) -> tuple[Any, dict[str, Any]]:
    """The knowledge base of ``subset`` indexed with ``context``. A new one starts as a copy of a
    cached one of the same set and embedder (another context or subsample) and is re-indexed, so
    that its embedding cache spares the chunks whose indexed text is unchanged."""
    from domainrag import KnowledgeBase

    path = kb_path(cache, subset, embedder, context)
    overrides = {"embedder.model": embedder, "chunking.context": context}
    existed = (path / "catalog.sqlite3").exists()
    seed = None if existed else _seed(cache, subset, embedder, context)
    if seed is not None:
        shutil.rmtree(path, ignore_errors=True)
        shutil.copytree(seed, path)
    kb = KnowledgeBase.open(path, create=True, overrides=overrides)
    t0 = time.perf_counter()
    report = kb.ingest([subset], format="beir", reindex=seed is not None)
    seconds = time.perf_counter() - t0
    facts = {"reused": existed, "seeded_from": seed.name if seed else None, "ingest_s": round(seconds, 2),
             "chunks": int(kb.status()["chunks"]), "embedded": report.embedded, "failed": len(report.failed)}
    return kb, facts


def _seed(cache: Path, subset: Path, embedder: str, context: str) -> Path | None:
    """A complete cached knowledge base of the same data set and embedder to start from: the
    ``headings`` one of this subsample for another context, else the largest of another subsample."""
    if context != "headings":
        base, _ = open_kb(cache, subset, embedder, "headings")
        base.close()
        return kb_path(cache, subset, embedder, "headings")
    dataset = subset.name.split("-q")[0]
    tail = f"-{embedder}-headings".replace(":", "_").replace("/", "_")
    found = [p for p in (cache / "kb").glob(f"{dataset}-q*{tail}") if p.name != kb_path(cache, subset, embedder,
             context).name and (cache / "cand" / f"{p.name}.pkl").exists()]
    return max(found, key=lambda p: (p / "catalog.sqlite3").stat().st_size, default=None)


def collect(kb: Any, subset: Path, split: str) -> dict[str, Any]:
    """Per query: lexical and dense candidates as (doc ids, scores), and whether hybrid uses dense
    (the embedder covers the query's language)."""
    queries = load_beir_queries(subset / "queries.jsonl")
    qrels = load_beir_qrels(subset / "qrels" / f"{split}.tsv")
    out: dict[str, Any] = {}
    for qid in sorted(qrels):
        cand = kb.retriever.candidates(queries[qid], n=DEPTH)
        dense = cand.dense
        if dense is None:   # what kb.search(mode="dense") returns
            dense = kb.retriever.store.view().dense(kb.embedder.embed_query(queries[qid]), DEPTH, None)
        out[qid] = {
            "lexical": (cand.lexical.rows, cand.lexical.scores),
            "dense": (dense.rows, dense.scores),
            "covered": cand.dense is not None,
            "language": cand.language,
        }
    rows = np.unique(np.concatenate([np.concatenate([c["lexical"][0], c["dense"][0]]) for c in out.values()]))
    ids = dict(zip(rows.tolist(), kb.retriever.store.view().doc_ids(rows), strict=True)) if len(rows) else {}
    return {"queries": out, "doc_ids": ids, "qrels": qrels}


def candidates(cache: Path, subset: Path, embedder: str, context: str, splits: Sequence[str]
               ) -> tuple[dict[str, Any], dict[str, Any]]:
    path = cache / "cand" / f"{subset.name}-{embedder}-{context}.pkl".replace(":", "_")
    if path.exists():
        data: dict[str, Any] = pickle.loads(path.read_bytes())
        return data["splits"], data["facts"]
    kb, facts = open_kb(cache, subset, embedder, context)
    t0 = time.perf_counter()
    found = {s: collect(kb, subset, s) for s in splits}
    facts["candidates_s"] = round(time.perf_counter() - t0, 2)
    kb.close()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pickle.dumps({"splits": found, "facts": facts}))
    return found, facts


# --- fusion rules ---------------------------------------------------------------------------------

Rule = Callable[[Ranked, Ranked | None], Ranked]


def _rule(method: str, **kw: Any) -> Rule:
    return lambda lexical, dense: fuse(lexical, dense, method=method, **kw)


RULES: dict[str, Rule] = {
    **{f"convex w={w}": _rule("convex", dense_weight=w) for w in (0.3, 0.4, 0.5, 0.6, 0.7)},
    "rrf k=60": _rule("rrf", rrf_k=60),
    "adaptive": _rule("adaptive"),
}
BASELINE_RULE = "convex w=0.5"


def ranking(ranked: Ranked, ids: dict[int, str]) -> list[str]:
    return dedupe(ids[int(r)] for r in ranked.rows)


def score_rules(split: dict[str, Any], rules: dict[str, Rule]) -> dict[str, dict[str, float]]:
    """Per-query nDCG@10 of lexical, dense, naive RRF and each fusion rule."""
    ids, qrels = split["doc_ids"], split["qrels"]
    out: dict[str, dict[str, float]] = {}
    for qid, c in split["queries"].items():
        lexical, dense = Ranked(*c["lexical"]), Ranked(*c["dense"])
        used = dense if c["covered"] else None
        runs = {"lexical": lexical, "dense": dense, "naive rrf": fuse(lexical, dense, method="rrf", rrf_k=60)}
        runs.update({name: rule(lexical, used) for name, rule in rules.items()})
        out[qid] = {name: round(ndcg_at_k(ranking(r, ids), qrels[qid], 10), 4) for name, r in runs.items()}
    return out


def means(per_query: dict[str, dict[str, float]]) -> dict[str, float]:
    names = next(iter(per_query.values())).keys() if per_query else []
    return {n: round(float(np.mean([q[n] for q in per_query.values()])), 4) for n in names}


def margin(m: dict[str, float], rule: str) -> float:
    """How far ``rule`` is above (or below) the better of lexical and dense."""
    return round(m[rule] - max(m["lexical"], m["dense"]), 4)


def paired_summary(per_query: dict[str, dict[str, float]], a: str, b: str) -> dict[str, Any]:
    qids = sorted(per_query)
    r = paired([per_query[q][a] for q in qids], [per_query[q][b] for q in qids])
    return {"delta": round(r.delta, 4), "ci": [round(x, 4) for x in (r.ci or (0.0, 0.0))],
            "p": round(r.p, 4), "verdict": r.verdict}


def leave_one_out(tune: dict[str, dict[str, float]], rules: Sequence[str]) -> dict[str, str]:
    """For each set, the rule with the best worst-case margin over its own parts (then best
    mean) on the other sets' tuning splits."""
    chosen = {}
    for held in tune:
        others = [m for name, m in tune.items() if name != held]
        if not others:
            continue
        chosen[held] = max(rules, key=lambda r: (min(margin(m, r) for m in others),
                                                 float(np.mean([m[r] for m in others]))))
    return chosen


# --- main -------------------------------------------------------------------------------------------


def evaluate_set(dataset: Path, args: argparse.Namespace) -> dict[str, Any]:
    subset = subsample(dataset, args.cache / "subsets", args.queries, args.docs)
    splits = sorted(p.stem for p in (subset / "qrels").glob("*.tsv"))
    result: dict[str, Any] = {"dataset": dataset.name, "subset": subset.name,
                              "docs": sum(1 for _ in (subset / "corpus.jsonl").open(encoding="utf-8")),
                              "tune_split": splits_of(dataset).get("tune"), "contexts": {}}
    for context in args.contexts:
        found, facts = candidates(args.cache, subset, args.embedder, context, splits)
        entry: dict[str, Any] = {"kb": facts}
        for split, data in found.items():
            pq = score_rules(data, RULES)
            entry[split] = {"queries": len(pq), "ndcg@10": means(pq),
                            "without_dense": sum(1 for c in data["queries"].values() if not c["covered"]),
                            "per_query": pq}
        result["contexts"][context] = entry
    return result


def ablation(result: dict[str, Any], split: str, new_rule: str) -> dict[str, Any]:
    """The four variants on ``split`` with paired statistics against the baseline."""
    base = result["contexts"]["headings"].get(split)
    full = result["contexts"].get("full", {}).get(split)
    if base is None:
        return {}
    qids = sorted(base["per_query"])
    joined: dict[str, dict[str, float]] = {q: {"baseline": base["per_query"][q][BASELINE_RULE],
                                               "+fusion": base["per_query"][q][new_rule]} for q in qids}
    variants = ["+fusion"]
    if full is not None:
        for q in qids:
            joined[q]["+context"] = full["per_query"][q][BASELINE_RULE]
            joined[q]["both"] = full["per_query"][q][new_rule]
        variants = ["+context", "+fusion", "both"]
    bare = result["contexts"].get("none", {}).get(split)
    if bare is not None:   # what the title and heading path, already in the baseline, are worth
        for q in qids:
            joined[q]["no context"] = bare["per_query"][q][BASELINE_RULE]
        variants.append("no context")
    out = {"ndcg@10": means(joined)}
    out["paired"] = {v: paired_summary(joined, "baseline", v) for v in variants}
    for name, entry in (("headings", base), ("full", full)):
        if entry is None:
            continue
        m = entry["ndcg@10"]
        out[f"parts_{name}"] = {"lexical": m["lexical"], "dense": m["dense"], "naive rrf": m["naive rrf"]}
        out[f"margin_{name}"] = {r: margin(m, r) for r in RULES}
    return out


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("data_dirs", nargs="+", type=Path, metavar="DATA_DIR")
    p.add_argument("--embedder", default="minilm")
    p.add_argument("--queries", type=int, default=300, help="queries per split (seed 0)")
    p.add_argument("--docs", type=int, default=3000, help="corpus size of each subsample")
    p.add_argument("--cache", type=Path, default=Path("benchmarks/.cache/ablation"))
    p.add_argument("--json", type=Path, default=None, help="default benchmarks/results/ablation_<embedder>.json")
    p.add_argument("--contexts", type=lambda v: v.split(","), default=list(CONTEXTS),
                   help="chunking.context values to index with (headings,full; add none for the chunk text alone)")
    p.add_argument("--new-rule", default="adaptive", choices=list(RULES),
                   help="the fusion rule of the '+fusion' variant (default: adaptive)")
    p.add_argument("--collect-only", action="store_true", help="build the knowledge bases and candidates only")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.collect_only:
        for d in args.data_dirs:
            subset = subsample(d, args.cache / "subsets", args.queries, args.docs)
            splits = sorted(p.stem for p in (subset / "qrels").glob("*.tsv"))
            for context in args.contexts:
                t0 = time.perf_counter()
                _, facts = candidates(args.cache, subset, args.embedder, context, splits)
                print(d.name, context, facts, f"{time.perf_counter() - t0:.1f} s", file=sys.stderr, flush=True)
        return
    results = []
    for d in args.data_dirs:
        print(f"== {d.name}", file=sys.stderr, flush=True)
        t0 = time.perf_counter()
        results.append(evaluate_set(d, args))
        print(f"   done in {time.perf_counter() - t0:.1f} s", file=sys.stderr, flush=True)
    tune = {r["dataset"]: r["contexts"]["headings"]["tune"]["ndcg@10"] for r in results
            if "tune" in r["contexts"]["headings"]   # sets where hybrid used dense somewhere
            and r["contexts"]["headings"]["tune"]["without_dense"] < r["contexts"]["headings"]["tune"]["queries"]}
    loo = leave_one_out(tune, list(RULES))
    rows = []
    variants = ["+context", "+fusion", "both"] + (["no context"] if "none" in args.contexts else [])
    for r in results:
        ab = ablation(r, "test", args.new_rule)
        r["ablation_test"] = ab
        r["ablation_tune"] = ablation(r, "tune", args.new_rule)
        r["loo_rule"] = loo.get(r["dataset"])
        base = r["contexts"]["headings"]["test"]
        m = ab["ndcg@10"]
        parts = ab["parts_headings"]
        rows.append([r["dataset"], base["queries"], parts["lexical"], parts["dense"], parts["naive rrf"],
                     m["baseline"], *(m.get(v, "") for v in variants),
                     *(f"{ab['paired'][v]['delta']:+.4f} [{ab['paired'][v]['ci'][0]:+.4f}, "
                       f"{ab['paired'][v]['ci'][1]:+.4f}]" if v in ab["paired"] else "" for v in variants)])
    header = ["set", "n", "BM25", "dense", "naive RRF", "baseline", *variants, *(f"Δ {v}" for v in variants)]
    table = markdown_table(header, rows)
    print(table)
    rule_rows = []
    for r in results:
        for split in ("tune", "test"):
            e = r["contexts"]["headings"].get(split)
            if e:
                rule_rows.append([r["dataset"], split, e["queries"], *(e["ndcg@10"][n] for n in
                                  ("lexical", "dense", "naive rrf", *RULES))])
    rules_table = markdown_table(["set", "split", "n", "BM25", "dense", "naive RRF", *RULES], rule_rows)
    print()
    print(rules_table)
    print("\nleave-one-dataset-out choice:", loo)
    payload = {"date": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "machine": machine(),
               "command": " ".join(["python", *sys.argv]), "embedder": args.embedder,
               "queries_per_split": args.queries, "docs": args.docs, "depth": DEPTH, "new_rule": args.new_rule,
               "table": table, "rules_table": rules_table, "leave_one_out": loo, "datasets": results}
    out = args.json or Path(f"benchmarks/results/ablation_{args.embedder.replace(':', '_')}.json")
    out.parent.mkdir(parents=True, exist_ok=True)   # compact: it holds every query's scores
    out.write_text(json.dumps(payload, ensure_ascii=False, separators=(",", ":")), encoding="utf-8")
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
