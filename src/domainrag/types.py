"""Small immutable records shared by every stage: Document, Block, Span, Chunk, Hit, the
answer records Source, Usage, Citation, Answer, and the evaluation records Evidence and Case."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

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


@dataclass(frozen=True, slots=True, kw_only=True)
class Source:
    """A retrieved passage numbered for a prompt: the answer cites it as ``[number]`` (1-based).

    ``start``/``end`` are character offsets of ``text`` in document ``doc_id``.
    """

    number: int
    chunk_id: str
    doc_id: str
    text: str
    start: int
    end: int
    page: int | None = None
    title: str = ""
    source: str = ""
    heading_path: tuple[str, ...] = ()

    @classmethod
    def from_hit(cls, number: int, hit: Hit) -> Source:
        return cls(number=number, chunk_id=hit.chunk_id, doc_id=hit.doc_id, text=hit.text, start=hit.span.start,
                   end=hit.span.end, page=hit.span.page, title=hit.title, source=hit.source,
                   heading_path=hit.heading_path)


@dataclass(frozen=True, slots=True)
class Usage:
    """Tokens a model call consumed and what it cost (``None`` when no price is configured)."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float | None = None

    def __add__(self, other: Usage) -> Usage:
        cost = None if self.cost_usd is None or other.cost_usd is None else self.cost_usd + other.cost_usd
        return Usage(self.prompt_tokens + other.prompt_tokens,
                     self.completion_tokens + other.completion_tokens, cost)

    def to_dict(self) -> dict[str, Any]:
        return {"prompt_tokens": self.prompt_tokens, "completion_tokens": self.completion_tokens,
                "total_tokens": self.prompt_tokens + self.completion_tokens, "cost_usd": self.cost_usd}


@dataclass(frozen=True, slots=True, kw_only=True)
class Citation:
    """One ``[number]`` of an answer, checked: ``sentence`` is the answer's sentence citing it,
    ``quote`` the passage of the source that best supports it and ``span`` where that quote lies
    in the document; ``supported`` is the checker's verdict and ``support`` its score."""

    number: int
    doc_id: str
    chunk_id: str
    span: Span
    quote: str
    sentence: str
    support: float
    supported: bool
    source: str = ""
    title: str = ""
    #: Embedding similarity of the claim to the source, when the checker consulted it.
    semantic: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"number": self.number, "doc_id": self.doc_id, "chunk_id": self.chunk_id,
                "source": self.source, "title": self.title, "page": self.span.page,
                "span": {"start": self.span.start, "end": self.span.end}, "quote": self.quote,
                "sentence": self.sentence, "support": round(self.support, 4),
                "semantic": None if self.semantic is None else round(self.semantic, 4),
                "supported": self.supported}


class OpenRecord(Mapping[str, Any]):
    """A read-only mapping for open-ended records (a trace, a run manifest): what producers add
    travels as it is, and subclasses name the entries code reads as typed properties."""

    __slots__ = ("_data",)

    def __init__(self, data: Mapping[str, Any] | None = None) -> None:
        self._data: Mapping[str, Any] = MappingProxyType(dict(data or {}))

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({dict(self._data)!r})"

    def to_dict(self) -> dict[str, Any]:
        return dict(self._data)


class Trace(OpenRecord):
    """What happened while answering, for people and tools: retrieved and packed chunk ids, the
    evidence score, per-stage timings in ms (``timings_ms``), model attempts, the checker's
    findings (fabricated markers removed, uncited sentences), a retry, why the answer abstained
    (the ``trace`` of ``Answer.to_dict()``)."""

    __slots__ = ()

    @property
    def timings_ms(self) -> Mapping[str, float]:
        return self._data.get("timings_ms") or {}

    @property
    def total_ms(self) -> float:
        """Wall time of the whole answer (retrieval included when ``ask`` retrieved), in ms."""
        return float(self.timings_ms.get("total_ms", 0.0))

    @property
    def abstain_reason(self) -> str | None:
        """``weak_evidence``, ``no_evidence``, ``model_abstained``, ``citations_failed``… or None."""
        value = self._data.get("abstain_reason")
        return None if value is None else str(value)

    @property
    def finish_reason(self) -> str | None:
        value = self._data.get("finish_reason")
        return None if value is None else str(value)

    @property
    def removed_markers(self) -> tuple[Any, ...]:
        """Citation markers removed because they pointed at no source."""
        return tuple(self._data.get("removed_markers") or ())

    @property
    def uncited_sentences(self) -> int:
        return int(self._data.get("uncited_sentences") or 0)

    @property
    def retried(self) -> bool:
        """Whether the model was asked again with the problems of its first draft listed."""
        return bool(self._data.get("retried"))


@dataclass(frozen=True, slots=True, kw_only=True)
class Answer:
    """A grounded answer.

    ``abstained`` is true when the documents do not answer the question (``text`` then says so
    in the question's language); ``grounded`` is the share of cited sentences supported by
    their sources; ``complete`` is false when the model stopped early (token limit, broken
    stream) — such text is never presented as a full answer. ``manifest`` identifies what
    produced it (model id and version, template hash, config hash, index manifest hash);
    ``trace`` holds retrieved chunk ids, timings in ms and the checker's findings.
    """

    question: str
    text: str
    citations: tuple[Citation, ...]
    abstained: bool
    grounded: float
    usage: Usage
    manifest: Mapping[str, Any]
    trace: Trace
    complete: bool = True
    #: The numbered sources the answer was written and checked from (not in :meth:`to_dict`;
    #: ``ask --json`` adds them so that its output can be verified again).
    sources: tuple[Source, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "manifest", _frozen(self.manifest))
        object.__setattr__(self, "trace", self.trace if isinstance(self.trace, Trace) else Trace(self.trace))

    def to_dict(self) -> dict[str, Any]:
        return {"question": self.question, "text": self.text, "abstained": self.abstained,
                "complete": self.complete, "grounded": round(self.grounded, 4),
                "citations": [c.to_dict() for c in self.citations], "usage": self.usage.to_dict(),
                "manifest": dict(self.manifest), "trace": self.trace.to_dict()}


@dataclass(frozen=True, slots=True)
class Evidence:
    """Gold evidence of a case: a document, optionally narrowed to a char range, a quote (found
    in the document at run time) or a page; ``relevance`` is its graded relevance (>= 1)."""

    doc_id: str
    start: int | None = None
    end: int | None = None
    quote: str | None = None
    page: int | None = None
    relevance: int = 1

    def to_dict(self) -> dict[str, Any]:
        return {"doc_id": self.doc_id, "start": self.start, "end": self.end, "quote": self.quote,
                "page": self.page, "relevance": self.relevance}


@dataclass(frozen=True, slots=True)
class Case:
    """One evaluation question. ``answers`` are reference answers (may be empty); ``gold`` the
    evidence; ``scenario`` its tags; ``answerable=False`` means the right output is an
    abstention; ``generated`` marks machine-written cases (kept apart in reports)."""

    id: str
    question: str
    answers: tuple[str, ...] = ()
    gold: tuple[Evidence, ...] = ()
    scenario: tuple[str, ...] = ()
    answerable: bool = True
    generated: bool = False
