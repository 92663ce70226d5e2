"""Lexical facts about a claim that a bag of words misses: negation, units, meta talk, echoes.

Used by :mod:`.citations` (deterministic, no model). Each rule is a narrow test that a rewording
of a supported sentence passes and a common falsification fails:

Negation
    A negation cue (English ``not``, ``no``, ``never``, ``n't``, ``without``, ``cannot``, ...;
    Chinese ``不``, ``没``, ``无``, ``未``, ``非``, ...) *scopes* the first ``SCOPE_ITEMS`` content items
    (stemmed words or numbers) that follow it in its clause: ``"is not 81 mg once"`` scopes
    ``{81, mg, onc}``. The source sentences a claim restates are those sharing at least half as
    many items with it as the best one. Each negation of the claim needs a counterpart among
    their negations (sharing an item with its scope, or two with its clause: the items to the
    clause's end, so ``"your data is not sold"`` matches ``"we do not sell your data"``); and the
    claim must not drop a negation of the sentence it restates best when it repeats two of the
    negation's items. Quantity bounds (``"no more than"``, ``"more likely than not"``), ``"not
    only"`` and ``"No."`` are not negations.

Numbers with units
    A number is read with the currency before it and the scale and unit after it
    (``"$1.2 million"``, ``"81 mg"``, ``"5%"``, ``"101.4亿元"``), each normalised (``"milligrams"`` ==
    ``"mg"``, ``"percent"`` == ``"%"``). A number the claim gives with a unit conflicts with a source
    that states that number only with another unit (``"81 g"`` against ``"81 mg"``).

Meta words
    Words that talk about the answer or the documents (``"sources"``, ``"according"``,
    ``"here"``, ``"following"``, ...): a sentence made only of them states no fact.

Names
    The proper names of a claim (:func:`names`): capitalised words other than common sentence
    openers, and acronyms. A claim that states a figure must find each of them in the source
    it cites (its title, headings or text; :func:`missing_names`), compared by their first five
    letters: ``"aspirin 200 mg"`` is not supported by a passage about ibuprofen's 200 mg. And
    each must be stated in a clause of the text that also states one of the claim's figures
    (:func:`unbound_names`): a passage giving Alpha's margin and Beta's does not support Alpha's
    figure for Beta. A name found only in the title or headings is bound to the whole text.

Echo
    Word 4-grams (characters for Chinese) that a sentence shares with a reference text: a
    sentence copied from the prompt's instructions shares most of them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from ..text import CJK_RANGES

#: Stems (the analyzer's) of words that speak about the answer or its documents, not the world.
META_WORDS = frozenset([
    "here", "follow", "below", "abov", "sourc", "document", "passag", "excerpt", "context", "provid", "accord",
    "state", "say", "said", "mention", "see", "refer", "cite", "citat", "summari", "summar", "overal", "brief",
    "conclus", "regard", "answer", "question", "inform", "detail", "specifi", "describ", "explain", "discuss",
    "hope", "help", "资料", "文档", "文件", "来源", "根据", "以下", "如下", "回答", "问题", "答案", "信息", "提到",
    "提供", "所述", "综上", "总之", "总结", "参见", "参考", "显示", "表明",
])

_CLAUSE_END = re.compile(r"[,;:.!?，；：。！？、()\[\]]")
_EN_NEGATION = re.compile(
    r"\b(?:not|no|never|cannot|without|neither|nor|none|nothing|nobody|nowhere)\b|n['’]t\b", re.IGNORECASE)
_EN_NOT_NEGATION = re.compile(
    r"\b(?:not?|never)\s+(?:more|less|fewer|greater|later|earlier|sooner|higher|lower)\s+than\b"
    r"|\bnot\s+only\b|\bno\.|\b(?:than|or)\s+not\b", re.IGNORECASE)
_ZH_NEGATION = re.compile("不得|不能|不可|不应|不要|不会|不是|不|没有|没|无法|无需|无|未经|未|非|勿|莫|否")
#: Chinese words that contain a negation character but do not negate.
_ZH_NOT_NEGATION = re.compile(
    "非常|无论|不论|未来|不断|不同|不仅|不过|不少|不久|不管|无线|毫不|并非常|否则|是否|能否|可否|与否")


_CURRENCY = {
    "$": "usd", "us$": "usd", "usd": "usd", "dollar": "usd", "dollars": "usd", "美元": "usd",
    "€": "eur", "eur": "eur", "euro": "eur", "euros": "eur",
    "£": "gbp", "gbp": "gbp",
    "¥": "cny", "rmb": "cny", "cny": "cny", "yuan": "cny", "元": "cny", "人民币": "cny",
    "hk$": "hkd", "hkd": "hkd", "jpy": "jpy", "yen": "jpy",
}
_SCALE = {
    "thousand": "e3", "k": "e3", "million": "e6", "millions": "e6", "mn": "e6", "billion": "e9",
    "billions": "e9", "bn": "e9", "trillion": "e12", "tn": "e12", "万": "e4", "亿": "e8", "千": "e3", "百万": "e6",
}
_UNIT = {
    "%": "%", "percent": "%", "per cent": "%", "pct": "%", "percentage points": "pp", "pp": "pp",
    "mg": "mg", "milligram": "mg", "milligrams": "mg", "毫克": "mg",
    "g": "g", "gm": "g", "gram": "g", "grams": "g", "克": "g",
    "kg": "kg", "kilogram": "kg", "kilograms": "kg", "千克": "kg", "公斤": "kg",
    "mcg": "mcg", "µg": "mcg", "μg": "mcg", "ug": "mcg", "microgram": "mcg", "micrograms": "mcg", "微克": "mcg",
    "ng": "ng", "nanogram": "ng", "nanograms": "ng",
    "ml": "ml", "milliliter": "ml", "milliliters": "ml", "millilitre": "ml", "millilitres": "ml", "cc": "ml",
    "毫升": "ml", "l": "l", "liter": "l", "liters": "l", "litre": "l", "litres": "l", "升": "l",
    "dl": "dl", "mmol": "mmol", "mol": "mol", "meq": "meq", "iu": "iu", "mmhg": "mmhg", "kcal": "kcal",
    "calories": "kcal", "mm": "mm", "cm": "cm", "km": "km", "bpm": "bpm",
    "second": "s", "seconds": "s", "sec": "s", "minute": "min", "minutes": "min", "min": "min", "mins": "min",
    "hour": "h", "hours": "h", "hr": "h", "hrs": "h", "h": "h", "day": "day", "days": "day", "daily": "day",
    "week": "week", "weeks": "week", "wk": "week", "month": "month", "months": "month",
    "year": "year", "years": "year", "yr": "year", "yrs": "year",
    "小时": "h", "分钟": "min", "天": "day", "周": "week",
}


def _alternatives(words: Iterable[str]) -> str:
    return "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True))


_NUM = r"(?:(?<![\w.])\d{1,3}(?:[,，]\d{3})+(?!\d|[,，]\d)|(?<![\w.])\d+)(?:\.\d+)?|(?<![\w.])\.\d+"
_ASCII_UNITS = _alternatives(w for w in (*_UNIT, *_SCALE, *_CURRENCY) if w.isascii() and w.isalpha())
#: A number, unless letters that are no unit, scale or currency follow it at once: ``"2D"``,
#: ``"3rd"`` and ``"4x4"`` name things, ``"5mg"`` and ``"3bn"`` are numbers.
NUMBER = re.compile(rf"(?:{_NUM})(?!(?!(?:{_ASCII_UNITS})(?![A-Za-z]))[A-Za-z])", re.IGNORECASE)


_PREFIX_WORDS = ("$", "us$", "usd", "€", "eur", "£", "gbp", "¥", "rmb", "cny", "hk$", "hkd", "jpy")
_PREFIX = re.compile(rf"(?:^|[^\w$])({_alternatives(_PREFIX_WORDS)})\s?$", re.IGNORECASE)
_SUFFIX = re.compile(
    rf"[\s-]?(?:(?P<scale>{_alternatives(_SCALE)})(?![a-z]))?\s?(?:(?P<unit>{_alternatives(_UNIT)})"
    rf"(?:\s?/\s?(?P<per>{_alternatives(_UNIT)}))?(?![a-zA-Z])|(?P<cur>{_alternatives(_CURRENCY)})(?![a-zA-Z]))?",
    re.IGNORECASE)


@dataclass(frozen=True)
class Quantity:
    """A number as written with its currency, scale and unit (``None`` where not given)."""

    value: str
    currency: str | None
    scale: str | None
    unit: str | None

    def conflicts(self, other: Quantity) -> bool:
        """Both give an attribute and they differ."""
        return any(a is not None and b is not None and a != b
                   for a, b in ((self.currency, other.currency), (self.scale, other.scale), (self.unit, other.unit)))

    def matches(self, other: Quantity) -> bool:
        """``other`` states every attribute this quantity gives, equally."""
        return all(a is None or a == b
                   for a, b in ((self.currency, other.currency), (self.scale, other.scale), (self.unit, other.unit)))


def normalize_number(raw: str) -> str:
    """``"1,200,000"`` -> ``"1200000"``; ``"5.50"`` -> ``"5.5"``; ``"3.0"`` -> ``"3"``; ``".5"`` -> ``"0.5"``."""
    value = raw.replace(",", "").replace("，", "")
    if "." in value:
        value = value.rstrip("0").rstrip(".")
    value = value.lstrip("0")
    if value.startswith("."):
        value = "0" + value
    return value or "0"


_SCALE_EXPONENT = {"e3": 3, "e4": 4, "e6": 6, "e8": 8, "e9": 9, "e12": 12}


def scaled(quantity: Quantity) -> str | None:
    """The quantity's value times its scale (``"1.2 million"`` -> ``"1200000"``), if scaled."""
    if quantity.scale is None:
        return None
    from decimal import Decimal

    value = Decimal(quantity.value).scaleb(_SCALE_EXPONENT[quantity.scale])
    return normalize_number(f"{value:f}")


#: A list enumerator at the start of a line (``"1."``, ``"2)"``, ``"-"``, ``"*"``, ``"•"``).
ENUMERATOR = re.compile(r"(?m)^[ \t]*(?:\d{1,3}[.)]|[-*•+])(?=[ \t])")


def numbers(text: str) -> list[str]:
    """The normalised numbers of ``text`` in order."""
    return [normalize_number(m.group()) for m in NUMBER.finditer(text)]


def quantities(text: str) -> list[Quantity]:
    """Every number of ``text`` with its currency, scale and unit."""
    out = []
    for m in NUMBER.finditer(text):
        before = text[max(0, m.start() - 8) : m.start()]
        prefix = _PREFIX.search(before)
        suffix = _SUFFIX.match(text, m.end())
        currency = _CURRENCY[prefix.group(1).lower()] if prefix else None
        scale = unit = None
        if suffix:
            if suffix.group("scale"):
                scale = _SCALE[suffix.group("scale").lower()]
            if suffix.group("unit"):
                unit = _UNIT[suffix.group("unit").lower()]
                if suffix.group("per"):
                    unit += "/" + _UNIT[suffix.group("per").lower()]
            if suffix.group("cur"):
                currency = currency or _CURRENCY[suffix.group("cur").lower()]
        out.append(Quantity(normalize_number(m.group()), currency, scale, unit))
    return out


def unit_conflicts(claim: Iterable[Quantity], source: Iterable[Quantity]) -> list[Quantity]:
    """The claim's quantities that the source states only with another currency, scale or unit."""
    by_value: dict[str, list[Quantity]] = {}
    for q in source:
        by_value.setdefault(q.value, []).append(q)
    bad = []
    for q in claim:
        stated = by_value.get(q.value, [])
        if stated and not any(q.matches(s) for s in stated) and any(q.conflicts(s) for s in stated):
            bad.append(q)
    return bad


Items = Callable[[str], list[str]]
#: Content items after a negation cue that it scopes.
SCOPE_ITEMS = 3


def negation_scopes(text: str, items: Items, limit: int | None = SCOPE_ITEMS) -> list[frozenset[str]]:
    """For each negation cue of ``text``: the first ``SCOPE_ITEMS`` content items after it in its clause.

    ``items`` turns text into its content items in order (stemmed words and numbers); with
    ``limit=None`` the scope runs to the clause's end."""
    masked = _EN_NOT_NEGATION.sub(lambda m: " " * len(m.group()), text)
    masked = _ZH_NOT_NEGATION.sub(lambda m: "_" * len(m.group()), masked)
    scopes = []
    for pattern in (_EN_NEGATION, _ZH_NEGATION):
        for m in pattern.finditer(masked):
            rest = text[m.end() :]
            end = _CLAUSE_END.search(rest)
            head = items(rest[: end.start()] if end else rest)[:limit]
            scopes.append(frozenset(head))
    return scopes


Negation = tuple[frozenset[str], frozenset[str]]


def negation_conflict(claim_scopes: list[frozenset[str]], claim_items: frozenset[str],
                      near: list[Negation], top: list[list[Negation]]) -> bool:
    """True when a negation of the claim has no counterpart among the negations of the source
    sentences it restates (``near``), or each sentence it restates best (``top``, their
    negations) has a negation, on two items the claim repeats, without one in the claim.

    Negations are (scope, clause) pairs; the clause holds the items to the clause's end. A
    counterpart shares an item with the scope, or two with the clause (the voice may change:
    ``"we do not sell your data"`` / ``"your data is not sold"``)."""

    def kept(scope: frozenset[str], negation: Negation) -> bool:
        return bool(scope & negation[0]) or len(scope & negation[1]) >= 2

    for scope in claim_scopes:
        if not any(kept(scope, n) for n in near) and (scope or not near):
            return True
    def dropped(n: Negation) -> bool:
        return bool(n[0]) and len(n[0] & claim_items) >= min(2, len(n[0])) and not any(kept(c, n) for c in claim_scopes)

    return bool(top) and all(any(dropped(n) for n in sentence) for sentence in top)


_WORD = re.compile(rf"[{CJK_RANGES}]|[^\W_{CJK_RANGES}]+")


def words(text: str) -> list[str]:
    """Lower-cased words (each CJK character one word) of ``text``."""
    return [w.lower() for w in _WORD.findall(text)]


def ngrams(text: str, n: int = 4) -> set[tuple[str, ...]]:
    w = words(text)
    return {tuple(w[i : i + n]) for i in range(len(w) - n + 1)}


def shared_ngram_share(text: str, reference: set[tuple[str, ...]], n: int = 4) -> float:
    """Share of the word n-grams of ``text`` found in ``reference`` (0.0 for shorter texts)."""
    mine = ngrams(text, n)
    return len(mine & reference) / len(mine) if mine else 0.0


#: The prompt's delimiters as the templates render them (an answer holding them echoes the prompt).
PROMPT_DELIMITER = re.compile(r"<\s*/?\s*(?:source|claim|context)\b[^>]*>", re.IGNORECASE)


#: Capitalised words that open sentences or clauses without naming anything.
_OPENER_WORDS = """
the this that these those there their then thus a an in on at by for from with without within after before
during until since if when whenever while although though however also moreover furthermore additionally but
and or so yet because as it its they them we our you your he she his her most many much some several few each
every all any both either neither no not none one two three first second third finally overall generally
typically usually often sometimes always never adults children patients people users customers according
based here note yes what which who how why where other another such more less only even just still again
under over between among across per via into onto upon about above below beyond despite except including like
near outside inside through throughout toward towards unlike versus within along around against amid instead
take avoid use ask call keep make see give store do don't contact consult check apply seek stop start tell talk
read follow report reports
"""
_OPENERS = frozenset(_OPENER_WORDS.split())
_NAME = re.compile(r"\b(?:[A-Z][a-z]+(?:[-'][A-Za-z]+)*|[A-Z][A-Z0-9]{1,}[a-z]?|[A-Z][a-z]*[0-9]+[A-Za-z0-9]*)\b")


def names(text: str) -> list[str]:
    """The proper names of ``text`` (see the module docstring), lower-cased, in order."""
    out = []
    for m in _NAME.finditer(text):
        word = re.split(r"[-']", m.group())[0].lower()  # "Long-term" -> "long", "Moody's" -> "moody"
        if word in _OPENERS or len(word) < 3:
            continue
        out.append(word)
    return list(dict.fromkeys(out))


_CLAUSE = re.compile(r"[.;!?。；！？]\s+|;|,\s+(?:while|whereas|but|although|though|however|unlike)\b|"
                     r"\s(?:while|whereas)\s", re.IGNORECASE)


def clauses(text: str) -> list[str]:
    """``text`` cut at sentence ends, semicolons and contrastive joints (``", while"``,
    ``"whereas"``, ``", but"``): the spans inside which one fact is stated."""
    return [c for c in _CLAUSE.split(text) if c.strip()]


def unbound_names(names_: Iterable[str], figures: Iterable[str], source_text: str) -> list[str]:
    """The names that no clause of ``source_text`` states together with one of the claim's
    ``figures`` (normalised numbers): ``"Beta reported 18%"`` against ``"Alpha reported 18%,
    while Beta reported 11%"`` leaves ``beta`` unbound."""
    wanted = set(figures)
    bound: set[str] = set()
    for clause in clauses(source_text):
        if wanted & set(numbers(clause)):
            have = {w[:k] for w in words(clause) for k in range(3, 6)}
            bound |= {n for n in names_ if n[:5] in have}
    return [n for n in names_ if n not in bound]


def missing_names(names_: Iterable[str], source_text: str) -> list[str]:
    """The names that ``source_text`` never mentions: no word of it starts with the name's
    first five letters (all of them for a shorter name)."""
    have = {w[:k] for w in words(source_text) for k in range(3, 6)}
    return [n for n in names_ if n[:5] not in have]
