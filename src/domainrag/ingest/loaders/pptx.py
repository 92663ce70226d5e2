"""Slide decks (``.pptx``) via python-pptx: one section per slide, page = slide number.

Each slide starts with a heading — its title, else ``Slide N`` — after a page break, so a chunk
never runs from one slide into the next (one span per slide, more for a long one), and every
block of the slide carries the slide's number as its page (a citation says ``p.N`` for slide N).
Then, in the slide's shape order (groups opened): text frames as paragraphs (indented paragraphs
as list items), tables one row per block, and last the speaker notes (``Notes: …``). Core
properties (title, author, subject) go to the metadata; ``slide_count`` too.

The package is checked before python-pptx reads it (:func:`.ooxml.check_package`: zip and XML
bombs, external entities).
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, ClassVar

from ...errors import missing
from ...types import Document
from ..seams import BaseLoader, DocumentBuilder
from .ooxml import check_package, corrupt


class PptxLoader(BaseLoader):
    """Loads a PowerPoint deck's slides: titles, text, tables and speaker notes."""

    extensions: ClassVar[tuple[str, ...]] = (".pptx",)
    format: ClassVar[str] = "pptx"

    def load(self, path: Path, doc_id: str) -> list[Document]:
        try:
            import pptx
            from pptx.exc import PackageNotFoundError
        except ImportError as exc:
            raise missing("python-pptx", "office", "Reading slide decks (.pptx)") from exc
        check_package(path, self.config)
        try:
            deck = pptx.Presentation(str(path))
        except (PackageNotFoundError, zipfile.BadZipFile, KeyError, ValueError, SyntaxError, OSError) as exc:
            raise corrupt(path, exc) from exc
        builder = DocumentBuilder()
        count = 0
        for number, slide in enumerate(deck.slides, start=1):
            count = number
            builder.page_break()
            builder.page = number
            _add_slide(builder, slide, number)
        meta = _properties(deck)
        meta["slide_count"] = count
        title = str(meta.pop("title", ""))
        return [builder.build(doc_id, str(path), title=title, metadata=meta)]


def _add_slide(builder: DocumentBuilder, slide: Any, number: int) -> None:
    title_shape = slide.shapes.title
    has_title = title_shape is not None and title_shape.has_text_frame
    title = " ".join(title_shape.text_frame.text.split()) if has_title else ""
    builder.heading(title or f"Slide {number}", level=1)
    for shape in _shapes(slide.shapes):
        if title_shape is not None and shape.shape_id == title_shape.shape_id:
            continue
        if getattr(shape, "has_table", False) and shape.has_table:
            builder.separate()
            for row in shape.table.rows:
                builder.table_row(_row_cells(row))
            builder.separate()
        elif getattr(shape, "has_text_frame", False) and shape.has_text_frame:
            _add_text(builder, shape.text_frame.paragraphs)
    if slide.has_notes_slide:
        notes = slide.notes_slide.notes_text_frame
        text = notes.text.strip() if notes is not None else ""
        if text:
            builder.paragraph(f"Notes: {text}")


def _shapes(shapes: Iterable[Any]) -> Iterator[Any]:
    """Shapes in order, groups opened."""
    for shape in shapes:
        if shape.shape_type is not None and int(shape.shape_type) == 6:   # MSO_SHAPE_TYPE.GROUP
            yield from _shapes(shape.shapes)
        else:
            yield shape


def _add_text(builder: DocumentBuilder, paragraphs: Iterable[Any]) -> None:
    for paragraph in paragraphs:
        text = "".join(run.text for run in paragraph.runs) or paragraph.text
        if paragraph.level > 0:
            builder.list_item(text)
        else:
            builder.paragraph(text)


def _row_cells(row: Any) -> list[str]:
    """A table row's cells, a merged range's spanned cells left out (counted once)."""
    return [cell.text for cell in row.cells if not cell.is_spanned]


def _properties(deck: Any) -> dict[str, Any]:
    props = deck.core_properties
    fields = {"title": props.title, "author": props.author, "subject": props.subject}
    return {k: " ".join(str(v).split()) for k, v in fields.items() if v}
