"""Incremental indexing: sources in, chunks with tokens and vectors written to a store.

For each source: unchanged (same size and mtime, or same content hash) is skipped; new or
changed sources are loaded, chunked, analysed and embedded, then written in batches — one
transaction per batch of whole sources, so an interrupted ingest never leaves half a file.
Embeddings are cached by (model, text hash): re-ingest never re-embeds unchanged text; with a
``shared_cache`` (:mod:`domainrag.models.vector_cache`) neither does any other knowledge base of
the machine. The text
indexed and embedded for a chunk is its context (``chunking.context``: title, heading path, file
name, table header...; see :mod:`domainrag.ingest.context`) followed by the chunk's own text. A
batch is embedded on a background thread while this thread reads, chunks and analyses the sources
of the next one (the embedder releases the GIL), so parsing and embedding overlap; every store call
stays on the calling thread, and batches are written in order.
The access groups an ingest gives a source are part of its stored content hash, so new groups
rewrite it (from the embedding cache); see :mod:`domainrag.ingest.acl`.

One source never sinks the others: any error while reading, chunking or writing a source
becomes that source's one-line reason in ``IngestReport.failed`` (a batch that fails to write is
retried source by source), and the ingest goes on.
"""

from __future__ import annotations

import hashlib
import logging
import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from ..errors import DomainragError
from ..ingest.acl import given_groups, tagged, with_groups
from ..ingest.context import DocumentContext, contextual_text
from ..ingest.quality import ParseNote, assess
from ..ingest.seams import Chunker, clean_document
from ..ingest.sources import SourceItem, in_scope
from ..models.embedding import BaseEmbedder
from ..models.vector_cache import SharedVectorCache
from .analyzer import Analyzer
from .store import SourceState, SourceUpdate, Store

Progress = Callable[[str], None]
_log = logging.getLogger(__name__)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")
#: Longest reason kept in a report.
MAX_REASON_CHARS = 500


def one_line(text: str, limit: int = MAX_REASON_CHARS) -> str:
    """``text`` as one printable line: control characters (newlines included) become spaces,
    characters that cannot be UTF-8 (lone surrogates) become ``\\uXXXX`` escapes, and at most
    ``limit`` characters are kept."""
    text = _CONTROL.sub(" ", text).strip()
    text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def failure(label: str, reason: str) -> tuple[str, str]:
    """A ``(label, reason)`` entry of ``IngestReport.failed``, both printable on one line."""
    return one_line(label, 10 * MAX_REASON_CHARS), one_line(reason) or "unknown error"


@dataclass
class IngestReport:
    """What an ingest did. ``partial`` is true when any source failed or it was interrupted."""

    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    ignored: list[tuple[str, str]] = field(default_factory=list)
    chunks: int = 0
    embedded: int = 0
    seconds: float = 0.0
    interrupted: bool = False
    #: The parse notes of the sources written (those with any), by label: warnings name the
    #: files that parsed suspiciously (see :mod:`domainrag.ingest.quality`).
    notes: dict[str, list[ParseNote]] = field(default_factory=dict)

    @property
    def suspicious(self) -> dict[str, list[ParseNote]]:
        """The sources written with parse warnings, each with its warnings."""
        return {label: warned for label, notes in self.notes.items() if (warned := [n for n in notes if n.warning])}

    @property
    def partial(self) -> bool:
        return bool(self.failed) or self.interrupted

    def summary(self) -> dict[str, object]:
        return {
            "added": len(self.added), "updated": len(self.updated), "skipped": len(self.skipped),
            "removed": len(self.removed), "failed": len(self.failed),
            "ignored": len(self.ignored), "suspicious": len(self.suspicious), "chunks": self.chunks,
            "embedded": self.embedded, "seconds": round(self.seconds, 3), "interrupted": self.interrupted,
        }


def _kept(states: Iterable[str], keep: Sequence[str]) -> set[str]:
    return {s for s in states if any(in_scope(s, k) for k in keep)} if keep else set()


@dataclass
class _Pending:
    """A prepared source waiting for its batch to be embedded and written."""

    update: SourceUpdate
    label: str
    existed: bool
    texts: list[str]

    def count(self, report: IngestReport) -> None:
        (report.updated if self.existed else report.added).append(self.label)
        report.chunks += len(self.update.chunks)
        if self.update.notes:
            report.notes[self.label] = [ParseNote.from_dict(n) for n in self.update.notes]


@dataclass
class _Batch:
    """Sources whose chunks are being embedded: the cached vectors by text hash, and the
    embedding of the missing texts running on the background thread."""

    pending: list[_Pending]
    keys: list[str]
    cached: dict[str, np.ndarray]
    embedder_id: str = ""
    shared: dict[str, np.ndarray] = field(default_factory=dict)   # found in the shared cache only
    missing: list[str] = field(default_factory=list)
    fresh: Future[np.ndarray] | None = None


class IndexBuilder:
    def __init__(
        self,
        store: Store,
        chunker: Chunker,
        embedder: Callable[[], BaseEmbedder] | None,
        analyzer: Analyzer | None = None,
        batch_chunks: int = 256,
        context: str = "headings",
        shared_cache: SharedVectorCache | None = None,
    ) -> None:
        self.store = store
        self.context = context
        self.chunker = chunker
        self._embedder = embedder
        self.analyzer = analyzer or Analyzer()
        self.batch_chunks = batch_chunks
        self.shared_cache = shared_cache
        self._earlier: Mapping[str, SourceState] = {}

    def run(
        self,
        items: Iterable[SourceItem],
        prune_scopes: Sequence[str] = (),
        progress: Progress | None = None,
        keep: Sequence[str] = (),
        earlier: Mapping[str, SourceState] | None = None,
    ) -> IngestReport:
        """Ingest ``items``; with ``prune_scopes``, remove the sources in those scopes that were
        not among the items, except those in a ``keep`` scope (they exist but failed to be read).
        ``earlier``: the source states before the store was cleared (a reindex), so sources keep
        the access groups they were given (see :mod:`~domainrag.ingest.acl`)."""
        self._earlier = earlier or {}
        report = IngestReport()
        started = time.perf_counter()
        states = self.store.source_states()
        seen: set[str] = set()
        pending: list[_Pending] = []
        embedding: _Batch | None = None
        with ThreadPoolExecutor(1, thread_name_prefix="ingest-embed") as background:
            try:
                for item in items:
                    seen.add(item.source)
                    prepared = self._prepare(item, states, report)
                    if prepared is not None:
                        pending.append(prepared)
                    if sum(len(p.texts) for p in pending) >= self.batch_chunks:
                        self._finish(embedding, report)
                        embedding, pending = self._start(pending, report, background), []
                    if progress:
                        progress(item.label)
                self._finish(embedding, report)
                embedding = None
                self._finish(self._start(pending, report, background), report)
                if prune_scopes:
                    self._prune(states, seen | _kept(states, keep), prune_scopes, report)
            except KeyboardInterrupt:
                report.interrupted = True
                if embedding is not None and embedding.fresh is not None:
                    embedding.fresh.cancel()
            finally:
                report.seconds = time.perf_counter() - started
        return report

    def _prepare(self, item: SourceItem, states: dict[str, SourceState], report: IngestReport) -> _Pending | None:
        old = states.get(item.source)
        groups = item.acl if item.acl is not None else self._kept_groups(item.source, old)
        same_groups = old is not None and given_groups(old.content_hash) == groups
        if old and same_groups and (old.size, old.mtime_ns) == (item.size, item.mtime_ns) and item.mtime_ns:
            report.skipped.append(item.label)
            return None
        try:
            digest = tagged(item.fingerprint(), groups)
            if old and old.content_hash == digest:
                self.store.touch_source(item.source, item.size, item.mtime_ns)
                report.skipped.append(item.label)
                return None
            return self._build(item, digest, groups, old is not None)
        except (DomainragError, OSError) as exc:
            report.failed.append(failure(item.label, str(exc) or type(exc).__name__))
        except Exception as exc:  # noqa: BLE001 - one file's unexpected error must not stop the ingest
            _log.debug("ingest of %s failed", item.label, exc_info=True)
            report.failed.append(failure(item.label, f"unexpected {type(exc).__name__}: {exc}"))
        return None

    def _kept_groups(self, source: str, old: SourceState | None) -> tuple[str, ...] | None:
        """The groups ``source`` was given when last ingested (also before a reindex)."""
        earlier = old or self._earlier.get(source)
        return given_groups(earlier.content_hash) if earlier else None

    def _build(self, item: SourceItem, digest: str, groups: tuple[str, ...] | None, existed: bool) -> _Pending:
        documents = [with_groups(clean_document(d), groups) for d in item.load()]  # any source, plug-ins' too
        chunks, texts = [], []
        whole_file = len(documents) == 1 and "#" not in item.source   # not a record of a collection
        for doc in documents:
            context = DocumentContext.of(doc, whole_file)
            for chunk in self.chunker.split(doc):
                chunks.append(chunk)
                texts.append(contextual_text(chunk, context.lines(chunk, self.context)))
        tokens = [self.analyzer.tokenize(t) for t in texts]
        notes = [n.to_dict() for n in assess(documents)]
        update = SourceUpdate(item.source, digest, item.size, item.mtime_ns, documents, chunks, tokens, notes=notes)
        return _Pending(update, item.label, existed, texts)

    def _start(self, pending: list[_Pending], report: IngestReport, background: ThreadPoolExecutor) -> _Batch | None:
        """Look up the batch's cached vectors and start embedding the others on ``background``."""
        if not pending:
            return None
        texts = [t for p in pending for t in p.texts]
        keys = [hashlib.sha1(t.encode()).hexdigest() for t in texts]
        batch = _Batch(pending, keys, {})
        if self._embedder is None or not texts:
            return batch
        embedder = self._embedder()
        batch.embedder_id = embedder.id
        batch.cached = self.store.cached_vectors(embedder.id, sorted(set(keys)))
        if self.shared_cache is not None:
            batch.shared = self.shared_cache.get(embedder.id, sorted(set(keys) - set(batch.cached)))
            batch.cached.update(batch.shared)
        missing = {k: t for k, t in zip(keys, texts, strict=True) if k not in batch.cached}
        if missing:
            batch.missing = list(missing)
            batch.fresh = background.submit(embedder.embed, list(missing.values()))
        return batch

    def _finish(self, batch: _Batch | None, report: IngestReport) -> None:
        """Wait for the batch's embedding (its errors surface here), cache it, write the batch."""
        if batch is None:
            return
        vectors = None
        if batch.embedder_id:
            new = {} if batch.fresh is None else dict(zip(batch.missing, batch.fresh.result(), strict=True))
            if new and self.shared_cache is not None:
                self.shared_cache.put(batch.embedder_id, new)
            if new or batch.shared:
                self.store.cache_vectors(batch.embedder_id, {**batch.shared, **new})
            batch.cached.update(new)
            report.embedded += len(new)
            vectors = np.vstack([batch.cached[k] for k in batch.keys])
        offset = 0
        for p in batch.pending:
            n = len(p.texts)
            p.update.vectors = None if vectors is None else vectors[offset : offset + n]
            offset += n
        self._write(batch.pending, report)

    def _write(self, pending: list[_Pending], report: IngestReport) -> None:
        try:
            self.store.write([p.update for p in pending])
        except Exception:  # noqa: BLE001 - find the failing source(s) below, keep the others
            for p in pending:
                try:
                    self.store.write([p.update])
                except Exception as exc:  # noqa: BLE001 - becomes this source's reason
                    _log.debug("writing %s failed", p.label, exc_info=True)
                    report.failed.append(failure(p.label, f"cannot be stored: {type(exc).__name__}: {exc}"))
                    continue
                p.count(report)
            return
        for p in pending:
            p.count(report)

    def _prune(
        self, states: dict[str, SourceState], seen: set[str], scopes: Sequence[str], report: IngestReport
    ) -> None:
        gone = [s for s in states if s not in seen and any(in_scope(s, scope) for scope in scopes)]
        self.store.remove_sources(gone)
        report.removed.extend(gone)
