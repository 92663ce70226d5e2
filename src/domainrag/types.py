"""Small immutable records shared by every stage: Document, Block, Span, Chunk, Hit."""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal, Mapping

BlockKind = Literal["heading", "paragraph", "table_row", "list_item", "code", "page_break"]


def _frozen(mapping: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return MappingProxyType(dict(mapping or {}))


@dataclass(frozen=True, slots=True)
class Block:
    """A structural unit of a document's text: ``document.text[start:end]`` is its text.

    ``heading_path`` is the chain of section headings above the block (outermost first);
    ``page`` is the 1-based page number where the format has pages.
    """

    kind: BlockKind
    start: int
    end: int
    heading_path: tuple[str, ...] = ()
    page: int | None = None


@dataclass(frozen=True, slots=True)
class Document:
    """A loaded document: its full text, where it came from, and its structure as blocks.

    ``id`` is stable for a given source (path, or the id a BEIR corpus gives); ``metadata``
    holds format-specific fields (title, author, JSON fields...) usable in search filters.
    """

    id: str
    text: str
    source: str
    title: str = ""
    blocks: tuple[Block, ...] = ()
    metadata: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "metadata", _frozen(self.metadata))


@dataclass(frozen=True, slots=True)
class Span:
    """Where a chunk (or a quote) lies in its document: ``document.text[start:end]``."""

    doc_id: str
    start: int
    end: int
    page: int | None = None


@dataclass(frozen=True, slots=True)
class Chunk:
    """A retrievable piece of a document. ``text == document.text[span.start:span.end]``."""

    id: str
    doc_id: str
    text: str
    span: Span
    heading_path: tuple[str, ...] = ()
    ordinal: int = 0

    @property
    def context(self) -> str:
        """The heading path joined for display and indexing (e.g. ``"Guide > Dosage"``)."""
        return " > ".join(self.heading_path)


@dataclass(frozen=True, slots=True)
class Hit:
    """One search result: a chunk with its score (higher is better) and its document's fields."""

    chunk_id: str
    doc_id: str
    score: float
    text: str
    span: Span
    heading_path: tuple[str, ...] = ()
    source: str = ""
    title: str = ""
    metadata: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "metadata", _frozen(self.metadata))

    def to_dict(self) -> dict[str, Any]:
        return {
            "chunk_id": self.chunk_id,
            "doc_id": self.doc_id,
            "score": self.score,
            "text": self.text,
            "span": {
                "doc_id": self.span.doc_id,
                "start": self.span.start,
                "end": self.span.end,
                "page": self.span.page,
            },
            "heading_path": list(self.heading_path),
            "source": self.source,
            "title": self.title,
            "metadata": dict(self.metadata),
        }
