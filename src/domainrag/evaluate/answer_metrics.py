"""Answer-quality metrics: exact match, token F1, numeric match, abstention and citation scores.

Every function is pure and deterministic (no model). Text metrics compare a *prediction* with
one or more *references* (acceptable gold answers) and keep the best score over references.

- ``normalize_answer``: SQuAD's normalisation, made Unicode-aware (NFKC, CJK punctuation).
- ``exact_match``: 1.0 when the normalised prediction equals a normalised reference.
- ``token_f1``: SQuAD's bag-of-tokens F1; Chinese/Japanese/Korean text is compared by
  character.
- ``numeric_match``: finance-style equality of numbers ("1.2 million" == "1,200,000").
- ``abstention_scores``: how well a system declines unanswerable questions.
- ``citation_scores``: precision and recall of cited sources against gold evidence.
"""

from __future__ import annotations

import math
import re
import string
import unicodedata
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ..errors import ConfigError
from ..text import CJK_RANGES

_ASCII_PUNCT = frozenset(string.punctuation)
_ARTICLES = re.compile(r"\b(a|an|the)\b")
_CJK_CHAR = re.compile(f"[{CJK_RANGES}]")
_CJK_TOKEN = re.compile(rf"[{CJK_RANGES}]|[^\W{CJK_RANGES}]+")

_SCALE_WORDS = {
    "thousand": 1e3, "k": 1e3,
    "million": 1e6, "mn": 1e6, "m": 1e6,
    "billion": 1e9, "bn": 1e9, "b": 1e9,
    "trillion": 1e12, "tn": 1e12,
}
_CJK_SCALES = {"百": 1e2, "千": 1e3, "万": 1e4, "亿": 1e8}
_NUMBER = re.compile(
    r"(?P<paren>\(\s*)?"  # accounting negative: (1,234)
    r"(?:(?<![0-9A-Za-z])(?P<minus>[-−]))?"  # a minus sign not glued to a word (2019-2020)
    r"[$€£¥]?"
    r"(?<![\d.])(?P<digits>\d{1,3}(?:,\d{3})+(?!\d)(?:\.\d+)?|\d+(?:\.\d+)?)"
    r"(?:\s*(?:%|percent|per\s+cent)(?![a-z])"  # a percentage keeps its value
    r"|\s*(?P<word>thousand|million|billion|trillion|bn|mn|tn)(?![a-z])"
    r"|(?P<letter>[kmb])(?![a-z])"
    r"|\s*(?P<cjk>(?:[百千]?[万亿])+))?"
    r"(?(paren)\s*\))",
    re.IGNORECASE,
)


def normalize_answer(text: str) -> str:
    """SQuAD's answer normalisation, Unicode-aware.

    In order: Unicode NFKC (full-width letters, digits and punctuation become their ASCII
    forms), lower-case, delete punctuation (ASCII ``string.punctuation`` and every Unicode
    punctuation character, e.g. ``。，、「」``; deleted, not replaced by a space, as SQuAD does:
    ``"don't"`` -> ``"dont"``, ``"1,200"`` -> ``"1200"``), remove the English articles *a*,
    *an*, *the*, and collapse runs of whitespace to one space (trimmed).
    ``"The  Cat!"`` -> ``"cat"``.
    """
    text = unicodedata.normalize("NFKC", text).lower()
    text = "".join(
        ch for ch in text
        if ch not in _ASCII_PUNCT and not unicodedata.category(ch).startswith("P")
    )
    return " ".join(_ARTICLES.sub(" ", text).split())


def _check_references(references: Sequence[str]) -> None:
    if isinstance(references, str) or not references:
        raise ConfigError("references must be a non-empty sequence of strings")


def exact_match(prediction: str, references: Sequence[str]) -> float:
    """1.0 if the normalised prediction equals any normalised reference, else 0.0.

    Normalisation is :func:`normalize_answer`. Raises ``ValueError`` when ``references`` is
    empty (a case without references cannot be scored; skip it).
    """
    _check_references(references)
    pred = normalize_answer(prediction)
    return float(any(pred == normalize_answer(ref) for ref in references))


def answer_tokens(text: str) -> list[str]:
    """The tokens :func:`token_f1` compares: those of the normalised text.

    When the text contains CJK characters (Chinese, Japanese kana, Korean Hangul), every CJK
    character is one token and each run of other word characters is one token, so Chinese is
    compared by character; otherwise the tokens are the whitespace-separated words.
    """
    norm = normalize_answer(text)
    if _CJK_CHAR.search(norm):
        return _CJK_TOKEN.findall(norm)
    return norm.split()


def _f1(pred: list[str], gold: list[str]) -> float:
    if not pred or not gold:
        return float(pred == gold)
    same = sum((Counter(pred) & Counter(gold)).values())
    if same == 0:
        return 0.0
    precision, recall = same / len(pred), same / len(gold)
    return 2 * precision * recall / (precision + recall)


def token_f1(prediction: str, references: Sequence[str]) -> float:
    """SQuAD token F1, the best over references.

    With the bags (multisets) of :func:`answer_tokens` of the prediction and of a reference,
    ``common`` is the size of their intersection, precision = common / prediction tokens,
    recall = common / reference tokens and F1 = 2 * precision * recall / (precision + recall)
    (0 when nothing is shared). When either side has no tokens, F1 is 1.0 if both are empty and
    0.0 otherwise (SQuAD v2.0's rule; v1.1 gave 0 for two empty answers). Raises ``ValueError``
    when ``references`` is empty.
    """
    _check_references(references)
    pred = answer_tokens(prediction)
    return max(_f1(pred, answer_tokens(ref)) for ref in references)


def _scale(match: re.Match[str]) -> float:
    if match["word"] or match["letter"]:
        return _SCALE_WORDS[(match["word"] or match["letter"]).lower()]
    return math.prod(_CJK_SCALES[ch] for ch in match["cjk"] or "")


def parse_numbers(text: str) -> list[float]:
    """The numbers written in ``text``, in order, as floats with their scale words applied.

    Recognised (after Unicode NFKC, so full-width digits count):

    - thousands separators and decimals: ``"1,200,000"``, ``"12.5"``;
    - currency symbols before the number (``$ € £ ¥``), which are ignored;
    - scale words: ``thousand``/``k``, ``million``/``mn``/``m``, ``billion``/``bn``/``b``,
      ``trillion``/``tn`` (case-insensitive; the one-letter forms must be attached to the
      number, ``"$1.2m"``, ``"1.2M"``), and Chinese ``万`` (1e4) and ``亿`` (1e8), optionally
      with ``百``/``千`` before them and combined (``"1.2亿"`` = 1.2e8, ``"3万亿"`` = 3e12);
    - negatives: a leading minus (``"-5.3"``, not the dash of ``"2019-2020"``) and accounting
      parentheses: ``"(1,234)"`` = -1234 (so any parenthesised bare number reads as negative);
    - percentages, returned as the number before the sign: ``"5.3%"``, ``"5.3 percent"`` and
      ``"5.3 per cent"`` all give 5.3 (not 0.053).
    """
    numbers = []
    for match in _NUMBER.finditer(unicodedata.normalize("NFKC", text)):
        value = float(match["digits"].replace(",", "")) * _scale(match)
        negative = bool(match["paren"]) != bool(match["minus"])
        numbers.append(-value if negative else value)
    return numbers


def numeric_match(
    prediction: str, references: Sequence[str], rel_tol: float = 0.005
) -> float | None:
    """Whether the prediction states a reference's key number (finance-style equivalence).

    Numbers are read with :func:`parse_numbers`. A reference's *key number* is its first
    number. The score is 1.0 when some number of the prediction equals the key number of some
    reference within ``rel_tol`` (``|a - b| <= rel_tol * max(|a|, |b|)``), else 0.0. Values
    are compared after scale words are applied, so the same amount at different stated scales
    matches (``"1.2 million"`` == ``"1,200,000"`` == ``"$1.2m"``). Percentages are compared as
    written, never converted to fractions: ``"5.3%"`` matches ``"5.3 percent"`` (and a bare
    ``"5.3"``) but not ``"0.053"``. Returns ``None`` (not applicable) when no reference contains
    a number; raises ``ValueError`` when ``references`` is empty.
    """
    _check_references(references)
    keys = [numbers[0] for numbers in map(parse_numbers, references) if numbers]
    if not keys:
        return None
    predicted = parse_numbers(prediction)
    hit = any(math.isclose(p, k, rel_tol=rel_tol) for p in predicted for k in keys)
    return float(hit)


def _ratio(num: int, den: int) -> float | None:
    return num / den if den else None


def abstention_scores(records: Iterable[tuple[bool, bool]]) -> dict[str, float | int | None]:
    """Abstention quality from ``(answerable, abstained)`` pairs, one per question.

    A *correct abstention* is an abstention on an unanswerable question; a *false abstention*
    is one on an answerable question.

    - ``abstention_precision`` = correct abstentions / abstentions (None when none);
    - ``abstention_recall`` = correct abstentions / unanswerable questions (None when none);
    - ``abstention_f1`` = their harmonic mean (None when either is None, 0.0 when both are 0);
    - ``false_abstention_rate`` = false abstentions / answerable questions (None when none);
    - ``n_unanswerable`` and ``n_answerable``: the question counts.
    """
    counts = Counter((bool(answerable), bool(abstained)) for answerable, abstained in records)
    correct, false = counts[(False, True)], counts[(True, True)]
    n_unanswerable = counts[(False, True)] + counts[(False, False)]
    n_answerable = counts[(True, True)] + counts[(True, False)]
    precision = _ratio(correct, correct + false)
    recall = _ratio(correct, n_unanswerable)
    f1 = None
    if precision is not None and recall is not None:
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "abstention_precision": precision,
        "abstention_recall": recall,
        "abstention_f1": f1,
        "false_abstention_rate": _ratio(false, n_answerable),
        "n_unanswerable": n_unanswerable,
        "n_answerable": n_answerable,
    }


def _char_range(item: Mapping[str, Any]) -> tuple[int, int] | None:
    start, end = item.get("start"), item.get("end")
    return None if start is None or end is None else (start, end)


def _matches(citation: Mapping[str, Any], gold: Mapping[str, Any]) -> bool:
    """Whether one citation points at one gold evidence item (see :func:`citation_scores`)."""
    if citation.get("doc_id") != gold.get("doc_id"):
        return False
    gold_range = _char_range(gold)
    if gold_range is not None:
        cited = _char_range(citation)
        if cited is None or not (cited[0] < gold_range[1] and gold_range[0] < cited[1]):
            return False
    return gold.get("page") is None or citation.get("page") == gold["page"]


def citation_scores(
    citations: Sequence[Mapping[str, Any]], gold: Sequence[Mapping[str, Any]]
) -> dict[str, float | None] | None:
    """Precision and recall of an answer's citations against gold evidence.

    A citation is ``{"doc_id", "start", "end", "page"}`` (the last three may be None); a gold
    item has a ``doc_id`` and optionally a character range ``start``/``end`` in the document or
    a ``page``. A citation *matches* a gold item when the doc ids are equal and, if the gold
    item has a range (both ``start`` and ``end`` given), the citation has a range that overlaps
    it (ranges are half-open, ``[start, end)``, so touching ranges do not overlap); and, if the
    gold item has a page, the citation's page equals it.

    - ``citation_precision`` = citations matching some gold item / citations (None when there
      are no citations);
    - ``citation_recall`` = gold items matched by some citation / gold items.

    Returns None when ``gold`` is empty (nothing to score against).
    """
    if not gold:
        return None
    matched = sum(any(_matches(c, g) for g in gold) for c in citations)
    recall = sum(any(_matches(c, g) for c in citations) for g in gold) / len(gold)
    return {"citation_precision": _ratio(matched, len(citations)), "citation_recall": recall}
