"""Turn the paths given to ``ingest`` into lazily loaded sources."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from ..config import IngestConfig
from ..errors import ConfigError
from .beir import beir_sources, corpus_path
from .discover import FoundFile, discover
from .loading import load_file, loaders_by_extension
from .sources import SourceItem, sha256_bytes

Reason = tuple[str, str]


def collect(
    paths: Sequence[Path], format: Literal["files", "beir"], config: IngestConfig
) -> tuple[list[SourceItem], list[str], list[Reason], list[Reason]]:
    """Sources to ingest, prune scopes, ignored files and failed files (each with a reason)."""
    if not paths:
        raise ConfigError("No paths given to ingest; name files or folders")
    if format == "beir":
        items = [item for p in paths for item in beir_sources(p)]
        return items, [f"{corpus_path(p).resolve()}#" for p in paths], [], []
    if format != "files":
        raise ConfigError(f"Unknown ingest format {format!r}; use 'files' or 'beir'")
    loaders = loaders_by_extension(config)
    found, skipped = discover(paths, config, loaders.keys())
    scopes = [str(p.resolve()) + (os.sep if p.is_dir() else "") for p in paths]
    ignored = [(s.path, s.reason) for s in skipped if not s.failed]
    failed = [(s.path, s.reason) for s in skipped if s.failed]
    return [_file_item(f, loaders) for f in found], scopes, ignored, failed


def _file_item(found: FoundFile, loaders: dict) -> SourceItem:
    stat = found.path.stat()
    return SourceItem(
        source=str(found.path),
        label=found.doc_id,
        size=stat.st_size,
        mtime_ns=stat.st_mtime_ns,
        fingerprint=lambda: sha256_bytes(found.path.read_bytes()),
        load=lambda: load_file(found, loaders),
    )
