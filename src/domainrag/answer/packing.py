"""Context packing: fit the best retrieved chunks into the prompt's token budget.

Hits are taken in rank order. A chunk whose text repeats one already taken is dropped;
chunks of one document whose spans overlap or touch (neighbouring chunks share an overlap) are
merged into one source at the better one's rank, so the model reads continuous text once. A
source that does not fit is skipped in favour of later, shorter ones; the first source is cut
to the budget rather than dropped. Sources are numbered 1..n in the order kept.

Tokens are counted with ``tiktoken`` for OpenAI models when it is installed and its encoding is
available, else with the approximate counter of :mod:`domainrag.text` scaled by a safety
factor (it counts a word as one token; BPE tokenisers average about 1.3 per English word).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Protocol

from ..text import count_tokens, token_offsets
from ..types import Hit, Source

#: Tokens a source costs beyond its text: the <source ...> element and its attributes.
SOURCE_OVERHEAD = 24
APPROX_SAFETY = 1.35


class TokenCounter(Protocol):
    id: str

    def count(self, text: str) -> int: ...


class ApproxCounter:
    id = f"approx-x{APPROX_SAFETY}"

    def count(self, text: str) -> int:
        return int(count_tokens(text) * APPROX_SAFETY) + 1


class TiktokenCounter:
    def __init__(self, encoding: object, name: str) -> None:
        self._encoding = encoding
        self.id = f"tiktoken:{name}"

    def count(self, text: str) -> int:
        return len(self._encoding.encode(text, disallowed_special=()))  # type: ignore[attr-defined]


def token_counter(model_id: str) -> TokenCounter:
    """The counter for ``model_id``: tiktoken for OpenAI models when available, else approximate."""
    if model_id.startswith("openai:") and "@" not in model_id:
        tiktoken_counter = _tiktoken("o200k_base")
        if tiktoken_counter is not None:
            return tiktoken_counter
    return ApproxCounter()


@cache
def _tiktoken(name: str) -> TiktokenCounter | None:
    try:
        import tiktoken

        return TiktokenCounter(tiktoken.get_encoding(name), name)
    except Exception:  # not installed, or the encoding cannot be fetched (offline)
        return None


@dataclass
class Packed:
    sources: list[Source]
    tokens: int
    dropped_duplicates: int = 0
    merged: int = 0
    skipped_for_budget: int = 0
    chunk_ids: list[list[str]] = field(default_factory=list)


@dataclass
class _Draft:
    hit: Hit
    text: str
    start: int
    end: int
    chunk_ids: list[str]


def pack(hits: Sequence[Hit], budget: int, counter: TokenCounter) -> Packed:
    """Sources for a prompt from ``hits`` (best first) within ``budget`` tokens."""
    drafts: list[_Draft] = []
    seen: set[str] = set()
    duplicates = merged = 0
    for hit in hits:
        key = _normalise(hit.text)
        if key in seen:
            duplicates += 1
            continue
        seen.add(key)
        if any(_merge(d, hit) for d in drafts if d.hit.doc_id == hit.doc_id):
            merged += 1
            continue
        drafts.append(_Draft(hit, hit.text, hit.span.start, hit.span.end, [hit.chunk_id]))
    packed = Packed([], 0, duplicates, merged)
    for draft in drafts:
        cost = counter.count(draft.text) + SOURCE_OVERHEAD
        if packed.tokens + cost > budget:
            if packed.sources:
                packed.skipped_for_budget += 1
                continue
            draft.text = _cut(draft.text, budget - SOURCE_OVERHEAD, counter)
            draft.end = draft.start + len(draft.text)
            cost = counter.count(draft.text) + SOURCE_OVERHEAD
        h = draft.hit
        packed.sources.append(Source(number=len(packed.sources) + 1, chunk_id=h.chunk_id, doc_id=h.doc_id,
                                     text=draft.text, start=draft.start, end=draft.end, page=h.span.page,
                                     title=h.title, source=h.source, heading_path=h.heading_path))
        packed.chunk_ids.append(draft.chunk_ids)
        packed.tokens += cost
    return packed


def _merge(draft: _Draft, hit: Hit) -> bool:
    """Extend ``draft`` with ``hit`` when their spans overlap or touch; True if merged."""
    start, end = hit.span.start, hit.span.end
    if start > draft.end or end < draft.start:
        return False
    if start >= draft.start and end <= draft.end:
        draft.chunk_ids.append(hit.chunk_id)
        return True
    if start < draft.start:  # hit begins earlier: prepend its head
        draft.text = hit.text[: draft.start - start] + draft.text
        draft.start = start
    if end > draft.end:
        draft.text += hit.text[len(hit.text) - (end - draft.end):]
        draft.end = end
    draft.chunk_ids.append(hit.chunk_id)
    return True


def _cut(text: str, budget: int, counter: TokenCounter) -> str:
    """The longest token-boundary prefix of ``text`` within ``budget`` tokens."""
    offsets = token_offsets(text)
    low, high = 0, len(offsets)
    while low < high:
        mid = (low + high + 1) // 2
        if counter.count(text[: offsets[mid - 1][1]]) <= budget:
            low = mid
        else:
            high = mid - 1
    return text[: offsets[low - 1][1]] if low else ""


def _normalise(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip().lower()
