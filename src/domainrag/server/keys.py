"""API keys of a server home: created and revoked from the CLI, checked on every request.

A key is ``dr_`` + 32 random bytes (URL-safe base64). Only its SHA-256 is stored, in
``<home>/keys.sqlite3`` (permissions 0600), so the secret is shown once, at creation, and a
copy of the file lets nobody in. A request's key is found by its hash (an indexed lookup: no
comparison of secrets, and the time it takes does not depend on which names exist).

What a key may do is a :class:`Principal`: a role (``read`` < ``write`` < ``admin``), the
collections it may use (``None``: all) and the document groups it reads (``None``: every
document; an empty set: only documents without groups). An admin key has no restriction.

A key created or revoked from the CLI takes effect on a running server at once: the answers of
:meth:`KeyStore.verify` and :meth:`KeyStore.any_keys` are remembered in memory, and every check
first asks SQLite whether any other connection has changed the file since (``PRAGMA
data_version``, a few microseconds); if one has, everything remembered is dropped. So a check
costs no table read, and the request path can ask :meth:`KeyStore.peek` / :meth:`KeyStore.peek_any`
without leaving the event loop.
"""

from __future__ import annotations

import builtins
import hashlib
import json
import os
import re
import secrets
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, get_args

from ..acl import check_group
from ..errors import ConfigError, make_folder
from ..sqlite_files import open_database

Role = Literal["read", "write", "admin"]
ROLES: tuple[Role, ...] = get_args(Role)
#: The file of a server home that holds its keys.
KEYS_FILE = "keys.sqlite3"
SECRET_PREFIX = "dr_"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@+-]{0,63}")
_COLLECTION = re.compile(r"[^\s,/\\]{1,64}")
_ID_CHARS = 16
#: ``keys list`` shows ids this long; ``keys revoke`` accepts any unique prefix at least this long.
ID_PREFIX = 8

_SCHEMA = """
CREATE TABLE IF NOT EXISTS api_keys (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    secret_sha256 TEXT NOT NULL UNIQUE,
    role TEXT NOT NULL,
    collections TEXT,
    groups TEXT,
    created TEXT NOT NULL,
    last_used TEXT
);
"""


def default_home() -> Path:
    """The server home: ``$DOMAINRAG_HOME``, else ``./.domainrag-server``."""
    return Path(os.environ.get("DOMAINRAG_HOME") or ".domainrag-server")


@dataclass(frozen=True)
class Principal:
    """Who a request acts for, and what it may reach."""

    name: str
    role: Role
    #: Collections it may use; ``None``: every collection.
    collections: frozenset[str] | None
    #: Document groups it reads; ``None``: every document; empty: only documents without groups.
    groups: frozenset[str] | None

    def allows(self, role: Role) -> bool:
        """Whether this principal's role includes ``role`` (read < write < admin)."""
        return ROLES.index(self.role) >= ROLES.index(role)

    def may_use(self, collection: str) -> bool:
        """Whether this principal may use the collection named ``collection``."""
        return self.collections is None or collection in self.collections


#: The principal of a server with no keys configured (it listens on loopback only).
LOCAL_ADMIN = Principal("local", "admin", None, None)


@dataclass(frozen=True)
class KeyInfo:
    """A stored key, without its secret."""

    id: str
    name: str
    role: Role
    collections: frozenset[str] | None
    groups: frozenset[str] | None
    #: ISO 8601 UTC times; ``last_used`` is ``None`` until the key is first used, and is
    #: recorded to within :attr:`KeyStore.last_used_resolution_s`.
    created: str
    last_used: str | None

    @property
    def principal(self) -> Principal:
        return Principal(self.name, self.role, self.collections, self.groups)

    def to_dict(self) -> dict[str, Any]:
        """JSON form (``None`` collections or groups: no restriction)."""
        return {"id": self.id, "name": self.name, "role": self.role,
                "collections": _sorted(self.collections), "groups": _sorted(self.groups),
                "created": self.created, "last_used": self.last_used}


class KeyStore:
    """The API keys in the SQLite file ``path`` (created, with permissions 0600, when absent)."""

    def __init__(self, path: str | os.PathLike[str], *, last_used_resolution_s: float = 60.0) -> None:
        self.path = Path(path)
        #: ``verify`` writes ``last_used`` at most once per key in this many seconds (a write per
        #: request would serialise every request on the file's lock).
        self.last_used_resolution_s = last_used_resolution_s
        self._lock = threading.Lock()
        self._written: dict[str, float] = {}
        #: What ``verify`` and ``any_keys`` found, valid while the file's data version is ``_version``:
        #: the principal of each key digest seen (only existing keys: unknown secrets are not kept,
        #: so a flood of made-up keys cannot grow it), and whether any key exists.
        self._version: int | None = None
        self._known: dict[str, tuple[str, Principal]] = {}
        self._any: bool | None = None
        _create_private(self.path)
        self._db = open_database(self.path, _SCHEMA, what="API key store", fix=(
            "Move it away and create the keys again with 'domainrag keys create'."))

    # -- managing keys -------------------------------------------------------------------
    def create(self, name: str, collections: Iterable[str] | None = None, role: str = "read",
               groups: Iterable[str] | None = ()) -> tuple[KeyInfo, str]:
        """A new key and its secret (shown once: only its hash is kept).

        ``collections``: the collections it may use (``None``: all); ``groups``: the document
        groups it reads (``None``: every document; empty: only documents without groups). An
        ``admin`` key uses every collection and reads every document, so it takes neither.
        Raises :class:`ConfigError` for a taken or malformed name, an unknown role, or a bad
        collection or group name."""
        info = KeyInfo(secrets.token_hex(_ID_CHARS // 2), _check_name(name), _check_role(role),
                       _check_collections(collections), _check_groups(groups), _now(), None)
        if info.role == "admin" and (info.collections is not None or info.groups is not None):
            raise ConfigError(
                "An admin key uses every collection and reads every document: create it without "
                "--collections and --groups, or choose --role read or write for a restricted key."
            )
        secret = SECRET_PREFIX + secrets.token_urlsafe(32)
        try:
            with self._locked() as db:
                db.execute(
                    "INSERT INTO api_keys(id, name, secret_sha256, role, collections, groups, created) "
                    "VALUES (?,?,?,?,?,?,?)",
                    (info.id, info.name, _digest(secret), info.role, _dump(info.collections),
                     _dump(info.groups), info.created))
                self._forget()
        except sqlite3.IntegrityError as exc:
            raise ConfigError(
                f"An API key named {info.name!r} already exists: choose another --name, or revoke "
                f"it first with 'domainrag keys revoke {info.name}'."
            ) from exc
        return info, secret

    def list(self) -> builtins.list[KeyInfo]:
        """Every key, oldest first."""
        with self._locked() as db:
            rows = db.execute("SELECT id, name, role, collections, groups, created, last_used "
                              "FROM api_keys ORDER BY created, name").fetchall()
        return [_info(row) for row in rows]

    def revoke(self, name_or_id: str) -> bool:
        """Delete the key with this name, or whose id starts with ``name_or_id`` (at least
        :data:`ID_PREFIX` characters, as ``keys list`` shows them); ``False`` when none matches.
        A prefix of several ids, or a name that is another key's id prefix, is refused."""
        wanted = name_or_id.strip()
        with self._locked() as db:
            by_name = [r[0] for r in db.execute("SELECT id FROM api_keys WHERE name = ?", (wanted,))]
            by_id: list[str] = []
            if len(wanted) >= ID_PREFIX:
                by_id = [r[0] for r in db.execute("SELECT id FROM api_keys WHERE substr(id, 1, ?) = ?",
                                                  (len(wanted), wanted.lower()))]
            matches = sorted(set(by_name + by_id))
            if len(matches) > 1:
                raise ConfigError(
                    f"{name_or_id!r} matches {len(matches)} keys (ids {', '.join(m[:ID_PREFIX] for m in matches)}): "
                    "give the key's full id or its name."
                )
            if not matches:
                return False
            db.execute("DELETE FROM api_keys WHERE id = ?", (matches[0],))
            self._forget()
        self._written.pop(matches[0], None)
        return True

    def any_keys(self) -> bool:
        """Whether any key exists (without one, the server serves loopback only, as a local admin)."""
        with self._locked() as db:
            self._refresh(db)
            if self._any is None:
                self._any = db.execute("SELECT 1 FROM api_keys LIMIT 1").fetchone() is not None
            return self._any

    # -- checking requests ---------------------------------------------------------------
    def verify(self, secret: str) -> Principal | None:
        """The principal of the key ``secret``; ``None`` for an unknown or revoked key (or
        anything that is not a key). Records when the key was last used."""
        if not _looks_like_key(secret):
            return None
        digest = _digest(secret)
        with self._locked() as db:
            self._refresh(db)
            known = self._known.get(digest)
            if known is not None and not self._use_due(known[0]):
                return known[1]
            row = db.execute("SELECT id, name, role, collections, groups, created, last_used "
                             "FROM api_keys WHERE secret_sha256 = ?", (digest,)).fetchone()
            if row is None:
                return None
            info = _info(row)
            if self._use_due(info.id):
                db.execute("UPDATE api_keys SET last_used = ? WHERE id = ?", (_now(), info.id))
                self._written[info.id] = time.monotonic()
            self._known[digest] = (info.id, info.principal)
        return info.principal

    def peek(self, secret: str) -> Principal | None:
        """:meth:`verify`'s answer when it is at hand without waiting: the key was verified before,
        the file has not changed since and its ``last_used`` needs no write. ``None`` otherwise
        (also when another thread holds the store) — then call :meth:`verify`, in a worker thread.
        Never blocks: the event loop may call it."""
        if not _looks_like_key(secret) or not self._lock.acquire(blocking=False):
            return None
        try:
            if not self._refresh_quietly():
                return None
            known = self._known.get(_digest(secret))
            return None if known is None or self._use_due(known[0]) else known[1]
        finally:
            self._lock.release()

    def peek_any(self) -> bool | None:
        """:meth:`any_keys`'s answer when it is at hand without waiting, else ``None`` (then call
        :meth:`any_keys`, in a worker thread). Never blocks."""
        if not self._lock.acquire(blocking=False):
            return None
        try:
            return self._any if self._refresh_quietly() else None
        finally:
            self._lock.release()

    def _refresh(self, db: sqlite3.Connection) -> None:
        """Forget what was found when another connection (the CLI) has changed the file since.
        This connection's own writes do not change its data version: they call :meth:`_forget`."""
        version: int = db.execute("PRAGMA data_version").fetchone()[0]
        if version != self._version:
            self._forget()
            self._version = version

    def _refresh_quietly(self) -> bool:
        """:meth:`_refresh` under the held lock; ``False`` when SQLite cannot answer (the caller
        then goes the slow way, where the error is reported)."""
        try:
            self._refresh(self._db)
        except sqlite3.Error:
            return False
        return True

    def _forget(self) -> None:
        self._known.clear()
        self._any = None

    def _use_due(self, key_id: str) -> bool:
        """Whether ``last_used`` of key ``key_id`` is due a write (see ``last_used_resolution_s``)."""
        last = self._written.get(key_id)
        return last is None or time.monotonic() - last >= self.last_used_resolution_s

    # -- lifetime --------------------------------------------------------------------------
    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> KeyStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _locked(self) -> Iterator[sqlite3.Connection]:
        """The connection, used by one thread at a time; SQLite errors name the file."""
        with self._lock:
            try:
                yield self._db
            except sqlite3.IntegrityError:
                raise
            except sqlite3.Error as exc:
                raise ConfigError(
                    f"The API key store {self.path} cannot be used ({exc}). Check that the file is "
                    "writable, or move it away and create the keys again."
                ) from exc


def _create_private(path: Path) -> None:
    """Create ``path`` (and its folder) readable and writable by the owner only; make an existing
    file so too."""
    make_folder(path.parent, "server home", "Choose a writable --home (or $DOMAINRAG_HOME).")
    try:
        os.close(os.open(path, os.O_CREAT | os.O_RDWR, 0o600))
        os.chmod(path, 0o600)
    except OSError as exc:
        raise ConfigError(
            f"Cannot create the API key store {path}: {exc.strerror or exc}. Choose a writable "
            "--home (or $DOMAINRAG_HOME)."
        ) from exc


def _check_name(name: str) -> str:
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ConfigError(
            f"The key name {name!r} is not valid: use 1-64 letters, digits and . _ @ + - "
            "(starting with a letter or digit), e.g. --name alice or --name ci-bot."
        )
    return name


def _check_role(role: str) -> Role:
    if role not in ROLES:
        raise ConfigError(f"Unknown role {role!r}: choose one of {', '.join(ROLES)}.")
    return role


def _check_collections(collections: Iterable[str] | None) -> frozenset[str] | None:
    if collections is None:
        return None
    names = frozenset(c.strip() if isinstance(c, str) else c for c in collections)
    if "*" in names:
        raise ConfigError("'*' is not a collection name: a key for every collection has collections=None.")
    for name in names:
        if not isinstance(name, str) or not _COLLECTION.fullmatch(name):
            raise ConfigError(
                f"The collection name {name!r} is not valid: 1-64 characters without spaces, commas "
                "or slashes. Give collections as --collections a,b (or '*' for all)."
            )
    if not names:
        raise ConfigError("The key would use no collection: name some with --collections a,b, or '*' for all.")
    return names


def _check_groups(groups: Iterable[str] | None) -> frozenset[str] | None:
    if groups is None:
        return None
    return frozenset(check_group(g, where="--groups") for g in groups)


def _looks_like_key(secret: object) -> bool:
    return isinstance(secret, str) and secret.startswith(SECRET_PREFIX) and len(secret) <= 256


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8", "surrogateescape")).hexdigest()


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _dump(names: frozenset[str] | None) -> str | None:
    return None if names is None else json.dumps(sorted(names))


def _load(text: str | None) -> frozenset[str] | None:
    return None if text is None else frozenset(json.loads(text))


def _sorted(names: frozenset[str] | None) -> list[str] | None:
    return None if names is None else sorted(names)


def _info(row: tuple[Any, ...]) -> KeyInfo:
    key_id, name, role, collections, groups, created, last_used = row
    return KeyInfo(key_id, name, role, _load(collections), _load(groups), created, last_used)
