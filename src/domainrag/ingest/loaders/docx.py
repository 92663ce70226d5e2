"""Word documents (``.docx``) via python-docx.

The body is read in document order, paragraphs and tables interleaved. Paragraph styles
``Title`` and ``Heading N`` become headings (Title is level 1), list styles and numbered
paragraphs become list items, and each table row becomes one block (cells merged across columns
are counted once). Core properties (title, author, subject, dates) go to the metadata.

Before python-docx sees the file, the package is checked (:func:`.ooxml.check_package`: zip
and XML bombs, external entities).
"""

from __future__ import annotations

import re
import zipfile
from pathlib import Path
from typing import Any, ClassVar

import docx
from docx.document import Document as DocxDocument
from docx.opc.exceptions import OpcError
from docx.table import Table
from docx.text.paragraph import Paragraph

from ...types import Document
from ..seams import BaseLoader, DocumentBuilder
from .ooxml import check_package, corrupt

_HEADING_STYLE = re.compile(r"^heading\s*(\d)$", re.IGNORECASE)
# lxml's XMLSyntaxError is a SyntaxError; missing package parts raise KeyError.
_OPEN_ERRORS = (OpcError, zipfile.BadZipFile, SyntaxError, KeyError, ValueError, OSError)


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
        raise corrupt(path, exc) from exc


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
