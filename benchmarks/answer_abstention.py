"""Answer abstention on BEIR folders: does ``kb.ask`` say "the documents do not answer" when they
do not, and answer when they do?

Question answered: for each dataset D, at each evidence threshold ``answer.min_evidence`` = t,
what share of D's own (answerable) questions does the offline answer pipeline answer, what share
of questions it cannot answer does it decline, and how often does an answer cite a relevant
document?

Protocol per dataset D (all of it seeded, ``--seed`` 0):

* **answerable**: up to ``--n`` queries of D's ``--split`` that have a relevant document
  (``retrieval.split_queries``: sampled to ``--n``);
* **unanswerable**: ``--n`` queries of the same split of the *other* datasets given that share D's
  language (detected from the questions: English or Chinese), split evenly between them. They ask
  about things D's corpus does not hold: cross-dataset questions, which are easier to reject than
  near-miss questions from D's own domain.
* **knowledge base**: D's corpus; when it has more than ``--docs`` documents, a sample of them:
  every document relevant (in qrels) to the answerable queries plus random others up to
  ``--docs``, written to ``--kb-cache/answer_abstention/<D>-sample-.../corpus.jsonl``. Only D's
  corpus is read, so no document of an unanswerable question's own dataset is ever added. The
  knowledge base is cached under ``--kb-cache/answer_abstention/`` (incremental re-use).
  Retrieval is **lexical** (BM25, ``retrieval.mode = "lexical"``) with the ``hash:256`` embedder
  (no neural model is loaded); the answerer is the offline ``extractive`` one (no model).

Each question goes once through ``kb.ask`` with ``answer.min_evidence = 0.0`` (the gate never
fires), recording ``trace["evidence"]`` and whether the pipeline abstained anyway (the extractive
answerer finding no sentence: ``no_evidence``; or no sources, failed citations). Because the gate
is applied before (and independent of) generation, the pipeline at threshold t abstains exactly
when ``evidence < t`` or it abstained at t = 0; every threshold is computed from that one run. A
check re-asks ``--check`` questions with the gate at 0.35 and compares (``gate_check`` in the JSON).

Reported per dataset and threshold: answer rate on answerable questions (1 - false abstention),
abstention rate on unanswerable ones, their mean (balanced accuracy), and among answered
answerable questions the share citing at least one document relevant in qrels. Also the
abstention at t = 0 (extractive answerer only), evidence quantiles on each side, and the ROC AUC
of evidence (answerable vs unanswerable; a pipeline abstention counts as evidence -1).

Usage::

    python benchmarks/answer_abstention.py ../shared/data/tatqa ../shared/data/medquad \\
        ../shared/data/pubmedqa ../shared/data/policyqa ../shared/data/lecoqa ../shared/data/cmrc2018
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

# Run as a script, ``benchmarks/`` is on sys.path: share retrieval.py's helpers.
from retrieval import (
    kb_stats,
    machine,
    markdown_table,
    percentiles,
    split_queries,
    summarise,
    write_json,
)

from domainrag.text import detect_language

THRESHOLDS = (0.0, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5)
QUANTILES = (10, 25, 50, 75, 90)
EMBEDDER = "hash:256"
OVERRIDES = {"embedder.model": EMBEDDER, "retrieval.mode": "lexical", "answer.min_evidence": 0.0}
SHIPPED_MIN_EVIDENCE = 0.35


# --- questions --------------------------------------------------------------------------------


def dataset_language(queries: dict[str, str]) -> str:
    """``zh`` or ``en``: the majority of ``detect_language`` over the questions."""
    votes = Counter(detect_language(text) for text in list(queries.values())[:200])
    return votes.most_common(1)[0][0] if votes else "en"


def unanswerable_pool(dataset: Path, others: Sequence[Path], n: int, split: str, seed: int
                      ) -> list[dict[str, str]]:
    """``n`` questions of the other datasets, split evenly among them (a set with fewer
    questions than its share gives the rest to the others)."""
    pools = {}
    for other in others:
        queries, _ = split_queries(other, split, None)
        ids = sorted(queries)
        random.Random(f"{seed}:{dataset.name}:{other.name}").shuffle(ids)
        pools[other.name] = [(qid, queries[qid]) for qid in ids]
    picked: list[dict[str, str]] = []
    remaining = dict(pools)
    need = n
    while need > 0 and remaining:
        share = max(1, need // len(remaining))
        for name in sorted(remaining):
            take = remaining[name][:share]
            remaining[name] = remaining[name][share:]
            picked += [{"id": qid, "from": name, "text": text} for qid, text in take]
            need = n - len(picked)
            if need <= 0:
                break
        remaining = {k: v for k, v in remaining.items() if v}
    return picked[:n]


# --- knowledge base ---------------------------------------------------------------------------


def corpus_ids(dataset: Path) -> list[str]:
    with (dataset / "corpus.jsonl").open(encoding="utf-8") as handle:
        return [json.loads(line)["_id"] for line in handle if line.strip()]


def sample_corpus(dataset: Path, relevant: set[str], docs: int, seed: int, out: Path) -> dict[str, Any]:
    """Write every relevant document plus random others (up to ``docs`` in all) to ``out``."""
    ids = corpus_ids(dataset)
    keep = set(ids) & relevant
    others = sorted(set(ids) - keep)
    keep |= set(random.Random(seed).sample(others, max(0, min(len(others), docs - len(keep)))))
    out.mkdir(parents=True, exist_ok=True)
    target = out / "corpus.jsonl"
    lines = []
    with (dataset / "corpus.jsonl").open(encoding="utf-8") as src:
        for line in src:
            if line.strip() and json.loads(line)["_id"] in keep:
                lines.append(line if line.endswith("\n") else line + "\n")
    text = "".join(lines)
    if not target.exists() or target.read_text(encoding="utf-8") != text:
        target.write_text(text, encoding="utf-8")
    return {"corpus_docs": len(ids), "sampled_docs": len(keep),
            "relevant_docs": len(set(ids) & relevant), "folder": str(out)}


def open_kb(dataset: Path, relevant: set[str], args: argparse.Namespace
            ) -> tuple[Any, dict[str, Any]]:
    """The cached knowledge base of D's corpus (sampled past ``--docs`` documents)."""
    from domainrag import KnowledgeBase

    root = args.kb_cache / "answer_abstention"
    n_docs = sum(1 for line in (dataset / "corpus.jsonl").open(encoding="utf-8") if line.strip())
    sample = None
    folder = dataset
    name = f"{dataset.name}-{EMBEDDER.replace(':', '_')}"
    if n_docs > args.docs:
        tag = f"sample-n{args.n}-d{args.docs}-s{args.seed}"
        sample = sample_corpus(dataset, relevant, args.docs, args.seed, root / f"{dataset.name}-{tag}")
        folder = Path(sample["folder"])
        name += f"-{tag}"
    path = root / name
    existed = path.exists()
    kb = KnowledgeBase.open(path, create=True, overrides=OVERRIDES)
    t0 = time.perf_counter()
    report = kb.ingest([folder], format="beir", prune=True, progress=True)
    seconds = time.perf_counter() - t0
    return kb, {"kb": str(path), "reused": existed, "ingest_s": round(seconds, 2),
                "corpus_docs": n_docs, "sample": sample, "report": summarise(report)}


# --- asking -----------------------------------------------------------------------------------


def ask_all(kb: Any, questions: list[dict[str, Any]], qrels: dict[str, dict[str, int]] | None
            ) -> tuple[list[dict[str, Any]], list[float]]:
    """One ``kb.ask`` per question; a record of what the thresholds need, and the times (ms)."""
    records, times = [], []
    for q in questions:
        t0 = time.perf_counter()
        a = kb.ask(q["text"])
        times.append((time.perf_counter() - t0) * 1000)
        rec = {"id": q["id"], "from": q["from"], "evidence": float(a.trace.get("evidence", 0.0)),
               "abstained": bool(a.abstained), "reason": a.trace.get("abstain_reason")}
        if qrels is not None:
            relevant = {d for d, g in qrels[q["id"]].items() if g >= 1}
            cited = {c.doc_id for c in a.citations}
            rec["cited_relevant"] = bool(cited & relevant)
            rec["supported_cited_relevant"] = any(c.supported and c.doc_id in relevant for c in a.citations)
        records.append(rec)
    return records, times


def gate_check(kb_path: str, records: list[dict[str, Any]], texts: dict[str, str], n: int) -> dict[str, Any]:
    """Re-ask ``n`` questions with the shipped gate (0.35): does the offline rule predict the
    pipeline's abstention exactly?"""
    from domainrag import KnowledgeBase

    if n <= 0:
        return {"checked": 0}
    kb = KnowledgeBase.open(kb_path, overrides={**OVERRIDES, "answer.min_evidence": SHIPPED_MIN_EVIDENCE})
    step = max(1, len(records) // n)
    sample = records[::step][:n]
    agree = 0
    for rec in sample:
        predicted = rec["evidence"] < SHIPPED_MIN_EVIDENCE or rec["abstained"]
        agree += kb.ask(texts[rec["id"]]).abstained == predicted
    kb.close()
    return {"checked": len(sample), "threshold": SHIPPED_MIN_EVIDENCE, "agree": agree}


# --- scoring ----------------------------------------------------------------------------------


def abstains(rec: dict[str, Any], t: float) -> bool:
    return rec["abstained"] or rec["evidence"] < t


def share(values: Sequence[bool]) -> float | None:
    return round(sum(values) / len(values), 4) if values else None


def at_threshold(answerable: list[dict[str, Any]], unanswerable: list[dict[str, Any]], t: float
                 ) -> dict[str, Any]:
    answered = [r for r in answerable if not abstains(r, t)]
    answer_rate = len(answered) / len(answerable) if answerable else 0.0
    abstain_rate = share([abstains(r, t) for r in unanswerable]) or 0.0
    return {
        "threshold": t,
        "answer_rate": round(answer_rate, 4),
        "abstain_rate": round(abstain_rate, 4),
        "balanced": round((answer_rate + abstain_rate) / 2, 4),
        "answered": len(answered),
        "cited_relevant": share([r["cited_relevant"] for r in answered]),
        "supported_cited_relevant": share([r["supported_cited_relevant"] for r in answered]),
        "abstain_rate_by_source": {
            name: share([abstains(r, t) for r in unanswerable if r["from"] == name])
            for name in sorted({r["from"] for r in unanswerable})
        },
    }


def quantiles(values: Sequence[float]) -> dict[str, float]:
    if not values:
        return {}
    return {f"p{q}": round(float(np.percentile(values, q)), 4) for q in QUANTILES}


def score(rec: dict[str, Any]) -> float:
    return -1.0 if rec["abstained"] else rec["evidence"]


def auc(answerable: list[dict[str, Any]], unanswerable: list[dict[str, Any]]) -> float | None:
    """P(score of an answerable question > score of an unanswerable one), ties counting half."""
    if not answerable or not unanswerable:
        return None
    a = np.array([score(r) for r in answerable])[:, None]
    u = np.array([score(r) for r in unanswerable])[None, :]
    return round(float((a > u).mean() + 0.5 * (a == u).mean()), 4)


# --- per dataset ------------------------------------------------------------------------------


def evaluate_dataset(dataset: Path, same_language: list[Path], language: str,
                     args: argparse.Namespace) -> dict[str, Any]:
    started = time.perf_counter()
    queries, qrels = split_queries(dataset, args.split, args.n, args.seed)
    relevant = {d for j in qrels.values() for d, g in j.items() if g >= 1}
    ans_q = [{"id": q, "from": dataset.name, "text": t} for q, t in queries.items()]
    unans_q = unanswerable_pool(dataset, same_language, args.n, args.split, args.seed)
    kb, ingest = open_kb(dataset, relevant, args)
    ans, ans_ms = ask_all(kb, ans_q, qrels)
    unans, unans_ms = ask_all(kb, unans_q, None)
    stats = kb_stats(kb)
    kb.close()
    texts = {q["id"]: q["text"] for q in ans_q + unans_q}
    check = gate_check(ingest["kb"], ans + unans, texts, args.check)
    thresholds = [at_threshold(ans, unans, t) for t in THRESHOLDS]
    return {
        "dataset": dataset.name,
        "language": language,
        "split": args.split,
        "answerable": len(ans),
        "unanswerable": len(unans),
        "unanswerable_from": dict(Counter(r["from"] for r in unans)),
        "ingest": ingest,
        "stats": stats,
        "extractive_only": {  # threshold 0: the extractive answerer's own abstention
            "false_abstention": round(1 - thresholds[0]["answer_rate"], 4),
            "abstain_rate": thresholds[0]["abstain_rate"],
            "reasons_answerable": dict(Counter(r["reason"] for r in ans if r["abstained"])),
            "reasons_unanswerable": dict(Counter(r["reason"] for r in unans if r["abstained"])),
        },
        "evidence": {"answerable": quantiles([r["evidence"] for r in ans]),
                     "unanswerable": quantiles([r["evidence"] for r in unans])},
        "auc": auc(ans, unans),
        "thresholds": thresholds,
        "ask_latency": percentiles(ans_ms + unans_ms),
        "gate_check": check,
        "seconds": round(time.perf_counter() - started, 1),
        **({"questions": {"answerable": ans, "unanswerable": unans}} if args.questions else {}),
    }


# --- output -----------------------------------------------------------------------------------


def summary_by_threshold(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for i, t in enumerate(THRESHOLDS):
        balanced = {r["dataset"]: r["thresholds"][i]["balanced"] for r in results}
        worst = min(balanced, key=balanced.__getitem__)
        rows.append({"threshold": t, "mean_balanced": round(float(np.mean(list(balanced.values()))), 4),
                     "worst_dataset": worst, "worst_balanced": balanced[worst],
                     "mean_answer_rate": round(float(np.mean([r["thresholds"][i]["answer_rate"] for r in results])), 4),
                     "mean_abstain_rate": round(float(np.mean([r["thresholds"][i]["abstain_rate"] for r in results])), 4)})
    return rows


def pct(v: float | None) -> str:
    return "—" if v is None else f"{100 * v:.0f}"


def threshold_table(results: list[dict[str, Any]], summary: list[dict[str, Any]]) -> str:
    """Rows: thresholds; per dataset "answer / abstain / cited" in percent."""
    header = ["t", *(f"{r['dataset']} ans / abs / cit" for r in results), "mean bal.", "worst bal."]
    rows = []
    for i, t in enumerate(THRESHOLDS):
        cells = []
        for r in results:
            m = r["thresholds"][i]
            cells.append(f"{pct(m['answer_rate'])} / {pct(m['abstain_rate'])} / {pct(m['cited_relevant'])}")
        s = summary[i]
        rows.append([f"{t:.2f}", *cells, f"{s['mean_balanced']:.3f}",
                     f"{s['worst_balanced']:.3f} ({s['worst_dataset']})"])
    return markdown_table(header, rows)


def dataset_table(results: list[dict[str, Any]]) -> str:
    header = ["dataset", "lang", "docs in KB", "n ans / unans", "extractive-only abst. ans / unans",
              "evidence ans p25/p50/p75", "evidence unans p25/p50/p75", "AUC", "ask p50 ms"]
    rows = []
    for r in results:
        e = r["evidence"]
        ex = r["extractive_only"]
        docs = r["stats"].get("documents", "?")
        rows.append([r["dataset"], r["language"], docs, f"{r['answerable']} / {r['unanswerable']}",
                     f"{pct(ex['false_abstention'])}% / {pct(ex['abstain_rate'])}%",
                     "/".join(f"{e['answerable'][k]:.2f}" for k in ("p25", "p50", "p75")),
                     "/".join(f"{e['unanswerable'][k]:.2f}" for k in ("p25", "p50", "p75")),
                     f"{r['auc']:.3f}", f"{r['ask_latency']['p50_ms']:.1f}"])
    return markdown_table(header, rows)


# --- main -------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("data_dirs", nargs="+", type=Path, metavar="DATA_DIR", help="BEIR folders")
    p.add_argument("--split", default="test", help="query split (default: test)")
    p.add_argument("--n", type=int, default=200, help="answerable and unanswerable questions per dataset")
    p.add_argument("--docs", type=int, default=5000, help="sample corpora larger than this")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--verify", default="offline", choices=("offline", "lexical"),
                   help="answer.verify: the shipped verifier (default since issue 19) or the word rules alone")
    p.add_argument("--questions", action="store_true",
                   help="keep every question's record in the JSON (large; lets other thresholds be scored)")
    p.add_argument("--check", type=int, default=20, help="questions re-asked with the gate at 0.35")
    p.add_argument("--kb-cache", type=Path, default=Path("benchmarks/.cache"))
    p.add_argument("--json", type=Path, default=Path("benchmarks/results/answer_abstention.json"))
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    OVERRIDES["answer.verify"] = args.verify
    started = time.perf_counter()
    languages = {d: dataset_language(split_queries(d, args.split, None)[0]) for d in args.data_dirs}
    results = []
    for d in args.data_dirs:
        same = [o for o in args.data_dirs if o != d and languages[o] == languages[d]]
        if not same:
            print(f"== {d.name}: skipped (no other {languages[d]} dataset for unanswerable questions)",
                  file=sys.stderr)
            continue
        print(f"== {d.name} ({languages[d]})", file=sys.stderr, flush=True)
        r = evaluate_dataset(d, same, languages[d], args)
        print(f"   done in {r['seconds']:.1f} s", file=sys.stderr, flush=True)
        results.append(r)
    if not results:
        raise SystemExit("no dataset was evaluated: give at least two BEIR folders of the same language")
    summary = summary_by_threshold(results)
    best = max(summary, key=lambda s: (s["mean_balanced"], s["worst_balanced"]))
    robust = max(summary, key=lambda s: (s["worst_balanced"], s["mean_balanced"]))
    print("answer rate on answerable / abstention rate on unanswerable / answered citing a relevant "
          "doc (%), by evidence threshold t (lexical retrieval, extractive answerer)")
    print(threshold_table(results, summary))
    print()
    print(dataset_table(results))
    tied = [s["threshold"] for s in summary if s["mean_balanced"] == best["mean_balanced"]]
    print(f"\nbest mean balanced accuracy: t = {best['threshold']} ({best['mean_balanced']:.3f}, "
          f"worst {best['worst_dataset']} {best['worst_balanced']:.3f}; tied: {tied}); best worst "
          f"case: t = {robust['threshold']} ({robust['worst_balanced']:.3f}, {robust['worst_dataset']})")
    total = time.perf_counter() - started
    write_json(args.json, {
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "machine": machine(),
        "command": " ".join(["python", *sys.argv]), "seconds": round(total, 1),
        "setup": {"retrieval": "lexical (BM25), retrieval.mode=lexical", "embedder": EMBEDDER,
                  "answerer": "extractive (offline, no model)", "answer.min_evidence": 0.0,
                  "answer.verify": args.verify,
                  "split": args.split, "n": args.n, "docs": args.docs, "seed": args.seed,
                  "unanswerable": "cross-dataset: test questions of the other datasets of the same "
                                  "language (easier than near-miss questions of the same domain)"},
        "thresholds": list(THRESHOLDS), "summary": summary,
        "best_mean": best["threshold"], "best_mean_tied": tied, "best_worst_case": robust["threshold"],
        "datasets": results})


if __name__ == "__main__":
    main()
