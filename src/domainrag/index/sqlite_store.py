"""The embedded store: a SQLite catalog (source of truth) plus derived BM25 and vector indexes.

Layout of a knowledge-base directory::

    catalog.sqlite3          sources, documents, chunks (with tokens and vectors), embedding cache
    index/gen-N/             the derived indexes of generation N, published by one rename:
        lexical/             bm25s index
        vectors.npy          chunk vectors in row order;  rows.npz, doc_ids.json  row -> chunk/document
        hnsw.faiss           HNSW graph, only past the ANN threshold

Every write bumps a ``generation`` counter in the catalog inside its transaction. Derived
indexes are a function of one generation: they are read from the catalog inside one read
transaction, rows ordered by chunk id (so two catalogs with the same content give the same
rows, whatever order they were written in), saved to a temporary folder and renamed to
``gen-N``, so a crash at any point (Ctrl-C, kill -9) or a concurrent reader never sees half of
them; a damaged folder is rebuilt from the catalog. A search holds one immutable
:class:`Snapshot` (swapped by reference when the generation moves), so a writer in another
process never changes an index under a running search.
"""

from __future__ import annotations

import errno
import functools
import hashlib
import json
import logging
import os
import shutil
import sqlite3
import tempfile
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import numpy as np

from ..config import IndexConfig
from ..errors import ConfigError, CorruptKnowledgeBase, DomainragError
from ..types import Hit, Span
from .lexical import LexicalIndex
from .ranked import Ranked
from .store import Scope, SnapshotExpired, SourceState, SourceUpdate
from .vectors import VectorIndex

log = logging.getLogger(__name__)
CATALOG = "catalog.sqlite3"
#: Temporary folders of derived indexes older than this were left by a killed process.
_STALE_TMP_SECONDS = 600
#: Scope masks kept per store (an evaluation repeats a few filters over many queries).
_MASKS_KEPT = 32
P = ParamSpec("P")
R = TypeVar("R")

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS sources (
    source TEXT PRIMARY KEY, content_hash TEXT NOT NULL, size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL, ingested_at TEXT NOT NULL DEFAULT (datetime('now')));
CREATE TABLE IF NOT EXISTS documents (
    id TEXT PRIMARY KEY, source TEXT NOT NULL REFERENCES sources(source) ON DELETE CASCADE,
    title TEXT NOT NULL, text TEXT NOT NULL, metadata TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS documents_source ON documents(source);
CREATE TABLE IF NOT EXISTS chunks (
    rowid INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE,
    doc_id TEXT NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
    ordinal INTEGER NOT NULL, start INTEGER NOT NULL, end INTEGER NOT NULL, page INTEGER,
    heading_path TEXT NOT NULL, text TEXT NOT NULL, tokens TEXT NOT NULL, vector BLOB);
CREATE INDEX IF NOT EXISTS chunks_doc ON chunks(doc_id);
CREATE TABLE IF NOT EXISTS parse_notes (
    source TEXT PRIMARY KEY REFERENCES sources(source) ON DELETE CASCADE, notes TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS embedding_cache (
    model TEXT NOT NULL, key TEXT NOT NULL, vector BLOB NOT NULL,
    PRIMARY KEY (model, key)) WITHOUT ROWID;
"""


@dataclass(frozen=True)
class Snapshot:
    """The derived indexes of one committed generation; never modified, replaced whole."""

    generation: int
    rowids: np.ndarray  # row -> chunks.rowid (AUTOINCREMENT: never reused, so a row's content is fixed)
    doc_rowids: np.ndarray  # row -> documents.rowid
    doc_ids: list[str]  # row -> document id
    lexical: LexicalIndex
    vectors: VectorIndex


def _catalog_errors(method: Callable[P, R]) -> Callable[P, R]:
    """Turn SQLite's errors into :class:`CorruptKnowledgeBase` / :class:`DomainragError` naming
    the catalog file and the fix (the one seam for sqlite3 errors)."""

    @functools.wraps(method)
    def translated(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return method(*args, **kwargs)
        except sqlite3.DatabaseError as exc:
            store = args[0]
            assert isinstance(store, SQLiteStore)
            raise store.catalog_error(exc) from exc

    return translated


class SQLiteStore:
    """Embedded :class:`~domainrag.index.store.Store` (see module docstring)."""

    def __init__(self, directory: Path, config: IndexConfig | None = None) -> None:
        self.directory = Path(directory)
        self.config = config or IndexConfig()
        self.path = self.directory / CATALOG
        self._lock = threading.RLock()  # one write transaction at a time on the writer connection
        self._writer: int | None = None  # the thread inside a write transaction
        self._local = threading.local()  # each other thread reads on a connection of its own
        self._readers: list[sqlite3.Connection] = []
        self._readers_lock = threading.Lock()
        self._snapshot: Snapshot | None = None
        self._masks: OrderedDict[tuple[int, str], np.ndarray] = OrderedDict()
        self._masks_lock = threading.Lock()
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise DomainragError(
                f"Cannot create the knowledge base folder {self.directory} ({exc.strerror or exc}); "
                "give a --kb path that is a writable folder."
            ) from exc
        self._db = self._connect()

    def _connect(self) -> sqlite3.Connection:
        try:
            db = sqlite3.connect(self.path, check_same_thread=False)
        except sqlite3.Error as exc:
            raise self.catalog_error(exc) from exc
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute("PRAGMA foreign_keys=ON")
            db.executescript(SCHEMA)
            db.execute("SELECT source, content_hash, size, mtime_ns FROM sources LIMIT 1").fetchall()
            db.execute("SELECT rowid, id, doc_id, tokens, vector FROM chunks LIMIT 1").fetchall()
        except sqlite3.DatabaseError as exc:
            db.close()
            raise self.catalog_error(exc) from exc
        return db

    def catalog_error(self, exc: sqlite3.Error) -> DomainragError:
        """The error to raise for a SQLite failure on the catalog: busy, or unreadable."""
        text = str(exc)
        if "locked" in text or "busy" in text:
            return DomainragError(
                f"{self.path} is locked by another process ({text}); retry when it finishes."
            )
        return CorruptKnowledgeBase(
            f"{self.path} cannot be read as a domainrag catalog ({text}): the file is damaged or "
            f"not a knowledge base. Restore it from a backup, or re-create the knowledge base "
            f"from your documents in a new folder: 'domainrag ingest PATH... --reindex --kb NEW_FOLDER'."
        )

    # -- catalog ---------------------------------------------------------------------------
    @contextmanager
    def _transaction(self, bump: bool = True) -> Iterator[sqlite3.Connection]:
        """One write transaction on the writer connection; ``bump`` moves the generation (every
        write that changes what searches see)."""
        with self._lock, self._db:  # commits, or rolls back on any exception (KeyboardInterrupt too)
            self._writer = threading.get_ident()
            try:
                yield self._db
                if bump:
                    self._db.execute(
                        "INSERT INTO meta VALUES ('generation', 1) ON CONFLICT(key) "
                        "DO UPDATE SET value = CAST(value AS INTEGER) + 1"
                    )
            finally:
                self._writer = None

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        """One read transaction: every SELECT inside sees the same committed state (WAL). A
        thread inside a write transaction reads its own writes; every other thread reads on a
        connection of its own, so a reader never sees a write before it commits and never
        waits for one."""
        if self._writer == threading.get_ident():
            yield self._db
            return
        db = self._reader()
        if db.in_transaction:  # nested read on this thread
            yield db
            return
        db.execute("BEGIN")
        try:
            yield db
        finally:
            db.execute("COMMIT")

    def _reader(self) -> sqlite3.Connection:
        db: sqlite3.Connection | None = getattr(self._local, "db", None)
        if db is None:
            try:
                db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
                db.execute("PRAGMA query_only=ON")
            except sqlite3.Error as exc:
                raise self.catalog_error(exc) from exc
            self._local.db = db
            with self._readers_lock:
                self._readers.append(db)
        return db

    @property
    @_catalog_errors
    def generation(self) -> int:
        with self._read() as db:
            return _generation(db)

    @_catalog_errors
    def manifest(self) -> dict[str, Any] | None:
        with self._read() as db:
            row = db.execute("SELECT value FROM meta WHERE key='manifest'").fetchone()
        return json.loads(row[0]) if row else None

    @_catalog_errors
    def set_manifest(self, manifest: Mapping[str, Any]) -> None:
        with self._transaction(bump=False) as db:
            db.execute("INSERT OR REPLACE INTO meta VALUES ('manifest', ?)", (json.dumps(dict(manifest)),))

    @_catalog_errors
    def source_states(self) -> dict[str, SourceState]:
        with self._read() as db:
            rows = db.execute("SELECT source, content_hash, size, mtime_ns FROM sources").fetchall()
        return {r[0]: SourceState(r[1], r[2], r[3]) for r in rows}

    @_catalog_errors
    def touch_source(self, source: str, size: int, mtime_ns: int) -> None:
        with self._transaction(bump=False) as db:
            db.execute("UPDATE sources SET size=?, mtime_ns=? WHERE source=?", (size, mtime_ns, source))

    @_catalog_errors
    def write(self, updates: Sequence[SourceUpdate]) -> None:
        with self._transaction() as db:
            for update in updates:
                self._write_one(db, update)

    def _write_one(self, db: sqlite3.Connection, u: SourceUpdate) -> None:
        db.execute("DELETE FROM sources WHERE source=?", (u.source,))
        db.execute(
            "INSERT INTO sources(source, content_hash, size, mtime_ns) VALUES (?,?,?,?)",
            (u.source, u.content_hash, u.size, u.mtime_ns),
        )
        if u.notes:
            db.execute("INSERT INTO parse_notes VALUES (?,?)", (u.source, json.dumps(u.notes, ensure_ascii=False)))
        for doc in u.documents:
            taken = db.execute("SELECT source FROM documents WHERE id=?", (doc.id,)).fetchone()
            if taken:
                raise ConfigError(
                    f"Document id {doc.id!r} already comes from {taken[0]}; "
                    "give the files distinct paths or ids"
                )
            db.execute(
                "INSERT INTO documents VALUES (?,?,?,?,?)",
                (doc.id, u.source, doc.title, doc.text, json.dumps(dict(doc.metadata), default=str)),
            )
        db.executemany(
            "INSERT INTO chunks(id, doc_id, ordinal, start, end, page, heading_path, text, tokens,"
            " vector) VALUES (?,?,?,?,?,?,?,?,?,?)",
            [
                (c.id, c.doc_id, c.ordinal, c.span.start, c.span.end, c.span.page,
                 json.dumps(c.heading_path, ensure_ascii=False), c.text, " ".join(tokens),
                 None if u.vectors is None else u.vectors[i].astype(np.float32).tobytes())
                for i, (c, tokens) in enumerate(zip(u.chunks, u.tokens, strict=True))
            ],
        )

    @_catalog_errors
    def remove_sources(self, sources: Sequence[str]) -> int:
        if not sources:
            return 0
        with self._transaction() as db:
            db.executemany("DELETE FROM sources WHERE source=?", [(s,) for s in sources])
        return len(sources)

    @_catalog_errors
    def clear(self) -> None:
        """Delete every source, document and chunk (the embedding cache is kept)."""
        with self._transaction() as db:
            db.execute("DELETE FROM sources")
            db.execute("DELETE FROM meta WHERE key='manifest'")
        shutil.rmtree(self.directory / "index", ignore_errors=True)
        self._snapshot = None

    # -- embedding cache -------------------------------------------------------------------
    @_catalog_errors
    def cached_vectors(self, model: str, keys: Sequence[str]) -> dict[str, np.ndarray]:
        found: dict[str, np.ndarray] = {}
        with self._read() as db:
            for i in range(0, len(keys), 500):
                part = list(keys[i : i + 500])
                marks = ",".join("?" * len(part))
                rows = db.execute(
                    f"SELECT key, vector FROM embedding_cache WHERE model=? AND key IN ({marks})",
                    [model, *part],
                )
                found.update((k, np.frombuffer(v, dtype=np.float32)) for k, v in rows)
        return found

    @_catalog_errors
    def cache_vectors(self, model: str, items: Mapping[str, np.ndarray]) -> None:
        with self._transaction(bump=False) as db:
            db.executemany(
                "INSERT OR REPLACE INTO embedding_cache VALUES (?,?,?)",
                [(model, k, v.astype(np.float32).tobytes()) for k, v in items.items()],
            )

    # -- derived indexes -------------------------------------------------------------------
    def refresh(self) -> None:
        """Bring the derived indexes up to the catalog's generation (load or rebuild)."""
        self.snapshot()

    def end_ingest(self) -> None:
        """Nothing to release: each write transaction holds the catalog only while it runs."""

    @_catalog_errors
    def snapshot(self) -> Snapshot:
        """The derived indexes of the latest committed generation (loaded, or rebuilt from the
        catalog inside one read transaction) — the same object while nothing is written."""
        with self._read() as db:
            generation = _generation(db)
            current = self._snapshot
            if current is not None and current.generation == generation:
                return current
            folder = self._index_dir / f"gen-{generation}"
            snapshot = _load(folder, generation, self.config) or self._rebuild(db, generation)
        snapshot.vectors.ensure_ann(folder / "hnsw.faiss", generation)
        self._snapshot = snapshot  # one reference swap: running searches keep theirs
        return snapshot

    def view(self) -> SQLiteView:
        """A :class:`~domainrag.index.store.StoreView` of the latest committed generation."""
        return SQLiteView(self, self.snapshot())

    @property
    def _index_dir(self) -> Path:
        return self.directory / "index"

    def _rebuild(self, db: sqlite3.Connection, generation: int) -> Snapshot:
        cursor = db.execute(
            "SELECT c.rowid, d.rowid, c.doc_id, c.tokens, c.vector FROM chunks c "
            "JOIN documents d ON d.id = c.doc_id ORDER BY c.id"
        )
        rowids, doc_rowids, doc_ids, tokens, vectors = [], [], [], [], []
        for rowid, doc_rowid, doc_id, toks, vector in cursor:
            rowids.append(rowid)
            doc_rowids.append(doc_rowid)
            doc_ids.append(doc_id)
            tokens.append(toks.split())
            vectors.append(vector)
        snapshot = Snapshot(
            generation,
            np.asarray(rowids, dtype=np.int64),
            np.asarray(doc_rowids, dtype=np.int64),
            doc_ids,
            LexicalIndex.build(tokens),
            VectorIndex(_stack(vectors), self.config),
        )
        self._save(snapshot)
        return snapshot

    def _save(self, snapshot: Snapshot) -> None:
        """Publish ``index/gen-N`` by one rename (a cache: failing to save only costs a rebuild)."""
        target = self._index_dir / f"gen-{snapshot.generation}"
        try:
            self._index_dir.mkdir(exist_ok=True)
            tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=self._index_dir))
            try:
                np.savez(tmp / "rows.npz", rowids=snapshot.rowids, doc_rowids=snapshot.doc_rowids)
                np.save(tmp / "vectors.npy", snapshot.vectors.matrix)
                (tmp / "doc_ids.json").write_text(json.dumps(snapshot.doc_ids))
                snapshot.lexical.save(tmp / "lexical", snapshot.generation)
                tmp.chmod(0o755)
                _publish(tmp, target)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
        except OSError as exc:
            log.warning("could not save the derived indexes to %s: %s", target, exc)
        self._prune_index_dir(snapshot.generation)

    def _prune_index_dir(self, generation: int) -> None:
        """Remove older generations, files of the pre-``gen-N`` layout and abandoned temporaries."""
        try:
            entries = list(self._index_dir.iterdir())
        except OSError:
            return
        for entry in entries:
            name = entry.name
            if name.startswith("gen-"):
                stale = not name[4:].isdigit() or int(name[4:]) < generation
            elif name.startswith(".tmp-"):
                stale = _age(entry) > _STALE_TMP_SECONDS
            else:
                stale = True  # rows.npz, vectors.npy, lexical/ ... of the single-folder layout
            if stale:
                if entry.is_dir() and not entry.is_symlink():
                    shutil.rmtree(entry, ignore_errors=True)
                else:
                    entry.unlink(missing_ok=True)

    def mask(self, snapshot: Snapshot, scope: Scope) -> np.ndarray:
        """The rows of ``snapshot`` inside ``scope`` (a boolean mask; the last few are cached)."""
        key = (snapshot.generation, scope.key())
        with self._masks_lock:
            cached = self._masks.get(key)
            if cached is not None:
                self._masks.move_to_end(key)
                return cached
        mask = np.isin(snapshot.doc_rowids, self._scope_doc_rowids(scope, snapshot.generation))
        mask.flags.writeable = False
        with self._masks_lock:
            self._masks[key] = mask
            while len(self._masks) > _MASKS_KEPT:
                self._masks.popitem(last=False)
        return mask

    @_catalog_errors
    def _scope_doc_rowids(self, scope: Scope, generation: int) -> np.ndarray:
        """Rowids of the documents inside ``scope`` at ``generation``, or SnapshotExpired."""
        where, params = _scope_sql(scope)
        with self._read() as db:
            if _generation(db) != generation:
                raise SnapshotExpired(f"{self.path} moved past generation {generation}")
            rows = db.execute(f"SELECT rowid FROM documents WHERE {where}", params).fetchall()
        return np.asarray([r[0] for r in rows], dtype=np.int64)

    @_catalog_errors
    def _chunk_rows(self, rowids: np.ndarray) -> dict[int, tuple[Any, ...]]:
        """Chunk rows with their documents' fields, by chunk rowid (one statement: one state)."""
        marks = ",".join("?" * len(rowids))
        with self._read() as db:
            rows = db.execute(
                "SELECT c.rowid, c.id, c.doc_id, c.start, c.end, c.page, c.heading_path, c.text, "
                f"d.title, d.source, d.metadata FROM chunks c JOIN documents d ON d.id = c.doc_id "
                f"WHERE c.rowid IN ({marks})",
                [int(r) for r in rowids],
            ).fetchall()
        return {r[0]: r for r in rows}

    @_catalog_errors
    def parse_notes(self) -> dict[str, list[dict[str, Any]]]:
        with self._read() as db:
            rows = db.execute("SELECT source, notes FROM parse_notes ORDER BY source").fetchall()
        return {source: json.loads(notes) for source, notes in rows}

    @_catalog_errors
    def document(self, doc_id: str) -> dict[str, Any] | None:
        with self._read() as db:
            row = db.execute("SELECT id, source, title, text, metadata FROM documents WHERE id=?", (doc_id,)).fetchone()
        if row is None:
            return None
        return {"id": row[0], "source": row[1], "title": row[2], "text": row[3],
                "metadata": json.loads(row[4])}

    def iter_documents(self) -> Iterator[dict[str, Any]]:
        """Every document (id, source, title, text, metadata), ordered by id."""
        for row in self._document_rows():
            yield {"id": row[0], "source": row[1], "title": row[2], "text": row[3],
                   "metadata": json.loads(row[4])}

    @_catalog_errors
    def _document_rows(self) -> list[tuple[Any, ...]]:
        with self._read() as db:
            return db.execute("SELECT id, source, title, text, metadata FROM documents ORDER BY id").fetchall()

    @_catalog_errors
    def corpus_hash(self) -> str:
        digest = hashlib.sha256()
        with self._read() as db:
            rows = db.execute("SELECT source, content_hash FROM sources ORDER BY source").fetchall()
        for source, content in rows:
            digest.update(f"{source}\0{content}\n".encode())
        return digest.hexdigest()[:16]

    @_catalog_errors
    def stats(self) -> dict[str, Any]:
        with self._read() as db:
            def count(table: str) -> int:
                return int(db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])

            return {
                "sources": count("sources"),
                "documents": count("documents"),
                "chunks": count("chunks"),
                "cached_embeddings": count("embedding_cache"),
                "generation": _generation(db),
                "ann": bool(self._snapshot and self._snapshot.vectors.uses_ann),
            }

    def close(self) -> None:
        with self._readers_lock:
            for db in self._readers:
                db.close()
            self._readers.clear()
        with self._lock:
            self._db.close()


def open_store(url: str, directory: Path, config: IndexConfig) -> SQLiteStore:
    """The ``sqlite`` plug-in of ``domainrag.stores``: the catalog inside the knowledge-base
    folder (``url`` is empty; ``sqlite:///path/to/folder`` names another folder)."""
    if url:
        scheme, _, rest = url.partition("://")
        if scheme != "sqlite" or not rest.startswith("/"):
            raise ConfigError(f"store.url {url!r} is not a SQLite store URL; use sqlite:///ABSOLUTE/FOLDER "
                              "or leave it empty for the knowledge-base folder itself.")
        directory = Path(rest)
    return SQLiteStore(directory, config)


class SQLiteView:
    """Searches over one :class:`Snapshot`; chunk rows are read by rowid, which is never reused,
    so a hit is the chunk the snapshot ranked or, when the chunk is gone, SnapshotExpired."""

    def __init__(self, store: SQLiteStore, snapshot: Snapshot) -> None:
        self._store = store
        self._snapshot = snapshot

    @property
    def generation(self) -> int:
        return self._snapshot.generation

    def lexical(self, tokens: Sequence[str], n: int, scope: Scope | None = None) -> Ranked:
        return self._snapshot.lexical.search(tokens, n, self._mask(scope))

    def dense(self, vector: np.ndarray, n: int, scope: Scope | None = None) -> Ranked:
        vectors = self._snapshot.vectors
        if vectors.size and vectors.matrix.shape[1] != len(vector):
            raise ConfigError(
                f"Query vector has {len(vector)} dimensions, the index {vectors.matrix.shape[1]}"
            )
        return vectors.search(vector, n, self._mask(scope))

    @property
    def has_vectors(self) -> bool:
        return bool(self._snapshot.vectors.size)

    def _mask(self, scope: Scope | None) -> np.ndarray | None:
        """Rows inside ``scope`` (``None``: every row). Applied by the rankings before their top
        n, so a narrow scope still fills a ranking."""
        return None if scope is None else self._store.mask(self._snapshot, scope)

    def doc_ids(self, rows: np.ndarray) -> list[str]:
        ids = self._snapshot.doc_ids
        return [ids[int(r)] for r in rows]

    def hits(self, ranked: Ranked) -> list[Hit]:
        if not len(ranked):
            return []
        rowids = self._snapshot.rowids[ranked.rows]
        by_rowid = self._store._chunk_rows(rowids)
        if len(by_rowid) < len(set(rowids.tolist())):
            raise SnapshotExpired(
                f"{self._store.path}: chunks of generation {self.generation} were replaced by a later write"
            )
        return [_hit(by_rowid[int(rid)], float(score)) for rid, score in zip(rowids, ranked.scores, strict=True)]


def _generation(db: sqlite3.Connection) -> int:
    row = db.execute("SELECT value FROM meta WHERE key='generation'").fetchone()
    return int(row[0]) if row else 0


def _load(folder: Path, generation: int, config: IndexConfig) -> Snapshot | None:
    """The saved snapshot of ``generation``, or ``None`` when absent or damaged (it is derived:
    the caller rebuilds it from the catalog). The vectors and the BM25 arrays are memory-mapped
    read-only: opening costs no reading, searches page in what they touch, and processes that
    search one knowledge base share its pages."""
    if not folder.is_dir():
        return None
    try:
        lexical = LexicalIndex.load(folder / "lexical", generation)
        if lexical is None:
            return None
        with np.load(folder / "rows.npz") as rows:
            rowids, doc_rowids = rows["rowids"], rows["doc_rowids"]
        matrix = np.load(folder / "vectors.npy", mmap_mode="r")
        doc_ids = json.loads((folder / "doc_ids.json").read_text(encoding="utf-8"))
    except Exception as exc:  # any damage (truncated npz, bad JSON, foreign bm25s files): rebuild
        log.info("derived index %s unreadable (%s); rebuilding it from the catalog", folder, exc)
        return None
    sizes = {len(rowids), len(doc_rowids), len(doc_ids), matrix.shape[0] if matrix.ndim == 2 else -1, lexical.size}
    if len(sizes) != 1 or not isinstance(doc_ids, list):
        log.info("derived index %s is inconsistent; rebuilding it from the catalog", folder)
        return None
    return Snapshot(generation, rowids, doc_rowids, doc_ids, lexical, VectorIndex(matrix, config))


def _publish(tmp: Path, target: Path) -> None:
    """Rename ``tmp`` to ``target``; when another process published the same generation first
    (its content is the same), keep theirs."""
    try:
        os.rename(tmp, target)
    except OSError as exc:
        if exc.errno not in (errno.EEXIST, errno.ENOTEMPTY):
            raise


def _age(path: Path) -> float:
    try:
        return time.time() - path.stat().st_mtime
    except OSError:
        return 0.0


def _stack(vectors: list[bytes | None]) -> np.ndarray:
    present = [v for v in vectors if v is not None]
    if not present:
        return np.zeros((len(vectors), 0), dtype=np.float32)
    dim = len(present[0]) // 4
    out = np.zeros((len(vectors), dim), dtype=np.float32)
    for i, v in enumerate(vectors):
        if v is not None:
            out[i] = np.frombuffer(v, dtype=np.float32)
    return out


def _hit(row: tuple[Any, ...], score: float) -> Hit:
    _, chunk_id, doc_id, start, end, page, path, text, title, source, metadata = row
    return Hit(
        chunk_id=chunk_id, doc_id=doc_id, score=score, text=text,
        span=Span(doc_id, start, end, page), heading_path=tuple(json.loads(path)),
        source=source, title=title, metadata=json.loads(metadata),
    )


def _scope_sql(scope: Scope) -> tuple[str, list[Any]]:
    """SQL over ``documents`` for a scope: its filters (see ``KnowledgeBase.search``) and access
    groups (``index.store.visible`` is the same rule in Python)."""
    clauses, params = _filter_sql(scope.filters or {})
    if scope.groups is not None:
        acl = "json_type(documents.metadata, '$.acl')"
        public = f"({acl} IS NULL OR {acl} = 'null' OR ({acl} = 'array' AND " \
                 "json_array_length(documents.metadata, '$.acl') = 0))"
        if scope.groups:
            marks = ",".join("?" * len(scope.groups))
            member = f"EXISTS (SELECT 1 FROM json_each(documents.metadata, '$.acl') WHERE value IN ({marks}))"
            clauses.append(f"({public} OR {member})")
            params.extend(sorted(scope.groups))
        else:
            clauses.append(public)
    return " AND ".join(clauses) or "1", params


def _filter_sql(filters: Mapping[str, Any]) -> tuple[list[str], list[Any]]:
    clauses: list[str] = []
    params: list[Any] = []
    for key, value in filters.items():
        values = list(value) if isinstance(value, (list, tuple, set)) else [value]
        if key == "path":
            column = "COALESCE(json_extract(metadata, '$.path'), id)"
            clauses.append("(" + " OR ".join(f"{column} GLOB ?" for _ in values) + ")")
        else:
            if not key.replace("_", "").isalnum():
                raise ConfigError(f"Filter field {key!r} must be letters, digits and underscores")
            column = "id" if key == "doc_id" else f"json_extract(metadata, '$.{key}')"
            clauses.append(f"{column} IN ({','.join('?' * len(values))})")
        params.extend(values)
    return clauses, params
