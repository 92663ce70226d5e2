"""Ingestable sources: a file on disk, or one record of a corpus, loaded lazily."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass

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
