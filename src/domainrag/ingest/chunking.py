"""Structure-aware chunking.

Blocks (headings, paragraphs, table rows, list items) are packed greedily into chunks of about
``target_tokens``. A chunk never crosses a top-level section boundary when it already holds
text, never cuts a table row, and never cuts a sentence unless a single sentence alone exceeds
the target (then it is cut at token boundaries). Consecutive chunks overlap by up to
``overlap_tokens``, taken as whole trailing units (sentences or rows) of the previous chunk.

No chunk is longer than ``max_chars`` characters, whatever its token count: the approximate
tokenizer counts a 50 MB run of letters as one token, so such runs are cut by characters. Very
long blocks are read in segments and units are packed as they come, so memory stays bounded.

A ``page_break`` block (zero-length; slide decks put one between slides) always ends the chunk
before it, so no chunk holds two slides; no other loader writes one, so other documents chunk
as before.

Every chunk is a contiguous slice of the document: ``doc.text[chunk.span.start:chunk.span.end]
== chunk.text``. Its heading path is the one of its first content (non-heading) block; its page is the page where it
starts.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from ..config import ChunkingConfig
from ..text import count_tokens, sentence_spans, token_offsets
from ..types import Block, Chunk, Document, Span


@dataclass(frozen=True, slots=True)
class _Unit:
    """The smallest piece the chunker moves: a whole block or a sentence of one."""

    start: int
    end: int
    tokens: int
    block: Block
    breaks_before: bool  # a section starts here: do not pack it after earlier text
    hard: bool = False   # after a page_break block: always starts a new chunk


#: ``max_chars`` when not given: characters allowed per target token.
CHARS_PER_TOKEN = 16
#: Blocks longer than this many ``max_chars`` are split into sentences segment by segment.
_SEGMENT_CHUNKS = 64


_MAY_END_SENTENCE = re.compile(r"[.!?。！？；;\n]")


def _sentences(text: str, start: int, end: int) -> list[tuple[int, int]]:
    """:func:`sentence_spans`, skipped for a run without any sentence-ending character (cheap to
    find, where the sentence pattern costs ~0.3 µs a character: 15 s on a 50 MB token)."""
    if _MAY_END_SENTENCE.search(text, start, end):
        return sentence_spans(text, start, end)
    piece = text[start:end]
    stripped = piece.strip()
    if not stripped:
        return []
    start += len(piece) - len(piece.lstrip())
    return [(start, start + len(stripped))]


class StructureChunker:
    """Chunker honouring document structure (see module docstring)."""

    def __init__(self, config: ChunkingConfig | None = None, max_chars: int | None = None) -> None:
        self.config = config or ChunkingConfig()
        self._explicit_max = max_chars
        self.max_chars = max_chars or CHARS_PER_TOKEN * self.config.target_tokens

    @property
    def id(self) -> str:
        c = self.config
        suffix = f":{self._explicit_max}c" if self._explicit_max else ""
        if c.context != "headings":  # the indexed text differs: part of the index manifest
            suffix += f":context-{c.context}"
        return f"structure-v1:{c.target_tokens}:{c.overlap_tokens}{suffix}"

    def split(self, document: Document) -> list[Chunk]:
        groups = self._pack(self._units(document))
        return [self._chunk(document, group, i) for i, group in enumerate(groups)]

    # -- units -----------------------------------------------------------------------------
    def _units(self, doc: Document) -> Iterator[_Unit]:
        blocks = doc.blocks or (Block("paragraph", 0, len(doc.text)),)
        previous_path: tuple[str, ...] | None = None
        hard = False
        for block in blocks:
            if block.kind == "page_break":
                hard = True
                continue
            if block.end <= block.start:
                continue
            new_section = block.kind == "heading" or (
                previous_path is not None and block.heading_path[:1] != previous_path[:1]
            )
            previous_path = block.heading_path
            for i, unit in enumerate(self._block_units(doc.text, block, new_section)):
                yield dataclasses.replace(unit, hard=True) if hard and i == 0 else unit
            hard = False

    def _block_units(self, text: str, block: Block, new_section: bool) -> Iterator[_Unit]:
        if block.end - block.start <= self.max_chars:
            tokens = count_tokens(text[block.start : block.end])
            if tokens <= self.config.target_tokens or block.kind in ("table_row", "heading"):
                yield _Unit(block.start, block.end, tokens, block, new_section)
                return
        first = True
        for seg_start, seg_end in self._segments(text, block.start, block.end):
            for s, e in _sentences(text, seg_start, seg_end):
                for ws, we, wt in self._windows(text, s, e):
                    yield _Unit(ws, we, wt, block, new_section and first)
                    first = False

    def _segments(self, text: str, start: int, end: int) -> Iterator[tuple[int, int]]:
        """``[start, end)`` in pieces of bounded length, cut after whitespace where there is some,
        so that sentence splitting never holds a huge block's sentences all at once."""
        size = _SEGMENT_CHUNKS * self.max_chars
        while end - start > size:
            low, high = start + size // 2, start + size
            cut = max(text.rfind(" ", low, high), text.rfind("\n", low, high))
            cut = cut + 1 if cut > start else high
            yield start, cut
            start = cut
        yield start, end

    def _windows(self, text: str, start: int, end: int) -> Iterator[tuple[int, int, int]]:
        """Cut an over-long sentence into pieces of at most target tokens and ``max_chars``
        characters; a single token longer than ``max_chars`` is cut by characters."""
        limit, width = self.config.target_tokens, self.max_chars
        if end - start <= width:
            tokens = count_tokens(text[start:end])
            if tokens <= limit:
                yield (start, end, tokens)
                return
        pos = start
        while pos < end:
            window_end = min(end, pos + width)
            offsets = token_offsets(text[pos:window_end])
            if not offsets:  # a window of whitespace
                pos = window_end
                continue
            if window_end < end and len(offsets) > 1:
                offsets = offsets[:-1]  # the last token may go on past the window
            piece = offsets[:limit]
            yield (pos + piece[0][0], pos + piece[-1][1], len(piece))
            pos += piece[-1][1]

    # -- packing ---------------------------------------------------------------------------
    def _pack(self, units: Iterable[_Unit]) -> Iterator[list[_Unit]]:
        """Groups of units, one per chunk, produced as the units come. A trailing group holding
        only a heading carries no content and is merged into the group before it."""
        held: list[_Unit] | None = None
        current: list[_Unit] = []
        size = 0
        for unit in units:
            full = size + unit.tokens > self.config.target_tokens or not self._fits(current, unit)
            if current and (full or unit.hard or (unit.breaks_before and size >= self._min_tokens)):
                if held is not None:
                    yield held
                held = current
                current = self._overlap(current) if not (unit.breaks_before or unit.hard) else []
                if not self._fits(current, unit):
                    current = []
                size = sum(u.tokens for u in current)
            current.append(unit)
            size += unit.tokens
        headings_only = current and all(u.block.kind == "heading" for u in current)
        if held is not None and headings_only and current[-1].end - held[0].start <= self.max_chars:
            held, current = held + current, []
        if held is not None:
            yield held
        if current:
            yield current

    def _fits(self, group: list[_Unit], unit: _Unit) -> bool:
        """Whether ``unit`` can join ``group`` without the chunk exceeding ``max_chars``."""
        return not group or unit.end - group[0].start <= self.max_chars

    @property
    def _min_tokens(self) -> int:
        """Small sections are merged with the next one rather than left as tiny chunks."""
        return self.config.target_tokens // 4

    def _overlap(self, group: list[_Unit]) -> list[_Unit]:
        budget = self.config.overlap_tokens
        tail: list[_Unit] = []
        for unit in reversed(group[1:]):
            if unit.tokens > budget or unit.block.kind == "heading":
                break
            budget -= unit.tokens
            tail.insert(0, unit)
        return tail

    # -- output ----------------------------------------------------------------------------
    @staticmethod
    def _chunk(doc: Document, group: list[_Unit], ordinal: int) -> Chunk:
        start, end = group[0].start, max(u.end for u in group)
        first = group[0].block
        content = next((u.block for u in group if u.block.kind != "heading"), None)
        path = content.heading_path if content is not None else (*first.heading_path, doc.text[first.start : first.end])
        text = doc.text[start:end]
        digest = hashlib.sha1(f"{doc.id}\0{start}\0{end}".encode()).hexdigest()[:12]
        return Chunk(
            id=f"{doc.id}::{ordinal}:{digest}",
            doc_id=doc.id,
            text=text,
            span=Span(doc.id, start, end, first.page),
            heading_path=path,
            ordinal=ordinal,
        )
