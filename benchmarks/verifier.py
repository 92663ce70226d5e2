"""The offline verifier against the old word rules and simple baselines, on held-out claim–evidence pairs.

Question answered: does ``domainrag.verify`` with the shipped offline verifier tell supported
claims from unsupported ones better than the word rules it replaces (and than word overlap or
embedding cosine), on every held-out dataset and on hand-written hard cases — and what does it
cost per answer, in time and memory?

Data: JSONL files of pairs (``premise`` the evidence, ``hypothesis`` the claim, ``label`` 1 =
supported / 0 = not, ``source`` the dataset, ``id``), given on the command line (e.g. the
held-out ``test.jsonl`` and the calibration ``dev.jsonl``); a path naming ``expertqa`` is
refused. Per file and dataset (``source``), ``--limit`` pairs are sampled with a fixed seed.
WiCE (``source == "wice"``) is scored per claim: its ids are ``<claim>#chunk<k>``, one pair per
evidence chunk, so whole claims are sampled (until ``--limit`` pairs) and a claim's score is the
max over its chunks, its label the max label, and it is accepted when any chunk is.

Scorers, each giving a score per pair (higher = more likely supported):

* ``old_checker`` — the word rules: ``verify(claim + " [1]", [premise], verifier=None)``; score =
  the lexical support score, accepted when the verdict is ``supported``;
* ``word_overlap`` — share of the claim's lower-cased alphanumeric word types (without a small
  English stopword list) found in the premise;
* ``minilm_cosine`` / ``e5_cosine`` — best cosine between the claim and any sentence of the
  premise under the bundled ``minilm`` / ``multilingual`` embedders (``--embedders``; one that
  fails to load is skipped and named in the JSON);
* ``verifier_raw`` — the offline verifier's probability of (claim, whole premise), no checker;
* ``shipped`` — the full path: ``verify(claim + " [1]", [premise])`` (offline verifier, default
  threshold or ``--threshold``; evidence windows, number and unit gates); score = the support
  probability, accepted when the verdict is ``supported``.

For the two checker scorers a claim the checker splits into several pieces scores the minimum
over its counted pieces and is accepted only when all are supported (``several_pieces`` counts
them); a claim with no counted piece (all ``not_a_claim``) scores 0 and is not accepted
(``not_a_claim`` counts them).

Metrics (label-1 pairs are the supported ones; a threshold ``t`` accepts pairs scored >= t):

* ``auroc`` — area under the ROC curve (ties count half);
* ``ta@fa0.10`` — the highest true-accept rate (share of label-1 pairs accepted) over thresholds
  whose false-accept rate (share of label-0 pairs accepted) is <= 0.10;
* ``fa@ta0.80`` — the lowest false-accept rate over thresholds with true-accept >= 0.80;
* ``op_ta`` / ``op_fa`` — true- and false-accept rates at the operating point: the verdict for
  ``old_checker`` and ``shipped``, score >= 0.5 for the other scorers (a fixed cut, not tuned:
  meaningful for ``verifier_raw``'s calibrated probability, only indicative for overlap and cosine).

Each file gets the macro average over its datasets per scorer and the worst dataset per scorer
and metric (lowest AUROC / ta@fa0.10 / op_ta, highest fa@ta0.80 / op_fa). Hand-written cases (``--handwritten``, default ``benchmarks/data/verifier_handwritten.jsonl``:
medicine, finance, law and privacy policies, by ``family``): the accept rate per family at each
scorer's operating point and the AUROC over all of them.

``--speed``: ``domainrag.verify`` on a 5-sentence answer citing [1]..[5] of 8 sources of ~120
words (the first 8 distinct premises of at least 400 characters of the first file, cut at a
sentence end; each answer sentence is the first one of 8-40 words of its source that is not page
chrome, every other one with its last clause dropped), 3 warm-up runs then 30 timed: p50/p95 ms;
the process's RSS (VmRSS) before the verifier is loaded and after the runs (run first, so nothing
else has loaded it); the size on disk of the verifier folder.

Usage::

    python benchmarks/verifier.py /work/data/split/test.jsonl /work/data/split/dev.jsonl --limit 1500 --speed \\
        --out benchmarks/results/verifier.json
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import re
import resource
import shlex
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

import domainrag
from domainrag.answer.citations import DEFAULT_VERIFY_THRESHOLD
from domainrag.text import sentence_spans

HERE = Path(__file__).parent
FA_MAX = 0.10
TA_MIN = 0.80
RAW_CUT = 0.5
METRICS = ("auroc", "ta@fa0.10", "fa@ta0.80", "op_ta", "op_fa")
LOWER_IS_WORSE = {"auroc": True, "ta@fa0.10": True, "fa@ta0.80": False, "op_ta": True, "op_fa": False}
EMBEDDER_LABELS = {"minilm": "minilm_cosine", "multilingual": "e5_cosine"}
WORD = re.compile(r"[^\W_]+")
PAGE_CHROME = re.compile(r"\(meta data\)|#|TITLE:")  # web-page headers in WiCE premises, not prose
_STOPWORDS = (
    "a an the and or but if of to in on at by for with from as is are was were be been being it its this that "
    "these those there their they them he she his her we our you your i not no do does did has have had "
    "will would can could should may might must shall than then so such into about over also which who whom "
    "what when where how"
)
STOPWORDS = frozenset(_STOPWORDS.split())

Pair = tuple[str, str]


@dataclass
class Scored:
    """One scorer's output on a list of pairs: scores, accepted at its operating point, counts."""

    scores: list[float]
    accepts: list[bool]
    notes: dict[str, int] = field(default_factory=dict)


Scorer = Callable[[Sequence[Pair]], Scored]


# -- data ---------------------------------------------------------------------------------------
def read_pairs(path: Path) -> list[dict]:
    if "expertqa" in str(path).lower():
        raise SystemExit(f"refusing {path}: ExpertQA is not to be loaded by this benchmark")
    with open(path, encoding="utf-8") as fh:
        rows = [json.loads(line) for line in fh if line.strip()]
    return [r for r in rows if "expertqa" not in str(r.get("source", "")).lower()]


def unit_key(row: dict, index: int) -> str:
    """The claim a pair belongs to: WiCE's ``<claim>#chunk<k>`` ids share ``<claim>``."""
    if row.get("source") == "wice":
        return str(row["id"]).split("#", 1)[0]
    return f"#{index}"


def sample(rows: list[dict], limit: int, seed: int, wanted: set[str] | None) -> dict[str, list[dict]]:
    """Up to ``limit`` pairs per dataset (whole WiCE claims), with a seed per dataset."""
    by_source: dict[str, list[dict]] = {}
    for row in rows:
        if wanted is None or row["source"] in wanted:
            by_source.setdefault(row["source"], []).append(row)
    out = {}
    for source, mine in by_source.items():
        groups: dict[str, list[dict]] = {}
        for i, row in enumerate(mine):
            groups.setdefault(unit_key(row, i), []).append(row)
        keys = list(groups)
        random.Random(f"{seed}:{source}").shuffle(keys)
        picked: list[dict] = []
        for key in keys:
            if len(picked) >= limit:
                break
            picked += groups[key]
        out[source] = picked
    return out


# -- scorers ------------------------------------------------------------------------------------
def checker_scores(pairs: Sequence[Pair], **options: Any) -> Scored:
    """``verify(claim + " [1]", [premise], **options)``: min score over counted pieces, all supported."""
    scores, accepts, meta, several = [], [], 0, 0
    for claim, premise in pairs:
        counted = [c for c in domainrag.verify(claim + " [1]", [premise], **options).claims
                   if c.verdict != "not_a_claim"]
        several += len(counted) > 1
        if not counted:
            meta += 1
            scores.append(0.0)
            accepts.append(False)
            continue
        scores.append(min(c.score or 0.0 for c in counted))
        accepts.append(all(c.verdict == "supported" for c in counted))
    return Scored(scores, accepts, {"not_a_claim": meta, "several_pieces": several})


def overlap(claim: str, premise: str) -> float:
    words = set(WORD.findall(claim.lower())) - STOPWORDS
    if not words:
        return 0.0
    return len(words & set(WORD.findall(premise.lower()))) / len(words)


def overlap_scores(pairs: Sequence[Pair]) -> Scored:
    scores = [overlap(c, p) for c, p in pairs]
    return Scored(scores, [s >= RAW_CUT for s in scores])


def cosine_scores(embedder: Any, pairs: Sequence[Pair]) -> Scored:
    """Best cosine between the claim and a sentence of the premise (one batch of unique texts)."""
    groups = [[p[a:b] for a, b in sentence_spans(p)] or [p or " "] for _, p in pairs]
    texts = list(dict.fromkeys([c for c, _ in pairs] + [s for g in groups for s in g]))
    index = {t: i for i, t in enumerate(texts)}
    vectors = embedder.embed(texts)
    scores = [float(np.max(vectors[[index[s] for s in g]] @ vectors[index[c]])) for (c, _), g in zip(pairs, groups, strict=True)]
    return Scored(scores, [s >= RAW_CUT for s in scores])


def raw_scores(pairs: Sequence[Pair]) -> Scored:
    from domainrag.models.verifier_onnx import shared

    scores = shared().score(list(pairs))
    return Scored(scores, [s >= RAW_CUT for s in scores])


def build_scorers(embedders: list[str], threshold: float | None) -> tuple[dict[str, Scorer], dict[str, str]]:
    """The scorers in table order, and the embedders that failed to load (name -> error)."""
    from domainrag.config import EmbedderConfig
    from domainrag.models.embedders import load_embedder

    scorers: dict[str, Scorer] = {"old_checker": lambda pairs: checker_scores(pairs, verifier=None),
                                  "word_overlap": overlap_scores}
    skipped = {}
    for name in embedders:
        try:
            embedder = load_embedder(EmbedderConfig(model=name))
            embedder.embed(["warm-up"])
        except Exception as exc:  # an optional baseline: report and go on
            skipped[name] = f"{type(exc).__name__}: {exc}"
            continue
        label = EMBEDDER_LABELS.get(name, re.sub(r"\W+", "_", name) + "_cosine")
        scorers[label] = lambda pairs, e=embedder: cosine_scores(e, pairs)
    scorers["verifier_raw"] = raw_scores
    scorers["shipped"] = lambda pairs: checker_scores(pairs, threshold=threshold)
    return scorers, skipped


# -- metrics ------------------------------------------------------------------------------------
def per_unit(rows: list[dict], scored: Scored) -> tuple[list[int], list[float], list[bool]]:
    """Labels, scores and accepts per claim (max over a WiCE claim's chunks, any accept)."""
    units: dict[str, list] = {}
    for i, (row, s, a) in enumerate(zip(rows, scored.scores, scored.accepts, strict=True)):
        unit = units.setdefault(unit_key(row, i), [0, float("-inf"), False])
        unit[0], unit[1], unit[2] = max(unit[0], int(row["label"])), max(unit[1], s), unit[2] or a
    labels, scores, accepts = zip(*units.values(), strict=True) if units else ((), (), ())
    return list(labels), list(scores), list(accepts)


def auroc(labels: Sequence[int], scores: Sequence[float]) -> float | None:
    if len(set(labels)) < 2:
        return None
    try:
        from sklearn.metrics import roc_auc_score
    except ImportError:
        return rank_auroc(labels, scores)
    return float(roc_auc_score(labels, scores))


def rank_auroc(labels: Sequence[int], scores: Sequence[float]) -> float:
    """Mann–Whitney AUROC with average ranks for ties."""
    order = sorted(range(len(scores)), key=lambda i: scores[i])
    ranks = [0.0] * len(scores)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and scores[order[j + 1]] == scores[order[i]]:
            j += 1
        for k in range(i, j + 1):
            ranks[order[k]] = (i + j) / 2 + 1
        i = j + 1
    pos = sum(1 for y in labels if y)
    neg = len(labels) - pos
    return (sum(r for r, y in zip(ranks, labels, strict=True) if y) - pos * (pos + 1) / 2) / (pos * neg)


def metrics(labels: Sequence[int], scores: Sequence[float], accepts: Sequence[bool]) -> dict[str, float | None]:
    y = np.asarray(labels, dtype=bool)
    s = np.asarray(scores, dtype=float)
    if y.all() or not y.any():
        return dict.fromkeys(METRICS)
    pos, neg = np.sort(s[y]), np.sort(s[~y])
    thresholds = np.append(np.unique(s), np.inf)  # inf: accept nothing
    ta = (len(pos) - np.searchsorted(pos, thresholds, "left")) / len(pos)
    fa = (len(neg) - np.searchsorted(neg, thresholds, "left")) / len(neg)
    a = np.asarray(accepts, dtype=bool)
    return {"auroc": auroc(list(y.astype(int)), list(s)), "ta@fa0.10": float(ta[fa <= FA_MAX].max()),
            "fa@ta0.80": float(fa[ta >= TA_MIN].min()), "op_ta": float(a[y].mean()), "op_fa": float(a[~y].mean())}


def summarize(per_dataset: dict[str, dict], scorers: Sequence[str]) -> tuple[dict, dict]:
    """Macro average over datasets and the worst dataset, per scorer and metric."""
    macro: dict[str, dict] = {}
    worst: dict[str, dict] = {}
    for name in scorers:
        macro[name], worst[name] = {}, {}
        for metric in METRICS:
            values = {ds: r["scorers"][name][metric] for ds, r in per_dataset.items()
                      if name in r["scorers"] and r["scorers"][name][metric] is not None}
            if not values:
                continue
            macro[name][metric] = statistics.fmean(values.values())
            pick = min if LOWER_IS_WORSE[metric] else max
            ds = pick(values, key=values.__getitem__)
            worst[name][metric] = {"dataset": ds, "value": values[ds]}
    return macro, worst


# -- runs ---------------------------------------------------------------------------------------
def score_all(rows: list[dict], scorers: dict[str, Scorer]) -> tuple[dict[str, Scored], dict[str, float]]:
    pairs = [(str(r["hypothesis"]), str(r["premise"])) for r in rows]
    out, seconds = {}, {}
    for name, scorer in scorers.items():
        t0 = time.perf_counter()
        out[name] = scorer(pairs)
        seconds[name] = round(time.perf_counter() - t0, 2)
    return out, seconds


def run_dataset(name: str, rows: list[dict], scorers: dict[str, Scorer]) -> dict:
    scored, seconds = score_all(rows, scorers)
    result: dict[str, Any] = {"pairs": len(rows), "scorers": {}, "notes": {}, "seconds": seconds}
    for scorer, s in scored.items():
        labels, scores, accepts = per_unit(rows, s)
        result["scorers"][scorer] = metrics(labels, scores, accepts)
        if s.notes:
            result["notes"][scorer] = s.notes
    result.update(units=len(labels), positives=sum(labels), negatives=len(labels) - sum(labels))
    print(f"  {name}: {len(rows)} pairs, {result['units']} claims, {sum(seconds.values()):.1f} s", file=sys.stderr, flush=True)
    return result


def run_file(path: Path, args: argparse.Namespace, scorers: dict[str, Scorer]) -> dict:
    print(f"{path}:", file=sys.stderr, flush=True)
    wanted = set(args.datasets.split(",")) if args.datasets else None
    datasets = sample(read_pairs(path), args.limit, args.seed, wanted)
    per_dataset = {name: run_dataset(name, rows, scorers) for name, rows in datasets.items()}
    macro, worst = summarize(per_dataset, list(scorers))
    return {"per_dataset": per_dataset, "macro": macro, "worst": worst}


def run_handwritten(path: Path, scorers: dict[str, Scorer]) -> dict:
    rows = read_pairs(path)
    scored, _ = score_all(rows, scorers)
    families: dict[str, dict] = {}
    for i, row in enumerate(rows):
        fam = families.setdefault(row["family"], {"label": int(row["label"]), "n": 0, "rows": []})
        fam["n"] += 1
        fam["rows"].append(i)
    for fam in families.values():
        idx = fam.pop("rows")
        fam["accept"] = {name: sum(s.accepts[i] for i in idx) / len(idx) for name, s in scored.items()}
    labels = [int(r["label"]) for r in rows]
    return {"file": str(path), "pairs": len(rows), "supported": sum(labels), "per_family": families,
            "auroc": {name: auroc(labels, s.scores) for name, s in scored.items()},
            "cases": [{"id": r.get("id"), **{n: round(s.scores[i], 4) for n, s in scored.items()}}
                      for i, r in enumerate(rows)]}


# -- speed and memory ---------------------------------------------------------------------------
def rss_mb() -> float:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def first_sentences(text: str, words: int) -> str:
    """The leading sentences of ``text`` up to about ``words`` words (cut inside one if it is longer)."""
    out: list[str] = []
    for a, b in sentence_spans(text):
        if out and sum(len(s.split()) for s in out) + len(text[a:b].split()) > words:
            break
        out.append(text[a:b])
    joined = " ".join(out)
    return joined if len(joined.split()) <= words else " ".join(joined.split()[:words]) + "."


def speed_case(path: Path) -> tuple[str, list[str]]:
    """8 sources of ~120 words and a 5-sentence answer citing sources 1..5."""
    premises: list[str] = []
    for row in read_pairs(path):
        if len(row["premise"]) >= 400 and row["premise"] not in premises:
            premises.append(row["premise"])
        if len(premises) == 8:
            break
    sources = [first_sentences(p, 120) for p in premises]
    parts = []
    for k, source in enumerate(sources[:5], start=1):
        spans = [source[a:b] for a, b in sentence_spans(source)]
        sentence = next((s for s in spans if 8 <= len(s.split()) <= 40 and not PAGE_CHROME.search(s)),
                        " ".join(source.split()[:25]))
        if k % 2 == 0 and ", " in sentence:
            sentence = sentence[: sentence.rindex(", ")]
        parts.append(sentence.rstrip(" .!?") + f" [{k}].")
    return " ".join(parts), sources


def run_speed(path: Path, threshold: float | None, warmup: int = 3, runs: int = 30) -> dict:
    from domainrag.models.verifier_onnx import SHIPPED_DIR

    answer, sources = speed_case(path)
    before = rss_mb()
    for _ in range(warmup):
        result = domainrag.verify(answer, sources, threshold=threshold)
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        domainrag.verify(answer, sources, threshold=threshold)
        times.append((time.perf_counter() - t0) * 1000)
    after = rss_mb()
    times.sort()
    size = sum(f.stat().st_size for f in SHIPPED_DIR.rglob("*") if f.is_file())
    return {"answer": answer, "source_words": [len(s.split()) for s in sources], "runs": runs, "warmup": warmup,
            "p50_ms": statistics.median(times), "p95_ms": times[min(len(times) - 1, int(0.95 * len(times)))],
            "rss_before_mb": before, "rss_after_mb": after, "extra_mb": after - before,
            "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "verifier_disk_mb": size / 2**20, "grounded": result.grounded,
            "verdicts": [c.verdict for c in result.claims]}


# -- report -------------------------------------------------------------------------------------
def fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def print_file(path: str, result: dict, scorers: Sequence[str]) -> None:
    per = result["per_dataset"]
    width = max([14, *(len(s) + 2 for s in scorers)])
    for metric in METRICS:
        print(f"\n{path} — {metric}")
        print(f"{'dataset':<16}{'claims':>8}{'+/-':>11}" + "".join(f"{s:>{width}}" for s in scorers))
        for name, r in per.items():
            counts = f"{r['positives']}/{r['negatives']}"
            print(f"{name:<16}{r['units']:>8}{counts:>11}" + "".join(f"{fmt(r['scorers'][s][metric]):>{width}}" for s in scorers))
        print(f"{'macro':<35}" + "".join(f"{fmt(result['macro'][s].get(metric)):>{width}}" for s in scorers))
        worst = [result["worst"][s].get(metric, {}) for s in scorers]
        print(f"{'worst':<35}" + "".join(f"{fmt(w.get('value')):>{width}}" for w in worst))
        print(f"{'  (dataset)':<35}" + "".join(f"{str(w.get('dataset', '-'))[: width - 1]:>{width}}" for w in worst))
    notes = {ds: r["notes"] for ds, r in per.items() if r["notes"]}
    print(f"\ncounts (not_a_claim / several_pieces): {json.dumps(notes)}")


def print_handwritten(result: dict, scorers: Sequence[str]) -> None:
    width = max([14, *(len(s) + 2 for s in scorers)])
    print(f"\nhand-written cases ({result['pairs']} pairs, {result['supported']} supported): accept rate at the operating point")
    print(f"{'family':<24}{'label':>6}{'n':>4}" + "".join(f"{s:>{width}}" for s in scorers))
    for fam, r in result["per_family"].items():
        print(f"{fam:<24}{r['label']:>6}{r['n']:>4}" + "".join(f"{r['accept'][s]:>{width}.2f}" for s in scorers))
    print(f"{'AUROC (all)':<34}" + "".join(f"{fmt(result['auroc'][s]):>{width}}" for s in scorers))


def print_speed(s: dict) -> None:
    print(f"\nspeed: verify() on a 5-sentence answer, 8 sources ({min(s['source_words'])}-{max(s['source_words'])} words): "
          f"p50 {s['p50_ms']:.1f} ms, p95 {s['p95_ms']:.1f} ms ({s['runs']} runs after {s['warmup']} warm-up)")
    print(f"memory: RSS {s['rss_before_mb']:.0f} MB before the verifier, {s['rss_after_mb']:.0f} MB after "
          f"(+{s['extra_mb']:.0f} MB); verifier on disk {s['verifier_disk_mb']:.1f} MB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", nargs="+", type=Path, help="JSONL files of pairs (premise, hypothesis, label, source, id)")
    parser.add_argument("--limit", type=int, default=1500, help="pairs per dataset (whole WiCE claims)")
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--datasets", default="", help="comma-separated sources to keep (default: all)")
    parser.add_argument("--embedders", default="minilm,multilingual", help="embedders for the cosine baselines ('' for none)")
    parser.add_argument("--threshold", type=float, default=None, help="the shipped scorer's threshold (default: the library's)")
    parser.add_argument("--handwritten", type=Path, default=HERE / "data" / "verifier_handwritten.jsonl")
    parser.add_argument("--speed", action="store_true", help="also time verify() and measure its memory")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "verifier.json")
    args = parser.parse_args()
    for path in [*args.data, args.handwritten]:
        if "expertqa" in str(path).lower():
            parser.error(f"refusing {path}: ExpertQA is not to be loaded by this benchmark")
    report: dict[str, Any] = {"setup": setup(args)}
    if args.speed:  # first, so that the RSS before excludes the verifier
        report["speed"] = run_speed(args.data[0], args.threshold)
    from domainrag.models.verifier_onnx import shared

    scorers, skipped = build_scorers([e for e in args.embedders.split(",") if e.strip()], args.threshold)
    report["setup"].update(verifier=shared().id, scorers=list(scorers), embedders_skipped=skipped)
    report["handwritten"] = run_handwritten(args.handwritten, scorers)
    report["files"] = {str(path): run_file(path, args, scorers) for path in args.data}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2, ensure_ascii=False))
    show(report, list(scorers), skipped)


def setup(args: argparse.Namespace) -> dict:
    return {"command": shlex.join(["python", *sys.argv]), "executable": sys.executable,
            "date": time.strftime("%Y-%m-%d %H:%M:%S %z"), "platform": platform.platform(),
            "python": platform.python_version(),
            "threshold": DEFAULT_VERIFY_THRESHOLD if args.threshold is None else args.threshold,
            "data": [str(p) for p in args.data], "limit": args.limit, "seed": args.seed,
            "datasets": args.datasets or "all", "raw_cut": RAW_CUT}


def show(report: dict, scorers: list[str], skipped: dict[str, str]) -> None:
    print(f"verifier {report['setup']['verifier']} at threshold {report['setup']['threshold']}")
    if skipped:
        print(f"embedders skipped: {skipped}")
    for path, result in report["files"].items():
        print_file(path, result, scorers)
    print_handwritten(report["handwritten"], scorers)
    if "speed" in report:
        print_speed(report["speed"])


if __name__ == "__main__":
    main()
