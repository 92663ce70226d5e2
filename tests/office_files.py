"""Real office files for the tests, written at test time by the libraries that make them:
spreadsheets by openpyxl, decks by python-pptx, e-mail by the standard library's ``email``
package, PDFs by reportlab, scanned pages rendered by :mod:`domainrag.testing.scans`.

An optional part that is missing skips the test, except in CI (``CI=true``), where it fails."""

from __future__ import annotations

import importlib
import os
import re
import zipfile
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest


def need(*modules: str) -> None:
    """Skip the test unless every module imports (fail instead under CI=true)."""
    for module in modules:
        try:
            importlib.import_module(module)
        except ImportError as exc:
            message = f"{module} is not installed ({exc}): pip install -e '.[dev]'"
            if os.environ.get("CI") == "true":
                pytest.fail(message)
            pytest.skip(message)


def need_tesseract() -> None:
    import shutil

    if shutil.which("tesseract") is None:
        message = "tesseract is not installed: apt-get install tesseract-ocr tesseract-ocr-eng tesseract-ocr-chi-sim"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)


def need_fonts(*languages: str) -> None:
    from domainrag.testing.scans import font_path

    for language in languages:
        if font_path(language) is None:
            message = f"no font for {language!r}: apt-get install fonts-dejavu-core fonts-noto-cjk"
            if os.environ.get("CI") == "true":
                pytest.fail(message)
            pytest.skip(message)


def make_xlsx(path: Path, sheets: dict[str, list[list[Any]]], merged: dict[str, list[str]] | None = None,
              cached: dict[str, str] | None = None) -> Path:
    """A workbook with ``sheets`` (name -> rows), ``merged`` ranges per sheet ("A5:D5"), and
    formulas' cached values: ``cached`` maps a formula's text (without "=") to the value Excel
    would have stored with it (openpyxl writes formulas without one)."""
    import openpyxl

    book = openpyxl.Workbook()
    book.remove(book.active)
    for name, rows in sheets.items():
        sheet = book.create_sheet(name)
        for row in rows:
            sheet.append(row)
        for cells in (merged or {}).get(name, []):
            sheet.merge_cells(cells)
    book.save(path)
    if cached:
        _store_cached_values(path, cached)
    return path


def _store_cached_values(path: Path, cached: dict[str, str]) -> None:
    with zipfile.ZipFile(path) as archive:
        parts = {info.filename: archive.read(info) for info in archive.infolist()}
    for name, data in parts.items():
        if name.startswith("xl/worksheets/sheet"):
            text = data.decode()
            for formula, value in cached.items():
                text = text.replace(f"<f>{formula}</f><v></v>", f"<f>{formula}</f><v>{value}</v>")
                text = text.replace(f"<f>{formula}</f><v />", f"<f>{formula}</f><v>{value}</v>")
            parts[name] = text.encode()
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in parts.items():
            archive.writestr(name, data)


def make_pptx(path: Path, slides: list[dict[str, Any]]) -> Path:
    """A deck: each slide ``{"title", "bullets": [(text, level)], "table": rows, "notes"}``."""
    from pptx import Presentation
    from pptx.util import Inches

    deck = Presentation()
    for spec in slides:
        layout = deck.slide_layouts[1] if spec.get("bullets") else deck.slide_layouts[5]
        if not spec.get("title"):
            layout = deck.slide_layouts[6]
        slide = deck.slides.add_slide(layout)
        if spec.get("title"):
            slide.shapes.title.text = spec["title"]
        if spec.get("bullets"):
            frame = slide.placeholders[1].text_frame
            for i, (text, level) in enumerate(spec["bullets"]):
                paragraph = frame.paragraphs[0] if i == 0 else frame.add_paragraph()
                paragraph.text, paragraph.level = text, level
        if spec.get("text"):
            slide.shapes.add_textbox(Inches(1), Inches(1.5), Inches(6), Inches(1)).text_frame.text = spec["text"]
        if spec.get("table"):
            rows = spec["table"]
            shape = slide.shapes.add_table(len(rows), len(rows[0]), Inches(1), Inches(3), Inches(7), Inches(2))
            for r, row in enumerate(rows):
                for c, value in enumerate(row):
                    shape.table.cell(r, c).text = str(value)
        if spec.get("notes"):
            slide.notes_slide.notes_text_frame.text = spec["notes"]
    deck.save(path)
    return path


def make_message(subject: str, body: str, html: str | None = None, sender: str = "Ann Lee <ann@example.com>",
                 to: str = "team@example.com", attachments: list[tuple[str, bytes]] | None = None,
                 forwarded: EmailMessage | None = None) -> EmailMessage:
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = sender, to, subject
    message["Date"] = "Mon, 07 Dec 2026 09:30:00 +0000"
    message["Message-ID"] = f"<{re.sub(r'[^a-z]', '', subject.lower())}@example.com>"
    message.set_content(body)
    if html is not None:
        message.add_alternative(html, subtype="html")
    for name, data in attachments or []:
        maintype, subtype = _mime(name)
        message.add_attachment(data, maintype=maintype, subtype=subtype, filename=name)
    if forwarded is not None:
        message.add_attachment(forwarded)
    return message


def _mime(name: str) -> tuple[str, str]:
    import mimetypes

    kind = mimetypes.guess_type(name)[0] or "application/octet-stream"
    maintype, _, subtype = kind.partition("/")
    return maintype, subtype


def make_pdf(path: Path, paragraphs: list[str]) -> Path:
    """A text PDF (one page per paragraph) written by reportlab."""
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfgen import canvas

    pdf = canvas.Canvas(str(path), pagesize=A4)
    for text in paragraphs:
        pdf.drawString(72, 760, text)
        pdf.showPage()
    pdf.save()
    return path


def scanned_pdf(path: Path, pages: list[str], language: str = "en", seed: int = 0) -> tuple[Path, list[str]]:
    """An image-only PDF of ``pages`` rendered and degraded as a scan; the text drawn per page."""
    from domainrag.testing.scans import degrade, image_pdf, render_page

    images, drawn = [], []
    for i, text in enumerate(pages):
        image, text_drawn = render_page(text, language)
        images.append(degrade(image, seed=seed + i))
        drawn.append(text_drawn)
    image_pdf(images, path)
    return path, drawn
