"""Ingestable sources: a file on disk, one record of a corpus, or an object of a :class:`Source`
(an S3 prefix, a web site), loaded lazily."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import BinaryIO, ClassVar, Protocol, runtime_checkable

from ..types import Document


@dataclass(frozen=True)
class SourceItem:
    """One unit of incremental ingest.

    ``source`` keys the ingest state (an absolute path, or ``corpus#id``); ``size`` and
    ``mtime_ns`` allow skipping an unchanged file without reading it; ``fingerprint`` returns the
    content hash; ``load`` reads the documents (raising ``LoaderError`` with the reason);
    ``acl`` the access groups given to its documents by the ingest call or an ``[[ingest.acl]]``
    rule (``None``: none given; see :mod:`.acl`).
    """

    source: str
    label: str
    size: int
    mtime_ns: int
    fingerprint: Callable[[], str]
    load: Callable[[], list[Document]]
    acl: tuple[str, ...] | None = None


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def in_scope(source: str, scope: str) -> bool:
    """Whether the source key ``source`` lies in a prune ``scope``: a scope ending in a path
    separator (a folder) or ``#`` (a corpus) holds every key that starts with it; any other
    scope (a file) holds only the key equal to it. Never a bare string prefix: pruning
    ``d/page.htm`` leaves ``d/page.html`` alone."""
    if scope.endswith(("/", os.sep, "#")):
        return source.startswith(scope)
    return source == scope


# -- sources beyond a local folder ----------------------------------------------------------------
@dataclass(frozen=True)
class Entry:
    """One object a :class:`Source` lists: ``key`` its stable URL (the source key of its documents,
    their ``source`` and ``path``, what citations show), ``name`` its path relative to the URL
    given to ingest (what ``ingest.include``/``exclude`` and ``[[ingest.acl]]`` rules match; its
    suffix picks the loader), ``size`` in bytes (``None``: unknown until read), ``version`` a tag
    that changes with the content (an ETag, a content hash; ``""``: none, the bytes are hashed)
    and ``mtime_ns`` the time it was last modified (0: unknown)."""

    key: str
    name: str
    size: int | None
    version: str = ""
    mtime_ns: int = 0


@dataclass(frozen=True)
class Unlisted:
    """Something a :class:`Source` did not list as an entry, and why: ``failed`` marks real
    problems (an unreadable page, a listing cut short), which make an ingest partial and keep
    ``key`` (a key ending in ``/`` stands for everything under it) from being pruned."""

    key: str
    reason: str
    failed: bool = True


@runtime_checkable
class Source(Protocol):
    """Where documents come from when it is not a local folder: an object store prefix, a web site.

    ``scope`` is the prune scope (see :func:`in_scope`): every key this source can list lies in
    it. :meth:`entries` lists what is there now, lazily (a million keys are never held at once),
    as :class:`Entry` and :class:`Unlisted` items; it raises :class:`~domainrag.errors.ConfigError`
    when the source cannot be listed at all (no such bucket, no access), naming the fix.
    :meth:`open` reads one entry's bytes (the caller stops at its size cap). ``__init__`` takes the
    URL and a :class:`SourceSettings`. Credentials come from the environment and the standard
    configuration chains of the library used, never from arguments or files of domainrag.
    Optional: ``parallel_reads``, how many :meth:`open` calls may run at once from other threads
    (downloads ahead of the ingest; absent: one, on the ingesting thread).
    """

    schemes: ClassVar[tuple[str, ...]]
    scope: str

    def entries(self) -> Iterator[Entry | Unlisted]: ...

    def open(self, entry: Entry) -> AbstractContextManager[BinaryIO]: ...


@dataclass(frozen=True)
class SourceSettings:
    """What a :class:`Source` is told: ``max_bytes`` per object, ``timeout_s`` per request (and
    per page in all), ``crawl`` (a web URL: follow links, else that page alone), ``max_pages``
    and ``max_depth`` of a crawl, ``user_agent`` sent to web servers, ``extensions`` the loaders
    claim (entries with other suffixes are listed as ignored)."""

    max_bytes: int
    timeout_s: float = 30.0
    crawl: bool = False
    max_pages: int = 500
    max_depth: int = 5
    user_agent: str = "domainrag"
    extensions: frozenset[str] = frozenset()
