"""Reading found files into documents through the registered loaders.

This is the one seam where a loader's unexpected exceptions are translated into
:class:`~domainrag.errors.LoaderError` (``MemoryError`` passes: the parse worker reports it as
the memory budget), where every document gets its ``source`` and the common metadata fields
``path`` (the doc id path), ``format`` and ``title``, and where text is made storable
(:func:`~domainrag.ingest.seams.clean_document`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from .. import registry
from ..config import IngestConfig
from ..errors import DomainragError, LoaderError
from ..types import Document
from .discover import FoundFile
from .seams import Loader, clean_document

GROUP = "domainrag.loaders"


def loaders_by_extension(config: IngestConfig) -> dict[str, Loader]:
    """One instance of every registered loader, keyed by each lower-case suffix it claims.

    Loaders are taken in name order, so when two claim a suffix the later name wins.
    """
    mapping: dict[str, Loader] = {}
    for name in registry.names(GROUP):
        loader = registry.get(GROUP, name)(config)
        for extension in loader.extensions:
            mapping[extension.lower()] = loader
    return mapping


def load_file(found: FoundFile, loaders: Mapping[str, Loader]) -> list[Document]:
    """The non-empty documents of ``found``; :class:`LoaderError` with the reason if none."""
    suffix = found.path.suffix.lower()
    loader = loaders.get(suffix)
    if loader is None:
        known = ", ".join(sorted(loaders)) or "none"
        raise LoaderError(f"unsupported file type {suffix!r}; supported types: {known}")
    try:
        documents = loader.load(found.path, found.doc_id)
    except (DomainragError, MemoryError):
        raise
    except RecursionError as exc:
        raise LoaderError("nested too deeply to read (RecursionError); flatten or exclude the file") from exc
    except Exception as exc:
        raise LoaderError(f"{type(exc).__name__}: {exc}") from exc
    documents = [d for d in documents if d.text.strip()]
    if not documents:
        raise LoaderError("no text found")
    fmt = str(getattr(loader, "format", "") or suffix.lstrip("."))
    return [_finish(d, found, fmt) for d in documents]


def _finish(document: Document, found: FoundFile, fmt: str) -> Document:
    """``document`` with its source, a title (the file name stem if none) and common metadata."""
    title = document.title or found.path.stem
    metadata = {**document.metadata, "path": found.doc_id, "format": fmt, "title": title}
    return clean_document(dataclasses.replace(document, source=found.source, title=title, metadata=metadata))
