"""Ingesting from a :class:`~.sources.Source`: an S3 prefix (or any fsspec URL), a web site.

A source lists entries lazily (a stable URL, a version tag, a size, a modification time); each
becomes a :class:`~.sources.SourceItem` whose ``size`` and ``mtime_ns`` let the index builder skip
an unchanged object without reading it, whose fingerprint is its version tag (an ETag, a content
hash) so an object touched but not changed is not downloaded either, and whose ``load`` copies
the bytes into a temporary file — stopping at ``ingest.max_file_mb`` — that the parse worker reads
with the loader its suffix names, under the same budgets as a local file. Documents keep the URL
as their ``source`` and ``path`` (what citations show). What a source does not list as an entry
(unsupported types, objects over the size cap, pages that failed, a listing cut short) is reported
with its reason; failures keep their keys from a prune.

Sources are plug-ins of the ``domainrag.sources`` group: a source class claims URL ``schemes``;
the one named ``fsspec`` takes every scheme no other claims.
"""

from __future__ import annotations

import contextlib
import itertools
import re
import shutil
from collections import deque
from collections.abc import Generator, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Protocol
from urllib.parse import urlsplit

from .. import registry
from ..config import IngestConfig, SourcesConfig
from ..errors import ConfigError, DomainragError, LoaderError
from ..types import Document
from .acl import rule_groups
from .discover import FoundFile, glob_match
from .sources import Entry, Source, SourceItem, SourceSettings, Unlisted, sha256_bytes
from .worker import ParseWorker

GROUP = "domainrag.sources"
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_MB = 1024 * 1024
_CHUNK = 1 << 20
_UNSAFE = re.compile(r"[^\w.\-]+")


def is_url(path: object) -> bool:
    """Whether ``path`` (as given to ingest) is a URL (``s3://...``, ``https://...``), not a path."""
    return isinstance(path, str) and bool(_URL.match(path))


def open_source(url: str, settings: SourceSettings) -> Source:
    """The registered source that claims ``url``'s scheme (else the ``fsspec`` one), opened.

    Raises :class:`ConfigError` for a URL holding credentials: they would be stored with every
    document; the environment gives them (AWS variables or ``~/.aws`` for S3, ``~/.netrc`` for web
    sites)."""
    parts = urlsplit(url)
    if parts.username or parts.password:
        raise ConfigError(
            f"The URL {parts.scheme}://…@{parts.hostname}{parts.path} holds credentials, which would be stored "
            "with every document and shown in citations. Give them through the environment instead "
            "(for S3: AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE or ~/.aws/credentials; for a web "
            "site: ~/.netrc) and remove them from the URL."
        )
    scheme = parts.scheme.lower()
    for name in registry.names(GROUP):
        cls = registry.get(GROUP, name)
        if scheme in getattr(cls, "schemes", ()):
            source: Source = cls(url, settings)
            return source
    fallback: Source = registry.get(GROUP, "fsspec")(url, settings)
    return fallback


def settings_for(config: IngestConfig, extensions: frozenset[str], crawl: bool,
                 sources: SourcesConfig) -> SourceSettings:
    """What a source is told: ``[sources]`` settings, the per-object cap ``ingest.max_file_mb``."""
    return SourceSettings(max_bytes=int(config.max_file_mb * _MB), timeout_s=sources.timeout_s, crawl=crawl,
                          max_pages=sources.max_pages, max_depth=sources.max_depth, user_agent=sources.user_agent,
                          extensions=extensions)


class KnownState(Protocol):
    """What the index holds of a source (``domainrag.index.store.SourceState``)."""

    @property
    def content_hash(self) -> str: ...

    @property
    def size(self) -> int: ...

    @property
    def mtime_ns(self) -> int: ...


def source_items(source: Source, settings: SourceSettings, config: IngestConfig, worker: ParseWorker,
                 acl: tuple[str, ...] | None, tmp: Path, known: Mapping[str, KnownState] | None = None,
                 ) -> Generator[SourceItem | Unlisted, None, None]:
    """``source``'s entries as source items, lazily; what is not taken as an :class:`Unlisted`
    with its reason (``failed`` ones must be kept from a prune).

    With ``known`` (the sources the index holds) and a source that allows ``parallel_reads``,
    the objects that will have to be read (new, or another size and version) are downloaded
    ahead, that many at a time, a window of a few times that many items before the one being
    ingested (else one item at a time: a crawler keeps only the page just listed). An item's
    copy is deleted once the consumer asks for the next one."""
    parallel = int(getattr(source, "parallel_reads", 1)) if known is not None else 1
    ahead = 4 * parallel if parallel > 1 else 0   # a source read on this thread: one item at a time
    window: deque[tuple[SourceItem | Unlisted, _Fetch | None]] = deque()
    with ThreadPoolExecutor(max(parallel, 1), thread_name_prefix="ingest-fetch") as pool:
        try:
            for listed, fetch in _listed(source, settings, config, worker, acl, tmp):
                if fetch is not None and parallel > 1 and known is not None and _will_read(fetch.entry, known):
                    fetch.prefetch(pool)
                window.append((listed, fetch))
                while len(window) > ahead:
                    yield from _release(window.popleft())
            while window:
                yield from _release(window.popleft())
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
            for _listed_item, fetch in window:
                if fetch is not None:
                    fetch.discard()


def _release(pair: tuple[SourceItem | Unlisted, _Fetch | None]) -> Iterator[SourceItem | Unlisted]:
    listed, fetch = pair
    yield listed
    if fetch is not None:   # the consumer is done with it: it asked for the next item
        fetch.discard()


def _listed(source: Source, settings: SourceSettings, config: IngestConfig, worker: ParseWorker,
            acl: tuple[str, ...] | None, tmp: Path) -> Iterator[tuple[SourceItem | Unlisted, _Fetch | None]]:
    counter = itertools.count()
    for listed in source.entries():
        if isinstance(listed, Unlisted):
            yield listed, None
            continue
        reason, failed = _refused(listed, config, settings)
        if reason:
            yield Unlisted(listed.key, reason, failed), None
            continue
        groups = acl if acl is not None else rule_groups(config.acl, listed.name)
        fetch = _Fetch(source, listed, worker, tmp / str(next(counter)), settings.max_bytes, config.max_file_mb)
        yield SourceItem(source=listed.key, label=listed.key, size=listed.size or 0, mtime_ns=listed.mtime_ns,
                         fingerprint=fetch.fingerprint, load=fetch.load, acl=groups), fetch


def _will_read(entry: Entry, known: Mapping[str, KnownState]) -> bool:
    """Whether the index builder will most likely load ``entry`` (a guess: access groups aside)."""
    state = known.get(entry.key)
    if state is None:
        return True
    if (state.size, state.mtime_ns) == (entry.size, entry.mtime_ns) and entry.mtime_ns:
        return False
    return not (entry.version and state.content_hash.startswith(_version_hash(entry.version)))


def _version_hash(version: str) -> str:
    return sha256_bytes(f"version:{version}".encode())


def _refused(entry: Entry, config: IngestConfig, settings: SourceSettings) -> tuple[str, bool]:
    """Why ``entry`` is not taken ("" when it is) and whether that is a failure."""
    suffix = Path(entry.name).suffix.lower()
    if settings.extensions and suffix not in settings.extensions:
        return f"unsupported file type {suffix or '(no extension)'!r}", False
    if any(glob_match(entry.name, p) for p in config.exclude):
        return "excluded by ingest.exclude", False
    if config.include and not any(glob_match(entry.name, p) for p in config.include):
        return "not matched by ingest.include", False
    if entry.size is not None and entry.size > settings.max_bytes:
        return _too_large(entry.size, config.max_file_mb), True
    return "", False


def _too_large(size: float, limit_mb: float) -> str:
    return (f"larger than max_file_mb={limit_mb:g} ({size / _MB:.1f} MB); raise ingest.max_file_mb to "
            "include it")


class _Fetch:
    """One entry's bytes, downloaded at most once into ``folder`` and deleted once parsed."""

    def __init__(self, source: Source, entry: Entry, worker: ParseWorker, folder: Path, max_bytes: int,
                 limit_mb: float) -> None:
        self.source, self.entry, self.worker = source, entry, worker
        self.folder, self.max_bytes, self.limit_mb = folder, max_bytes, limit_mb
        self.path: Path | None = None
        self.future: Future[Path] | None = None

    def fingerprint(self) -> str:
        """The entry's version tag, hashed (no download); without one, the hash of its bytes."""
        if self.entry.version:
            return _version_hash(self.entry.version)
        return sha256_bytes(self._download().read_bytes())

    def prefetch(self, pool: ThreadPoolExecutor) -> None:
        """Start downloading on ``pool``; :meth:`load` waits for it."""
        self.future = pool.submit(self._copy_into_folder)

    def discard(self) -> None:
        """Delete the downloaded copy, if any (a prefetched object the index did not need)."""
        if self.future is not None:
            self.future.cancel()
            with contextlib.suppress(Exception):
                self.future.result()
            self.future = None
        shutil.rmtree(self.folder, ignore_errors=True)
        self.path = None

    def load(self) -> list[Document]:
        path = self._download()
        try:
            found = FoundFile(path, self.entry.key, path.stat().st_size, rel=self.entry.name, key=self.entry.key)
            return self.worker.load(found)
        finally:
            self.discard()

    def _download(self) -> Path:
        if self.path is None:
            future, self.future = self.future, None
            self.path = future.result() if future is not None else self._copy_into_folder()
        return self.path

    def _copy_into_folder(self) -> Path:
        """Download into ``folder``; :class:`LoaderError` with the reason if that fails."""
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / _file_name(self.entry.name)
        try:
            self._copy(path)
        except DomainragError:
            shutil.rmtree(self.folder, ignore_errors=True)
            raise
        except Exception as exc:  # the one seam where a source's read errors are translated
            shutil.rmtree(self.folder, ignore_errors=True)
            raise LoaderError(f"cannot be read: {type(exc).__name__}: {exc}") from exc
        return path

    def _copy(self, path: Path) -> None:
        total = 0
        with self.source.open(self.entry) as stream, path.open("wb") as out:
            while chunk := stream.read(_CHUNK):
                total += len(chunk)
                if total > self.max_bytes:
                    raise LoaderError(f"{_too_large(total, self.limit_mb)}; reading stopped at the cap")
                out.write(chunk)


def _file_name(name: str) -> str:
    """A safe local file name for the object ``name`` (its last segment; suffix kept)."""
    base = name.rstrip("/").rsplit("/", 1)[-1]
    stem, dot, suffix = base.rpartition(".")
    if not dot:
        stem, suffix = base, ""
    stem = _UNSAFE.sub("_", stem)[:80].strip("._") or "object"
    suffix = _UNSAFE.sub("_", suffix)[:16]
    return f"{stem}.{suffix}" if suffix else stem
