"""Opening the small SQLite files a knowledge base keeps beside its catalog (the run store, the
model-call cache): WAL mode, one connection shared by threads, and a damaged or foreign file
turned into one clear error that names the file and the fix."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from .errors import DomainragError


def open_database(path: Path, schema: str, *, what: str, fix: str) -> sqlite3.Connection:
    """A connection to ``path`` (created when absent) with ``schema`` applied; a file SQLite
    cannot read raises :class:`DomainragError` ("The {what} {path} cannot be read …; {fix}")."""
    try:
        db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.executescript(schema)
    except sqlite3.Error as exc:
        raise DomainragError(f"The {what} {path} cannot be read ({exc}). {fix}") from exc
    return db
