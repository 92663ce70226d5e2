"""A few small tables in a SQL database: what the run store, the model-call cache and a
folderless knowledge base's configuration are written on.

:class:`Tables` is the seam: statements are written once, in the SQL that SQLite and PostgreSQL
share (``?`` placeholders, ``INSERT ... ON CONFLICT ... DO UPDATE``), and each implementation
says how it reads a JSON field and what orders rows by insertion. :class:`SQLiteTables` is a
file (the default, in the knowledge-base folder);
:class:`~domainrag.index.postgres_tables.PostgresTables` is a schema of a shared PostgreSQL
database (``[runs] url``).
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

from .errors import DomainragError
from .sqlite_files import open_database


class Tables(Protocol):
    """A connection to a few tables, safe to share between threads."""

    #: Where the tables are, for messages (a file path, or a redacted URL with its collection).
    label: str
    #: The row order of insertion in ``ORDER BY`` (SQLite's ``rowid``, a sequence column).
    inserted: str

    def json_field(self, column: str, field: str) -> str:
        """A SQL expression for the text of top-level ``field`` of the JSON text in ``column``."""
        ...

    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Run one statement (``?`` placeholders) and return its rows (none for a write); outside
        :meth:`transaction`, it is committed at once."""
        ...

    @contextmanager
    def transaction(self, name: str) -> Iterator[None]:
        """Statements executed inside commit together or not at all; transactions of the same
        ``name`` (on any connection, in any process) run one at a time."""
        ...

    def close(self) -> None: ...


class SQLiteTables:
    """:class:`Tables` in one SQLite file (WAL; ``synchronous=NORMAL``)."""

    inserted = "rowid"

    def __init__(self, path: Path, schema: str, *, what: str, fix: str) -> None:
        self.path = path
        self.label = str(path)
        self._what, self._fix = what, fix
        self._lock = threading.RLock()
        self._db = open_database(path, "PRAGMA synchronous=NORMAL;" + schema, what=what, fix=fix)

    def json_field(self, column: str, field: str) -> str:
        return f"json_extract({column}, '$.{field}')"

    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            try:
                return self._db.execute(sql, tuple(params)).fetchall()
            except sqlite3.Error as exc:
                raise DomainragError(f"The {self._what} {self.path} failed ({exc}). {self._fix}") from exc

    @contextmanager
    def transaction(self, name: str) -> Iterator[None]:
        with self._lock:
            self.execute("BEGIN IMMEDIATE")  # one writer at a time across processes
            try:
                yield
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self.execute("COMMIT")

    def close(self) -> None:
        with self._lock:
            self._db.close()
