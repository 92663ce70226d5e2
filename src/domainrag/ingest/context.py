"""The context a chunk is indexed with: what a reader of the chunk alone would not know.

A chunk cut from the middle of a document does not say which document, file, section or table it
comes from. :func:`context_lines` returns that context for one chunk, to be put in front of the
chunk's text in what is *indexed* (BM25 tokens) and *embedded* — never in the chunk itself:
``Chunk.text``, its span and every quote keep pointing at the original text only.

``chunking.context`` chooses how much:

- ``"none"``: the chunk text alone;
- ``"headings"``: the document title and the chunk's heading path;
- ``"full"``: also the file name, the caption and header row of a table the chunk continues
  (a chunk starting mid-table does not hold them), and for a filing the company, form and period
  when the document states them on its first pages.

Each part is left out where the chunk text already starts with it (or an earlier part is the
same); the parts ``"full"`` adds are cut to :data:`MAX_PART_CHARS` each, so the context stays a
short prefix (a small embedder reads only the first ~128 word pieces of its input). ``"headings"``
is what every knowledge base was indexed with before this setting existed.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import PurePath

from ..types import Block, Chunk, Document

CONTEXT_MODES = ("none", "headings", "full")
#: The longest any one context part may be, in characters.
MAX_PART_CHARS = 160
#: A paragraph right before a table of at most this many characters is read as its caption.
MAX_CAPTION_CHARS = 200
#: Where a filing states its company, form and period: the first characters of the document.
FILING_HEAD_CHARS = 8000

_FORM = re.compile(r"\bFORM\s+(10-K|10-Q|20-F|40-F|8-K|S-1)\b")
_PERIOD = re.compile(
    r"\bfor\s+the\s+(?:fiscal\s+)?(?:year|quarter(?:ly\s+period)?|period)\s+ended:?\s+"
    r"([A-Z][a-z]+\.?\s+\d{1,2},?\s+\d{4})",
    re.IGNORECASE,
)
_REGISTRANT = re.compile(r"([^\n(]{2,120}?)\s*\n?\s*\(\s*exact\s+name\s+of\s+registrant", re.IGNORECASE)
_FILE_SEPARATORS = re.compile(r"[_\s]+")


@dataclass(frozen=True)
class DocumentContext:
    """What is known of one document once, for all of its chunks."""

    document: Document
    file_name: str
    filing: str
    tables: tuple[tuple[int, int, str, str], ...]  # (first row start, last row end, caption, header row)
    table_starts: tuple[int, ...]

    @classmethod
    def of(cls, document: Document, whole_file: bool = True) -> DocumentContext:
        """``whole_file``: the document is its source file's only content (not one record of a
        collection file such as a JSONL corpus, whose file name says nothing about the record)."""
        tables = tuple(_tables(document))
        name = _file_name(document) if whole_file else ""
        return cls(document, _cut(name), _cut(_filing(document.text[:FILING_HEAD_CHARS])),
                   tables, tuple(t[0] for t in tables))

    def lines(self, chunk: Chunk, mode: str) -> list[str]:
        """The context parts of ``chunk`` under ``mode`` (see the module docstring), in order."""
        if mode == "none":
            return []
        parts = [self.document.title]
        if mode == "full":
            parts += [self.file_name, self.filing]
        parts += list(chunk.heading_path)
        if mode == "full":
            parts += [_cut(" ".join(p.split())) for p in self._table_context(chunk)]
        kept: list[str] = []
        for part in parts:
            if part and part not in kept and not chunk.text.startswith(part):
                kept.append(part)
        return kept

    def _table_context(self, chunk: Chunk) -> list[str]:
        """Caption and header row of the table the chunk starts inside of (after its first row)."""
        i = bisect.bisect_right(self.table_starts, chunk.span.start) - 1
        if i < 0:
            return []
        first, last, caption, header = self.tables[i]
        if not first < chunk.span.start < last:
            return []
        return [caption, header]


def context_lines(document: Document, chunk: Chunk, mode: str, whole_file: bool = True) -> list[str]:
    """The context parts of one chunk (for many chunks of a document, use :class:`DocumentContext`)."""
    return DocumentContext.of(document, whole_file).lines(chunk, mode)


def contextual_text(chunk: Chunk, lines: list[str]) -> str:
    """What is indexed and embedded for ``chunk``: its context lines, then its text."""
    return "\n".join([*lines, chunk.text]) if lines else chunk.text


def _cut(text: str) -> str:
    return text if len(text) <= MAX_PART_CHARS else text[: MAX_PART_CHARS - 1].rstrip() + "…"


def _file_name(document: Document) -> str:
    """The source's file name without extension, words apart (``AAPL_10-K_2018.pdf`` → ``AAPL
    10-K 2018``); empty when the title already holds it."""
    stem = PurePath(document.source.replace("\\", "/")).stem
    name = _FILE_SEPARATORS.sub(" ", stem).strip()
    return "" if name.lower() in document.title.lower() else name


def _filing(head: str) -> str:
    """``"Apple Inc. · FORM 10-K · fiscal year ended September 29, 2018"`` from a filing's first
    pages; the parts found (empty when the text is not a filing's)."""
    form = _FORM.search(head)
    if form is None:
        return ""
    parts = []
    company = _REGISTRANT.search(head)
    if company:
        parts.append(" ".join(company.group(1).split()))
    parts.append(f"FORM {form.group(1)}")
    period = _PERIOD.search(head)
    if period:
        parts.append(f"period ended {' '.join(period.group(1).split())}")
    return " · ".join(parts)


def _tables(document: Document) -> Iterator[tuple[int, int, str, str]]:
    """Each table of the document as (start of its first row, end of its last row, caption,
    header row); a table is a run of ``table_row`` blocks one newline apart."""
    text, blocks = document.text, document.blocks
    i = 0
    while i < len(blocks):
        if blocks[i].kind != "table_row":
            i += 1
            continue
        j = i
        while j + 1 < len(blocks) and blocks[j + 1].kind == "table_row" and blocks[j + 1].start - blocks[j].end <= 1:
            j += 1
        yield blocks[i].start, blocks[j].end, _caption(text, blocks[i - 1] if i else None), text[
            blocks[i].start : blocks[i].end]
        i = j + 1


def _caption(text: str, block: Block | None) -> str:
    if block is None or block.kind not in ("paragraph", "heading"):
        return ""
    caption = text[block.start : block.end]
    return caption if len(caption) <= MAX_CAPTION_CHARS else ""
