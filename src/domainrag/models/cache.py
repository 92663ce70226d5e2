"""A cache of model calls, keyed by the full request, so an unchanged evaluation re-run makes
no model calls and an interrupted one resumes without paying twice.

The key is the sha256 of the generator id and every field of the request that reaches the
model (messages, token limit, temperature, JSON mode). Values are the :class:`Generation`
returned, with any credential in its model id or version redacted. Stored in one table
(``calls``, keyed by the request hash) of a SQLite file or, with ``[runs] url``, of a PostgreSQL
database shared by every machine of a team; safe to share between threads and processes.
"""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import asdict, replace
from pathlib import Path

from ..redaction import redact
from ..tables import SQLiteTables, Tables
from ..types import Usage
from .generation import Generation, GenerationRequest


def request_key(model_id: str, request: GenerationRequest) -> str:
    payload = {"model": model_id, "messages": [[m.role, m.content] for m in request.messages],
               "max_tokens": request.max_tokens, "temperature": request.temperature,
               "json": request.json}
    if request.sample:
        payload["sample"] = request.sample
    return hashlib.sha256(json.dumps(payload, ensure_ascii=False).encode()).hexdigest()


CACHE_FILE = "model_cache.sqlite3"
#: The one table, in SQLite and PostgreSQL alike.
DDL = "CREATE TABLE IF NOT EXISTS calls (key TEXT PRIMARY KEY, generation TEXT NOT NULL)"


class ModelCache:
    """``where``: a SQLite file (created when absent) or :class:`~domainrag.tables.Tables`."""

    def __init__(self, where: str | Path | Tables) -> None:
        if isinstance(where, (str, Path)):
            where = SQLiteTables(Path(where), DDL + ";", what="model-call cache",
                                 fix="It is only a cache: delete it (the next evaluation calls the models again).")
        self._db = where
        self._count = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, key: str) -> Generation | None:
        rows = self._db.execute("SELECT generation FROM calls WHERE key = ?", (key,))
        with self._count:
            self.hits += bool(rows)
            self.misses += not rows
        if not rows:
            return None
        try:
            data = json.loads(rows[0][0])
            return Generation(**{**data, "usage": Usage(**data["usage"])})
        except (ValueError, TypeError, KeyError):  # a damaged entry is a miss: the call is made again
            return None

    def put(self, key: str, generation: Generation) -> None:
        generation = replace(generation, model=redact(generation.model), version=redact(generation.version))
        self._db.execute("INSERT INTO calls (key, generation) VALUES (?, ?) "
                         "ON CONFLICT (key) DO UPDATE SET generation = excluded.generation",
                         (key, json.dumps(asdict(generation), ensure_ascii=False)))

    def close(self) -> None:
        self._db.close()
