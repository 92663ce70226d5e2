"""The ``Store`` seam: what any knowledge-base storage backend provides.

Semantics every implementation must honour (checked by :mod:`domainrag.testing.store`):

- ``write`` applies a batch of :class:`SourceUpdate` atomically: after a crash either the
  whole batch or none of it is visible. Writing a source replaces everything it held before.
- ``remove_sources`` deletes sources with their documents and chunks.
- ``view()`` returns a :class:`StoreView` of one committed state (the latest when it is made),
  which never changes afterwards, whatever other connections or processes write. A search that
  makes several calls (filter mask, lexical and dense rankings, hits) makes them all on one view:
  row positions belong to the view that produced them. ``hits`` and ``allowed`` may raise
  :class:`SnapshotExpired` when the catalog moved on and no longer holds what the view needs;
  the caller then repeats the search on a new view. Every new view sees every committed write.
- The store's own ``lexical``/``dense``/``allowed``/``hits``/``doc_ids``/``has_vectors`` are
  one-call conveniences, each on the latest view.
- Row order is a function of the catalog's content (not of the order sources were written in),
  so equal catalogs give equal rankings, ties included.
- ``allowed`` turns a filter mapping into a boolean row mask (``None`` = no filter).
- ``has_vectors`` is false while no chunk has a vector (dense search then does not apply).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from ..errors import DomainragError
from ..types import Chunk, Document, Hit
from .ranked import Ranked


class SnapshotExpired(DomainragError):
    """A view's committed state was replaced by a later write, and what the view needs from the
    catalog is gone; repeat the search on a new view."""


@dataclass(frozen=True)
class SourceState:
    content_hash: str
    size: int
    mtime_ns: int


@dataclass
class SourceUpdate:
    """Everything one source (a file, or one record of a corpus) contributes to the index."""

    source: str
    content_hash: str
    size: int
    mtime_ns: int
    documents: list[Document]
    chunks: list[Chunk]
    tokens: list[list[str]] = field(default_factory=list)  # BM25 tokens, aligned with chunks
    vectors: np.ndarray | None = None  # aligned with chunks


class StoreView(Protocol):
    """Searches over one committed state of a store (see the module docstring)."""

    @property
    def generation(self) -> int: ...
    def lexical(self, tokens: Sequence[str], n: int, allowed: np.ndarray | None) -> Ranked: ...
    def dense(self, vector: np.ndarray, n: int, allowed: np.ndarray | None) -> Ranked: ...
    @property
    def has_vectors(self) -> bool: ...
    def allowed(self, filters: Mapping[str, Any] | None) -> np.ndarray | None: ...
    def hits(self, ranked: Ranked) -> list[Hit]: ...
    def doc_ids(self, rows: np.ndarray) -> list[str]: ...


class Store(Protocol):
    def view(self) -> StoreView: ...
    def manifest(self) -> dict[str, Any] | None: ...
    def set_manifest(self, manifest: Mapping[str, Any]) -> None: ...
    def source_states(self) -> dict[str, SourceState]: ...
    def touch_source(self, source: str, size: int, mtime_ns: int) -> None: ...
    def write(self, updates: Sequence[SourceUpdate]) -> None: ...
    def remove_sources(self, sources: Sequence[str]) -> int: ...
    def refresh(self) -> None: ...
    def lexical(self, tokens: Sequence[str], n: int, allowed: np.ndarray | None) -> Ranked: ...
    def dense(self, vector: np.ndarray, n: int, allowed: np.ndarray | None) -> Ranked: ...
    @property
    def has_vectors(self) -> bool: ...
    def allowed(self, filters: Mapping[str, Any] | None) -> np.ndarray | None: ...
    def hits(self, ranked: Ranked) -> list[Hit]: ...
    def doc_ids(self, rows: np.ndarray) -> list[str]: ...
    def cached_vectors(self, model: str, keys: Sequence[str]) -> dict[str, np.ndarray]: ...
    def cache_vectors(self, model: str, items: Mapping[str, np.ndarray]) -> None: ...
    def stats(self) -> dict[str, Any]: ...
    def iter_documents(self) -> Iterator[dict[str, Any]]:
        """Every document as ``{"id", "source", "title", "text", "metadata"}``, ordered by id."""
        ...
    def corpus_hash(self) -> str:
        """A hash of every source and its content hash: equal iff the corpus is the same."""
        ...
    def close(self) -> None: ...
