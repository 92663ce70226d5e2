"""A :class:`~domainrag.index.store.Store` in PostgreSQL with pgvector, shared by many processes.

``postgresql://USER@HOST:PORT/DB#COLLECTION`` (see :mod:`.postgres_connect` for options and
secrets). Everything lives in the database — catalog, BM25 postings and statistics, vectors with
their HNSW index, embedding cache — so any number of ``domainrag serve`` processes on any number
of machines answer from the same data, with nothing to rebuild per process.

Writes. One transaction per :meth:`write` (a batch of whole sources): it deletes what the
sources held, COPYs documents, chunks (with tokens and vectors) and postings, updates the term
and generation statistics and bumps ``state.generation``. A write into an empty collection
starts a bulk load: it drops the postings index, and :meth:`refresh` builds it in one pass with
the HNSW index (searches meanwhile stay exact, scanning the postings; an ingest killed before
its end leaves it to the next refresh). A killed process or a dropped connection
rolls the transaction back. An ingest holds a session-level advisory lock on the collection from
its first write until :meth:`refresh` (the end of the ingest) or :meth:`close`: a second ingest
into the same collection waits for it (``lock_timeout_s``), saying so, and never interleaves.

Views. A view is a generation ``g``. Chunk rowids come from one sequence and writers are
serialised, so generation ``g`` holds exactly the chunks with ``rowid <= gen_stats[g].max_rowid``
as long as nothing was deleted since: a view ignores rows added after it (its BM25 statistics
are those of ``g``: ``gen_stats`` rows and term frequencies less the postings added later). A
write that deletes chunks (a changed or removed source) sets ``state.horizon`` to its
generation; a view older than the horizon has expired, and its searches raise
:class:`SnapshotExpired` (the retriever repeats the search on a new view). Every statement of
a search is a single SQL statement, so it reads one consistent state without holding a
transaction open between calls.

Reads from a replica (``read_url``, :mod:`.postgres_connect`): a view is taken on the replica
when it answers and has replayed the primary's latest generation (one small query on the
primary per view), else on the primary, with a log line (a lagging replica is logged once a
minute; an unreachable one once per outage, and left alone for :data:`REPLICA_RETRY_S`). A
replica that fails in the middle of a search expires the view: the retriever repeats the search
on a new view, on the primary.

Dense search: pgvector HNSW (cosine), ``ef_search`` from the URL (at least the number of rows
asked for); exact search below :data:`EXACT_BELOW` vectors, and whenever a scoped search's
filtered HNSW candidates come back short. Vectors written once the graph exists wait in the
``pending`` table, outside the graph (pgvector inserts into a graph one vector at a time, the
cost that held an incremental ingest to ~120 chunks/s), and are searched exactly in the same
statement as the graph; a refresh folds them into the graph once more than
:data:`PENDING_FOLD_AT` wait. Lexical: BM25 in SQL (:mod:`.postgres_lexical`).
Filters and ACL groups are SQL conditions applied before top-k (:mod:`.postgres_scope`).
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import numpy as np

from ..config import IndexConfig
from ..errors import ConfigError, DomainragError, IndexMismatchError
from ..types import Chunk, Document, Hit, Span
from .postgres_connect import PostgresTarget, StoreUnavailable, connect, parse_url, psycopg_module, translate
from .postgres_lexical import add_postings_sql, bm25_sql, query_terms, remove_postings_sql
from .postgres_schema import (
    MIGRATIONS,
    POSTINGS_INDEX,
    SCHEMA_VERSION,
    VECTOR_INDEX,
    create_statements,
    postings_index_statement,
    vector_column_statement,
    vector_index_statement,
)
from .postgres_scope import document_condition, scope_condition
from .ranked import Ranked
from .store import Scope, SnapshotExpired, SourceState, SourceUpdate

log = logging.getLogger(__name__)
P = ParamSpec("P")
R = TypeVar("R")
#: Below this many vectors dense search is exact (a scan costs less than the graph's misses).
EXACT_BELOW = 10_000
#: HNSW build parameters (pgvector's defaults are m=16, ef_construction=64).
HNSW_M = 16
HNSW_EF_CONSTRUCTION = 64
#: Generations older than this many writes expire even without a delete (bounds ``gen_stats``).
KEEP_GENERATIONS = 10_000
#: Vectors waiting outside the HNSW graph (searched exactly) before a refresh folds them in.
PENDING_FOLD_AT = 20_000
#: Rows folded into the graph per transaction.
FOLD_STEP = 2_000
POOL_SIZE = 16
#: Seconds an unreachable read replica is left alone before it is tried again.
REPLICA_RETRY_S = 10.0
#: Seconds between two log lines about a lagging replica.
LAG_LOG_S = 60.0


def _pg_errors(doing: str) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Translate psycopg errors raised by a store method (the one seam: :func:`translate`)."""

    def wrap(method: Callable[P, R]) -> Callable[P, R]:
        def translated(*args: P.args, **kwargs: P.kwargs) -> R:
            psycopg = psycopg_module()
            try:
                return method(*args, **kwargs)
            except psycopg.Error as exc:
                owner = args[0]
                target = owner.target if isinstance(owner, PostgresStore) else owner._store.target  # type: ignore[attr-defined]
                raise translate(exc, target, doing) from exc

        translated.__name__ = method.__name__
        translated.__doc__ = method.__doc__
        return translated

    return wrap


class _Pool:
    """Idle connections for searches, one per concurrent caller (connections are not shared)."""

    def __init__(self, target: PostgresTarget, size: int) -> None:
        self._target = target
        self._size = size
        self._idle: list[Any] = []
        self._lock = threading.Lock()

    @contextmanager
    def connection(self) -> Iterator[Any]:
        with self._lock:
            conn = self._idle.pop() if self._idle else None
        if conn is None:
            conn = connect(self._target)
        try:
            yield conn
        finally:
            self._give_back(conn)

    def _give_back(self, conn: Any) -> None:
        psycopg = psycopg_module()
        healthy = not conn.broken and conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
        with self._lock:
            if healthy and len(self._idle) < self._size:
                self._idle.append(conn)
                return
        conn.close()

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()


class PostgresStore:
    """The PostgreSQL + pgvector store (see module docstring)."""

    def __init__(self, url: str, config: IndexConfig | None = None) -> None:
        self.target = parse_url(url)
        self.config = config or IndexConfig()
        self.schema = self.target.schema
        self._pool = _Pool(self.target, POOL_SIZE)
        self._read_pool = _Pool(self.target.read, POOL_SIZE) if self.target.read else None
        self._replica_down_until = 0.0
        self._replica_logged = 0.0
        self._writer: Any = None  # the connection holding the ingest lock, while it is held
        self._written = False  # a write committed since the last refresh (indexes, statistics owed)
        self._write_lock = threading.RLock()
        self._ef: weakref.WeakKeyDictionary[Any, int] = weakref.WeakKeyDictionary()  # connection -> its ef_search
        with self._pool.connection() as conn:
            self._ensure_schema(conn)

    @property
    def label(self) -> str:
        return self.target.label

    # -- schema ----------------------------------------------------------------------------
    def _ensure_schema(self, conn: Any) -> None:
        psycopg = psycopg_module()
        try:
            with conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", ("domainrag-schema:" + self.schema,))
                exists = conn.execute(
                    "SELECT 1 FROM information_schema.tables WHERE table_schema = %s AND table_name = 'schema_version'",
                    (self.schema,),
                ).fetchone()
                if not exists:
                    for statement in create_statements(self.schema):
                        conn.execute(statement)
                    return
                version = conn.execute(f"SELECT version FROM {self.schema}.schema_version").fetchone()[0]
                if version > SCHEMA_VERSION:
                    raise DomainragError(
                        f"{self.label} was written by a newer domainrag (schema version {version}; this one "
                        f"reads up to {SCHEMA_VERSION}). Upgrade domainrag: pip install -U 'domainrag[postgres]'."
                    )
                for step in range(version, SCHEMA_VERSION):
                    for statement in MIGRATIONS[step]:
                        conn.execute(statement.format(s=self.schema))
                    conn.execute(f"UPDATE {self.schema}.schema_version SET version = %s", (step + 1,))
        except psycopg.Error as exc:
            raise translate(exc, self.target, "creating the collection's tables") from exc

    # -- the ingest lock -------------------------------------------------------------------
    def _lock_key(self) -> str:
        return "domainrag-ingest:" + self.schema

    def _writer_connection(self, wait: bool = True) -> Any:
        """The connection that holds the collection's ingest lock (taken now if need be; with
        ``wait=False``, ``None`` when another ingest holds it)."""
        if self._writer is not None and not self._writer.broken:
            return self._writer
        self._writer = None
        conn = connect(self.target)
        try:
            got = conn.execute("SELECT pg_try_advisory_lock(hashtext(%s))", (self._lock_key(),)).fetchone()[0]
            if not got and not wait:
                conn.close()
                return None
            if not got:
                log.warning("%s: another ingest is writing to this collection; waiting up to %g s for it",
                            self.label, self.target.lock_timeout_s)
                conn.execute(f"SET lock_timeout = '{int(self.target.lock_timeout_s * 1000)}ms'")
                conn.execute("SELECT pg_advisory_lock(hashtext(%s))", (self._lock_key(),))
                conn.execute("SET lock_timeout = 0")
        except BaseException:
            conn.close()
            raise
        self._writer = conn
        return conn

    def _release_writer(self) -> None:
        with self._write_lock:
            writer, self._writer = self._writer, None
        if writer is not None:
            writer.close()  # ends the session: the advisory lock goes with it

    @contextmanager
    def _write_transaction(self) -> Iterator[tuple[Any, int]]:
        """A write transaction on the lock-holding connection, with the new generation number.
        A failure discards the connection when it broke (the server rolled back)."""
        with self._write_lock:
            conn = self._writer_connection()
            try:
                with conn.transaction():
                    generation = conn.execute(
                        f"UPDATE {self.schema}.state SET generation = generation + 1 RETURNING generation"
                    ).fetchone()[0]
                    yield conn, generation
                self._written = True
            except BaseException:
                if conn.broken:
                    self._writer = None
                raise

    # -- catalog ---------------------------------------------------------------------------
    @_pg_errors("reading the manifest")
    def manifest(self) -> dict[str, Any] | None:
        with self._pool.connection() as conn:
            row = conn.execute(f"SELECT manifest FROM {self.schema}.state").fetchone()
        return None if row is None or row[0] is None else dict(row[0])

    @_pg_errors("writing the manifest")
    def set_manifest(self, manifest: Mapping[str, Any]) -> None:
        from psycopg.types.json import Jsonb

        with self._write_lock:
            conn = self._writer_connection()
            conn.execute(f"UPDATE {self.schema}.state SET manifest = %s", (Jsonb(dict(manifest)),))

    @_pg_errors("reading the sources")
    def source_states(self) -> dict[str, SourceState]:
        with self._pool.connection() as conn:
            rows = conn.execute(f"SELECT source, content_hash, size, mtime_ns FROM {self.schema}.sources").fetchall()
        return {r[0]: SourceState(r[1], r[2], r[3]) for r in rows}

    @_pg_errors("reading the parse notes")
    def parse_notes(self) -> dict[str, list[dict[str, Any]]]:
        with self._pool.connection() as conn:
            rows = conn.execute(f"SELECT source, notes FROM {self.schema}.parse_notes "
                                "ORDER BY source COLLATE \"C\"").fetchall()
        return {r[0]: list(r[1]) for r in rows}

    @_pg_errors("updating a source")
    def touch_source(self, source: str, size: int, mtime_ns: int) -> None:
        with self._write_lock:
            conn = self._writer_connection()
            conn.execute(f"UPDATE {self.schema}.sources SET size = %s, mtime_ns = %s WHERE source = %s",
                         (size, mtime_ns, source))

    @_pg_errors("writing a batch of sources")
    def write(self, updates: Sequence[SourceUpdate]) -> None:
        _check_batch(updates)
        with self._write_transaction() as (conn, generation):
            self._defer_postings_index(conn)
            deleted = self._delete_sources(conn, [u.source for u in updates])
            self._check_document_ids(conn, updates)
            added = self._insert(conn, updates)
            self._finish_generation(conn, generation, added, deleted)

    @_pg_errors("removing sources")
    def remove_sources(self, sources: Sequence[str]) -> int:
        if not sources:
            return 0
        with self._write_transaction() as (conn, generation):
            deleted = self._delete_sources(conn, list(sources))
            self._finish_generation(conn, generation, _Delta(), deleted)
        return len(sources)

    @_pg_errors("clearing the collection")
    def clear(self) -> None:
        """Delete every source, document and chunk, the manifest and the vector dimension (the
        embedding cache is kept)."""
        s = self.schema
        with self._write_transaction() as (conn, generation):
            conn.execute(f"TRUNCATE {s}.postings, {s}.terms, {s}.pending, {s}.chunks, {s}.documents, {s}.parse_notes, "
                         f"{s}.sources")
            conn.execute(f"DROP INDEX IF EXISTS {s}.{VECTOR_INDEX}")
            conn.execute(f"ALTER TABLE {s}.chunks ALTER COLUMN vector TYPE vector")
            conn.execute(f"DELETE FROM {s}.gen_stats")
            conn.execute(f"INSERT INTO {s}.gen_stats VALUES (%s, 0, 0, 0, 0)", (generation,))
            conn.execute(f"UPDATE {s}.state SET horizon = %s, dimensions = NULL, manifest = NULL", (generation,))

    def _defer_postings_index(self, conn: Any) -> None:
        """A write into an empty collection starts a bulk load: the postings index is dropped (in
        this transaction) and built in one pass by :meth:`refresh`, as the HNSW index is. Growing
        the B-tree posting by posting (~55 per chunk, at random places) costs several times more.
        Until then searches stay exact but scan the postings."""
        s = self.schema
        empty = conn.execute(
            f"SELECT chunks = 0 AND to_regclass(%s) IS NOT NULL FROM {s}.gen_stats ORDER BY gen DESC LIMIT 1",
            (f"{s}.{POSTINGS_INDEX}",),
        ).fetchone()
        if empty and empty[0]:
            conn.execute(f"ALTER TABLE {s}.postings DROP CONSTRAINT IF EXISTS {POSTINGS_INDEX}")  # version 1: a key
            conn.execute(f"DROP INDEX IF EXISTS {s}.{POSTINGS_INDEX}")

    def _delete_sources(self, conn: Any, sources: list[str]) -> _Delta:
        """Delete ``sources`` with their documents, chunks and postings; what was deleted."""
        s = self.schema
        gone = conn.execute(
            f"SELECT count(*), coalesce(sum(cardinality(c.tokens)), 0), count(coalesce(c.vector, p.vector)) "
            f"FROM {s}.chunks c JOIN {s}.documents d ON d.rowid = c.doc_rowid "
            f"LEFT JOIN {s}.pending p ON p.rowid = c.rowid WHERE d.source = ANY(%s)", (sources,),
        ).fetchone()
        if gone[0]:
            conn.execute(remove_postings_sql(s), {"sources": sources})
        conn.execute(f"DELETE FROM {s}.sources WHERE source = ANY(%s)", (sources,))
        return _Delta(int(gone[0]), int(gone[1]), int(gone[2]))

    def _check_document_ids(self, conn: Any, updates: Sequence[SourceUpdate]) -> None:
        ids = [d.id for u in updates for d in u.documents]
        taken = conn.execute(
            f"SELECT id, source FROM {self.schema}.documents WHERE id = ANY(%s) LIMIT 1", (ids,)
        ).fetchone()
        if taken:
            raise ConfigError(
                f"Document id {taken[0]!r} already comes from {taken[1]}; give the files distinct paths or ids"
            )

    def _insert(self, conn: Any, updates: Sequence[SourceUpdate]) -> _Delta:
        from psycopg.types.json import Jsonb

        s = self.schema
        documents = [(u, d) for u in updates for d in u.documents]
        chunks = [(u, i) for u in updates for i in range(len(u.chunks))]
        doc_rowids = self._next_ids(conn, "documents", len(documents))
        chunk_rowids = self._next_ids(conn, "chunks", len(chunks))
        dims = self._prepare_vectors(conn, updates)
        pending = bool(dims) and self._has_graph(conn)   # the graph exists: new vectors wait outside it
        with conn.cursor() as cur:
            with cur.copy(f"COPY {s}.sources (source, content_hash, size, mtime_ns) FROM STDIN") as copy:
                for u in updates:
                    copy.write_row((u.source, u.content_hash, u.size, u.mtime_ns))
            noted = [(u.source, Jsonb(u.notes)) for u in updates if u.notes]
            if noted:
                cur.executemany(f"INSERT INTO {s}.parse_notes (source, notes) VALUES (%s, %s)", noted)
            doc_rowid: dict[str, int] = {}
            with cur.copy(f"COPY {s}.documents (rowid, id, source, title, text, metadata, acl) FROM STDIN") as copy:
                for rowid, (u, d) in zip(doc_rowids, documents, strict=True):
                    doc_rowid[d.id] = rowid
                    metadata = dict(d.metadata)
                    copy.write_row((rowid, d.id, u.source, _text(d.title), _text(d.text), Jsonb(_jsonable(metadata)),
                                    _acl(d.id, metadata)))
            columns = "rowid, id, doc_rowid, ordinal, start_char, end_char, page, heading_path, text, tokens, vector"
            with cur.copy(f"COPY {s}.chunks ({columns}) FROM STDIN (FORMAT BINARY)") as copy:
                copy.set_types(["int8", "text", "int8", "int4", "int4", "int4", "int4", "jsonb", "text", "text[]",
                                "vector"])
                for rowid, (u, i) in zip(chunk_rowids, chunks, strict=True):
                    c = u.chunks[i]
                    vector = None if u.vectors is None or pending else np.asarray(u.vectors[i], dtype=np.float32)
                    copy.write_row((rowid, c.id, doc_rowid[c.doc_id], c.ordinal, c.span.start, c.span.end,
                                    c.span.page, Jsonb(list(c.heading_path)), _text(c.text), list(u.tokens[i]), vector))
            if pending:
                with cur.copy(f"COPY {s}.pending (rowid, vector) FROM STDIN (FORMAT BINARY)") as copy:
                    copy.set_types(["int8", "vector"])
                    for rowid, (u, i) in zip(chunk_rowids, chunks, strict=True):
                        if u.vectors is not None:
                            copy.write_row((rowid, np.asarray(u.vectors[i], dtype=np.float32)))
        if chunk_rowids:
            conn.execute(add_postings_sql(s), {"lo": chunk_rowids[0], "hi": chunk_rowids[-1]})
        length = sum(len(u.tokens[i]) for u, i in chunks)
        vectors = sum(len(u.chunks) for u in updates if u.vectors is not None) if dims else 0
        return _Delta(len(chunks), length, vectors, max(chunk_rowids, default=0))

    def _has_graph(self, conn: Any) -> bool:
        found = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (f"{self.schema}.{VECTOR_INDEX}",)).fetchone()
        return bool(found[0])

    def _next_ids(self, conn: Any, table: str, n: int) -> list[int]:
        if not n:
            return []
        rows = conn.execute(
            f"SELECT nextval('{self.schema}.{table}_rowid_seq') FROM generate_series(1, %s)", (n,)
        ).fetchall()
        return [r[0] for r in rows]

    def _prepare_vectors(self, conn: Any, updates: Sequence[SourceUpdate]) -> int | None:
        """The vector dimension of this batch, checked against the collection's (set by the
        first batch with vectors; the HNSW index is built when the ingest ends)."""
        dims = {int(u.vectors.shape[1]) for u in updates if u.vectors is not None and len(u.chunks)}
        if not dims:
            return None
        if len(dims) > 1:
            raise IndexMismatchError(f"One batch holds vectors of {sorted(dims)} dimensions; use one embedder")
        dim = dims.pop()
        current = conn.execute(f"SELECT dimensions FROM {self.schema}.state").fetchone()[0]
        if current is None:
            conn.execute(vector_column_statement(self.schema, dim))
            conn.execute(f"UPDATE {self.schema}.state SET dimensions = %s", (dim,))
        elif current != dim:
            raise IndexMismatchError(
                f"{self.label} holds {current}-dimensional vectors and this batch has {dim}; use the embedder "
                "the collection was built with, or rebuild it with 'domainrag ingest ... --reindex'."
            )
        return dim

    def _finish_generation(self, conn: Any, generation: int, added: _Delta, deleted: _Delta) -> None:
        s = self.schema
        previous = conn.execute(
            f"SELECT max_rowid, chunks, total_length, vectors FROM {s}.gen_stats ORDER BY gen DESC LIMIT 1"
        ).fetchone()
        max_rowid, chunks, length, vectors = previous or (0, 0, 0, 0)
        conn.execute(
            f"INSERT INTO {s}.gen_stats VALUES (%s, %s, %s, %s, %s)",
            (generation, max(max_rowid, added.max_rowid), chunks + added.chunks - deleted.chunks,
             length + added.length - deleted.length, vectors + added.vectors - deleted.vectors),
        )
        if deleted.chunks:
            conn.execute(f"UPDATE {s}.state SET horizon = %s", (generation,))
        conn.execute(
            f"DELETE FROM {s}.gen_stats WHERE gen < (SELECT horizon FROM {s}.state) OR gen < %s",
            (generation - KEEP_GENERATIONS,),
        )

    # -- embedding cache -------------------------------------------------------------------
    @_pg_errors("reading the embedding cache")
    def cached_vectors(self, model: str, keys: Sequence[str]) -> dict[str, np.ndarray]:
        with self._pool.connection() as conn:
            rows = conn.execute(
                f"SELECT key, vector FROM {self.schema}.embedding_cache WHERE model = %s AND key = ANY(%s)",
                (model, list(keys)),
            ).fetchall()
        return {k: np.frombuffer(v, dtype=np.float32) for k, v in rows}

    @_pg_errors("writing the embedding cache")
    def cache_vectors(self, model: str, items: Mapping[str, np.ndarray]) -> None:
        if not items:
            return
        with self._pool.connection() as conn, conn.cursor() as cur:
            cur.executemany(
                f"INSERT INTO {self.schema}.embedding_cache VALUES (%s, %s, %s) "
                "ON CONFLICT (model, key) DO UPDATE SET vector = excluded.vector",
                [(model, k, np.asarray(v, dtype=np.float32).tobytes()) for k, v in items.items()],
            )

    def end_ingest(self) -> None:
        """Release the ingest lock (an interrupted or failed ingest: its committed batches stay)."""
        self._release_writer()

    # -- views and searches ----------------------------------------------------------------
    @_pg_errors("finishing the ingest")
    def refresh(self) -> None:
        """The ingest is over: build the postings index a bulk load deferred, and the HNSW index
        when the collection has outgrown exact search and has none (one bulk build is far faster
        than growing the graph row by row; later writes add to it), refresh the planner's
        statistics, after a bulk load with a vacuum (until one marks the new pages all-visible,
        every posting a query reads costs a visit to the table: index-only scans need the
        visibility map; smaller ingests leave that to autovacuum), and release the ingest lock."""
        try:
            with self._write_lock:
                # the lock again when end_ingest released it; an index a killed ingest left to build is
                # built here unless another ingest (which will build it) holds the lock
                writer = (self._writer_connection() if self._written
                          else self._writer_connection(wait=False) if self._postings_index_missing() else None)
                if writer is not None:
                    bulk = self._build_postings_index(writer)
                    self._build_vector_index(writer)
                    self._fold_pending(writer)
                    writer.execute("SET statement_timeout = 0")   # this connection closes with the refresh
                    for table in ("chunks", "postings", "terms", "documents"):
                        writer.execute(f"{'VACUUM (ANALYZE)' if bulk else 'ANALYZE'} {self.schema}.{table}")
                    self._written = False
        finally:
            self._release_writer()

    @property
    def exact_below(self) -> int:
        """Collections with fewer vectors are searched exactly (see :data:`EXACT_BELOW`)."""
        return min(self.config.ann_threshold, EXACT_BELOW)

    def _postings_index_missing(self) -> bool:
        with self._pool.connection() as conn:
            row = conn.execute("SELECT to_regclass(%s) IS NULL", (f"{self.schema}.{POSTINGS_INDEX}",)).fetchone()
        return bool(row[0])

    def _build_postings_index(self, conn: Any) -> bool:
        """Build the postings index a bulk load deferred (also after an ingest that was killed or
        failed); whether it was missing. ``CREATE INDEX`` blocks writes, not searches."""
        missing = conn.execute("SELECT to_regclass(%s) IS NULL", (f"{self.schema}.{POSTINGS_INDEX}",)).fetchone()[0]
        if not missing:
            return False
        with conn.transaction():
            conn.execute("SET LOCAL maintenance_work_mem = '1GB'")
            conn.execute("SET LOCAL statement_timeout = 0")
            conn.execute(postings_index_statement(self.schema))
        return True

    @_pg_errors("counting pending vectors")
    def pending_vectors(self) -> int:
        """How many vectors wait outside the HNSW graph (searched exactly until folded in)."""
        with self._pool.connection() as conn:
            return self._count_pending(conn)

    def _count_pending(self, conn: Any) -> int:
        row = conn.execute(f"SELECT count(*) FROM {self.schema}.pending").fetchone()
        return int(row[0])

    def _fold_pending(self, conn: Any) -> int:
        """Move the pending vectors into the graph when more than PENDING_FOLD_AT wait (``FOLD_STEP``
        rows per transaction: searches see each row in the graph or pending, never neither);
        how many were moved."""
        s = self.schema
        waiting = self._count_pending(conn)
        if waiting <= PENDING_FOLD_AT:
            return 0
        log.info("%s: folding %d pending vectors into the HNSW graph", self.label, waiting)
        moved = 0
        while True:
            with conn.transaction():
                conn.execute("SET LOCAL statement_timeout = 0")
                step = conn.execute(
                    f"WITH moved AS (DELETE FROM {s}.pending WHERE rowid IN (SELECT rowid FROM {s}.pending ORDER BY "
                    f"rowid LIMIT %s) RETURNING rowid, vector) UPDATE {s}.chunks c SET vector = m.vector FROM moved m "
                    "WHERE c.rowid = m.rowid", (FOLD_STEP,)).rowcount
            moved += int(step)
            if step < FOLD_STEP:
                return moved

    def _build_vector_index(self, conn: Any) -> None:
        s = self.schema
        vectors = conn.execute(
            f"SELECT g.vectors, to_regclass(%s) IS NOT NULL FROM {s}.state st "
            f"JOIN {s}.gen_stats g ON g.gen = st.generation",
            (f"{s}.{VECTOR_INDEX}",),
        ).fetchone()
        if vectors is None or vectors[1] or vectors[0] < self.exact_below:
            return
        with conn.transaction():
            conn.execute("SET LOCAL maintenance_work_mem = '1GB'")
            conn.execute("SET LOCAL statement_timeout = 0")
            conn.execute(vector_index_statement(s, HNSW_M, HNSW_EF_CONSTRUCTION))

    @_pg_errors("opening a view")
    def view(self) -> PostgresView:
        """A view of the latest committed generation (on the read replica when it has it)."""
        with self._pool.connection() as conn:
            row = conn.execute(self._state_sql()).fetchone()
        if row is None:
            raise DomainragError(f"{self.label}: the collection's state is damaged (no statistics for its generation)")
        replica = self._replica_view(int(row[0]))
        return replica or PostgresView(self, int(row[0]), row[1], int(row[2]), int(row[3]), int(row[4]))

    def _state_sql(self) -> str:
        s = self.schema
        return (f"SELECT s.generation, s.dimensions, g.max_rowid, g.chunks, g.vectors "
                f"FROM {s}.state s JOIN {s}.gen_stats g ON g.gen = s.generation")

    def _replica_view(self, primary_generation: int) -> PostgresView | None:
        """A view on the read replica if it is reachable and has replayed ``primary_generation``."""
        if self._read_pool is None or time.monotonic() < self._replica_down_until:
            return None
        psycopg = psycopg_module()
        try:
            with self._read_pool.connection() as conn:
                row = conn.execute(self._state_sql()).fetchone()
        except (StoreUnavailable, psycopg.OperationalError) as exc:
            self.replica_failed(exc)
            return None
        except psycopg.Error as exc:   # e.g. the collection's tables not replayed yet
            row = None
            log.debug("read replica: %s", exc)
        if row is None or int(row[0]) < primary_generation:
            now = time.monotonic()
            if now - self._replica_logged > LAG_LOG_S:
                self._replica_logged = now
                log.warning("%s: the read replica %s is at generation %s, the primary at %d; reading from the primary "
                            "until it catches up", self.label, self._read_label(), row[0] if row else "none",
                            primary_generation)
            return None
        self._replica_logged = 0.0
        return PostgresView(self, int(row[0]), row[1], int(row[2]), int(row[3]), int(row[4]), self._read_pool)

    def replica_failed(self, exc: BaseException) -> None:
        """The read replica failed: searches read from the primary for :data:`REPLICA_RETRY_S`."""
        if time.monotonic() >= self._replica_down_until:
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            log.warning("%s: the read replica %s is unreachable (%s); reading from the primary", self.label,
                        self._read_label(), reason)
        self._replica_down_until = time.monotonic() + REPLICA_RETRY_S

    def _read_label(self) -> str:
        return self.target.read.label.rsplit("#", 1)[0] if self.target.read else ""

    def lexical(self, tokens: Sequence[str], n: int, scope: Scope | None = None) -> Ranked:
        return self.view().lexical(tokens, n, scope)

    def dense(self, vector: np.ndarray, n: int, scope: Scope | None = None) -> Ranked:
        return self.view().dense(vector, n, scope)

    @property
    def has_vectors(self) -> bool:
        return self.view().has_vectors

    def hits(self, ranked: Ranked) -> list[Hit]:
        return self.view().hits(ranked)

    def doc_ids(self, rows: np.ndarray) -> list[str]:
        return self.view().doc_ids(rows)

    @property
    def generation(self) -> int:
        return self.view().generation

    @contextmanager
    def _search_connection(self) -> Iterator[Any]:
        with self._pool.connection() as conn:
            yield conn

    def _set_ef_search(self, conn: Any, n: int) -> None:
        wanted = max(self.target.ef_search, n)
        if self._ef.get(conn, self.target.ef_search) != wanted:
            conn.execute(f"SET hnsw.ef_search = {int(wanted)}")
            self._ef[conn] = wanted

    # -- documents -------------------------------------------------------------------------
    @_pg_errors("reading a document")
    def document(self, doc_id: str, groups: frozenset[str] | None = None) -> dict[str, Any] | None:
        """The document ``doc_id`` as a dict, or ``None`` when absent or not visible to ``groups``."""
        where, params = document_condition(None, groups)
        with self._pool.connection() as conn:
            row = conn.execute(
                f"SELECT id, source, title, text, metadata FROM {self.schema}.documents d "
                f"WHERE d.id = %(doc_id)s AND {where}", {**params, "doc_id": doc_id},
            ).fetchone()
        return None if row is None else _document(row)

    def iter_documents(self) -> Iterator[dict[str, Any]]:
        """Every document (id, source, title, text, metadata), ordered by id, read in pages."""
        after = ""
        while True:
            page = self._document_page(after)
            yield from page
            if len(page) < 500:
                return
            after = page[-1]["id"]

    @_pg_errors("reading documents")
    def _document_page(self, after: str) -> list[dict[str, Any]]:
        with self._pool.connection() as conn:
            rows = conn.execute(
                f"SELECT id, source, title, text, metadata FROM {self.schema}.documents "
                "WHERE id > %s ORDER BY id LIMIT 500", (after,),
            ).fetchall()
        return [_document(r) for r in rows]

    def export(self, batch_sources: int = 200) -> Iterator[SourceUpdate]:
        """Every source as the :class:`SourceUpdate` that would write it again (documents,
        chunks, tokens and vectors), in source order, read ``batch_sources`` at a time."""
        after = ""
        while True:
            updates = self._export_page(after, batch_sources)
            yield from updates
            if len(updates) < batch_sources:
                return
            after = updates[-1].source

    @_pg_errors("exporting sources")
    def _export_page(self, after: str, limit: int) -> list[SourceUpdate]:
        s = self.schema
        with self._pool.connection() as conn:
            sources = conn.execute(
                f"SELECT source, content_hash, size, mtime_ns FROM {s}.sources WHERE source COLLATE \"C\" > %s "
                f"ORDER BY source COLLATE \"C\" LIMIT %s", (after, limit)).fetchall()
            names = [r[0] for r in sources]
            documents = conn.execute(
                f"SELECT rowid, id, source, title, text, metadata FROM {s}.documents WHERE source = ANY(%s) "
                "ORDER BY rowid", (names,)).fetchall()
            chunks = conn.execute(
                f"SELECT c.doc_rowid, c.id, c.ordinal, c.start_char, c.end_char, c.page, c.heading_path, c.text, "
                f"c.tokens, coalesce(c.vector, p.vector) FROM {s}.chunks c LEFT JOIN {s}.pending p "
                "ON p.rowid = c.rowid WHERE c.doc_rowid = ANY(%s) "
                "ORDER BY c.doc_rowid, c.ordinal, c.rowid", ([d[0] for d in documents],)).fetchall()
            notes = dict(conn.execute(f"SELECT source, notes FROM {s}.parse_notes WHERE source = ANY(%s)",
                                      (names,)).fetchall())
        updates = _updates(sources, documents, chunks)
        for update in updates:
            update.notes = list(notes.get(update.source) or [])
        return updates

    def export_cache(self, batch: int = 1000) -> Iterator[tuple[str, dict[str, np.ndarray]]]:
        """The embedding cache as ``(model, {key: vector})`` pieces of at most ``batch``."""
        after = ("", "")
        while True:
            rows = self._cache_page(after, batch)
            by_model: dict[str, dict[str, np.ndarray]] = {}
            for model, key, vector in rows:
                by_model.setdefault(model, {})[key] = np.frombuffer(vector, dtype=np.float32)
            yield from by_model.items()
            if len(rows) < batch:
                return
            after = (rows[-1][0], rows[-1][1])

    @_pg_errors("exporting the embedding cache")
    def _cache_page(self, after: tuple[str, str], limit: int) -> list[tuple[Any, ...]]:
        with self._pool.connection() as conn:
            return list(conn.execute(
                f"SELECT model, key, vector FROM {self.schema}.embedding_cache WHERE (model, key) > (%s, %s) "
                "ORDER BY model, key LIMIT %s", (*after, limit)).fetchall())

    @_pg_errors("hashing the corpus")
    def corpus_hash(self) -> str:
        digest = hashlib.sha256()
        with self._pool.connection() as conn:
            rows = conn.execute(f"SELECT source, content_hash FROM {self.schema}.sources ORDER BY source COLLATE \"C\"")
            for source, content in rows:
                digest.update(f"{source}\0{content}\n".encode())
        return digest.hexdigest()[:16]

    @_pg_errors("counting")
    def stats(self) -> dict[str, Any]:
        s = self.schema
        with self._pool.connection() as conn:
            row = conn.execute(
                f"SELECT (SELECT count(*) FROM {s}.sources), (SELECT count(*) FROM {s}.documents), "
                f"(SELECT count(*) FROM {s}.chunks), (SELECT count(*) FROM {s}.embedding_cache), "
                f"(SELECT generation FROM {s}.state)"
            ).fetchone()
        return {"sources": row[0], "documents": row[1], "chunks": row[2], "cached_embeddings": row[3],
                "generation": row[4], "ann": True, "store": self.label}

    def close(self) -> None:
        self._release_writer()
        self._pool.close()
        if self._read_pool is not None:
            self._read_pool.close()


class PostgresView:
    """Searches over generation ``generation`` of a :class:`PostgresStore` (see module docstring).
    Rows of a :class:`Ranked` are chunk rowids."""

    def __init__(self, store: PostgresStore, generation: int, dimensions: int | None, max_rowid: int,
                 chunks: int, vectors: int, pool: _Pool | None = None) -> None:
        self._store = store
        self._pool = pool   # the read replica's connections; None: the primary's
        self._generation = generation
        self._dimensions = dimensions
        self._max_rowid = max_rowid
        self._chunks = chunks
        self._vectors = vectors

    @property
    def generation(self) -> int:
        return self._generation

    @property
    def on_replica(self) -> bool:
        """Whether this view reads from the read replica (``read_url``)."""
        return self._pool is not None

    @contextmanager
    def _connection(self) -> Iterator[Any]:
        """A connection to where this view reads; a replica failing mid-search expires the view
        (the retriever repeats the search on a new view, on the primary)."""
        if self._pool is None:
            with self._store._search_connection() as conn:
                yield conn
            return
        psycopg = psycopg_module()
        try:
            with self._pool.connection() as conn:
                yield conn
        except (StoreUnavailable, psycopg.OperationalError) as exc:
            self._store.replica_failed(exc)
            raise SnapshotExpired(f"{self._store.label}: the read replica failed during a search") from exc

    @property
    def has_vectors(self) -> bool:
        return self._vectors > 0

    def _expired(self) -> SnapshotExpired:
        return SnapshotExpired(f"{self._store.label} moved past generation {self._generation}")

    def _check_horizon(self, conn: Any) -> None:
        horizon = conn.execute(f"SELECT horizon FROM {self._store.schema}.state").fetchone()[0]
        if horizon > self._generation:
            raise self._expired()

    @_pg_errors("ranking by BM25")
    def lexical(self, tokens: Sequence[str], n: int, scope: Scope | None = None) -> Ranked:
        terms, counts = query_terms(tokens)
        if not terms or n <= 0 or not self._chunks:
            return Ranked.empty()
        store = self._store
        where, params = scope_condition(store.schema, "p.chunk", *_scope_parts(scope))
        sql = bm25_sql(store.schema, where)
        with self._connection() as conn:
            params.update(terms=terms, qtf=counts, gen=self._generation, n=n)
            rows = conn.execute(sql, params).fetchall()
            if not rows:
                self._check_horizon(conn)
                return Ranked.empty()
        if rows[0][2] > self._generation:
            raise self._expired()
        return _ranked(rows)

    @_pg_errors("ranking by vector")
    def dense(self, vector: np.ndarray, n: int, scope: Scope | None = None) -> Ranked:
        if not self._vectors or n <= 0:
            return Ranked.empty()
        if len(vector) != self._dimensions:
            raise ConfigError(
                f"The query vector has {len(vector)} dimensions and {self._store.label} holds "
                f"{self._dimensions}-dimensional vectors; search with the embedder the collection was built with."
            )
        store = self._store
        filters, groups = _scope_parts(scope)
        where, params = scope_condition(store.schema, "c.rowid", filters, groups)
        params.update(v=np.asarray(vector, dtype=np.float32), n=n, max_rowid=self._max_rowid)
        exact, approximate = _dense_sql(store.schema, where)
        with self._connection() as conn:
            if self._vectors < store.exact_below:
                rows = conn.execute(exact, params).fetchall()
            else:
                store._set_ef_search(conn, n * (4 if where != "TRUE" else 1))
                rows = _unique_rows(conn.execute(approximate, params).fetchall())
                if len(rows) < n and (where != "TRUE" or len(rows) < self._vectors):
                    rows = conn.execute(exact, params).fetchall()
            if not rows:
                self._check_horizon(conn)
                return Ranked.empty()
        if max(r[3] for r in rows) > self._generation:
            raise self._expired()
        rows.sort(key=lambda r: (-r[1], r[2]))
        return _ranked(rows[:n])

    @_pg_errors("reading hits")
    def hits(self, ranked: Ranked) -> list[Hit]:
        if not len(ranked):
            return []
        s = self._store.schema
        rowids = [int(r) for r in ranked.rows]
        with self._connection() as conn:
            rows = conn.execute(
                f"SELECT c.rowid, c.id, d.id, c.start_char, c.end_char, c.page, c.heading_path, c.text, d.title, "
                f"d.source, d.metadata FROM {s}.chunks c JOIN {s}.documents d ON d.rowid = c.doc_rowid "
                "WHERE c.rowid = ANY(%s)", (rowids,),
            ).fetchall()
        by_rowid = {r[0]: r for r in rows}
        if len(by_rowid) < len(set(rowids)):
            raise SnapshotExpired(f"{self._store.label}: chunks of generation {self._generation} were replaced")
        return [_hit(by_rowid[r], float(score)) for r, score in zip(rowids, ranked.scores, strict=True)]

    @_pg_errors("reading document ids")
    def doc_ids(self, rows: np.ndarray) -> list[str]:
        if not len(rows):
            return []
        s = self._store.schema
        rowids = [int(r) for r in rows]
        with self._connection() as conn:
            found = conn.execute(
                f"SELECT c.rowid, d.id FROM {s}.chunks c JOIN {s}.documents d ON d.rowid = c.doc_rowid "
                "WHERE c.rowid = ANY(%s)", (rowids,),
            ).fetchall()
        by_rowid = dict(found)
        if len(by_rowid) < len(set(rowids)):
            raise SnapshotExpired(f"{self._store.label}: chunks of generation {self._generation} were replaced")
        return [by_rowid[r] for r in rowids]


def _dense_sql(schema: str, where: str) -> tuple[str, str]:
    """The exact and the graph statements of a dense search. Returns ``(rowid, score, id,
    horizon)``. A vector is in the graph (``chunks.vector``) or pending (``pending``, searched
    exactly in the same statement, so that a fold committing meanwhile never hides a row)."""
    s = schema
    horizon = f"(SELECT horizon FROM {s}.state)"
    both = "coalesce(c.vector, p.vector)"
    exact = (f"SELECT c.rowid, (1 - ({both} <=> %(v)s))::real, c.id, {horizon} FROM {s}.chunks c "
             f"LEFT JOIN {s}.pending p ON p.rowid = c.rowid WHERE c.rowid <= %(max_rowid)s AND {both} IS NOT NULL "
             f'AND ({where}) ORDER BY {both} <=> %(v)s, c.id COLLATE "C" LIMIT %(n)s')
    graph = (f"SELECT c.rowid, (1 - (c.vector <=> %(v)s))::real, c.id, {horizon} FROM {s}.chunks c "
             f"WHERE c.rowid <= %(max_rowid)s AND c.vector IS NOT NULL AND ({where}) "
             "ORDER BY c.vector <=> %(v)s LIMIT %(n)s")
    if where == "TRUE":   # the nearest pending rows first, then their chunks
        waiting = (f"SELECT c.rowid, (1 - x.d)::real, c.id, {horizon} FROM (SELECT p.rowid, p.vector <=> %(v)s AS d "
                   f"FROM {s}.pending p WHERE p.rowid <= %(max_rowid)s ORDER BY d, p.rowid LIMIT %(n)s + 50) x "
                   f"JOIN {s}.chunks c ON c.rowid = x.rowid")
    else:
        waiting = (f"SELECT c.rowid, (1 - (p.vector <=> %(v)s))::real, c.id, {horizon} FROM {s}.pending p "
                   f"JOIN {s}.chunks c ON c.rowid = p.rowid WHERE p.rowid <= %(max_rowid)s AND ({where}) "
                   f'ORDER BY p.vector <=> %(v)s, c.id COLLATE "C" LIMIT %(n)s')
    return exact, f"({graph}) UNION ALL ({waiting})"


def _unique_rows(rows: list[Any]) -> list[Any]:
    """``rows`` without a second copy of a rowid."""
    seen: set[int] = set()
    return [r for r in rows if not (r[0] in seen or seen.add(r[0]))]  # type: ignore[func-returns-value]


class _Delta:
    """Chunks, token length and vectors added or deleted by a write (and the highest new rowid)."""

    def __init__(self, chunks: int = 0, length: int = 0, vectors: int = 0, max_rowid: int = 0) -> None:
        self.chunks, self.length, self.vectors, self.max_rowid = chunks, length, vectors, max_rowid


def _scope_parts(scope: Scope | None) -> tuple[Mapping[str, Any] | None, frozenset[str] | None]:
    return (None, None) if scope is None else (scope.filters, scope.groups)


def _check_batch(updates: Sequence[SourceUpdate]) -> None:
    seen: dict[str, str] = {}
    for u in updates:
        if len(u.tokens) != len(u.chunks):
            raise ConfigError(f"{u.source}: {len(u.chunks)} chunks but {len(u.tokens)} token lists")
        if u.vectors is not None and len(u.vectors) != len(u.chunks):
            raise ConfigError(f"{u.source}: {len(u.chunks)} chunks but {len(u.vectors)} vectors")
        for d in u.documents:
            if d.id in seen and seen[d.id] != u.source:
                raise ConfigError(
                    f"Document id {d.id!r} already comes from {seen[d.id]}; give the files distinct paths or ids"
                )
            seen[d.id] = u.source


def _acl(doc_id: str, metadata: Mapping[str, Any]) -> list[str]:
    """The document's access groups as :func:`~domainrag.index.store.visible` reads them (one
    string is one group)."""
    acl = metadata.get("acl") or []
    if isinstance(acl, str):
        return [acl]
    if not isinstance(acl, (list, tuple)) or not all(isinstance(g, str) for g in acl):
        raise ConfigError(f"Document {doc_id!r}: metadata 'acl' must be a list of group names, not {acl!r}")
    return list(acl)


def _jsonable(value: Any) -> Any:
    """Metadata as JSON would store it (what the embedded store's ``json.dumps(default=str)`` does)."""
    import json

    return json.loads(json.dumps(value, default=str))


def _updates(sources: list[tuple[Any, ...]], documents: list[tuple[Any, ...]],
             chunks: list[tuple[Any, ...]]) -> list[SourceUpdate]:
    """Rows of sources, their documents and chunks as :class:`SourceUpdate` records."""
    by_doc: dict[int, list[tuple[Any, ...]]] = {}
    for row in chunks:
        by_doc.setdefault(row[0], []).append(row)
    updates = {r[0]: SourceUpdate(r[0], r[1], r[2], r[3], [], []) for r in sources}
    vectors: dict[str, list[Any]] = {name: [] for name in updates}
    for rowid, doc_id, source, title, text, metadata in documents:
        update = updates[source]
        update.documents.append(Document(doc_id, text, source, title=title, metadata=dict(metadata)))
        for _, chunk_id, ordinal, start, end, page, path, chunk_text, tokens, vector in by_doc.get(rowid, []):
            update.chunks.append(Chunk(chunk_id, doc_id, chunk_text, Span(doc_id, start, end, page), tuple(path),
                                       ordinal))
            update.tokens.append(list(tokens))
            vectors[source].append(vector)
    for name, update in updates.items():
        found = vectors[name]
        if found and all(v is not None for v in found):
            update.vectors = np.vstack([_array(v) for v in found])
    return list(updates.values())


def _array(vector: Any) -> np.ndarray:
    return np.asarray(vector.to_numpy() if hasattr(vector, "to_numpy") else vector, dtype=np.float32)


def _text(text: str) -> str:
    """``text`` storable in PostgreSQL, which has no NUL character: NUL becomes U+FFFD (the same
    length, so spans stay valid)."""
    return text.replace("\x00", "\ufffd")


def _ranked(rows: list[tuple[Any, ...]]) -> Ranked:
    return Ranked(np.asarray([r[0] for r in rows], dtype=np.int64), np.asarray([r[1] for r in rows], dtype=np.float32))


def _document(row: tuple[Any, ...]) -> dict[str, Any]:
    return {"id": row[0], "source": row[1], "title": row[2], "text": row[3], "metadata": dict(row[4])}


def _hit(row: tuple[Any, ...], score: float) -> Hit:
    _, chunk_id, doc_id, start, end, page, path, text, title, source, metadata = row
    return Hit(chunk_id=chunk_id, doc_id=doc_id, score=score, text=text, span=Span(doc_id, start, end, page),
               heading_path=tuple(path), source=source, title=title, metadata=dict(metadata))


def open_store(url: str, directory: Path, config: IndexConfig) -> PostgresStore:
    """The ``postgres`` plug-in of ``domainrag.stores``: the collection a ``postgresql://`` URL
    names (``directory``, the knowledge-base folder, keeps only ``domainrag.toml``)."""
    return PostgresStore(url, config)
