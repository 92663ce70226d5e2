"""The embedded store: a SQLite catalog (source of truth) plus derived BM25 and vector indexes.

Layout of a knowledge-base directory::

    catalog.sqlite3      sources, documents, chunks (with tokens and vectors), embedding cache
    index/state.json     generation the derived indexes were built at
    index/lexical/       bm25s index
    index/vectors.npy    chunk vectors in row order;  index/rows.npz  row -> chunk/document
    index/hnsw.faiss     HNSW graph, only past the ANN threshold

Every write bumps a ``generation`` counter in the catalog inside its transaction. Derived
indexes remember the generation they were built at and are rebuilt from the catalog when it
moved, so a crash at any point (Ctrl-C, kill -9) leaves a consistent knowledge base.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..config import IndexConfig
from ..errors import ConfigError
from ..types import Hit, Span
from .base import SourceState, SourceUpdate
from .lexical import LexicalIndex
from .ranked import Ranked
from .vectors import VectorIndex

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
CREATE TABLE IF NOT EXISTS embedding_cache (
    model TEXT NOT NULL, key TEXT NOT NULL, vector BLOB NOT NULL,
    PRIMARY KEY (model, key)) WITHOUT ROWID;
"""


@dataclass
class _Derived:
    generation: int
    rowids: np.ndarray  # row -> chunks.rowid
    doc_rowids: np.ndarray  # row -> documents.rowid
    doc_ids: list[str]  # row -> document id
    lexical: LexicalIndex
    vectors: VectorIndex


class SQLiteStore:
    """Embedded :class:`~domainrag.index.base.Store` (see module docstring)."""

    def __init__(self, directory: Path, config: IndexConfig | None = None) -> None:
        self.directory = Path(directory)
        self.config = config or IndexConfig()
        self.directory.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.directory / "catalog.sqlite3", check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA foreign_keys=ON")
        self._db.executescript(SCHEMA)
        self._derived: _Derived | None = None

    # -- catalog ---------------------------------------------------------------------------
    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._db:  # commits, or rolls back on any exception (KeyboardInterrupt included)
            yield self._db
            self._db.execute(
                "INSERT INTO meta VALUES ('generation', 1) ON CONFLICT(key) "
                "DO UPDATE SET value = CAST(value AS INTEGER) + 1"
            )

    @property
    def generation(self) -> int:
        row = self._db.execute("SELECT value FROM meta WHERE key='generation'").fetchone()
        return int(row[0]) if row else 0

    def manifest(self) -> dict[str, Any] | None:
        row = self._db.execute("SELECT value FROM meta WHERE key='manifest'").fetchone()
        return json.loads(row[0]) if row else None

    def set_manifest(self, manifest: Mapping[str, Any]) -> None:
        with self._db:
            self._db.execute(
                "INSERT OR REPLACE INTO meta VALUES ('manifest', ?)", (json.dumps(dict(manifest)),)
            )

    def source_states(self) -> dict[str, SourceState]:
        rows = self._db.execute("SELECT source, content_hash, size, mtime_ns FROM sources")
        return {r[0]: SourceState(r[1], r[2], r[3]) for r in rows}

    def touch_source(self, source: str, size: int, mtime_ns: int) -> None:
        with self._db:
            self._db.execute(
                "UPDATE sources SET size=?, mtime_ns=? WHERE source=?", (size, mtime_ns, source)
            )

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

    def remove_sources(self, sources: Sequence[str]) -> int:
        if not sources:
            return 0
        with self._transaction() as db:
            db.executemany("DELETE FROM sources WHERE source=?", [(s,) for s in sources])
        return len(sources)

    def clear(self) -> None:
        """Delete every source, document and chunk (the embedding cache is kept)."""
        with self._transaction() as db:
            db.execute("DELETE FROM sources")
            db.execute("DELETE FROM meta WHERE key='manifest'")
        shutil.rmtree(self.directory / "index", ignore_errors=True)
        self._derived = None

    # -- embedding cache -------------------------------------------------------------------
    def cached_vectors(self, model: str, keys: Sequence[str]) -> dict[str, np.ndarray]:
        found: dict[str, np.ndarray] = {}
        for i in range(0, len(keys), 500):
            part = list(keys[i : i + 500])
            marks = ",".join("?" * len(part))
            rows = self._db.execute(
                f"SELECT key, vector FROM embedding_cache WHERE model=? AND key IN ({marks})",
                [model, *part],
            )
            found.update((k, np.frombuffer(v, dtype=np.float32)) for k, v in rows)
        return found

    def cache_vectors(self, model: str, items: Mapping[str, np.ndarray]) -> None:
        with self._db:
            self._db.executemany(
                "INSERT OR REPLACE INTO embedding_cache VALUES (?,?,?)",
                [(model, k, v.astype(np.float32).tobytes()) for k, v in items.items()],
            )

    # -- derived indexes -------------------------------------------------------------------
    def refresh(self) -> None:
        """Bring the derived indexes up to the catalog's generation (load or rebuild)."""
        generation = self.generation
        if self._derived is not None and self._derived.generation == generation:
            return
        self._derived = self._load(generation) or self._rebuild(generation)
        self._derived.vectors.ensure_ann(self.directory / "index" / "hnsw.faiss", generation)

    def _load(self, generation: int) -> _Derived | None:
        base = self.directory / "index"
        lexical = LexicalIndex.load(base / "lexical", generation)
        if lexical is None:
            return None
        try:
            rows = np.load(base / "rows.npz")
            matrix = np.load(base / "vectors.npy")
            doc_ids = json.loads((base / "doc_ids.json").read_text())
        except (OSError, ValueError):
            return None
        return _Derived(generation, rows["rowids"], rows["doc_rowids"], doc_ids, lexical,
                        VectorIndex(matrix, self.config))

    def _rebuild(self, generation: int) -> _Derived:
        cursor = self._db.execute(
            "SELECT c.rowid, d.rowid, c.doc_id, c.tokens, c.vector FROM chunks c "
            "JOIN documents d ON d.id = c.doc_id ORDER BY c.rowid"
        )
        rowids, doc_rowids, doc_ids, tokens, vectors = [], [], [], [], []
        for rowid, doc_rowid, doc_id, toks, vector in cursor:
            rowids.append(rowid)
            doc_rowids.append(doc_rowid)
            doc_ids.append(doc_id)
            tokens.append(toks.split())
            vectors.append(vector)
        derived = _Derived(
            generation,
            np.asarray(rowids, dtype=np.int64),
            np.asarray(doc_rowids, dtype=np.int64),
            doc_ids,
            LexicalIndex.build(tokens),
            VectorIndex(_stack(vectors), self.config),
        )
        self._save(derived)
        return derived

    def _save(self, derived: _Derived) -> None:
        base = self.directory / "index"
        base.mkdir(exist_ok=True)
        np.savez(base / "rows.npz", rowids=derived.rowids, doc_rowids=derived.doc_rowids)
        np.save(base / "vectors.npy", derived.vectors.matrix)
        (base / "doc_ids.json").write_text(json.dumps(derived.doc_ids))
        derived.lexical.save(base / "lexical", derived.generation)  # written last: the marker

    @property
    def _current(self) -> _Derived:
        self.refresh()
        assert self._derived is not None
        return self._derived

    # -- search ----------------------------------------------------------------------------
    def lexical(self, tokens: Sequence[str], n: int, allowed: np.ndarray | None = None) -> Ranked:
        return self._current.lexical.search(tokens, n, allowed)

    def dense(self, vector: np.ndarray, n: int, allowed: np.ndarray | None = None) -> Ranked:
        derived = self._current
        if derived.vectors.size and derived.vectors.matrix.shape[1] != len(vector):
            raise ConfigError(
                f"Query vector has {len(vector)} dimensions, the index {derived.vectors.matrix.shape[1]}"
            )
        return derived.vectors.search(vector, n, allowed)

    @property
    def has_vectors(self) -> bool:
        return bool(self._current.vectors.size)

    def allowed(self, filters: Mapping[str, Any] | None) -> np.ndarray | None:
        if not filters:
            return None
        where, params = _filter_sql(filters)
        doc_rowids = [r[0] for r in self._db.execute(f"SELECT rowid FROM documents WHERE {where}", params)]
        return np.isin(self._current.doc_rowids, np.asarray(doc_rowids, dtype=np.int64))

    def doc_ids(self, rows: np.ndarray) -> list[str]:
        ids = self._current.doc_ids
        return [ids[int(r)] for r in rows]

    def hits(self, ranked: Ranked) -> list[Hit]:
        if not len(ranked):
            return []
        rowids = self._current.rowids[ranked.rows]
        marks = ",".join("?" * len(rowids))
        rows = self._db.execute(
            "SELECT c.rowid, c.id, c.doc_id, c.start, c.end, c.page, c.heading_path, c.text, "
            f"d.title, d.source, d.metadata FROM chunks c JOIN documents d ON d.id = c.doc_id "
            f"WHERE c.rowid IN ({marks})",
            [int(r) for r in rowids],
        )
        by_rowid = {r[0]: r for r in rows}
        return [_hit(by_rowid[int(rid)], float(score)) for rid, score in zip(rowids, ranked.scores)]

    def document(self, doc_id: str) -> dict[str, Any] | None:
        row = self._db.execute(
            "SELECT id, source, title, text, metadata FROM documents WHERE id=?", (doc_id,)
        ).fetchone()
        if row is None:
            return None
        return {"id": row[0], "source": row[1], "title": row[2], "text": row[3],
                "metadata": json.loads(row[4])}

    def iter_documents(self) -> Iterator[dict[str, Any]]:
        """Every document (id, source, title, text, metadata), ordered by id."""
        rows = self._db.execute("SELECT id, source, title, text, metadata FROM documents ORDER BY id").fetchall()
        for row in rows:
            yield {"id": row[0], "source": row[1], "title": row[2], "text": row[3],
                   "metadata": json.loads(row[4])}

    def corpus_hash(self) -> str:
        digest = hashlib.sha256()
        for source, content in self._db.execute("SELECT source, content_hash FROM sources ORDER BY source"):
            digest.update(f"{source}\0{content}\n".encode())
        return digest.hexdigest()[:16]

    def stats(self) -> dict[str, Any]:
        def count(table: str) -> int:
            return int(self._db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])

        return {
            "sources": count("sources"),
            "documents": count("documents"),
            "chunks": count("chunks"),
            "cached_embeddings": count("embedding_cache"),
            "generation": self.generation,
            "ann": bool(self._derived and self._derived.vectors.uses_ann),
        }

    def close(self) -> None:
        self._db.close()


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


def _hit(row: tuple, score: float) -> Hit:
    _, chunk_id, doc_id, start, end, page, path, text, title, source, metadata = row
    return Hit(
        chunk_id=chunk_id, doc_id=doc_id, score=score, text=text,
        span=Span(doc_id, start, end, page), heading_path=tuple(json.loads(path)),
        source=source, title=title, metadata=json.loads(metadata),
    )


def _filter_sql(filters: Mapping[str, Any]) -> tuple[str, list[Any]]:
    """SQL over ``documents`` for a filter mapping (see ``KnowledgeBase.search``)."""
    clauses, params = [], []
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
    return " AND ".join(clauses), params
