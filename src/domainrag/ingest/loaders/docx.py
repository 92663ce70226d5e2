"""Word documents (``.docx``) via python-docx.

The body is read in document order, paragraphs and tables interleaved. Paragraph styles
``Title`` and ``Heading N`` become headings (Title is level 1), list styles and numbered
paragraphs become list items, and each table row becomes one block (cells merged across columns
are counted once). Core properties (title, author, subject, dates) go to the metadata.

Before python-docx sees the file, the package is checked (:func:`check_package`): at most
:data:`MAX_ENTRIES` entries, at most ``ingest.max_unpacked_mb`` unpacked (declared sizes, and the
XML parts' actual sizes as they are read), no entry over 1 MB packed more densely than
``ingest.max_compression_ratio``, and no XML part declaring a DTD or entities — Word never writes
one, and that is how XML bombs and external entities come in.
"""

from __future__ import annotations

import re
import zipfile
import zlib
from pathlib import Path
from typing import Any, ClassVar

import docx
from docx.document import Document as DocxDocument
from docx.opc.exceptions import OpcError
from docx.table import Table
from docx.text.paragraph import Paragraph

from ...config import IngestConfig
from ...errors import LoaderError
from ...types import Document
from ..seams import BaseLoader, DocumentBuilder

_HEADING_STYLE = re.compile(r"^heading\s*(\d)$", re.IGNORECASE)
# lxml's XMLSyntaxError is a SyntaxError; missing package parts raise KeyError.
_OPEN_ERRORS = (OpcError, zipfile.BadZipFile, SyntaxError, KeyError, ValueError, OSError)
MAX_ENTRIES = 10_000
_MB = 1024 * 1024
_READ = _MB
# "<!DOCTYPE" or "<!ENTITY" in UTF-8 and in both UTF-16 byte orders.
_DTD = re.compile(b"|".join(
    re.escape(marker.encode(encoding))
    for marker in ("<!DOCTYPE", "<!ENTITY") for encoding in ("utf-8", "utf-16-le", "utf-16-be")
))
_XML_SUFFIXES = (".xml", ".rels", ".vml")


class DocxLoader(BaseLoader):
    """Loads a Word document's body: headings, paragraphs, list items and table rows."""

    extensions: ClassVar[tuple[str, ...]] = (".docx",)
    format: ClassVar[str] = "docx"

    def load(self, path: Path, doc_id: str) -> list[Document]:
        check_package(path, self.config)
        document = open_docx(path)
        builder = DocumentBuilder()
        for item in document.iter_inner_content():
            if isinstance(item, Paragraph):
                _add_paragraph(builder, item)
            elif isinstance(item, Table):
                _add_table(builder, item)
        meta = core_properties(document)
        title = str(meta.pop("title", ""))
        return [builder.build(doc_id, str(path), title=title, metadata=meta)]


def open_docx(path: Path) -> DocxDocument:
    """The python-docx document at ``path``; :class:`LoaderError` if it is not a valid .docx."""
    try:
        return docx.Document(str(path))
    except _OPEN_ERRORS as exc:
        raise LoaderError(
            f"corrupt or not a .docx file ({type(exc).__name__}: {exc}); "
            "open and re-save it in Word or LibreOffice (legacy .doc files must be converted)"
        ) from exc


def check_package(path: Path, config: IngestConfig) -> None:
    """Refuse a zip bomb, an XML bomb or external entities before parsing (module docstring)."""
    try:
        with zipfile.ZipFile(path) as archive:
            entries = archive.infolist()
            _check_sizes(entries, config)
            limit = int(config.max_unpacked_mb * _MB)
            for entry in entries:
                if entry.filename.lower().endswith(_XML_SUFFIXES):
                    limit -= _scan_xml(archive, entry, limit, config)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError, RuntimeError,
            NotImplementedError, zlib.error) as exc:
        raise LoaderError(
            f"corrupt or not a .docx file ({type(exc).__name__}: {exc}); "
            "open and re-save it in Word or LibreOffice (legacy .doc files must be converted)"
        ) from exc


def _check_sizes(entries: list[zipfile.ZipInfo], config: IngestConfig) -> None:
    if len(entries) > MAX_ENTRIES:
        raise LoaderError(f"the .docx package holds {len(entries):,} entries (more than {MAX_ENTRIES:,}); "
                          "a zip bomb or not a Word document")
    unpacked = sum(e.file_size for e in entries)
    if unpacked > config.max_unpacked_mb * _MB:
        raise LoaderError(_too_big(unpacked, config))
    for entry in entries:
        ratio = entry.file_size / max(entry.compress_size, 1)
        if entry.file_size > _MB and ratio > config.max_compression_ratio:
            raise LoaderError(
                f"{entry.filename} unpacks {ratio:,.0f} times its packed size "
                f"(over ingest.max_compression_ratio={config.max_compression_ratio:g}): a zip bomb? "
                "Raise the limit to include this file"
            )


def _scan_xml(archive: zipfile.ZipFile, entry: zipfile.ZipInfo, limit: int, config: IngestConfig) -> int:
    """The actual unpacked size of an XML part; :class:`LoaderError` if it declares a DTD or
    entities, or if the XML parts unpack to more than ``limit`` bytes."""
    size = 0
    tail = b""
    with archive.open(entry) as part:
        while piece := part.read(_READ):
            size += len(piece)
            if size > limit:
                raise LoaderError(_too_big(size, config))
            if _DTD.search(tail + piece):
                raise LoaderError(
                    f"{entry.filename} declares a DTD or entities (<!DOCTYPE/<!ENTITY), which Word never "
                    "writes: an XML bomb or external-entity attack; re-save the file in Word to clean it"
                )
            tail = piece[-32:]
    return size


def _too_big(size: int, config: IngestConfig) -> str:
    return (f"the .docx package unpacks to more than ingest.max_unpacked_mb={config.max_unpacked_mb:g} MB "
            f"({size / _MB:,.1f} MB); a zip bomb? Raise the limit to include this file")


def heading_level(paragraph: Paragraph) -> int | None:
    """1-9 for ``Title`` / ``Heading N`` paragraphs, else None."""
    name = _style_name(paragraph)
    if name.lower() == "title":
        return 1
    match = _HEADING_STYLE.match(name)
    return int(match.group(1)) if match else None


def is_list_item(paragraph: Paragraph) -> bool:
    """True for list styles (``List Bullet``, ``List Number 2``...) and numbered paragraphs."""
    if _style_name(paragraph).lower().startswith("list"):
        return True
    ppr = paragraph._p.pPr
    return ppr is not None and ppr.numPr is not None


def _style_name(paragraph: Paragraph) -> str:
    try:
        style = paragraph.style
    except (KeyError, ValueError):
        return ""
    return (style.name or "") if style is not None else ""


def _add_paragraph(builder: DocumentBuilder, paragraph: Paragraph) -> None:
    text = paragraph.text
    level = heading_level(paragraph)
    if level is not None:
        builder.heading(text, level)
    elif is_list_item(paragraph):
        builder.list_item(text)
    else:
        builder.paragraph(text)


def _add_table(builder: DocumentBuilder, table: Table) -> None:
    for row in table.rows:
        cells: list[str] = []
        seen: list[Any] = []
        for cell in row.cells:
            if any(cell._tc is tc for tc in seen):
                continue
            seen.append(cell._tc)
            cells.append(cell.text)
        builder.table_row(cells)
    builder.separate()


def core_properties(document: DocxDocument) -> dict[str, Any]:
    """Non-empty title, author, subject, keywords, created and modified (ISO 8601)."""
    props = document.core_properties
    fields = {
        "title": props.title,
        "author": props.author,
        "subject": props.subject,
        "keywords": props.keywords,
        "created": props.created.isoformat() if props.created else None,
        "modified": props.modified.isoformat() if props.modified else None,
    }
    return {k: " ".join(str(v).split()) for k, v in fields.items() if v}
