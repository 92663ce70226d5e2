"""Structure-aware chunking.

Blocks (headings, paragraphs, table rows, list items) are packed greedily into chunks of about
``target_tokens``. A chunk never crosses a top-level section boundary when it already holds
text, never cuts a table row, and never cuts a sentence unless a single sentence alone exceeds
the target (then it is cut at token boundaries). Consecutive chunks overlap by up to
``overlap_tokens``, taken as whole trailing units (sentences or rows) of the previous chunk.

Every chunk is a contiguous slice of the document: ``doc.text[chunk.span.start:chunk.span.end]
== chunk.text``. Its heading path is the one of its first content (non-heading) block; its page is the page where it
starts.
"""

from __future__ import annotations

import hashlib
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


class StructureChunker:
    """Chunker honouring document structure (see module docstring)."""

    def __init__(self, config: ChunkingConfig | None = None) -> None:
        self.config = config or ChunkingConfig()

    @property
    def id(self) -> str:
        c = self.config
        return f"structure-v1:{c.target_tokens}:{c.overlap_tokens}"

    def split(self, document: Document) -> list[Chunk]:
        units = list(self._units(document))
        groups = self._pack(units)
        return [self._chunk(document, group, i) for i, group in enumerate(groups)]

    # -- units -----------------------------------------------------------------------------
    def _units(self, doc: Document):
        blocks = doc.blocks or (Block("paragraph", 0, len(doc.text)),)
        previous_path: tuple[str, ...] | None = None
        for block in blocks:
            if block.end <= block.start or block.kind == "page_break":
                continue
            new_section = block.kind == "heading" or (
                previous_path is not None and block.heading_path[:1] != previous_path[:1]
            )
            previous_path = block.heading_path
            yield from self._block_units(doc.text, block, new_section)

    def _block_units(self, text: str, block: Block, new_section: bool):
        tokens = count_tokens(text[block.start : block.end])
        if tokens <= self.config.target_tokens or block.kind in ("table_row", "heading"):
            yield _Unit(block.start, block.end, tokens, block, new_section)
            return
        first = True
        for s, e in sentence_spans(text, block.start, block.end):
            for ws, we, wt in self._windows(text, s, e):
                yield _Unit(ws, we, wt, block, new_section and first)
                first = False

    def _windows(self, text: str, start: int, end: int):
        """Cut an over-long sentence into pieces of at most target tokens."""
        tokens = count_tokens(text[start:end])
        limit = self.config.target_tokens
        if tokens <= limit:
            yield (start, end, tokens)
            return
        offsets = token_offsets(text[start:end])
        for i in range(0, len(offsets), limit):
            piece = offsets[i : i + limit]
            yield (start + piece[0][0], start + piece[-1][1], len(piece))

    # -- packing ---------------------------------------------------------------------------
    def _pack(self, units: list[_Unit]) -> list[list[_Unit]]:
        groups: list[list[_Unit]] = []
        current: list[_Unit] = []
        size = 0
        for unit in units:
            full = size + unit.tokens > self.config.target_tokens
            if current and (full or (unit.breaks_before and size >= self._min_tokens)):
                groups.append(current)
                current = self._overlap(current) if not unit.breaks_before else []
                size = sum(u.tokens for u in current)
            current.append(unit)
            size += unit.tokens
        if current:
            groups.append(current)
        return self._drop_heading_only(groups)

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

    @staticmethod
    def _drop_heading_only(groups: list[list[_Unit]]) -> list[list[_Unit]]:
        """A trailing group holding only a heading carries no content; merge it backwards."""
        out: list[list[_Unit]] = []
        for group in groups:
            if out and all(u.block.kind == "heading" for u in group) and group is groups[-1]:
                out[-1] = out[-1] + group
            else:
                out.append(group)
        return out

    # -- output ----------------------------------------------------------------------------
    @staticmethod
    def _chunk(doc: Document, group: list[_Unit], ordinal: int) -> Chunk:
        start, end = group[0].start, max(u.end for u in group)
        first = group[0].block
        content = next((u.block for u in group if u.block.kind != "heading"), None)
        if content is not None:
            path = content.heading_path
        else:
            path = first.heading_path + (doc.text[first.start : first.end],)
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
