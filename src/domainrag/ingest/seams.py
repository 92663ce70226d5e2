"""Seams of the ingest stage: ``Loader.load`` and ``Chunker.split``, plus a document builder."""

from __future__ import annotations

import dataclasses
import re
import textwrap
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar, Protocol, runtime_checkable

from ..config import IngestConfig
from ..types import Block, BlockKind, Chunk, Document


@runtime_checkable
class Loader(Protocol):
    """Reads one file into documents. Raises :class:`~domainrag.errors.LoaderError` with the
    reason when the file cannot be read (corrupt, encrypted, empty, image-only...).

    ``extensions`` lists the lower-case file suffixes the loader claims (``(".pdf",)``).
    ``__init__`` takes an :class:`IngestConfig`.
    """

    extensions: ClassVar[tuple[str, ...]]

    def load(self, path: Path, doc_id: str) -> list[Document]: ...


@runtime_checkable
class Chunker(Protocol):
    """Cuts a document into chunks whose spans slice the document text back exactly."""

    def split(self, document: Document) -> list[Chunk]: ...


class BaseLoader:
    """Convenience base: stores the configuration."""

    extensions: ClassVar[tuple[str, ...]] = ()

    def __init__(self, config: IngestConfig | None = None) -> None:
        self.config = config or IngestConfig()


#: Longest title and heading-path entry kept (they are repeated in every chunk's indexed text).
MAX_HEADING_CHARS = 300
_SURROGATE = re.compile("[\ud800-\udfff]")


def clean_text(text: str) -> str:
    """``text`` with lone surrogates (``"\\ud800"`` in JSON decodes to one) replaced by U+FFFD:
    they cannot be stored as UTF-8. The length is unchanged, so spans stay valid."""
    return _SURROGATE.sub("\ufffd", text) if _SURROGATE.search(text) else text


def clean_document(document: Document) -> Document:
    """``document`` with every string storable as UTF-8 (see :func:`clean_text`) and its title
    and heading paths at most :data:`MAX_HEADING_CHARS` long."""
    blocks = tuple(
        dataclasses.replace(b, heading_path=tuple(_short(clean_text(h)) for h in b.heading_path))
        if b.heading_path else b
        for b in document.blocks
    )
    return dataclasses.replace(
        document, id=clean_text(document.id), text=clean_text(document.text), source=clean_text(document.source),
        title=_short(clean_text(document.title)), blocks=blocks, metadata=_clean_value(dict(document.metadata)),
    )


def _short(text: str) -> str:
    return text if len(text) <= MAX_HEADING_CHARS else text[: MAX_HEADING_CHARS - 1].rstrip() + "…"


def _clean_value(value: Any) -> Any:
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, dict):
        return {clean_text(str(k)): _clean_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean_value(v) for v in value]
    return value


class DocumentBuilder:
    """Assembles a document's text block by block, recording each block's span.

    Blocks are separated by a blank line (table rows and list items by a single newline), so
    the text reads naturally and every block is a contiguous slice of it. Headings update the
    heading path of the blocks after them.
    """

    def __init__(self) -> None:
        self._parts: list[str] = []
        self._length = 0
        self._blocks: list[Block] = []
        self._headings: list[tuple[int, str]] = []  # (level, title)
        self._separate = False
        self.page: int | None = None

    @property
    def heading_path(self) -> tuple[str, ...]:
        return tuple(title for _, title in self._headings)

    def heading(self, title: str, level: int = 1) -> None:
        """Add a heading of ``level`` (1 = top); it closes deeper and equal sections."""
        title = " ".join(title.split())
        if not title:
            return
        while self._headings and self._headings[-1][0] >= level:
            self._headings.pop()
        self._headings.append((level, _short(title)))
        self._add("heading", title)

    def paragraph(self, text: str) -> None:
        self._add("paragraph", text)

    def list_item(self, text: str) -> None:
        self._add("list_item", text)

    def code(self, text: str) -> None:
        """A code block: relative indentation is kept; common indentation, blank leading lines
        and trailing space are not."""
        lines = textwrap.dedent(text).rstrip().split("\n")
        while lines and not lines[0].strip():
            lines.pop(0)
        self._add("code", "\n".join(lines), strip=False)

    def table_row(self, cells: list[str]) -> None:
        """A table row as ``cell | cell | cell`` (newlines inside cells become spaces)."""
        row = " | ".join(" ".join(str(c).split()) for c in cells)
        self._add("table_row", row)

    def page_break(self) -> None:
        """A hard boundary: the chunker never packs text from both sides of it into one chunk
        (a zero-length ``page_break`` block; slide decks use one between slides)."""
        if self._blocks:
            self._blocks.append(Block("page_break", self._length, self._length, self.heading_path, self.page))

    def separate(self) -> None:
        """End the current table or list: the next row or item starts after a blank line."""
        self._separate = True

    def _add(self, kind: BlockKind, text: str, strip: bool = True) -> None:
        text = text.strip() if strip else text
        if not text.strip():
            return
        if self._blocks:
            tight = (
                kind in ("table_row", "list_item")
                and self._blocks[-1].kind == kind
                and not self._separate
            )
            sep = "\n" if tight else "\n\n"
            self._parts.append(sep)
            self._length += len(sep)
        start = self._length
        self._parts.append(text)
        self._length += len(text)
        path = self.heading_path if kind != "heading" else self.heading_path[:-1]
        self._blocks.append(Block(kind, start, self._length, path, self.page))
        self._separate = False

    @property
    def empty(self) -> bool:
        return not self._blocks

    def build(
        self,
        doc_id: str,
        source: str,
        title: str = "",
        metadata: Mapping[str, Any] | None = None,
    ) -> Document:
        if not title:
            title = next((self.text_of(b) for b in self._blocks if b.kind == "heading"), "")
        return Document(
            id=doc_id,
            text="".join(self._parts),
            source=source,
            title=title,
            blocks=tuple(self._blocks),
            metadata=dict(metadata or {}),
        )

    def text_of(self, block: Block) -> str:
        text = "".join(self._parts)
        self._parts = [text]
        return text[block.start : block.end]


def plain_blocks(text: str) -> tuple[Block, ...]:
    """Blocks of an unstructured text: paragraphs separated by blank lines, spans into ``text``."""
    blocks: list[Block] = []
    pos = 0
    for para in text.split("\n\n"):
        start = pos
        pos += len(para) + 2
        stripped_start = start + (len(para) - len(para.lstrip()))
        stripped_end = start + len(para.rstrip())
        if stripped_end > stripped_start:
            blocks.append(Block("paragraph", stripped_start, stripped_end))
    return tuple(blocks)
