"""The named collections a server serves: knowledge bases given on the command line or in
``server.toml``, and those created over the API under ``<home>/collections/<name>``.

One :class:`KnowledgeBase` per collection is opened on first use and shared by every request
(searches run on immutable store views, so they are safe from many threads); writes to a
collection (ingest jobs, deletions) hold its :meth:`Collections.writer` lock — one writer."""

from __future__ import annotations

import re
import shutil
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..index.postgres_connect import is_postgres_url
from ..kb import KnowledgeBase
from .policy import check_stored_settings
from .problems import Conflict, Invalid, NotFound
from .settings import COLLECTION_NAME

_NAME = re.compile(COLLECTION_NAME)


class Collections:
    def __init__(self, home: Path | None, configured: Mapping[str, str | Path]) -> None:
        #: Where collections created over the API live (``None``: only the configured ones, as
        #: for ``domainrag mcp``).
        self.root = home / "collections" if home is not None else None
        self._configured: dict[str, str | Path] = {
            name: path if isinstance(path, str) and is_postgres_url(path) else Path(path)
            for name, path in configured.items()}
        for name in self._configured:
            check_name(name)
        self._open: dict[str, KnowledgeBase] = {}
        self._writers: dict[str, threading.Lock] = {}
        self._lock = threading.Lock()

    def names(self) -> list[str]:
        created = ({p.name for p in self.root.iterdir() if (p / "catalog.sqlite3").is_file()}
                   if self.root is not None and self.root.is_dir() else set())
        return sorted(created | set(self._configured))

    def path(self, name: str) -> str | Path:
        """Where collection ``name`` lives: a folder, or a PostgreSQL URL."""
        if name in self._configured:
            return self._configured[name]
        if self.root is not None and _NAME.match(name) and (self.root / name / "catalog.sqlite3").is_file():
            return self.root / name
        raise NotFound(f"No collection named {name!r}. GET /v1/collections lists them; an admin creates one "
                       "with POST /v1/collections.")

    def get(self, name: str) -> KnowledgeBase:
        """The open knowledge base of collection ``name`` (:class:`NotFound` when there is none)."""
        with self._lock:
            kb = self._open.get(name)
            if kb is None:
                kb = self._open[name] = self._opened(name)
            return kb

    def _opened(self, name: str) -> KnowledgeBase:
        kb = KnowledgeBase.open(self.path(name))
        if name not in self._configured:   # created over the API: its settings are not the operator's
            try:
                check_stored_settings(kb.config, name)
            except BaseException:
                kb.close()
                raise
        return kb

    def writer(self, name: str) -> threading.Lock:
        """The lock every write to collection ``name`` holds."""
        with self._lock:
            return self._writers.setdefault(name, threading.Lock())

    def is_configured(self, name: str) -> bool:
        return name in self._configured

    def create(self, name: str, settings: Mapping[str, Any]) -> KnowledgeBase:
        """A new, empty collection under the server home, with ``settings`` (dotted keys) written
        to its ``domainrag.toml``."""
        check_name(name)
        if self.root is None:
            raise Conflict("This server has no home for new collections: serve it with a --home folder.")
        with self._lock:
            target = self.root / name
            if name in self._configured or target.exists():
                raise Conflict(f"A collection named {name!r} already exists. Choose another name, or delete it first.")
            try:
                kb = KnowledgeBase.open(target, create=True, overrides=dict(settings))
            except BaseException:
                shutil.rmtree(target, ignore_errors=True)
                raise
            self._open[name] = kb
            return kb

    def delete(self, name: str) -> None:
        """Close collection ``name`` and remove its folder (only collections created over the API)."""
        if name in self._configured:
            raise Conflict(f"Collection {name!r} is served from {self._configured[name]} (--kb or server.toml); "
                           "the server does not delete it. Stop serving it instead.")
        path = self.path(name)
        with self.writer(name), self._lock:
            kb = self._open.pop(name, None)
            if kb is not None:
                kb.close()
            shutil.rmtree(path)   # created over the API: always a folder under the home

    def close(self) -> None:
        with self._lock:
            for kb in self._open.values():
                kb.close()
            self._open.clear()


def check_name(name: str) -> str:
    if not _NAME.match(name):
        raise Invalid(f"Invalid collection name {name!r}: use 1-64 letters, digits, '.', '_' or '-', "
                      "starting with a letter or digit.")
    return name
