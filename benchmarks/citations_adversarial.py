"""Adversarial citation set: can an answer that its sources do not support be shown as grounded?

Question answered: for each way of gaming the offline citation check that issue 11 lists — and
for honest rewordings that must still pass — how often does the answer pipeline's decision
(:func:`domainrag.answer.pipeline.abstain_reason` at the default ``answer.min_grounded`` 0.5 and
``citation_threshold`` 0.6, no embedding rescue, no judge) show the answer?

Answers are built over real passages (``corpus.jsonl`` of BEIR folders, e.g. medquad, pubmedqa,
tatqa; table documents read row by row): each answer gets 3 sources (the document and two
random others, shuffled), and an *invented* sentence is one from a document outside the sources.
A hand-written set (``HAND``) adds one template of each attack and paraphrases a person would
write. Classes (``ATTACKS`` are unsupported answers; target: shown 0%):

* ``padding`` — an invented sentence cited to the document, then content-free or one-word cited
  pieces (``" and [1] and [3]."``, ``". See [2]. Source: [1]."``, ``". Aspirin [1]."``);
* ``negation`` — a sentence of the document with its negation added or dropped;
* ``number_unit`` — a number of the document moved by a decimal place or its unit or scale
  changed (``81 mg`` -> ``81 g``, ``million`` -> ``billion``);
* ``uncited`` — invented sentences without markers, after a connective lead-in or not;
* ``range`` — a sentence (invented or the document's) whose only marker is a range past the
  sources or a malformed one (``[1-100]``, ``[0]``, ``[01]``, ``[1.5]``, ``[1,2,3,...]``);
* ``echo_prompt`` — the model returns its prompt (whole; system only; the source blocks with
  their delimiters; the source blocks with a marker after each);
* ``echo_instructions`` — the instruction lines of the prompt, each with a marker;
* ``doc_marker`` — a document carries its own reference markers: the answer copies a sentence
  whose marker names another source, or changes a number to the number of a reference marker
  inside the cited document.

``MIXED`` classes hold one unsupported part next to a supported one; at ``min_grounded`` 0.5 such
an answer may be shown (grounded 50%), so the target is: the unsupported part counted (never shown
as fully grounded): ``uncited_mixed``; and two beyond the reach of word rules, reported as known
limits: ``appended_clause`` (an invented clause joined to a supported sentence) and ``antonym``
(``increase`` -> ``decrease``).

``SUPPORTED`` classes must be shown fully grounded (a false flag otherwise): ``verbatim``,
``lead_in``, ``cite_at_end`` (two sentences, one marker), ``list``, ``reorder`` (clauses
swapped), ``synonym`` (a few words replaced), ``numbers_reformatted`` (``mg`` -> ``milligrams``,
``1,200`` -> ``1200``, ``%`` -> ``percent``), ``kept_negation`` (a negated sentence reworded),
``summary`` (two sentences joined), ``doc_marker_plus_own`` (a sentence copied with the
document's marker and the model's own) and the hand-written ``paraphrase``.

Usage::

    python benchmarks/citations_adversarial.py ../shared/data/medquad ../shared/data/pubmedqa \\
        ../shared/data/tatqa --docs 40
"""

from __future__ import annotations

import argparse
import inspect
import json
import platform
import random
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from domainrag.answer.citations import CitationChecker, Source, normalize_number
from domainrag.answer.templates import ABSTAIN_MESSAGES, LANGUAGE_NAMES, Templates, source_fields

sys.path.insert(0, str(Path(__file__).parent))
from citations import doc_sentences, load_docs  # noqa: E402  (the labelled set's sentence picker)

ATTACKS = ("padding", "negation", "number_unit", "uncited", "range", "echo_prompt", "echo_instructions",
           "doc_marker")
MIXED = ("uncited_mixed", "appended_clause", "antonym")
SUPPORTED = ("verbatim", "lead_in", "cite_at_end", "list", "reorder", "synonym", "numbers_reformatted",
             "kept_negation", "summary", "doc_marker_plus_own", "paraphrase")
MIN_GROUNDED = 0.5
ABSTAIN = ABSTAIN_MESSAGES["en"]


@dataclass
class Case:
    corpus: str
    cls: str
    answer: str
    sources: list[Source]
    question: str = "What do the documents say?"
    shown: bool = False
    grounded: float = 0.0
    reason: str | None = None


# -- rewrites ---------------------------------------------------------------------------------
PADDINGS = (" and [{a}] and [{b}].", ". See [{a}]. Source: [{b}].", " [{a}][{b}][{c}].", ". {w1} [{a}]. {w2} [{b}].",
            ". Yes [{a}]. It is so [{b}].", ". Here is the source: [{a}].", " [{a}], as stated in [{b}].")
RANGES = ("[1-100]", "[1-{top}]", "[0]", "[01]", "[1.5]", "[1,2,3,...]", "[1, 2, …]", "[{n}-{top}]", "【0】")
LEADS = ("According to the documents, ", "The sources state that ", "Based on the provided sources, ",
         "As the documents explain, ")
META_LEADS = ("Here is what the documents say:", "Based on the provided sources:", "In summary:")
AUX = re.compile(r"\b(is|are|was|were|can|may|should|will|could|might|must|has|have|does|do|did)\b(?= (?!only\b)[a-z])")
NEGATED = re.compile(r"\b(?:not|never|no)\b(?! (?:only|more|less|longer)\b)(?!\.) ?|(?<=\w)n't\b", re.IGNORECASE)
UNIT_SWAPS = {"mg": "g", "g": "mg", "mcg": "mg", "micrograms": "milligrams", "milligrams": "grams",
              "grams": "milligrams", "kg": "g", "ml": "l", "mL": "L", "million": "billion",
              "billion": "million", "thousand": "million", "days": "weeks", "weeks": "months",
              "months": "years", "years": "months", "hours": "days", "minutes": "hours", "%": " percentage points"}
UNIT_RE = re.compile(r"(?<![\w.])(\d[\d,]*(?:\.\d+)?)(\s?)(" + "|".join(
    re.escape(u) for u in sorted(UNIT_SWAPS, key=len, reverse=True)) + r")(?![\w])")
NUMBER_RE = re.compile(r"(?<![\w.,])\d+(?:\.\d+)?(?![\w,]|\.\d)")
SYNONYMS = {"patients": "people", "people": "persons", "doctor": "physician", "doctors": "physicians",
            "often": "frequently", "usually": "typically", "common": "frequent", "includes": "comprises",
            "include": "comprise", "help": "assist", "helps": "assists", "large": "big", "small": "little",
            "causes": "leads to", "cause": "lead to", "shows": "indicates", "showed": "indicated",
            "about": "around", "also": "additionally", "however": "yet"}
ANTONYMS = {"increase": "decrease", "increased": "decreased", "increases": "decreases", "decrease": "increase",
            "decreased": "increased", "higher": "lower", "lower": "higher", "more": "less", "less": "more",
            "before": "after", "after": "before", "positive": "negative", "negative": "positive",
            "improved": "worsened", "reduced": "raised", "reduces": "raises", "gain": "loss", "loss": "gain"}
REFORMATS = ((re.compile(r"(\d)\s?mg\b"), r"\1 milligrams"), (re.compile(r"(\d)\s?%"), r"\1 percent"),
             (re.compile(r"(?<![\d,])(\d{1,3}),(\d{3})(?![\d,])"), r"\1\2"),
             (re.compile(r"(\d)\s?kg\b"), r"\1 kilograms"),
             (re.compile(r"(\d)\s?ml\b"), r"\1 milliliters"))


def body(sentence: str) -> str:
    return sentence.rstrip().rstrip(".!?。").rstrip()


def lower_first(text: str) -> str:
    return text[:1].lower() + text[1:] if text[1:2].islower() or len(text) < 2 else text


def toggle_negation(sentence: str) -> str | None:
    """The sentence with its first negation dropped, or with "not" after its first auxiliary."""
    if NEGATED.search(sentence):
        return NEGATED.sub("", sentence, count=1)
    if re.search(r"\b(?:without|none|nothing|neither|nor|cannot)\b", sentence, re.IGNORECASE):
        return None
    m = AUX.search(sentence)
    return sentence[: m.end()] + " not" + sentence[m.end() :] if m else None


def change_number(sentence: str, doc_text: str, rng: random.Random) -> str | None:
    m = UNIT_RE.search(sentence)
    if m and rng.random() < 0.7:
        unit = UNIT_SWAPS[m.group(3)]
        new_unit = unit if unit.startswith(" ") else m.group(2) + unit
        if re.search(re.escape(m.group(1)) + r"\s?" + re.escape(unit.strip()) + r"\b", doc_text):
            return None
        return sentence[: m.start()] + m.group(1) + new_unit + sentence[m.end() :]
    numbers = [x for x in NUMBER_RE.finditer(sentence) if not re.fullmatch(r"(19|20)\d\d", x.group())]
    if not numbers:
        return None
    x = rng.choice(numbers)
    raw = x.group()
    digits = raw.replace(".", "")
    if "." in raw:
        candidates = [digits.lstrip("0") or "0"]
    elif len(raw) > 1:
        candidates = [raw[:-1] + "." + raw[-1], raw + "0"]
    else:
        candidates = ["0." + raw, raw + "0"]
    present = {normalize_number(x) for x in NUMBER_RE.findall(doc_text)}
    candidates = [c for c in candidates if normalize_number(c) not in present]
    return sentence[: x.start()] + rng.choice(candidates) + sentence[x.end() :] if candidates else None


def invented(sentence: str, texts: list[str]) -> bool:
    """Most of the sentence's words are in none of the texts (boilerplate repeated across
    documents is not invented)."""
    mine = set(re.findall(r"\w+", sentence.lower()))
    return all(len(mine & set(re.findall(r"\w+", t.lower()))) < 0.5 * len(mine) for t in texts)


def reorder(sentence: str) -> str | None:
    core = body(sentence)
    if ", " not in core:
        return None
    head, tail = core.rsplit(", ", 1)
    if len(tail.split()) < 3 or len(head.split()) < 3:
        return None
    return f"{tail[:1].upper()}{tail[1:]}, {lower_first(head)}."


def replace_words(sentence: str, table: dict[str, str]) -> str | None:
    count = 0

    def swap(m: re.Match[str]) -> str:
        nonlocal count
        word = m.group()
        new = table.get(word.lower())
        if new is None or count >= 2:
            return word
        count += 1
        return new.capitalize() if word[0].isupper() else new

    out = re.sub(r"[A-Za-z]+", swap, sentence)
    return out if count else None


def reformat_numbers(sentence: str) -> str | None:
    out = sentence
    for pattern, repl in REFORMATS:
        out = pattern.sub(repl, out)
    return out if out != sentence else None


# -- cases from real passages -----------------------------------------------------------------
def build(corpus: str, docs: list[dict], i: int, rng: random.Random, templates: Templates) -> list[Case]:
    doc = docs[i]
    own = doc_sentences(doc)
    if len(own) < 2:
        return []
    others = rng.sample([j for j in range(len(docs)) if j != i], 3)
    chosen = [doc, docs[others[0]], docs[others[1]]]
    rng.shuffle(chosen)
    texts = [d["text"] for d in chosen]
    n = chosen.index(doc) + 1
    other = rng.choice([k for k in (1, 2, 3) if k != n])
    outside = [s for s in doc_sentences(docs[others[2]]) if invented(s, [d["text"] for d in chosen])]
    if not outside:
        return []
    inv = rng.choice(outside)
    s1, s2 = rng.sample(own, 2)
    cases: list[Case] = []

    def add(cls: str, answer: str | None, source_texts: list[str] | None = None) -> None:
        if answer:
            srcs = [Source(number=k, chunk_id=f"{d['_id']}#0", doc_id=d["_id"], text=t, start=0, end=len(t))
                    for k, (d, t) in enumerate(zip(chosen, source_texts or texts, strict=True), 1)]
            cases.append(Case(corpus, cls, answer, srcs, doc.get("title") or "What do the documents say?"))

    words = [w for w in re.findall(r"[A-Za-z]{4,}", doc["text"])][:40] or ["Yes", "It"]
    pad = rng.choice(PADDINGS).format(a=n, b=other, c=rng.choice((1, 2, 3)), w1=rng.choice(words).capitalize(),
                                      w2=" ".join(rng.sample(words, min(2, len(words)))).capitalize())
    add("padding", f"{body(inv)} [{n}]{pad}")
    negated = [x for x in own if toggle_negation(x)]
    if negated:
        add("negation", f"{body(toggle_negation(rng.choice(negated)) or '')} [{n}].")
    changed = [c for x in own if (c := change_number(x, doc["text"], rng))]
    if changed:
        add("number_unit", f"{body(rng.choice(changed))} [{n}].")
    lead = rng.choice(("", *META_LEADS))
    second = rng.choice(outside)
    add("uncited", f"{lead} {inv} {second if second != inv else ''}".strip())
    marker = rng.choice(RANGES).format(top=rng.randint(4, 9), n=n)
    add("range", f"{body(rng.choice((inv, s1)))} {marker}.")
    prompt = templates.render("general", "en", question=doc.get("title") or "What do the documents say?",
                              sources=source_fields(_sources(chosen, texts)), abstain_message=ABSTAIN,
                              language_name=LANGUAGE_NAMES["en"])
    system, user = (m.content for m in prompt.messages)
    echo = rng.choice((f"{system}\n\n{user}", system, user,
                       re.sub(r"</source>", lambda _m: f"</source> [{rng.choice((1, 2, 3))}]", user)))
    add("echo_prompt", echo)
    rules = [line.lstrip("- ").strip() for line in system.splitlines() if line.startswith("- ")]
    picked = rng.sample(rules, min(3, len(rules)))
    add("echo_instructions", " ".join(f"{body(r)} [{rng.choice((1, 2, 3))}]." for r in picked))
    # a document with its own reference markers
    if rng.random() < 0.5:
        marked = doc["text"].replace(s1, f"{body(s1)} [{other}].", 1)
        add("doc_marker", f"{body(s1)} [{other}].", [marked if t is doc["text"] else t for t in texts])
    else:
        swapped = [(x, m) for x in own for m in NUMBER_RE.finditer(x)]
        ref = rng.randint(10, 60)
        if swapped and str(ref) not in doc["text"]:
            x, m = rng.choice(swapped)
            marked = doc["text"] + f" See also the earlier report [{ref}]."
            add("doc_marker", f"{body(x[: m.start()] + str(ref) + x[m.end():])} [{n}].",
                [marked if t is doc["text"] else t for t in texts])
    add("uncited_mixed", f"{body(s1)} [{n}]. {inv}")
    add("appended_clause", f"{body(s1)}, and {lower_first(body(inv))} [{n}].")
    ant = [c for x in own if (c := replace_words(x, ANTONYMS))]
    if ant:
        add("antonym", f"{body(rng.choice(ant))} [{n}].")
    # supported
    add("verbatim", f"{body(s1)} [{n}]." + (f" {body(s2)} [{n}]." if rng.random() < 0.5 else ""))
    add("lead_in", f"{rng.choice(META_LEADS)} {body(s1)} [{n}]." if rng.random() < 0.5
        else f"{rng.choice(LEADS)}{lower_first(body(s1))} [{n}].")
    add("cite_at_end", f"{body(s1)}. {body(s2)} [{n}].")
    add("list", f"1. {body(s1)} [{n}]\n2. {body(s2)} [{n}]")
    reordered = [r for x in own if (r := reorder(x))]
    if reordered:
        add("reorder", f"{body(rng.choice(reordered))} [{n}].")
    synonyms = [r for x in own if (r := replace_words(x, SYNONYMS))]
    if synonyms:
        add("synonym", f"{body(rng.choice(synonyms))} [{n}].")
    reformatted = [r for x in own if (r := reformat_numbers(x))]
    if reformatted:
        add("numbers_reformatted", f"{body(rng.choice(reformatted))} [{n}].")
    kept = [x for x in own if NEGATED.search(x)]
    if kept:
        add("kept_negation", f"{rng.choice(LEADS)}{lower_first(body(rng.choice(kept)))} [{n}].")
    add("summary", f"{body(s1)}, and {lower_first(body(s2))} [{n}].")
    marked = doc["text"].replace(s1, f"{body(s1)} [{other}].", 1)
    add("doc_marker_plus_own", f"{body(s1)} [{other}] [{n}].", [marked if t is doc["text"] else t for t in texts])
    return cases


def _sources(chosen: list[dict], texts: list[str]) -> list[Source]:
    return [Source(number=k, chunk_id=f"{d['_id']}#0", doc_id=d["_id"], text=t, start=0, end=len(t), title=d.get("title", ""))
            for k, (d, t) in enumerate(zip(chosen, texts, strict=True), 1)]


# -- hand-written templates -------------------------------------------------------------------
ASPIRIN = ("Low-dose aspirin is used to prevent heart attacks in adults at high risk. The usual low dose is 81 mg "
           "once a day. Aspirin is not recommended for children under 16 because of Reye's syndrome. Stomach "
           "bleeding is the most common serious side effect.")
REVENUE = ("Revenue of the Fintech segment grew 39% year on year to RMB 101.4 billion in 2019. Operating costs "
           "increased 12% to RMB 40.2 billion. The company did not pay a dividend in 2019.")
PRIVACY = ("We do not sell your personal information to third parties. We share data with service providers "
           "only to operate the website. You may request deletion of your account at any time.")
PASSAGES = (ASPIRIN, REVENUE, PRIVACY)
HAND: tuple[tuple[str, str], ...] = (
    ("padding", "Aspirin cures migraines in teenagers within one hour [1] and [1] and [2]."),
    ("padding", "Revenue fell sharply in 2019 [2]. Revenue [2]. Fintech [2]. Dividend [2]."),
    ("negation", "The usual low dose is not 81 mg once a day [1]."),
    ("negation", "Aspirin is recommended for children under 16 [1]."),
    ("negation", "We sell your personal information to third parties [3]."),
    ("negation", "The company paid a dividend in 2019 [2]."),
    ("number_unit", "The usual low dose is 81 g once a day [1]."),
    ("number_unit", "Revenue of the Fintech segment grew 39% to RMB 101.4 million in 2019 [2]."),
    ("number_unit", "Revenue of the Fintech segment grew 3.9% year on year in 2019 [2]."),
    ("number_unit", "Operating costs increased 12% to USD 40.2 billion [2]."),
    ("uncited", "Here is what the documents say: aspirin also prevents strokes in children."),
    ("range", "Aspirin cures migraines in teenagers [1-100]."),
    ("range", "The usual low dose is 81 mg once a day [01]."),
    ("echo_instructions", "Use only facts stated in the sources, never outside knowledge [1]. Copy numbers, "
                          "amounts, dates, units and names exactly as the sources state them [2]."),
    ("uncited_mixed", "The usual low dose is 81 mg once a day [1]. It also cures migraines within an hour."),
    ("appended_clause", "Low-dose aspirin is used to prevent heart attacks and cancer in adults at high risk [1]."),
    ("antonym", "Operating costs decreased 12% to RMB 40.2 billion [2]."),
    ("paraphrase", "For adults at high risk, a low daily dose of aspirin helps prevent heart attacks [1]."),
    ("paraphrase", "Children under 16 should not be given aspirin because of the risk of Reye's syndrome [1]."),
    ("paraphrase", "The most common serious side effect of aspirin is bleeding in the stomach [1]."),
    ("paraphrase", "In 2019 the Fintech segment's revenue rose 39% to RMB 101.4 billion [2]."),
    ("paraphrase", "The company paid no dividend in 2019 [2]."),
    ("paraphrase", "Your personal information is not sold to third parties [3]."),
    ("paraphrase", "You can ask for your account to be deleted whenever you want [3]."),
    ("paraphrase", "Kids younger than 16 shouldn't take aspirin since it can cause Reye's syndrome [1]."),
    ("paraphrase", "Data is shared with service providers, but only so the website can run [3]."),
    ("paraphrase", "Costs of operations went up by 12 percent, reaching RMB 40.2 billion [2]."),
)


def hand_cases() -> list[Case]:
    sources = [Source(number=k, chunk_id=f"hand{k}#0", doc_id=f"hand{k}", text=t, start=0, end=len(t)) for k, t in enumerate(PASSAGES, 1)]
    return [Case("hand", cls, answer, sources) for cls, answer in HAND]


# -- evaluation -------------------------------------------------------------------------------
def evaluate(cases: list[Case], templates: Templates, verifier: str = "offline") -> None:
    """The pipeline's decision for each case (the old code's where the new hooks are absent);
    ``verifier``: ``offline`` (the shipped verifier, the default since issue 19) or ``lexical``."""
    checker = CitationChecker()
    if verifier != "lexical":
        from domainrag.models.verification import load_verifier

        checker = CitationChecker(verifier=load_verifier(verifier))
    takes_instructions = "instructions" in inspect.signature(checker.check).parameters
    try:
        from domainrag.answer.pipeline import abstain_reason, prompt_instructions
    except ImportError:  # the code before issue 11: no echo checks, grounded over cited sentences only
        abstain_reason = prompt_instructions = None
    for case in cases:
        prompt = templates.render("general", "en", question=case.question, sources=source_fields(case.sources),
                                  abstain_message=ABSTAIN, language_name=LANGUAGE_NAMES["en"])
        if takes_instructions and prompt_instructions is not None:
            instructions = prompt_instructions(prompt, case.question, case.sources, ABSTAIN)
            result = checker.check(case.answer, case.sources, instructions)
        else:
            result = checker.check(case.answer, case.sources)
        verdicts = [s.supported for s in result.sentences]
        if abstain_reason is not None:
            case.reason = abstain_reason(result, verdicts, MIN_GROUNDED, ABSTAIN)
        else:
            case.reason = "citations_failed" if result.grounded < MIN_GROUNDED else None
        case.shown = case.reason is None
        case.grounded = result.grounded


def table(cases: list[Case]) -> dict[str, dict[str, float | int]]:
    out: dict[str, dict[str, float | int]] = {}
    for cls in (*ATTACKS, *MIXED, *SUPPORTED):
        mine = [c for c in cases if c.cls == cls]
        if not mine:
            continue
        shown = sum(c.shown for c in mine)
        full = sum(c.shown and c.grounded == 1.0 for c in mine)
        row: dict[str, float | int] = {"n": len(mine), "shown": shown / len(mine),
                                       "shown_fully_grounded": full / len(mine)}
        if cls in SUPPORTED:
            row["false_flag"] = 1 - full / len(mine)
        out[cls] = row
    return out


def summary(cases: list[Case]) -> dict[str, float | int]:
    attacks = [c for c in cases if c.cls in ATTACKS]
    mixed = [c for c in cases if c.cls == "uncited_mixed"]
    supported = [c for c in cases if c.cls in SUPPORTED]
    return {"unsupported_answers": len(attacks), "unsupported_shown": sum(c.shown for c in attacks),
            "uncited_mixed_shown_fully_grounded": sum(c.shown and c.grounded == 1.0 for c in mixed),
            "supported_answers": len(supported),
            "supported_false_flag_rate": sum(not (c.shown and c.grounded == 1.0) for c in supported) / len(supported)}


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("data", nargs="+", type=Path, help="BEIR dataset folders")
    parser.add_argument("--docs", type=int, default=40, help="documents per dataset")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--verifier", default="offline", choices=("offline", "lexical"),
                        help="offline: the shipped verifier (default); lexical: the word rules alone")
    parser.add_argument("--baseline", type=Path, help="a results file of another code version, shown alongside")
    parser.add_argument("--examples", type=int, default=0, help="failures kept per class in the output")
    parser.add_argument("--out", type=Path,
                        default=Path(__file__).parent / "results" / "citations_adversarial.json")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    templates = Templates()
    cases = hand_cases()
    for folder in args.data:
        docs = load_docs(folder)
        built = 0
        for i in rng.sample(range(len(docs)), len(docs)):
            made = build(folder.name, docs, i, rng, templates)
            if made:
                cases += made
                built += 1
            if built == args.docs:
                break
    t0 = time.perf_counter()
    evaluate(cases, templates, args.verifier)
    seconds = time.perf_counter() - t0
    report: dict = {"summary": summary(cases), "by_class": table(cases),
                    "by_corpus": {c: table([x for x in cases if x.corpus == c])
                                  for c in dict.fromkeys(x.corpus for x in cases)}}
    if args.examples:
        report["failures"] = {cls: [{"answer": c.answer[:400], "grounded": round(c.grounded, 3), "reason": c.reason}
                                    for c in cases if c.cls == cls and c.shown == (cls in ATTACKS)
                                    and (cls in ATTACKS or not (c.shown and c.grounded == 1.0))][: args.examples]
                              for cls in (*ATTACKS, *SUPPORTED)}
    if args.baseline and args.baseline.exists():
        base = json.loads(args.baseline.read_text())
        report["baseline"] = {"summary": base["summary"], "by_class": base["by_class"], "setup": base.get("setup")}
    report["setup"] = {"data": [str(p) for p in args.data], "docs": args.docs, "seed": args.seed,
                       "verifier": args.verifier,
                       "answers": len(cases), "check_s": round(seconds, 2), "min_grounded": MIN_GROUNDED,
                       "machine": platform.platform(), "python": platform.python_version(),
                       "date": time.strftime("%Y-%m-%d")}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2, ensure_ascii=False))
    print_table(report)


def print_table(report: dict) -> None:
    base = report.get("baseline", {}).get("by_class", {})
    print(f"{'class':<22}{'n':>5}{'shown':>9}{'fully grounded':>16}" + ("   before: shown / fully" if base else ""))
    for cls, row in report["by_class"].items():
        group = "attack" if cls in ATTACKS else "mixed" if cls in MIXED else "ok"
        line = f"{cls:<22}{row['n']:>5}{row['shown']:>9.1%}{row['shown_fully_grounded']:>16.1%}  {group}"
        if cls in base:
            line += f"   {base[cls]['shown']:.1%} / {base[cls]['shown_fully_grounded']:.1%}"
        print(line)
    s = report["summary"]
    print(f"\nunsupported answers shown: {s['unsupported_shown']} of {s['unsupported_answers']}; "
          f"false-flag rate on supported answers: {s['supported_false_flag_rate']:.1%} of {s['supported_answers']}")


if __name__ == "__main__":
    main()
