"""Offline citation checking on a labelled set built from real corpora.

Question answered: does ``CitationChecker`` remove fabricated markers, flag sentences that their
cited source does not support, and leave supported sentences alone — and how fast is it?

For ``--docs`` documents of each corpus (``corpus.jsonl`` of a BEIR folder; table documents are
read row by row) an answer is built with 3 sources (the document plus two random others, in
random order). Its sentences, each with a known label:

* supported — 1–3 sentences of the document citing it: ``verbatim``, ``lower`` (lower-cased) or
  ``drop_clause`` (the text after the last comma dropped);
* unsupported — ``wrong_source`` (a sentence of the document citing another source),
  ``number_swap`` (a supported sentence with one number changed to one absent from the document)
  and ``other_doc`` (a sentence of a document outside the sources citing the document);
* a fabricated marker (``[k]`` with k > 3) appended to one sentence.

Answers are split into two halves (by document); the threshold is swept on the tuning half (the
threshold with the best flag rate minus false-flag rate among those with <= 5% false flags;
ties go to the lowest, the most lenient towards real paraphrases) and reported on the other half.
Timing: ``check`` per answer with the chosen threshold, p50/p95 over all answers (warm).

``--semantic`` adds the embedding rescue (``answer.semantic_support``): every cited claim of the
test half whose numbers are in its source and whose lexical support at the shipped threshold
falls short by less than the band is compared with its source's sentences by the bundled MiniLM
embedder, and the flag rates per kind are reported for a sweep of cosine thresholds. The
supported kinds here are near-verbatim, so this measures the rescue's safety (unsupported claims
it would wrongly accept), not how many real paraphrases it saves.

Usage::

    python benchmarks/citations.py ../shared/data/medquad ../shared/data/tatqa --docs 300
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import re
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path

from domainrag.answer.citations import DEFAULT_THRESHOLD, SEMANTIC_BAND, CitationChecker, Source, normalize_number
from domainrag.text import count_tokens, sentence_spans

SUPPORTED = ("verbatim", "lower", "drop_clause")
UNSUPPORTED = ("wrong_source", "number_swap", "other_doc")
THRESHOLDS = tuple(round(0.05 * i, 2) for i in range(1, 20))
NUMBER = re.compile(r"(?<![\w.])\d+(?:,\d{3})*(?:\.\d+)?")


@dataclass
class Case:
    """One answer with the label of each of its sentences and its fabricated marker count."""

    corpus: str
    answer: str
    sources: list[Source]
    kinds: list[str]
    fabricated: int
    results: list[tuple[float, bool]] = field(default_factory=list)
    removed: int = 0
    aligned: bool = True


def load_docs(folder: Path) -> list[dict]:
    with open(folder / "corpus.jsonl", encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def doc_sentences(doc: dict) -> list[str]:
    """Answer-like sentences of a document: one sentence each, 6 to 60 tokens."""
    text = doc["text"]
    if doc.get("kind") == "table" or text.count(" | ") >= 2:
        rows = [" ".join(c.strip() for c in line.split("|") if c.strip()) for line in text.splitlines()]
        candidates = [r + "." for r in rows if r]
    else:
        candidates = [text[s:e] for s, e in sentence_spans(text)]
    return [c for c in candidates if _usable(c)]


def _usable(sentence: str) -> bool:
    return 6 <= count_tokens(sentence) <= 60 and len(sentence_spans(sentence)) == 1 and "[" not in sentence


def perturb(sentence: str, kind: str) -> str:
    if kind == "lower":
        return sentence.lower()
    if kind == "drop_clause" and ", " in sentence[:-1]:
        head = sentence[: sentence.rindex(", ")].rstrip()
        return head + ("。" if sentence.endswith("。") else ".")
    return sentence


def swap_number(sentence: str, doc_text: str, rng: random.Random) -> str | None:
    """``sentence`` with one number replaced by a nearby one absent from the document."""
    matches = list(NUMBER.finditer(sentence))
    if not matches:
        return None
    m = rng.choice(matches)
    present = {normalize_number(x.group()) for x in NUMBER.finditer(doc_text)}
    value = float(m.group().replace(",", ""))
    for _ in range(50):
        new = value + rng.choice([-1, 1]) * max(1, round(abs(value) * rng.uniform(0.05, 0.5)))
        new_text = f"{new:g}" if "." in m.group() else str(int(new))
        if normalize_number(new_text) not in present and new >= 0:
            return sentence[: m.start()] + new_text + sentence[m.end() :]
    return None


def build_case(corpus: str, docs: list[dict], i: int, rng: random.Random) -> Case | None:
    doc = docs[i]
    own = doc_sentences(doc)
    if len(own) < 2:
        return None
    others = rng.sample([j for j in range(len(docs)) if j != i], 3)
    chosen = [doc, docs[others[0]], docs[others[1]]]
    rng.shuffle(chosen)
    sources = [
        Source(n, f"{d['_id']}#0", d["_id"], d["text"], 0, len(d["text"])) for n, d in enumerate(chosen, 1)
    ]
    n_doc = chosen.index(doc) + 1
    n_other = rng.choice([n for n in (1, 2, 3) if n != n_doc])
    parts: list[tuple[str, int, str]] = []
    for sentence in rng.sample(own, min(len(own), rng.randint(1, 3))):
        kind = rng.choice(SUPPORTED)
        parts.append((perturb(sentence, kind), n_doc, kind))
    parts.append((rng.choice(own), n_other, "wrong_source"))
    swapped = [s for s in (swap_number(x, doc["text"], rng) for x in own) if s]
    if swapped:
        parts.append((rng.choice(swapped), n_doc, "number_swap"))
    outside = doc_sentences(docs[others[2]])
    outside = [s for s in outside if s.lower() not in doc["text"].lower()]
    if outside:
        parts.append((rng.choice(outside), n_doc, "other_doc"))
    rng.shuffle(parts)
    fake = rng.randint(4, 9)
    where = rng.randrange(len(parts))
    pieces = []
    for k, (sentence, n, _kind) in enumerate(parts):
        marker = f"[{n}][{fake}]" if k == where else f"[{n}]"
        pieces.append(_attach(sentence, marker, rng))
    return Case(corpus, " ".join(pieces), sources, [p[2] for p in parts], 1)


def _attach(sentence: str, marker: str, rng: random.Random) -> str:
    """Put the marker before the final punctuation or after it (both styles occur)."""
    if sentence[-1] in ".!?。" and rng.random() < 0.5:
        return sentence[:-1] + " " + marker + sentence[-1]
    return sentence + marker


def run_checks(cases: list[Case]) -> None:
    checker = CitationChecker(threshold=0.0)
    for case in cases:
        result = checker.check(case.answer, case.sources)
        case.removed = len(result.removed_markers)
        cited = [s for s in result.sentences if s.sources]
        case.aligned = len(cited) == len(case.kinds)
        case.results = [(s.support, s.supported) for s in cited]


def rates(cases: list[Case], threshold: float) -> dict[str, dict[str, float]]:
    """Flag rate per kind (a sentence is flagged when not supported at ``threshold``)."""
    counts: dict[str, list[int]] = {}
    for case in cases:
        if not case.aligned:
            continue
        for kind, (support, numbers_ok) in zip(case.kinds, case.results, strict=False):
            flagged = not (numbers_ok and support >= threshold)
            counts.setdefault(kind, [0, 0])
            counts[kind][0] += flagged
            counts[kind][1] += 1
    per_kind = {k: {"flagged": v[0] / v[1], "n": v[1]} for k, v in sorted(counts.items())}
    return {"per_kind": per_kind, **_totals(counts)}


def _totals(counts: dict[str, list[int]]) -> dict[str, float]:
    def share(kinds):
        flagged = sum(counts.get(k, [0, 0])[0] for k in kinds)
        total = sum(counts.get(k, [0, 0])[1] for k in kinds)
        return flagged / total if total else 0.0

    return {"unsupported_flagged": share(UNSUPPORTED), "supported_false_flags": share(SUPPORTED)}


def choose_threshold(cases: list[Case]) -> tuple[float, list[dict]]:
    sweep = [{"threshold": t, **{k: v for k, v in rates(cases, t).items() if k != "per_kind"}}
             for t in THRESHOLDS]
    ok = [r for r in sweep if r["supported_false_flags"] <= 0.05] or sweep
    best = max(ok, key=lambda r: round(r["unsupported_flagged"] - r["supported_false_flags"], 3))
    return best["threshold"], sweep


def time_checks(cases: list[Case], threshold: float, repeats: int) -> list[float]:
    checker = CitationChecker(threshold=threshold)
    checker.check(cases[0].answer, cases[0].sources)
    times = []
    for case in cases:
        best = float("inf")
        for _ in range(repeats):
            t0 = time.perf_counter()
            checker.check(case.answer, case.sources)
            best = min(best, time.perf_counter() - t0)
        times.append(best * 1000)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", nargs="+", type=Path, help="BEIR dataset folders")
    parser.add_argument("--docs", type=int, default=300)
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--semantic", action="store_true", help="also measure the embedding rescue")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "citations.json")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    tune: list[Case] = []
    test: list[Case] = []
    for folder in args.data:
        docs = load_docs(folder)
        picked = [c for i in rng.sample(range(len(docs)), len(docs))
                  if (c := build_case(folder.name, docs, i, rng))][: args.docs]
        tune += picked[::2]
        test += picked[1::2]
    run_checks(tune + test)
    threshold, sweep = choose_threshold(tune)
    report = {"threshold": threshold, "tune": summary(tune, threshold), "test": summary(test, threshold),
              "test_by_corpus": {c: summary([x for x in test if x.corpus == c], threshold)
                                 for c in dict.fromkeys(x.corpus for x in test)}}
    times = time_checks(tune + test, threshold, args.repeats)
    report["check_ms"] = {"p50": statistics.median(times), "p95": sorted(times)[int(0.95 * len(times))],
                          "answers": len(times)}
    report["sweep_tune"] = sweep
    if args.semantic:
        report["semantic"] = semantic_sweep(test)
    report["setup"] = {"data": [str(p) for p in args.data], "docs": args.docs, "seed": args.seed,
                       "machine": platform.platform(), "python": platform.python_version(),
                       "date": time.strftime("%Y-%m-%d")}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print_table(report)


SEMANTIC_THRESHOLDS = (0.7, 0.75, 0.8, 0.85, 0.9)


def semantic_sweep(cases: list[Case]) -> dict:
    """Flag rate per kind at the shipped lexical threshold, with the rescue at each cosine."""
    from domainrag.config import EmbedderConfig
    from domainrag.models.embedders import load_embedder

    embedder = load_embedder(EmbedderConfig())

    def similarity(claim: str, candidates) -> float:
        vectors = embedder.embed([claim, *candidates])
        return float(max(vectors[1:] @ vectors[0]))

    checker = CitationChecker(DEFAULT_THRESHOLD, similarity=similarity, semantic_threshold=1.0)
    rows: list[tuple[str, float, bool, float | None]] = []
    for case in cases:
        cited = [x for x in checker.check(case.answer, case.sources).sentences if x.sources]
        if len(cited) == len(case.kinds):
            rows += [(k, x.support, x.supported, x.semantic) for k, x in zip(case.kinds, cited, strict=False)]
    out = {"band": SEMANTIC_BAND, "consulted": {}, "by_threshold": {}}
    for kind in (*SUPPORTED, *UNSUPPORTED):
        mine = [r for r in rows if r[0] == kind]
        out["consulted"][kind] = {"n": len(mine), "consulted": sum(r[3] is not None for r in mine),
                                  "cosines": sorted(round(r[3], 3) for r in mine if r[3] is not None)}
    for t in (None, *SEMANTIC_THRESHOLDS):
        counts = {}
        for kind, _support, lexical_ok, cos in rows:
            ok = lexical_ok or (t is not None and cos is not None and cos >= t)
            counts.setdefault(kind, [0, 0])
            counts[kind][0] += not ok
            counts[kind][1] += 1
        out["by_threshold"]["off" if t is None else str(t)] = {
            **_totals(counts), "per_kind": {k: v[0] / v[1] for k, v in counts.items()}}
    return out


def summary(cases: list[Case], threshold: float) -> dict:
    fabricated = sum(c.fabricated for c in cases)
    result = rates(cases, threshold)
    return {"answers": len(cases), "aligned": sum(c.aligned for c in cases),
            "fabricated_removed": sum(c.removed for c in cases) / fabricated if fabricated else 0.0,
            **result}


def print_table(report: dict) -> None:
    print(f"threshold (chosen on tune half): {report['threshold']}")
    print(f"{'split':<22}{'answers':>8}{'fab.removed':>13}{'unsup.flagged':>15}{'false flags':>13}")
    rows = {"tune": report["tune"], "test": report["test"],
            **{f"test/{k}": v for k, v in report["test_by_corpus"].items()}}
    for name, r in rows.items():
        print(f"{name:<22}{r['answers']:>8}{r['fabricated_removed']:>13.1%}"
              f"{r['unsupported_flagged']:>15.1%}{r['supported_false_flags']:>13.1%}")
    print("\nper kind (test half): share flagged")
    for kind, v in report["test"]["per_kind"].items():
        label = "supported" if kind in SUPPORTED else "unsupported"
        print(f"  {kind:<14}{label:<13}{v['flagged']:>7.1%}  n={v['n']}")
    ms = report["check_ms"]
    print(f"\ncheck time per answer: p50 {ms['p50']:.2f} ms, p95 {ms['p95']:.2f} ms ({ms['answers']} answers)")
    if "semantic" in report:
        sem = report["semantic"]
        print(f"\nembedding rescue at lexical threshold {DEFAULT_THRESHOLD} (test half):")
        for kind, v in sem["consulted"].items():
            print(f"  {kind:<14} consulted {v['consulted']:>4} of {v['n']}")
        for t, v in sem["by_threshold"].items():
            print(f"  cosine {t:<5} unsupported flagged {v['unsupported_flagged']:6.1%}  "
                  f"false flags {v['supported_false_flags']:5.1%}")


if __name__ == "__main__":
    main()
