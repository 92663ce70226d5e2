"""The ``Store`` seam: what any knowledge-base storage backend provides.

Semantics every implementation must honour (checked by :mod:`domainrag.testing.store`, which
every store passes — the embedded SQLite store and PostgreSQL alike):

- ``write`` applies a batch of :class:`SourceUpdate` atomically: after a crash either the
  whole batch or none of it is visible. Writing a source replaces everything it held before.
- ``remove_sources`` deletes sources with their documents and chunks; ``clear`` deletes all.
- ``view()`` returns a :class:`StoreView` of one committed state (the latest when it is made),
  which never changes afterwards, whatever other connections or processes write. A search that
  makes several calls (lexical and dense rankings, hits) makes them all on one view: row
  positions belong to the view that produced them. ``hits`` may raise :class:`SnapshotExpired`
  when the store moved on and no longer holds what the view needs; the caller then repeats the
  search on a new view. Every new view sees every committed write.
- A :class:`Scope` (metadata filters and the caller's access groups) is applied *inside* the
  store's ranking, before the top ``n`` are cut: a ranking never holds a chunk outside its scope,
  and a narrow scope still yields up to ``n`` results when the store holds them.
- Access: a document's groups are ``metadata["acl"]`` (a list of names; absent or empty = every
  caller may read it). A scope with ``groups=None`` reads every document; otherwise a document is
  visible iff it has no groups or shares one with the scope.
- Each ranking lists equal scores in chunk-id order (code points, whatever a database's
  collation), so equal catalogs give equal rankings in every store, ties included, whatever the
  order sources were written in. Row numbers are the store's own (positions in one store,
  database ids in another): nothing above the store may order by them (fusion breaks its ties by
  the rankings' own orders).
- ``has_vectors`` is false while no chunk has a vector (dense search then does not apply).
- A source's parse notes (``SourceUpdate.notes``, see :mod:`domainrag.ingest.quality`) are
  stored with it, replaced when it is rewritten and removed with it; ``parse_notes`` returns
  those of every source that has any.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from ..config import IndexConfig
from ..errors import ConfigError, DomainragError
from ..redaction import redact_url
from ..types import Chunk, Document, Hit
from .ranked import Ranked


class SnapshotExpired(DomainragError):
    """A view's committed state was replaced by a later write, and what the view needs from the
    catalog is gone; repeat the search on a new view."""


@dataclass(frozen=True)
class Scope:
    """What one search may see: document metadata ``filters`` (see ``KnowledgeBase.search``) and
    the caller's access ``groups`` (``None``: every document; see the module docstring)."""

    filters: Mapping[str, Any] | None = None
    groups: frozenset[str] | None = None

    @classmethod
    def of(cls, filters: Mapping[str, Any] | None = None, groups: Iterable[str] | None = None) -> Scope | None:
        """The scope of these arguments, or ``None`` when it restricts nothing."""
        if isinstance(groups, str):
            raise ConfigError(f"Access groups must be a list of names, not the string {groups!r}: "
                              f"use [{groups!r}].")
        frozen = None if groups is None else frozenset(groups)
        if filters:
            check_filters(filters)
        if not filters and frozen is None:
            return None
        return cls(dict(filters) if filters else None, frozen)

    def key(self) -> str:
        """A canonical string of the scope (for caching what it selects)."""
        return json.dumps([self.filters, sorted(self.groups) if self.groups is not None else None],
                          sort_keys=True, default=str)


def check_filters(filters: Mapping[str, Any]) -> None:
    """:class:`ConfigError` naming the first filter no store can apply: a field that is not letters,
    digits and underscores, or a value that is not a string, number or boolean (or a non-empty
    list of them; ``path`` takes glob strings)."""
    for key, value in filters.items():
        if not isinstance(key, str) or not key.replace("_", "").isalnum():
            raise ConfigError(f"Filter field {key!r} must be letters, digits and underscores.")
        values = list(value) if isinstance(value, list | tuple | set | frozenset) else [value]
        if not values:
            raise ConfigError(f"Filter {key!r} is an empty list: give at least one value, or leave the filter out.")
        kinds, wanted, example = ((str,), "a glob string", "policies/*.pdf") if key == "path" else \
            ((str, int, float), "a string, number or boolean", "pdf")   # bool is an int
        if any(not isinstance(v, kinds) for v in values):
            raise ConfigError(f"Filter {key!r} = {value!r}: give {wanted} or a list of them (operators such as "
                              f"$ne are not supported), e.g. {{{key!r}: {example!r}}}.")


def visible(metadata: Mapping[str, Any], groups: frozenset[str] | None) -> bool:
    """Whether a document with ``metadata`` is visible to a caller in ``groups`` (the rule every
    store applies in its queries, for code that holds one document)."""
    if groups is None:
        return True
    acl = metadata.get("acl")
    if acl is None or acl == []:
        return True
    return bool(groups.intersection([acl] if isinstance(acl, str) else acl))


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
    #: What the parse of this source is worth knowing (``ParseNote.to_dict()`` each; see
    #: :mod:`domainrag.ingest.quality`).
    notes: list[dict[str, Any]] = field(default_factory=list)


class StoreView(Protocol):
    """Searches over one committed state of a store (see the module docstring)."""

    @property
    def generation(self) -> int:
        """A number that grows with every committed write; equal views have equal ones."""
        ...

    def lexical(self, tokens: Sequence[str], n: int, scope: Scope | None = None) -> Ranked:
        """The ``n`` best rows by BM25 over the analyzer's ``tokens``, within ``scope``."""
        ...

    def dense(self, vector: np.ndarray, n: int, scope: Scope | None = None) -> Ranked:
        """The ``n`` rows whose vectors are nearest ``vector`` (cosine), within ``scope``.
        A vector of other dimensions than the index raises :class:`ConfigError`."""
        ...

    @property
    def has_vectors(self) -> bool: ...

    def hits(self, ranked: Ranked) -> list[Hit]:
        """The chunks of ``ranked`` rows with their documents' fields, in order, scores kept."""
        ...

    def doc_ids(self, rows: np.ndarray) -> list[str]:
        """The document id of each row."""
        ...


class Store(Protocol):
    """A knowledge base's documents, chunks, vectors and lexical index (module docstring)."""

    def view(self) -> StoreView: ...

    def manifest(self) -> dict[str, Any] | None:
        """What the index was built with (embedder, chunker, analyzer), or ``None`` when empty."""
        ...

    def set_manifest(self, manifest: Mapping[str, Any]) -> None: ...

    def source_states(self) -> dict[str, SourceState]:
        """Every source's size, mtime and content hash: what incremental ingest compares."""
        ...

    def touch_source(self, source: str, size: int, mtime_ns: int) -> None:
        """Record a new size/mtime for a source whose content did not change."""
        ...

    def write(self, updates: Sequence[SourceUpdate]) -> None: ...

    def remove_sources(self, sources: Sequence[str]) -> int:
        """Delete these sources with their documents and chunks; the number removed."""
        ...

    def clear(self) -> None:
        """Delete every source, document, chunk and the manifest (a re-index)."""
        ...

    def refresh(self) -> None:
        """Bring derived indexes up to date with the committed state (after writes); ends the
        current ingest like :meth:`end_ingest`."""
        ...

    def end_ingest(self) -> None:
        """Release what an ingest holds (a database store's writer lock), whether or not it
        completed; cheap, idempotent. Committed batches stay; derived indexes are brought up to
        date by the next :meth:`refresh` or search."""
        ...

    def cached_vectors(self, model: str, keys: Sequence[str]) -> dict[str, np.ndarray]:
        """Embeddings cached for ``model`` by text key (the ones found)."""
        ...

    def cache_vectors(self, model: str, items: Mapping[str, np.ndarray]) -> None: ...

    def parse_notes(self) -> dict[str, list[dict[str, Any]]]:
        """The parse notes of every source that has any (``{"code", "message", "warning"}``
        each), by source, in source order."""
        ...

    def document(self, doc_id: str) -> dict[str, Any] | None:
        """One document as ``{"id", "source", "title", "text", "metadata"}``, or ``None``."""
        ...

    def iter_documents(self) -> Iterator[dict[str, Any]]:
        """Every document as ``{"id", "source", "title", "text", "metadata"}``, ordered by id."""
        ...

    def corpus_hash(self) -> str:
        """A hash of every source and its content hash: equal iff the corpus is the same."""
        ...

    def stats(self) -> dict[str, Any]:
        """At least ``sources``, ``documents``, ``chunks`` and ``generation`` counts."""
        ...

    def close(self) -> None: ...


class StoreFactory(Protocol):
    """What a ``domainrag.stores`` plug-in is: a callable (usually the class) building the store
    of a knowledge base from its ``[store] url`` (``""`` for the embedded default), the
    knowledge-base folder and the index settings."""

    def __call__(self, url: str, directory: Path, config: IndexConfig) -> Store: ...


def store_kind(url: str) -> str:
    """The ``domainrag.stores`` plug-in name for a ``[store] url``: ``sqlite`` for an empty url
    (the embedded store in the knowledge-base folder), else the url's scheme
    (``postgresql://…`` → ``postgres``)."""
    if not url:
        return "sqlite"
    scheme, sep, _ = url.partition("://")
    if not sep or not scheme:
        raise ConfigError(f"store.url {redact_url(url)!r} is not a URL; use e.g. 'postgresql://host/db', "
                          "or leave it empty for the embedded store in the knowledge-base folder.")
    scheme = scheme.split("+")[0].lower()
    return {"postgresql": "postgres", "postgres": "postgres"}.get(scheme, scheme)


def load_store(url: str, directory: Path, config: IndexConfig) -> Store:
    """The store for ``url`` through the plug-in registry (see :func:`store_kind`)."""
    from .. import registry

    factory: StoreFactory = registry.get("domainrag.stores", store_kind(url))
    return factory(url, directory, config)
