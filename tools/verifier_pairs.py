"""Claim–evidence training pairs generated from real domain passages (BEIR corpora).

Part of the verifier's build (tools/train_verifier.py). Every pair is (premise, hypothesis,
label) with premise a window of consecutive sentences of one real passage. The families teach
what real answers get wrong while sharing the passage's words:

* ``copy`` (1): a sentence of the window, verbatim; ``join`` (1): two of its sentences joined;
* ``removed`` (0): the window with that sentence taken out — same topic, same words, the
  claim goes beyond what is left;
* ``neighbour`` (0): the sentence of another passage that shares most words with the window;
* ``swap`` (0): the window's sentence with its subject (the passage title or a capitalised
  name) replaced by another passage's — a figure from a passage about another drug or company;
* ``number`` (0): one number of the sentence changed; ``negation`` (0): a negation added or
  removed; ``extend`` (0): the sentence plus a clause from another passage.

Deterministic for a seed. Usage:
    python tools/verifier_pairs.py ../shared/data/medquad ../shared/data/pubmedqa ... --out pairs.jsonl
"""

from __future__ import annotations

import argparse
import json
import random
import re
from collections import Counter
from pathlib import Path

_SENT = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"(])")
_WORD = re.compile(r"[A-Za-z][A-Za-z\-]+")
_NUM = re.compile(r"(?<![\w.])\d+(?:[.,]\d+)?(?![\w])")
_NEG_ADD = [(r"\bis\b", "is not"), (r"\bare\b", "are not"), (r"\bcan\b", "cannot"), (r"\bwill\b", "will not"),
            (r"\bmay\b", "may not"), (r"\bshould\b", "should not"), (r"\bwas\b", "was not"), (r"\bdoes\b", "does not"),
            (r"\bhas\b", "has not"), (r"\bincreases\b", "does not increase"), (r"\bcauses\b", "does not cause")]
_NEG_DROP = [(r"\bis not\b", "is"), (r"\bare not\b", "are"), (r"\bcannot\b", "can"), (r"\bdo not\b", "do"),
             (r"\bdoes not\b", "does"), (r"\bwill not\b", "will"), (r"\bshould not\b", "should"), (r"\bnot\b ", ""),
             (r"\bno\b ", "")]
_STOP = frozenset("the a an of and or to in on for with by is are was were be been it this that as at from "
                  "which who what when can may will not no its their your you we our they".split())


def sentences(text: str) -> list[str]:
    out = []
    for line in text.split("\n"):
        out.extend(s.strip() for s in _SENT.split(line) if len(s.strip()) >= 25)
    return out


def words(text: str) -> set[str]:
    return {w.lower() for w in _WORD.findall(text) if w.lower() not in _STOP}


def load(folder: Path, limit: int, rng: random.Random) -> list[tuple[str, list[str]]]:
    rows = []
    with open(folder / "corpus.jsonl", encoding="utf-8") as f:
        for line in f:
            d = json.loads(line)
            sents = [s for s in sentences(d.get("text", "")) if s.isascii() and "|" not in s]
            if len(sents) >= 2:
                rows.append((d.get("title") or "", sents))
    rng.shuffle(rows)
    return rows[:limit]


def _names(sentence: str, title: str) -> list[str]:
    """Candidate subjects of a sentence: the title when the sentence names it, capitalised words."""
    out = []
    if title and len(title) < 60 and title.lower() in sentence.lower():
        out.append(title)
    out.extend(m.group() for m in re.finditer(r"(?<!^)(?<![.!?] )\b[A-Z][a-z]{3,}(?:\s[A-Z][a-z]+)*", sentence))
    return out


def pairs(passages: list[tuple[str, list[str]]], rng: random.Random, per_passage: int = 3) -> list[dict]:
    index: dict[str, list[int]] = {}
    vocab = [words(" ".join(s)) for _, s in passages]
    for i, ws in enumerate(vocab):
        for w in ws:
            index.setdefault(w, []).append(i)
    titles = [t for t, _ in passages if t and len(t) < 60]
    out: list[dict] = []

    def neighbour(i: int, target: set[str]) -> int | None:
        counts: Counter[int] = Counter()
        for w in target:
            ids = index.get(w, [])
            if len(ids) < 200:
                counts.update(ids)
        for j, _ in counts.most_common(5):
            if j != i:
                return j
        return None

    for i, (title, sents) in enumerate(passages):
        for _ in range(per_passage):
            start = rng.randrange(len(sents))
            window = sents[start : start + rng.choice((1, 2, 3, 4))]
            premise = " ".join(window)[:900]
            k = rng.randrange(len(window))
            target = window[k]
            family = rng.choice(("copy", "copy", "join", "removed", "neighbour", "swap", "number", "negation",
                                 "extend", "removed", "neighbour"))
            hyp, label = None, 0
            if family == "copy":
                hyp, label = target, 1
            elif family == "join" and len(window) >= 2:
                a, b = rng.sample(window, 2)
                hyp, label = a.rstrip(".") + "; " + b[0].lower() + b[1:], 1
            elif family == "removed" and len(window) >= 2:
                rest = [s for j, s in enumerate(window) if j != k]
                if len(words(target) - words(" ".join(rest))) >= 2:
                    premise, hyp = " ".join(rest)[:900], target
            elif family == "neighbour":
                j = neighbour(i, words(premise))
                if j is not None:
                    cands = sorted(passages[j][1], key=lambda s: -len(words(s) & words(premise)))
                    if cands and cands[0] not in premise:
                        hyp = cands[0]
            elif family == "swap":
                names = _names(target, title)
                if names and titles:
                    other = rng.choice(titles)
                    if other.lower() not in premise.lower():
                        hyp = target.replace(names[0], other, 1)
            elif family == "number":
                nums = list(_NUM.finditer(target))
                if nums:
                    m = rng.choice(nums)
                    raw = m.group().replace(",", "")
                    value = float(raw)
                    new = rng.choice((value * 2, value + 1, value * 10, max(value - 1, 0.5), value * 3))
                    text = f"{new:g}" if "." in raw else str(int(new))
                    if text != raw and text not in premise:
                        hyp = target[: m.start()] + text + target[m.end() :]
            elif family == "negation":
                rules = _NEG_DROP if re.search(r"\b(not|no|cannot)\b", target) else _NEG_ADD
                for pattern, repl in rng.sample(rules, len(rules)):
                    if re.search(pattern, target):
                        hyp = re.sub(pattern, repl, target, count=1)
                        break
            elif family == "extend":
                j = rng.randrange(len(passages))
                if j != i:
                    extra = rng.choice(passages[j][1])
                    if len(extra) < 200:
                        hyp = target.rstrip(".") + ", and " + extra[0].lower() + extra[1:]
            if hyp and hyp != premise or (hyp and label == 1):
                out.append({"premise": premise, "hypothesis": hyp, "label": label, "label_raw": family,
                            "source": "generated"})
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("corpora", nargs="+", type=Path, help="BEIR folders (corpus.jsonl)")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--per-corpus", type=int, default=6000, help="passages per corpus")
    parser.add_argument("--seed", type=int, default=13)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    rows: list[dict] = []
    for folder in args.corpora:
        found = pairs(load(folder, args.per_corpus, rng), rng)
        for r in found:
            r["corpus"] = folder.name
        rows.extend(found)
        print(folder.name, len(found), Counter(r["label_raw"] for r in found).most_common())
    rng.shuffle(rows)
    with open(args.out, "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    print("pairs", len(rows), "positive share", round(sum(r["label"] for r in rows) / len(rows), 3))


if __name__ == "__main__":
    main()
