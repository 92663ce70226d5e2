"""Connecting to PostgreSQL: the store URL, secrets from the environment, and the one seam that
turns psycopg's errors into domainrag's.

``postgresql://USER@HOST:PORT/DATABASE?OPTIONS#COLLECTION``. The password is never part of the
URL: libpq reads ``PGPASSWORD`` (or ``~/.pgpass``), or ``password_env=NAME`` names the variable
holding it. Options of our own, removed before the URL reaches libpq: ``password_env``,
``statement_timeout_ms`` (per statement; default 60000), ``lock_timeout_s`` (how long an ingest
waits for another ingest into the same collection; default 600), ``ef_search`` (HNSW search
breadth), ``read_url`` (a streaming replica of the same database, ``postgresql://USER@HOST:PORT/DB``
with its own options; its password is the primary's unless it names its own ``password_env``):
searches read from it while it is reachable and has replayed the primary's latest write, else
from the primary, saying so in the log. Every other query parameter (``sslmode``,
``connect_timeout``...) is libpq's.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from ..errors import ConfigError, DomainragError, IndexMismatchError, missing
from ..redaction import redact_url
from .postgres_schema import schema_name

SCHEMES = ("postgresql", "postgres")
DEFAULT_COLLECTION = "default"
#: pgvector HNSW search breadth (m=16, ef_construction=64). Recall@10 against exact search on 100k
#: clustered 384-d vectors (benchmarks/postgres.py): 0.956 at 40 (pgvector's default), 0.976 at 100,
#: 0.996 at 200 (1.8 ms); 200 keeps it above 0.98.
DEFAULT_EF_SEARCH = 200


class StoreUnavailable(DomainragError):
    """The PostgreSQL server cannot be reached, refuses the credentials, timed out, or dropped
    the connection; nothing of the statement or batch under way was written."""


@dataclass(frozen=True)
class PostgresTarget:
    """A parsed store URL: what libpq gets, and our own settings."""

    conninfo: str  # the URL without our options and fragment (no password in it)
    password: str | None
    collection: str
    statement_timeout_ms: int
    lock_timeout_s: float
    ef_search: int
    label: str  # redacted URL with the collection, for messages
    read: PostgresTarget | None = None  # the replica searches read from (``read_url``)

    @property
    def schema(self) -> str:
        return schema_name(self.collection)


def is_postgres_url(url: str) -> bool:
    return urlsplit(url).scheme in SCHEMES


def shown_url(url: str) -> str:
    """``url`` as messages show it: as given (a user name and a ``password_env`` variable name are
    no secrets, and the result can be pasted back as ``--kb``), redacted when it carries a password
    (which :func:`parse_url` refuses)."""
    parts = urlsplit(url)
    options = dict(parse_qsl(parts.query, keep_blank_values=True))
    if parts.password is not None or {"password", "sslpassword"} & set(options):
        return redact_url(url)
    return url


def parse_url(url: str) -> PostgresTarget:
    """Parse a ``postgresql://`` store URL (see module docstring)."""
    parts = urlsplit(url)
    if parts.scheme not in SCHEMES:
        raise ConfigError(f"Store URL {redact_url(url)!r} is not a postgresql:// URL")
    if parts.password is not None:
        raise ConfigError(
            f"Store URL {redact_url(url)!r} carries a password; remove it from the URL and set "
            "PGPASSWORD, or name the variable holding it with ?password_env=NAME"
        )
    options = dict(parse_qsl(parts.query, keep_blank_values=True))
    password_env = options.pop("password_env", None)
    password = None
    if password_env:
        password = os.environ.get(password_env)
        if password is None:
            raise ConfigError(
                f"Store URL names password_env={password_env}, but ${password_env} is not set; "
                f"export {password_env}=... before starting domainrag"
            )
    statement_timeout = _int_option(options, "statement_timeout_ms", 60_000, url)
    lock_timeout = _int_option(options, "lock_timeout_s", 600, url)
    ef_search = _int_option(options, "ef_search", DEFAULT_EF_SEARCH, url)
    collection = parts.fragment or DEFAULT_COLLECTION
    schema_name(collection)  # validates
    read_url = options.pop("read_url", None)
    conninfo = urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(options), ""))
    label = redact_url(urlunsplit((parts.scheme, parts.netloc, parts.path, "", collection)))
    read = None
    if read_url:
        if "#" in read_url or "read_url=" in read_url:
            raise ConfigError(f"Store URL {redact_url(url)!r}: read_url names a replica of the same database "
                              "(postgresql://USER@HOST:PORT/DB); the collection is the primary's")
        read = parse_url(f"{read_url}#{collection}")
        read = replace(read, password=read.password if read.password is not None else password)
    return PostgresTarget(conninfo, password, collection, statement_timeout, float(lock_timeout), ef_search, label,
                          read)


def _int_option(options: dict[str, str], name: str, default: int, url: str) -> int:
    raw = options.pop(name, None)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = -1
    if value < 0:
        raise ConfigError(f"Store URL {redact_url(url)!r}: {name}={raw!r} must be a whole number >= 0")
    return value


def psycopg_module() -> Any:
    """psycopg, or the install hint for the ``postgres`` extra."""
    try:
        import pgvector.psycopg  # noqa: F401
        import psycopg
    except ImportError as exc:
        raise missing("psycopg", "postgres", "The PostgreSQL store") from exc
    return psycopg


def connect(target: PostgresTarget, vector: bool = True) -> Any:
    """A new autocommit connection with our timeouts set and, with ``vector``, the pgvector
    extension ensured and its types registered."""
    psycopg = psycopg_module()
    from pgvector.psycopg import register_vector

    kwargs: dict[str, Any] = {"autocommit": True}
    if target.password is not None:
        kwargs["password"] = target.password
    kwargs.setdefault("connect_timeout", 10)
    try:
        conn = psycopg.connect(target.conninfo, **kwargs)
    except psycopg.Error as exc:
        raise translate(exc, target, "connecting") from exc
    try:
        conn.execute(f"SET statement_timeout = {target.statement_timeout_ms}")
        if vector:
            conn.execute(f"SET hnsw.ef_search = {target.ef_search}")
            ensure_vector_extension(conn, target)
            register_vector(conn)
    except psycopg.Error as exc:
        conn.close()
        raise translate(exc, target, "preparing the connection") from exc
    return conn


def ensure_vector_extension(conn: Any, target: PostgresTarget) -> None:
    """Create pgvector in the database when it is installed on the server and missing here."""
    psycopg = psycopg_module()
    found = conn.execute("SELECT 1 FROM pg_extension WHERE extname = 'vector'").fetchone()
    if found:
        return
    available = conn.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'vector'").fetchone()
    if not available:
        raise StoreUnavailable(
            f"The PostgreSQL server of {target.label} does not have the pgvector extension installed. "
            "Install it on the server (Debian/Ubuntu: apt-get install postgresql-16-pgvector, matching "
            "your PostgreSQL major version; or build it from github.com/pgvector/pgvector), then retry."
        )
    try:
        conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
    except psycopg.errors.InsufficientPrivilege as exc:
        raise StoreUnavailable(
            f"pgvector is installed on the server of {target.label} but not enabled in this database, "
            "and this user may not enable it: ask a database owner or superuser to run "
            "'CREATE EXTENSION vector;' in it."
        ) from exc


def translate(exc: Exception, target: PostgresTarget, doing: str) -> DomainragError:
    """The one seam: a psycopg error as a :class:`DomainragError` whose message names the fix."""
    import psycopg

    text = " ".join(str(exc).split())
    where = target.label
    if isinstance(exc, psycopg.errors.QueryCanceled):
        return StoreUnavailable(
            f"A statement on {where} was cancelled while {doing} ({text}); nothing of it was written. "
            f"Raise statement_timeout_ms in the store URL (now {target.statement_timeout_ms}) or "
            "retry when the server is less busy."
        )
    if isinstance(exc, psycopg.errors.LockNotAvailable):
        return StoreUnavailable(
            f"Another ingest into {where} held the collection's write lock for {target.lock_timeout_s:g} s "
            "(PostgreSQL advisory lock); wait for it to finish, or raise lock_timeout_s in the store URL."
        )
    if isinstance(exc, psycopg.errors.InvalidPassword) or "password authentication failed" in text:
        return StoreUnavailable(
            f"PostgreSQL at {where} refused the password ({text}). Set the right password in PGPASSWORD "
            "(or in the variable named by ?password_env=NAME in the store URL)."
        )
    if isinstance(exc, psycopg.errors.InvalidCatalogName):
        return StoreUnavailable(
            f"The database of {where} does not exist ({text}); create it (createdb NAME) or fix the store URL."
        )
    if isinstance(exc, psycopg.errors.DataException) and "dimensions" in text:
        return IndexMismatchError(
            f"{where} holds vectors of other dimensions than this embedder's ({text}); use the embedder "
            "the collection was built with, or re-create it with 'domainrag ingest ... --reindex'."
        )
    if isinstance(exc, psycopg.OperationalError):
        if doing == "connecting":
            return StoreUnavailable(
                f"Cannot connect to PostgreSQL at {where} ({text}). Start the server, or fix the host, port "
                "and database in [store] url."
            )
        return StoreUnavailable(
            f"The connection to PostgreSQL at {where} failed while {doing} ({text}); the transaction was "
            "rolled back and nothing of it was written. Retry (an ingest resumes where it stopped)."
        )
    return DomainragError(f"PostgreSQL at {where} failed while {doing}: {type(exc).__name__}: {text}")
