"""Turn the paths and URLs given to ``ingest`` into lazily loaded sources."""

from __future__ import annotations

import dataclasses
import itertools
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from ..config import IngestConfig, SourcesConfig
from ..errors import ConfigError
from .acl import rule_groups
from .beir_corpus import beir_sources, corpus_path
from .discover import FoundFile, discover_protected, display_path
from .loading import loaders_by_extension
from .remote import KnownState, is_url, open_source, settings_for, source_items
from .sources import SourceItem, SourceSettings, sha256_bytes
from .worker import ParseWorker

Reason = tuple[str, str]


@dataclass
class Collected:
    """What ``ingest`` was asked to read: the sources, the prune scopes (see
    :func:`~.sources.in_scope`), the files ignored or failed during discovery, each with a reason,
    and the scopes a prune must keep (files that exist but could not be read this time).

    ``items`` of a network source (:mod:`.remote`) are listed lazily while they are ingested, so
    ``total`` is then ``None`` and the three lists grow as the listing goes on."""

    items: Iterable[SourceItem]
    scopes: list[str]
    ignored: list[Reason] = field(default_factory=list)
    failed: list[Reason] = field(default_factory=list)
    keep: list[str] = field(default_factory=list)
    total: int | None = None


@contextmanager
def collect(paths: Sequence[str | os.PathLike[str]], format: Literal["files", "beir"], config: IngestConfig,
            acl: tuple[str, ...] | None = None, sources: SourcesConfig | None = None,
            crawl: bool = False, known: Callable[[], Mapping[str, KnownState]] | None = None) -> Iterator[Collected]:
    """The sources under ``paths``; files are parsed by a :class:`ParseWorker` that lives as long
    as the context. Each source carries the access groups ``acl`` (when given), else those of
    the first ``ingest.acl`` rule matching a file's path relative to its folder (see :mod:`.acl`).
    A path that is a URL (``s3://...``, ``https://...``) is a network source (:mod:`.remote`)
    with the ``sources`` settings; ``crawl`` makes a web URL a crawl, not one page."""
    if not paths:
        raise ConfigError("No paths given to ingest; name files, folders or URLs (or list them in [sources] urls)")
    urls = [str(p) for p in paths if is_url(p)]
    local = [Path(p) for p in paths if not is_url(p)]
    if format == "beir":
        if urls:
            raise ConfigError(f"--format beir reads local BEIR folders, not {urls[0]!r}; copy the corpus locally")
        items = [item for p in local for item in beir_sources(p)]
        if acl is not None:
            items = [dataclasses.replace(item, acl=acl) for item in items]
        yield Collected(items, [f"{display_path(str(corpus_path(p).resolve()))}#" for p in local], total=len(items))
        return
    if format != "files":
        raise ConfigError(f"Unknown ingest format {format!r}; use 'files' or 'beir'")
    loaders = loaders_by_extension(config)
    found, skipped, keep = discover_protected(local, config, loaders.keys()) if local else ([], [], [])
    ignored = [(s.path, s.reason) for s in skipped if not s.failed]
    failed = [(s.path, s.reason) for s in skipped if s.failed]
    with ParseWorker(loaders, config) as worker, ExitStack() as stack:
        files: list[SourceItem] = []
        for f in found:
            try:
                groups = acl if acl is not None else rule_groups(config.acl, f.relative)
                files.append(_file_item(f, worker, groups))
            except OSError as exc:  # gone or changed since discovery
                failed.append((f.doc_id, exc.strerror or str(exc)))
        collected = Collected(files, [_scope(p) for p in local], ignored, failed, keep, total=len(files))
        if urls:
            settings = settings_for(config, frozenset(loaders), crawl, sources or SourcesConfig())
            tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="domainrag-fetch-")))
            states = known() if known is not None else None
            streams = [_network(url, settings, config, worker, acl, tmp, collected, stack, states) for url in urls]
            collected.items, collected.total = itertools.chain(files, *streams), None
        yield collected


def _network(url: str, settings: SourceSettings, config: IngestConfig, worker: ParseWorker,
             acl: tuple[str, ...] | None, tmp: Path, collected: Collected, stack: ExitStack,
             known: Mapping[str, KnownState] | None) -> Iterator[SourceItem]:
    """The items of the network source ``url``, lazily; what it does not list is recorded in
    ``collected``. Its first entry is listed now, so that a source that cannot be listed at all
    (no such bucket, no access, a missing package) raises before anything is ingested."""
    source = open_source(url, settings)
    collected.scopes.append(source.scope)
    listing = source_items(source, settings, config, worker, acl, tmp, known)
    stack.callback(listing.close)
    first = next(listing, None)

    def items() -> Iterator[SourceItem]:
        for listed in itertools.chain([first] if first is not None else [], listing):
            if isinstance(listed, SourceItem):
                yield listed
            elif listed.failed:
                collected.failed.append((listed.key, listed.reason))
                collected.keep.append(listed.key)
            else:
                collected.ignored.append((listed.key, listed.reason))
    return items()


def _scope(path: Path) -> str:
    """The prune scope of a path given to ingest (see :func:`~.sources.in_scope`)."""
    try:
        resolved = display_path(str(path.resolve()))
    except (OSError, RuntimeError):  # a symlink loop (reported by discovery)
        resolved = display_path(os.path.abspath(path))
    if path.is_dir():
        return resolved if resolved.endswith(os.sep) else resolved + os.sep
    return resolved


def _file_item(found: FoundFile, worker: ParseWorker, acl: tuple[str, ...] | None) -> SourceItem:
    stat = found.path.stat()
    return SourceItem(
        source=found.source,
        label=found.doc_id,
        size=stat.st_size,
        mtime_ns=stat.st_mtime_ns,
        fingerprint=lambda: sha256_bytes(found.path.read_bytes()),
        load=lambda: worker.load(found),
        acl=acl,
    )
