"""Language-aware text utilities shared by every stage: scripts, sentences and token counts.

Token counts here are a fast, dependency-free approximation used to size chunks: a run of
letters/digits is one token, every CJK character is one token, every other symbol is one token.
It is deterministic and recorded in the index manifest as ``tokenizer = "domainrag-approx-v1"``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

TOKENIZER_ID = "domainrag-approx-v1"

# CJK Unified Ideographs (+ extension A, compatibility), Hiragana/Katakana, Hangul.
CJK_RANGES = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\u3040-\u30ff\uac00-\ud7af"
_CJK_CHAR = re.compile(f"[{CJK_RANGES}]")
_TOKEN = re.compile(rf"[{CJK_RANGES}]|[^\W{CJK_RANGES}]+|[^\w\s]", re.UNICODE)

# A sentence ends at . ! ? (followed by space/end) or at a CJK full stop, which needs no space.
# Closing quotes and brackets stay with their sentence.
_SENTENCE_END = re.compile(
    r"""(?:
        (?<![A-Z])(?<!\b[Ee]\.g)(?<!\b[Ii]\.e)(?<!\bvs)(?<!\bDr)(?<!\bMr)(?<!\bMs)(?<!\bMrs)(?<!\bNo)
        (?<!\bFig)(?<!\bet\ al)
        [.!?]+["'”’)\]]*(?=\s+|$)
      | [。！？!?；;]+[”’」』）)]*
      | \n\s*\n
    )""",
    re.VERBOSE,
)


def cjk_ratio(text: str) -> float:
    """Share of CJK characters among the non-space characters of ``text`` (0.0 for empty)."""
    chars = sum(1 for c in text if not c.isspace())
    if not chars:
        return 0.0
    return len(_CJK_CHAR.findall(text)) / chars


def detect_language(text: str) -> str:
    """A coarse language tag for routing: ``"zh"`` when CJK script dominates, else ``"en"``.

    Japanese kana and Hangul count as CJK; routing only needs to know whether a Latin-script
    embedding model can read the text.
    """
    return "zh" if cjk_ratio(text) >= 0.3 else "en"


def count_tokens(text: str) -> int:
    """Approximate token count (see module docstring)."""
    return len(_TOKEN.findall(text))


def token_offsets(text: str) -> list[tuple[int, int]]:
    """(start, end) character offsets of the approximate tokens of ``text``."""
    return [m.span() for m in _TOKEN.finditer(text)]


def sentence_spans(text: str, start: int = 0, end: int | None = None) -> list[tuple[int, int]]:
    """Split ``text[start:end]`` into sentences; returns absolute (start, end) offsets.

    Spans cover the range without gaps except surrounding whitespace, which is trimmed, so
    ``text[s:e]`` is each sentence exactly. Works for English and Chinese (。！？；) and mixed text.
    """
    end = len(text) if end is None else end
    spans: list[tuple[int, int]] = []
    pos = start
    for match in _SENTENCE_END.finditer(text, start, end):
        cut = match.end()
        spans.extend(_trimmed(text, pos, cut))
        pos = cut
    spans.extend(_trimmed(text, pos, end))
    return spans


def _trimmed(text: str, start: int, end: int) -> Iterator[tuple[int, int]]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    if end > start:
        yield (start, end)
