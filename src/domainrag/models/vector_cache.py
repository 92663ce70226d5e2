"""One embedding cache for every knowledge base of a machine's user.

Each knowledge base keeps the vectors it computed (its store's ``embedding_cache``), so a
re-ingest never embeds unchanged text twice. This cache goes across knowledge bases: a text that
any knowledge base on this machine embedded with the same model — the same embedder id, which
names the model, its version and truncation, and for a server the server — is never embedded
again, e.g. the same documents ingested into a SQLite knowledge base and a PostgreSQL one, or a
copy re-chunked for an experiment. Keys are ``(embedder id, sha1 of the text)``, values float32
vectors; nothing else of the text is stored.

The file is ``embeddings.sqlite3`` in ``$DOMAINRAG_CACHE_DIR``, else ``$XDG_CACHE_HOME/domainrag``,
else ``~/.cache/domainrag``; SQLite in WAL mode, safe for several processes at once. It is only a
cache: deleting it costs re-embedding. ``[ingest] shared_cache = false`` turns it off.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

CACHE_DIR_ENV = "DOMAINRAG_CACHE_DIR"
FILE = "embeddings.sqlite3"
_SCHEMA = ("CREATE TABLE IF NOT EXISTS vectors (model TEXT NOT NULL, key TEXT NOT NULL, vector BLOB NOT NULL, "
           "PRIMARY KEY (model, key)) WITHOUT ROWID")
#: Keys per ``IN (...)`` lookup (SQLite's variable limit is 32,766).
_LOOKUP = 900
_log = logging.getLogger(__name__)


def cache_dir() -> Path:
    if os.environ.get(CACHE_DIR_ENV):
        return Path(os.environ[CACHE_DIR_ENV]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "domainrag"


class SharedVectorCache:
    """Vectors by ``(model, key)`` in one SQLite file (default: :func:`cache_dir` / ``FILE``)."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or cache_dir() / FILE
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None

    def _connection(self) -> sqlite3.Connection:
        if self._db is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self.path, timeout=30, check_same_thread=False, isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute(_SCHEMA)
            self._db = db
        return self._db

    def get(self, model: str, keys: Sequence[str]) -> dict[str, np.ndarray]:
        """The cached vectors of ``keys`` (absent keys are left out; an unreadable cache is empty)."""
        try:
            return self._get(model, keys)
        except (sqlite3.Error, OSError) as exc:
            _log.warning("the shared embedding cache %s cannot be read (%s); embedding instead", self.path, exc)
            return {}

    def put(self, model: str, vectors: Mapping[str, np.ndarray]) -> None:
        """Keep ``vectors`` (an unwritable cache is skipped with a warning)."""
        if not vectors:
            return
        try:
            self._put(model, vectors)
        except (sqlite3.Error, OSError) as exc:
            _log.warning("the shared embedding cache %s cannot be written (%s); delete it if it is damaged",
                         self.path, exc)

    def _get(self, model: str, keys: Sequence[str]) -> dict[str, np.ndarray]:
        found: dict[str, np.ndarray] = {}
        with self._lock:
            db = self._connection()
            for start in range(0, len(keys), _LOOKUP):
                part = list(keys[start : start + _LOOKUP])
                marks = ",".join("?" * len(part))
                for key, blob in db.execute(f"SELECT key, vector FROM vectors WHERE model = ? AND key IN ({marks})",
                                            [model, *part]):
                    found[key] = np.frombuffer(blob, dtype=np.float32).copy()
        return found

    def _put(self, model: str, vectors: Mapping[str, np.ndarray]) -> None:
        rows = [(model, key, np.asarray(v, dtype=np.float32).tobytes()) for key, v in vectors.items()]
        with self._lock:
            db = self._connection()
            db.execute("BEGIN IMMEDIATE")
            try:
                db.executemany("INSERT OR IGNORE INTO vectors (model, key, vector) VALUES (?, ?, ?)", rows)
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None
