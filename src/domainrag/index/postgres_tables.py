""":class:`~domainrag.tables.Tables` in PostgreSQL: the evaluation runs, pinned baselines,
model-call cache and (for a knowledge base with no folder) the configuration of a collection,
in that collection's schema beside the store's tables (``postgresql://HOST/DB#COLLECTION``; see
:mod:`.postgres_connect` for options and secrets).

One connection, shared by the threads of one process under a lock; every process has its own.
A connection the server dropped is replaced on the next statement (that statement's error, a
:class:`~.postgres_connect.StoreUnavailable`, said that nothing of it was written).
Statements outside a transaction commit at once; :meth:`PostgresTables.transaction` takes a
transaction-level advisory lock named after the collection and the transaction's name, so that
writers on any number of machines are serialised where it matters (starting a run, deleting
runs) and never block searches.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from .postgres_connect import connect, parse_url, psycopg_module, translate


class PostgresTables:
    """:class:`~domainrag.tables.Tables` in the schema of the collection ``url`` names; ``ddl``
    (``CREATE TABLE IF NOT EXISTS`` statements with unqualified names) is applied on connecting."""

    inserted = "seq"

    def __init__(self, url: str, ddl: Sequence[str], *, what: str) -> None:
        self.target = parse_url(url)
        self.label = self.target.label
        self._what = what
        self._lock = threading.RLock()
        self._conn = self._connect()
        schema = self.target.schema  # validated: an identifier
        try:
            with self.transaction("schema"):
                self.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
                for statement in ddl:
                    self.execute(statement)
        except BaseException:
            self._conn.close()
            raise

    def _connect(self) -> Any:
        psycopg = psycopg_module()
        conn = connect(self.target, vector=False)
        try:
            conn.execute(f"SET search_path TO {self.target.schema}")
        except psycopg.Error as exc:
            conn.close()
            raise translate(exc, self.target, f"opening the {self._what}") from exc
        return conn

    def _live(self) -> Any:
        """The connection, replaced first when the server dropped it (the statement that found
        it dropped has failed, saying so)."""
        if self._conn.closed:
            self._conn = self._connect()
        return self._conn

    def json_field(self, column: str, field: str) -> str:
        return f"({column}::jsonb ->> '{field}')"

    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        psycopg = psycopg_module()
        with self._lock:
            try:
                cursor = self._live().execute(sql.replace("?", "%s"), tuple(params))
                return cursor.fetchall() if cursor.description is not None else []
            except psycopg.Error as exc:
                raise translate(exc, self.target, f"using the {self._what}") from exc

    @contextmanager
    def transaction(self, name: str) -> Iterator[None]:
        psycopg = psycopg_module()
        with self._lock:
            try:
                with self._live().transaction():
                    self.execute("SELECT pg_advisory_xact_lock(hashtext(?))",
                                 (f"domainrag-{self.target.schema}-{name}",))
                    yield
            except psycopg.Error as exc:
                raise translate(exc, self.target, f"using the {self._what}") from exc

    def close(self) -> None:
        with self._lock:
            self._conn.close()
