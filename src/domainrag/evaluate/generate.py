"""Generated suites: questions with reference answers, gold spans and scenario tags written
from the knowledge base's own documents, so a team without a hand-written suite can evaluate
at once (``domainrag suite generate``).

Each record is a suite record (see :mod:`.suite`) marked ``"generated": true``::

    {"id": "gen-0001",
     "question": "The usual starting dose of metformin for adults is ___ taken twice daily with meals? \
(fill in the blank)",
     "answers": ["500 mg"],
     "gold": [{"doc_id": "medical/dosage.md", "quote": "The usual starting dose ... with meals.",
               "start": 26, "end": 113}],
     "scenario": ["markdown", "medical", "en", "generator:heuristic"], "generated": true}

``quote`` is always ``document.text[start:end]``.

**Sampling** (the same seed gives the same suite): the documents, shuffled by the seed, are
visited round-robin, each giving its next passage, at most ``ceil(n / documents) + 1`` cases per
document. A document's passages, in a seeded order, are its informative sentences (8–60 words
in English, 15–120 characters in Chinese; not headings, questions, table lines or sentences
without letters) — or, for a table (CSV/TSV: metadata ``columns``), its data rows.

**Scenario tags**: the document's format (metadata ``format``, else its file extension), its
top folder (the doc id's first path component, when it has one), the passage's language
(``en``/``zh``), and ``generator:heuristic`` or ``generator:<model id>``.

**Generators**:

* ``heuristic`` (no model; ``model`` None or ``extractive``): a cloze question — the sentence
  with one span masked as ``___``: a number with its unit or scale word (``500 mg``,
  ``$4.2 million``, ``三个月``), else a capitalised name (not the sentence's first word), else
  the longest word that is not a stopword (Chinese: a 《quoted》 term or a Latin-script word).
  The answer is the masked span. A table row becomes a lookup question: "What is the
  revenue for year 2022, region Europe in rates?", answered by one cell (a number first).
* a model (``provider:model``): template ``generate.LANG.j2`` shows a passage (the sentence and
  up to two following ones of its paragraph; a row with its table's header) and asks for
  ``{"question": ..., "answer": ...}``; gold is the passage's span. A reply without a readable
  JSON object counts as unparseable; model calls stop at ``2 * n``.

Cases whose answer is empty or appears in its question, and repeated questions, are skipped.
"""

from __future__ import annotations

import json
import math
import random
import re
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..answer.templates import quote_data
from ..errors import ConfigError, EmptyKnowledgeBase
from ..index.store import visible
from ..models.generation import GenerationRequest
from ..models.json_reply import json_objects
from ..text import detect_language, sentence_spans

if TYPE_CHECKING:  # pragma: no cover
    from ..kb import KnowledgeBase

HEURISTIC = "heuristic"
#: (fewest, most) words of an English sentence / characters of a Chinese one to ask about.
SIZE_LIMITS = {"en": (8, 60), "zh": (15, 120)}
MAX_TOKENS = 200

_UNITS = ("%|percent|per cent|percentage points?|thousand|million|billion|trillion|bn|"
          "mg|mcg|µg|g|kg|ml|l|mm|cm|m|km|micrograms?|milligrams?|grams?|kilograms?|litres?|liters?|"
          "seconds?|minutes?|hours?|days?|weeks?|months?|years?|times|dollars?|euros?|pounds?|yuan|usd|eur")
_EN_NUMBER = re.compile(rf"(?<![\w.,-])(?P<number>[$€£¥]?\d+(?:[.,]\d+)*)"
                        rf"(?P<unit>(?:\s?(?:{_UNITS})(?![\w%]))*)", re.IGNORECASE)
_ZH_UNITS = "%|％|个月|年|月|日|天|周|小时|分钟|万元|亿元|元|美元|倍|岁|次|人|名|项|条|毫克|克|千克|公斤|公里|米"
_ZH_NUMBER = re.compile(rf"(?<![A-Za-z0-9.,-])(?P<number>\d+(?:[.,]\d+)*"
                        rf"|[零〇一二两三四五六七八九十百千万亿]+(?=(?:{_ZH_UNITS})))"
                        rf"(?P<unit>(?:{_ZH_UNITS})?)")
_ENTITY = re.compile(r"\b[A-Z][\w'-]*(?:\s+[A-Z][\w'-]*)*")
_WORD = re.compile(r"\b[A-Za-z][A-Za-z-]{3,}\b")
_ZH_TERM = re.compile(r"[《“「]([^》”」]{1,30})[》”」]|(?<![A-Za-z])([A-Za-z][\w-]+)")
_LETTER = re.compile(r"[^\W\d_]")
_STOPWORDS = frozenset([
    "about", "above", "according", "across", "after", "again", "against", "along", "also", "although",
    "among", "another", "because", "been", "before", "being", "below", "between", "both", "cannot", "could",
    "does", "doing", "down", "during", "each", "either", "every", "from", "further", "have", "having", "here",
    "however", "into", "itself", "just", "less", "made", "make", "many", "more", "most", "much", "must",
    "neither", "only", "other", "otherwise", "over", "same", "shall", "should", "since", "some", "such",
    "than", "that", "their", "them", "then", "there", "therefore", "these", "they", "this", "those", "though",
    "through", "thus", "under", "unless", "until", "upon", "very", "were", "what", "when", "where", "whether",
    "which", "while", "whom", "whose", "will", "with", "within", "without", "would", "your",
])

Draft = tuple[str, str]  # (question, answer)


@dataclass(frozen=True)
class GeneratedSuite:
    """Suite ``records`` (JSONL objects), the ``generator``'s name, and the passages given up:
    ``skipped`` (nothing to mask; an empty, repeated or given-away answer) and ``unparseable``
    (a model reply without a readable JSON object)."""

    records: list[dict[str, Any]]
    generator: str
    skipped: int = 0
    unparseable: int = 0


@dataclass(frozen=True)
class Passage:
    """``doc["text"][start:end]`` in ``language``; ``header`` is a table row's header row."""

    doc: dict[str, Any]
    start: int
    end: int
    language: str
    header: str = ""

    @property
    def quote(self) -> str:
        return str(self.doc["text"][self.start:self.end])


def generate_suite(kb: KnowledgeBase, n: int, model: str | None = None, seed: int = 0,
                   groups: frozenset[str] | None = None) -> GeneratedSuite:
    """Up to ``n`` cases from ``kb``'s documents that ``groups`` may read (``None``: all; fewer
    cases when there are too few passages)."""
    if n < 1:
        raise ConfigError(f"The number of cases must be at least 1 (got {n}).")
    docs = [doc for doc in kb.store.iter_documents() if visible(doc["metadata"], groups)]
    if not docs:
        raise EmptyKnowledgeBase(f"The knowledge base at {kb.location} holds no documents yet. Add some with "
                                 f"'domainrag ingest PATH --kb {kb.location}' first.")
    spec = model.strip() if model and model.strip() not in ("", "extractive") else None
    use_model = spec is not None
    name, write = _model_writer(kb, spec) if spec else (HEURISTIC, heuristic_question)
    cap, calls = math.ceil(n / len(docs)) + 1, 2 * n if use_model else math.inf
    records: list[dict[str, Any]] = []
    given_up: Counter[str] = Counter()
    per_doc: Counter[str] = Counter()
    questions: set[str] = set()
    for passage in _passages(docs, seed, extend=use_model):
        if len(records) == n or calls <= 0:
            break
        if per_doc[passage.doc["id"]] >= cap:
            continue
        calls -= 1
        draft = write(passage)
        if draft is None or not _usable(*draft, questions):
            given_up["unparseable" if draft is None and use_model else "skipped"] += 1
            continue
        questions.add(draft[0].casefold())
        per_doc[passage.doc["id"]] += 1
        records.append(_record(len(records) + 1, passage, *draft, name))
    return GeneratedSuite(records, name, given_up["skipped"], given_up["unparseable"])


def write_suite(records: list[dict[str, Any]], path: str | Path) -> Path:
    """Write ``records`` as a JSONL suite (UTF-8, one object per line)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    return path


def scenario_tags(doc: dict[str, Any], language: str) -> list[str]:
    """The document's format, its top folder (when its id has one) and the language."""
    fmt = doc["metadata"].get("format") or Path(doc["source"] or doc["id"]).suffix.lstrip(".").lower()
    folder = doc["id"].split("/", 1)[0] if "/" in doc["id"] else ""
    return [tag for tag in dict.fromkeys((str(fmt), folder, language)) if tag]


def _record(number: int, passage: Passage, question: str, answer: str, generator: str) -> dict[str, Any]:
    gold = {"doc_id": passage.doc["id"], "quote": passage.quote, "start": passage.start, "end": passage.end}
    return {"id": f"gen-{number:04d}", "question": question, "answers": [answer], "gold": [gold],
            "scenario": [*scenario_tags(passage.doc, passage.language), f"generator:{generator}"],
            "generated": True}


def _usable(question: str, answer: str, questions: set[str]) -> bool:
    folded = question.casefold()
    return bool(question and answer) and answer.casefold() not in folded and folded not in questions


# -- sampling -------------------------------------------------------------------------------
def _passages(docs: list[dict[str, Any]], seed: int, extend: bool) -> Iterator[Passage]:
    """Round-robin over the documents in a seeded order, each giving its next passage."""
    order = sorted(docs, key=lambda d: d["id"])
    random.Random(seed).shuffle(order)
    queues = [_doc_passages(doc, seed, extend) for doc in order]
    while queues:
        alive = []
        for queue in queues:
            passage = next(queue, None)
            if passage is not None:
                alive.append(queue)
                yield passage
        queues = alive


def _doc_passages(doc: dict[str, Any], seed: int, extend: bool) -> Iterator[Passage]:
    """A document's passages in an order seeded by ``seed`` and its id (computed when first asked)."""
    if isinstance(doc["metadata"].get("columns"), list):
        units = _rows(doc)
    else:
        spans = sentence_spans(doc["text"])
        units = [p for i in range(len(spans)) if (p := _sentence(doc, spans, i, extend))]
    random.Random(f"{seed}:{doc['id']}").shuffle(units)
    yield from units


def _rows(doc: dict[str, Any]) -> list[Passage]:
    """A table's data rows (the loader writes ``cell | cell`` lines, the header first)."""
    lines = list(re.finditer(r"[^\n]+", doc["text"]))
    header = lines[0].group() if lines else ""
    return [Passage(doc, m.start(), m.end(), detect_language(header + m.group()), header) for m in lines[1:]]


def _sentence(doc: dict[str, Any], spans: list[tuple[int, int]], i: int, extend: bool) -> Passage | None:
    """Sentence ``i`` if informative — with ``extend``, plus up to two following sentences of
    its paragraph while the passage stays under twice the size limit."""
    text = doc["text"]
    start, end = spans[i]
    sentence = text[start:end]
    language = detect_language(sentence)
    low, high = SIZE_LIMITS[language]
    if (sentence.startswith("#") or sentence.endswith(("?", "？")) or " | " in sentence
            or not _LETTER.search(sentence) or not low <= _size(sentence, language) <= high):
        return None
    for next_start, next_end in spans[i + 1:i + 3] if extend else ():
        if "\n\n" in text[end:next_start] or _size(text[start:next_end], language) > 2 * high:
            break
        end = next_end
    return Passage(doc, start, end, language)


def _size(text: str, language: str) -> int:
    """Words (English) or non-space characters (Chinese)."""
    return len(text.split()) if language == "en" else len("".join(text.split()))


# -- the heuristic generator ----------------------------------------------------------------
def heuristic_question(passage: Passage) -> Draft | None:
    """A cloze question (a lookup question for a table row) and its answer; None when
    nothing in the passage can be masked without the answer staying in the question."""
    if passage.header:
        return _row_question(passage)
    sentence = passage.quote
    for start, end in _mask_candidates(sentence, passage.language):
        answer = sentence[start:end]
        question = _cloze(sentence[:start] + "___" + sentence[end:], passage.language)
        if answer.casefold() not in question.casefold():
            return question, answer
    return None


def _mask_candidates(sentence: str, language: str) -> list[tuple[int, int]]:
    """Spans to mask, best first: numbers with a unit, bare numbers, then (English) names,
    longest first, and content words, longest first; (Chinese) quoted terms and Latin words."""
    numbers = list((_EN_NUMBER if language == "en" else _ZH_NUMBER).finditer(sentence))
    spans = [m.span() for m in numbers if m.group("unit")] + [m.span() for m in numbers if not m.group("unit")]
    if language != "en":
        return spans + [m.span(1) if m.group(1) else m.span(2) for m in _ZH_TERM.finditer(sentence)]
    first_word = len(sentence.split(None, 1)[0])
    names = [m.span() for m in _ENTITY.finditer(sentence, first_word)
             if len(m.group()) > 1 and m.group().lower() not in _STOPWORDS]
    words = [m.span() for m in _WORD.finditer(sentence) if m.group().lower() not in _STOPWORDS]
    return spans + sorted(names, key=lambda s: s[0] - s[1]) + sorted(words, key=lambda s: s[0] - s[1])


def _cloze(masked: str, language: str) -> str:
    body = " ".join(masked.split()).rstrip(".。;；!！:：")
    return f"{body}? (fill in the blank)" if language == "en" else f"{body}？（填空）"


def _row_question(passage: Passage) -> Draft | None:
    """"What is the <column> for <other column> <value>, ... in <title>?" answered by one cell:
    the first numeric cell after the first column, else the last non-empty one."""
    columns, cells = passage.header.split(" | "), passage.quote.split(" | ")
    if len(columns) != len(cells) or len(cells) < 2:
        return None
    numeric = [i for i in range(1, len(cells)) if any(c.isdigit() for c in cells[i])]
    filled = [i for i in range(1, len(cells)) if cells[i]]
    if not filled:
        return None
    target = numeric[0] if numeric else filled[-1]
    keys = [(columns[i], cells[i]) for i in range(len(cells)) if i != target and columns[i] and cells[i]]
    if not keys:
        return None
    title = passage.doc["title"] or passage.doc["id"]
    if passage.language == "en":
        where = ", ".join(f"{column} {value}" for column, value in keys)
        return f"What is the {columns[target]} for {where} in {title}?", cells[target]
    where = "，".join(f"{column}为{value}" for column, value in keys)
    return f"{title}中{where}的{columns[target]}是多少？", cells[target]


# -- the model generator --------------------------------------------------------------------
def _model_writer(kb: KnowledgeBase, spec: str) -> tuple[str, Callable[[Passage], Draft | None]]:
    """The model's id and a function asking it for a question about a passage (through the
    answerer's model-call cache and price table, when set)."""
    answerer = kb.answerer
    generator = answerer.generator(spec)

    def write(passage: Passage) -> Draft | None:
        shown = f"{passage.header}\n{passage.quote}" if passage.header else passage.quote
        title = quote_data(passage.doc["title"] or passage.doc["id"]).replace('"', "'")
        prompt = answerer.templates.render("generate", passage.language, passage=quote_data(shown), title=title)
        generation = answerer.complete(generator, GenerationRequest(prompt.messages, max_tokens=MAX_TOKENS, json=True))
        return parse_draft(generation.text)

    return generator.id, write


def parse_draft(text: str) -> Draft | None:
    """(question, answer) from a model's reply: the first JSON object in the text (the whole
    reply, or one wrapped in prose or a code fence) holding a ``question``; None when there is
    none. A number answer is kept as text; any other non-text answer becomes empty."""
    for data, _repaired in json_objects(text):
        if isinstance(data.get("question"), str):
            answer = data.get("answer")
            answer = "" if isinstance(answer, bool) or not isinstance(answer, (str, int, float)) else str(answer)
            return " ".join(data["question"].split()), answer.strip()
    return None
