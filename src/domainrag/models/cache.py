"""A cache of model calls, keyed by the full request, so an unchanged evaluation re-run makes
no model calls and an interrupted one resumes without paying twice.

The key is the sha256 of the generator id and every field of the request that reaches the
model (messages, token limit, temperature, JSON mode). Values are the :class:`Generation`
returned, with any credential in its model id or version redacted. Stored in one SQLite file;
safe to share between threads.
"""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import asdict, replace
from pathlib import Path

from ..redaction import redact
from ..sqlite_files import open_database
from ..types import Usage
from .generation import Generation, GenerationRequest


def request_key(model_id: str, request: GenerationRequest) -> str:
    payload = {"model": model_id, "messages": [[m.role, m.content] for m in request.messages],
               "max_tokens": request.max_tokens, "temperature": request.temperature,
               "json": request.json}
    if request.sample:
        payload["sample"] = request.sample
    return hashlib.sha256(json.dumps(payload, ensure_ascii=False).encode()).hexdigest()


class ModelCache:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._db = open_database(
            self.path, "CREATE TABLE IF NOT EXISTS calls (key TEXT PRIMARY KEY, generation TEXT NOT NULL);",
            what="model-call cache",
            fix="It is only a cache: delete it (the next evaluation calls the models again).")
        self.hits = 0
        self.misses = 0

    def get(self, key: str) -> Generation | None:
        with self._lock:
            row = self._db.execute("SELECT generation FROM calls WHERE key = ?", (key,)).fetchone()
            self.hits += row is not None
            self.misses += row is None
        if row is None:
            return None
        try:
            data = json.loads(row[0])
            return Generation(**{**data, "usage": Usage(**data["usage"])})
        except (ValueError, TypeError, KeyError):  # a damaged entry is a miss: the call is made again
            return None

    def put(self, key: str, generation: Generation) -> None:
        generation = replace(generation, model=redact(generation.model), version=redact(generation.version))
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO calls VALUES (?, ?)",
                             (key, json.dumps(asdict(generation), ensure_ascii=False)))

    def close(self) -> None:
        with self._lock:
            self._db.close()
