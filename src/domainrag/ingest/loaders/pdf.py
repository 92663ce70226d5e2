"""PDF (``.pdf``) via pypdf: text per page, pages recorded on every block.

pypdf flattens layout, so paragraphs are rebuilt from lines: a blank line always ends a
paragraph, and so does a line clearly shorter than the page's longest line (the last line of a
paragraph, a heading, a table row) or a line followed by a bullet. Encrypted files are opened
with the empty password when the author allowed it.

Scanned pages: a page whose text layer is (nearly) empty or garbled (:func:`needs_ocr`) is
rendered with pypdfium2 at ``ingest.ocr_dpi`` and read by the OCR engine (:mod:`..ocr`,
``domainrag[ocr]``; ``ingest.ocr``). Its blocks keep their page number; the document's metadata
lists the pages recognised (``ocr_pages``), the engine and its confidence. Without an engine,
such pages are listed as ``unread_pages`` (the parse report names the file), and a file with no
text at all is refused with the install hint.

Tables: with pdfplumber installed (``domainrag[pdf-tables]``) and ``ingest.pdf_tables`` "auto"
(the default) or "on", pages holding ruled tables are re-read by :mod:`.pdf_tables` and their
tables become ``table_row`` blocks (``cell | cell | cell``), the text around them paragraphs.
"""

from __future__ import annotations

import logging
import re
import struct
import warnings
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar

from pypdf import PasswordType, PdfReader
from pypdf.errors import DependencyError, PyPdfError

from ...config import IngestConfig
from ...errors import LoaderError, missing
from ...types import Document
from .. import ocr
from ..quality import garbled_share
from ..seams import BaseLoader, DocumentBuilder
from . import pdf_tables

#: A page with fewer letters and digits than this in its text layer is read by OCR.
MIN_LAYER_CHARS = 16
#: ... and so is one where more than this share of the characters are garbled.
MAX_LAYER_GARBLED = 0.3
#: A line shorter than this share of the page's longest line ends its paragraph.
SHORT_LINE_RATIO = 0.75
_BULLET = re.compile(r"^\s*(?:[•◦▪‣·\-–*]|\(?\d{1,3}[.)]|\(?[a-z][.)])\s+")
#: Values PDF producers (reportlab among them) write when the author left a field empty.
_PLACEHOLDERS = frozenset({"", "anonymous", "unspecified", "untitled", "unknown"})
_PARSE_ERRORS = (
    PyPdfError, ValueError, KeyError, IndexError, TypeError, AttributeError,
    AssertionError, RecursionError, struct.error, zlib.error,
)  # fmt: skip


class PdfLoader(BaseLoader):
    """Loads the text layer of a PDF page by page; blocks carry 1-based page numbers."""

    extensions: ClassVar[tuple[str, ...]] = (".pdf",)
    format: ClassVar[str] = "pdf"

    def load(self, path: Path, doc_id: str) -> list[Document]:
        with quiet_pypdf():
            reader = open_pdf(path)
            pages, failed = _page_texts(reader)
            info = _info(reader)
        pages, recognised = self._scanned(path, pages, failed, info)
        failed = [n for n in failed if n not in recognised]
        tables = self._tables(path) if not reader.is_encrypted else {}
        for number in recognised:
            tables.pop(number, None)
        builder = DocumentBuilder()
        for number, text in pages:
            builder.page = number
            for kind, value in tables.get(number, [("text", text)]):
                if kind == "table" and isinstance(value, list):
                    builder.separate()
                    for row in value:
                        builder.table_row(row)
                    builder.separate()
                else:
                    for para in page_paragraphs(str(value)):
                        builder.paragraph(para)
        if builder.empty:
            if info.get("unread_pages"):
                raise LoaderError(f"no text layer on its pages (a scanned PDF); {info['unread_reason']}")
            raise LoaderError("no extractable text (image-only or scanned PDF?); OCR it first")
        info["failed_pages"] = failed
        info["table_pages"] = sorted(tables)
        title = str(info.pop("title", "") or "")
        return [builder.build(doc_id, str(path), title=title, metadata=_clean(info))]

    def _scanned(self, path: Path, pages: list[tuple[int, str]], failed: list[int],
                 info: dict[str, Any]) -> tuple[list[tuple[int, str]], set[int]]:
        """``pages`` with the scanned ones (and those pypdf failed on) read by OCR where wanted,
        and the numbers of the pages OCR read; ``info`` gains the OCR metadata or the pages left
        unread."""
        garbled = {n for n, text in pages if needs_ocr(text) and not is_sparse(text)}
        sparse = {n for n, text in pages if is_sparse(text)}
        if not (garbled or sparse or failed) or self.config.ocr == "off":
            return pages, set()
        wanted = ocr.wanted(self.config)
        sparse = pages_with_images(path, sparse) if wanted or len(sparse) < len(pages) else sparse
        scanned = sorted(garbled | sparse | set(failed))
        if not scanned:
            return pages, set()
        if not wanted:
            info["unread_pages"] = scanned
            info["unread_reason"] = f"no OCR engine: {ocr.install_hint(self.config)}"
            return pages, set()
        todo, rest = scanned[: self.config.ocr_max_pages], scanned[self.config.ocr_max_pages :]
        results = list(ocr.recognise_pages(render_pages(path, todo, self.config), self.config))
        info.update(ocr.metadata(results, self.config))
        if rest:
            info["unread_pages"] = rest
            info["unread_reason"] = f"past ingest.ocr_max_pages={self.config.ocr_max_pages}"
        layer = dict(pages)
        better = {r.page: r.text for r in results if len(r.text.strip()) >= len(layer.get(r.page, "").strip())
                  or r.page in garbled}
        return sorted((layer | better).items()), set(better)

    def _tables(self, path: Path) -> dict[int, list[pdf_tables.Segment]]:
        """Segments of the pages with tables, when table extraction is on and possible."""
        setting = self.config.pdf_tables
        available = setting != "off" and pdf_tables.available()
        if setting == "off" or (setting == "auto" and not available):
            return {}
        if not available:
            raise missing("pdfplumber", "pdf-tables", "tables in PDFs (ingest.pdf_tables = \"on\")")
        try:
            return dict(pdf_tables.page_segments(path))
        except Exception as exc:  # noqa: BLE001 - pdfminer raises anything on damaged files
            if setting == "on":
                raise LoaderError(f"pdfplumber could not read the tables ({exc}); "
                                  "set ingest.pdf_tables = \"auto\" to fall back to text") from exc
            logging.getLogger(__name__).warning("%s: tables not extracted (%s); text only", path, exc)
            return {}


@contextmanager
def quiet_pypdf() -> Iterator[None]:
    """Silence pypdf's warnings about recoverable damage while a file is read."""
    logger = logging.getLogger("pypdf")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)


def open_pdf(path: Path) -> PdfReader:
    """A reader for ``path``, decrypted with the empty password if needed."""
    try:
        reader = PdfReader(path, strict=False)
        if reader.is_encrypted:
            _decrypt(reader)
        len(reader.pages)
    except LoaderError:
        raise
    except _PARSE_ERRORS as exc:
        raise _corrupt(exc) from exc
    return reader


def _decrypt(reader: PdfReader) -> None:
    try:
        result = reader.decrypt("")
    except DependencyError as exc:
        raise LoaderError(
            f"encrypted PDF needs the 'cryptography' package to decrypt ({exc}); "
            "pip install cryptography, or supply an unencrypted copy"
        ) from exc
    if result == PasswordType.NOT_DECRYPTED:
        raise LoaderError("encrypted PDF: it needs a password to open; supply an unencrypted copy")


def _corrupt(exc: BaseException) -> LoaderError:
    reason = str(exc) or type(exc).__name__
    return LoaderError(
        f"corrupt or unreadable PDF ({reason}); "
        "re-export it or repair it (e.g. qpdf in.pdf out.pdf)"
    )


def _page_texts(reader: PdfReader) -> tuple[list[tuple[int, str]], list[int]]:
    """(page number, text) of each readable page, and the numbers of pages that failed."""
    pages: list[tuple[int, str]] = []
    failed: list[int] = []
    first_error: BaseException | None = None
    for number, page in enumerate(reader.pages, start=1):
        try:
            pages.append((number, (page.extract_text() or "").replace("\x00", "")))
        except _PARSE_ERRORS as exc:
            failed.append(number)
            first_error = first_error or exc
    if first_error is not None and not any(text.strip() for _, text in pages):
        raise _corrupt(first_error) from first_error
    return pages, failed


def needs_ocr(text: str) -> bool:
    """Whether a page's text layer is missing or garbage: fewer than :data:`MIN_LAYER_CHARS`
    letters and digits (and the page holds an image: :func:`pages_with_images`), or more than
    :data:`MAX_LAYER_GARBLED` of it garbled."""
    return is_sparse(text) or garbled_share(text) > MAX_LAYER_GARBLED


def is_sparse(text: str) -> bool:
    return sum(c.isalnum() for c in text) < MIN_LAYER_CHARS


def pages_with_images(path: Path, numbers: set[int]) -> set[int]:
    """The pages among ``numbers`` that hold an image (a title page of typed text does not need
    OCR; a scan is an image). All of ``numbers`` when pypdfium2 cannot tell."""
    try:
        import pypdfium2 as pdfium
        import pypdfium2.raw as raw
    except ImportError:
        return numbers
    try:
        document = pdfium.PdfDocument(str(path))
    except pdfium.PdfiumError:
        return numbers
    try:
        return {n for n in numbers if next(iter(document[n - 1].get_objects(filter=[raw.FPDF_PAGEOBJ_IMAGE])), None)}
    finally:
        document.close()


def render_pages(path: Path, numbers: list[int], config: IngestConfig) -> Iterator[tuple[int, Any]]:
    """``(page number, PIL image)`` of the 1-based ``numbers`` rendered by pypdfium2 at
    ``ingest.ocr_dpi`` (scaled down to fit ``ingest.max_image_pixels``), one at a time."""
    try:
        import pypdfium2 as pdfium
    except ImportError as exc:
        raise missing("pypdfium2", "ocr", "Recognising scanned PDF pages") from exc
    try:
        document = pdfium.PdfDocument(str(path))
    except pdfium.PdfiumError as exc:
        raise _corrupt(exc) from exc
    try:
        for number in numbers:
            page = document[number - 1]
            width, height = page.get_size()
            scale = min(config.ocr_dpi / 72, (config.max_image_pixels / max(width * height, 1)) ** 0.5)
            bitmap = page.render(scale=scale, grayscale=True)
            yield number, bitmap.to_pil()
    finally:
        document.close()


def page_paragraphs(text: str) -> list[str]:
    """Rebuild paragraphs from a page's extracted lines (see the module docstring)."""
    lines = [line.rstrip() for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n")]
    longest = max((len(line.strip()) for line in lines), default=0)
    paragraphs: list[str] = []
    current: list[str] = []
    for i, line in enumerate(lines):
        if line.strip():
            current.append(line.strip())
        nxt = lines[i + 1] if i + 1 < len(lines) else ""
        if current and _ends_paragraph(line, nxt, longest):
            paragraphs.append("\n".join(current))
            current = []
    return paragraphs


def _ends_paragraph(line: str, nxt: str, longest: int) -> bool:
    if not line.strip() or not nxt.strip():
        return True
    return len(line.strip()) < SHORT_LINE_RATIO * longest or bool(_BULLET.match(nxt))


def _info(reader: PdfReader) -> dict[str, Any]:
    """Title, author and subject from the document information, page count."""
    try:
        meta = reader.metadata
        fields = (
            {"title": meta.title, "author": meta.author, "subject": meta.subject} if meta else {}
        )
    except _PARSE_ERRORS:
        fields = {}
    info: dict[str, Any] = {k: " ".join(str(v).split()) for k, v in fields.items() if v}
    info = {k: v for k, v in info.items() if v.lower() not in _PLACEHOLDERS}
    info["page_count"] = len(reader.pages)
    return info


def _clean(info: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in info.items() if v not in ("", None, [])}
