"""Checks on zip packages (Office Open XML: ``.docx``, ``.xlsx``, ``.pptx``; OpenDocument ``.ods``)
before any parser reads them.

:func:`check_package` refuses a zip bomb, an XML bomb or external entities: at most
:data:`MAX_ENTRIES` entries, at most ``ingest.max_unpacked_mb`` unpacked (declared sizes, and the
XML parts' actual sizes as they are read), no entry over 1 MB packed more densely than
``ingest.max_compression_ratio``, and no XML part declaring a DTD or entities — Office never
writes one, and that is how XML bombs and external entities come in.
"""

from __future__ import annotations

import re
import zipfile
import zlib
from pathlib import Path

from ...config import IngestConfig
from ...errors import LoaderError

MAX_ENTRIES = 10_000
_MB = 1024 * 1024
_READ = _MB
# "<!DOCTYPE" or "<!ENTITY" in UTF-8 and in both UTF-16 byte orders.
_DTD = re.compile(b"|".join(
    re.escape(marker.encode(encoding))
    for marker in ("<!DOCTYPE", "<!ENTITY") for encoding in ("utf-8", "utf-16-le", "utf-16-be")
))
_XML_SUFFIXES = (".xml", ".rels", ".vml")
#: How to mend a damaged file of each kind, for the messages.
FIXES = {
    ".docx": "open and re-save it in Word or LibreOffice (legacy .doc files must be converted)",
    ".xlsx": "open and re-save it in Excel or LibreOffice",
    ".xlsm": "open and re-save it in Excel or LibreOffice",
    ".ods": "open and re-save it in LibreOffice",
    ".pptx": "open and re-save it in PowerPoint or LibreOffice (legacy .ppt files must be converted)",
}


def corrupt(path: Path, exc: BaseException) -> LoaderError:
    """The error for a package that cannot be read as its kind."""
    kind = path.suffix.lower()
    fix = FIXES.get(kind, "re-save it in the application that made it")
    return LoaderError(f"corrupt or not a {kind} file ({type(exc).__name__}: {exc}); {fix}")


def check_package(path: Path, config: IngestConfig) -> None:
    """Refuse a zip bomb, an XML bomb or external entities before parsing (module docstring)."""
    try:
        with zipfile.ZipFile(path) as archive:
            entries = archive.infolist()
            _check_sizes(path, entries, config)
            limit = int(config.max_unpacked_mb * _MB)
            for entry in entries:
                if entry.filename.lower().endswith(_XML_SUFFIXES):
                    limit -= _scan_xml(path, archive, entry, limit, config)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError, RuntimeError,
            NotImplementedError, zlib.error) as exc:
        raise corrupt(path, exc) from exc


def _check_sizes(path: Path, entries: list[zipfile.ZipInfo], config: IngestConfig) -> None:
    kind = path.suffix.lower()
    if len(entries) > MAX_ENTRIES:
        raise LoaderError(f"the {kind} package holds {len(entries):,} entries (more than {MAX_ENTRIES:,}); "
                          f"a zip bomb or not a {kind} file")
    unpacked = sum(e.file_size for e in entries)
    if unpacked > config.max_unpacked_mb * _MB:
        raise LoaderError(_too_big(kind, unpacked, config))
    for entry in entries:
        ratio = entry.file_size / max(entry.compress_size, 1)
        if entry.file_size > _MB and ratio > config.max_compression_ratio:
            raise LoaderError(
                f"{entry.filename} unpacks {ratio:,.0f} times its packed size "
                f"(over ingest.max_compression_ratio={config.max_compression_ratio:g}): a zip bomb? "
                "Raise the limit to include this file"
            )


def _scan_xml(path: Path, archive: zipfile.ZipFile, entry: zipfile.ZipInfo, limit: int, config: IngestConfig) -> int:
    """The actual unpacked size of an XML part; :class:`LoaderError` if it declares a DTD or
    entities, or if the XML parts unpack to more than ``limit`` bytes."""
    size = 0
    tail = b""
    with archive.open(entry) as part:
        while piece := part.read(_READ):
            size += len(piece)
            if size > limit:
                raise LoaderError(_too_big(path.suffix.lower(), size, config))
            if _DTD.search(tail + piece):
                raise LoaderError(
                    f"{entry.filename} declares a DTD or entities (<!DOCTYPE/<!ENTITY), which Office never "
                    "writes: an XML bomb or external-entity attack; re-save the file to clean it"
                )
            tail = piece[-32:]
    return size


def _too_big(kind: str, size: int, config: IngestConfig) -> str:
    return (f"the {kind} package unpacks to more than ingest.max_unpacked_mb={config.max_unpacked_mb:g} MB "
            f"({size / _MB:,.1f} MB); a zip bomb? Raise the limit to include this file")
