"""Turn the paths given to ``ingest`` into lazily loaded sources."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from ..config import IngestConfig
from ..errors import ConfigError
from .acl import rule_groups
from .beir_corpus import beir_sources, corpus_path
from .discover import FoundFile, discover_protected, display_path
from .loading import loaders_by_extension
from .sources import SourceItem, sha256_bytes
from .worker import ParseWorker

Reason = tuple[str, str]


@dataclass
class Collected:
    """What ``ingest`` was asked to read: the sources, the prune scopes (see
    :func:`~.sources.in_scope`), the files ignored or failed during discovery, each with a reason,
    and the scopes a prune must keep (files that exist but could not be read this time)."""

    items: list[SourceItem]
    scopes: list[str]
    ignored: list[Reason] = field(default_factory=list)
    failed: list[Reason] = field(default_factory=list)
    keep: list[str] = field(default_factory=list)


@contextmanager
def collect(paths: Sequence[Path], format: Literal["files", "beir"], config: IngestConfig,
            acl: tuple[str, ...] | None = None) -> Iterator[Collected]:
    """The sources under ``paths``; files are parsed by a :class:`ParseWorker` that lives as long
    as the context. Each source carries the access groups ``acl`` (when given), else those of
    the first ``ingest.acl`` rule matching a file's path relative to its folder (see :mod:`.acl`)."""
    if not paths:
        raise ConfigError("No paths given to ingest; name files or folders")
    if format == "beir":
        items = [item for p in paths for item in beir_sources(p)]
        if acl is not None:
            items = [dataclasses.replace(item, acl=acl) for item in items]
        yield Collected(items, [f"{display_path(str(corpus_path(p).resolve()))}#" for p in paths])
        return
    if format != "files":
        raise ConfigError(f"Unknown ingest format {format!r}; use 'files' or 'beir'")
    loaders = loaders_by_extension(config)
    found, skipped, keep = discover_protected(paths, config, loaders.keys())
    ignored = [(s.path, s.reason) for s in skipped if not s.failed]
    failed = [(s.path, s.reason) for s in skipped if s.failed]
    with ParseWorker(loaders, config) as worker:
        sources: list[SourceItem] = []
        for f in found:
            try:
                groups = acl if acl is not None else rule_groups(config.acl, f.relative)
                sources.append(_file_item(f, worker, groups))
            except OSError as exc:  # gone or changed since discovery
                failed.append((f.doc_id, exc.strerror or str(exc)))
        yield Collected(sources, [_scope(p) for p in paths], ignored, failed, keep)


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
