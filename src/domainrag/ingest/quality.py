"""Parse quality: what a file's documents say about how well it was read.

:func:`assess` looks at the documents one source produced and returns :class:`ParseNote` s —
warnings for a file that parsed suspiciously, and plain notes for facts worth telling (pages
recognised by OCR). ``domainrag ingest`` prints them at the end, the catalog keeps them with the
source (``Store.parse_notes``), and ``domainrag status --parse``, ``GET /v1/collections/{c}/parse``
and the web UI's documents view list them.

Warnings (``code``):

- ``empty``: almost no text (fewer than :data:`MIN_CHARS` characters in all);
- ``sparse``: a paged format with fewer than :data:`MIN_CHARS_PER_PAGE` characters per page on
  average (images or scans that the text layer misses);
- ``mojibake``: more than :data:`MAX_GARBLED_SHARE` of the characters look garbled (U+FFFD,
  private-use or control characters, ``(cid:12)`` glyph codes, UTF-8 read as Latin-1 such as
  ``Ã©``);
- ``ocr_confidence``: pages OCR read with a confidence below ``ingest.ocr_min_confidence``;
- ``unread_pages``: pages with no text layer that were not recognised (no OCR engine, or past
  ``ingest.ocr_max_pages``);
- ``failed_pages``: pages the PDF reader could not read;
- ``flattened_tables``: PDF pages whose text has the shape of a table (lines of several numbers)
  but no table rows were recovered (``domainrag[pdf-tables]`` reads ruled tables as cells);
- ``truncated``: rows left out of a sheet past ``ingest.max_sheet_rows``;
- ``failed_attachment``: an e-mail attachment that could not be read (the message was).

Notes: ``ocr`` ("N pages recognised by OCR").
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..types import Document

MIN_CHARS = 20
MIN_CHARS_PER_PAGE = 80
MAX_GARBLED_SHARE = 0.02
#: A page with at least this many numeric lines and no table rows has flattened tables.
MIN_NUMERIC_LINES = 4
_GARBLED = re.compile(
    r"\ufffd|[\ue000-\uf8ff]|[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]"   # replacement, private use, controls
    r"|\(cid:\d+\)"                                                  # pdfminer's unmapped glyphs
    r"|[ÃÂ][\u0080-\u00bf]|â€[™œ\u009d“”˜¦¢]"                        # UTF-8 read as Latin-1/cp1252
)
_NUMBER = re.compile(r"^[(\-–$€£¥]?\d[\d,.]*%?\)?$")


@dataclass(frozen=True)
class ParseNote:
    """One finding about a file: a short ``code``, a sentence for people, and whether it is a
    ``warning`` (the file parsed suspiciously) or a plain note."""

    code: str
    message: str
    warning: bool = True

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "warning": self.warning}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ParseNote:
        return cls(str(data.get("code", "")), str(data.get("message", "")), bool(data.get("warning", True)))


def garbled_share(text: str) -> float:
    """The share of ``text``'s non-space characters that look garbled (see the module docstring)."""
    visible = len(text) - sum(c.isspace() for c in text)
    if not visible:
        return 0.0
    return sum(len(m.group()) for m in _GARBLED.finditer(text)) / visible


def pages_list(pages: Sequence[int], limit: int = 8) -> str:
    """``"3, 7, 9"``, or the first ``limit`` and how many more."""
    shown = ", ".join(str(p) for p in pages[:limit])
    return shown + (f" and {len(pages) - limit} more" if len(pages) > limit else "")


def assess(documents: Sequence[Document]) -> list[ParseNote]:
    """The notes on one source's documents (module docstring), warnings first."""
    notes: list[ParseNote] = []
    text = "".join(d.text for d in documents)
    chars = len(text.strip())
    if chars < MIN_CHARS:
        notes.append(ParseNote("empty", f"almost no text ({chars} characters)"))
    pages = sum(int(d.metadata.get("page_count") or 0) for d in documents)
    if pages and chars >= MIN_CHARS and chars / pages < MIN_CHARS_PER_PAGE:
        notes.append(ParseNote("sparse", f"{chars / pages:.0f} characters per page on average over {pages} "
                                         "pages: images or scans that the text layer misses?"))
    share = garbled_share(text)
    if share > MAX_GARBLED_SHARE:
        notes.append(ParseNote("mojibake", f"{share:.0%} of the characters look garbled (mojibake, "
                                           "or a font without a text encoding)"))
    for doc in documents:
        notes += _metadata_notes(doc.metadata)
        if doc.metadata.get("format") == "pdf" or "page_count" in doc.metadata:
            flat = flattened_pages(doc)
            if flat:
                notes.append(ParseNote("flattened_tables", f"tables flattened to text on pages {pages_list(flat)}; "
                                       "install domainrag[pdf-tables] to read ruled tables as rows of cells"))
    return sorted(notes, key=lambda n: not n.warning)


def _metadata_notes(meta: Mapping[str, Any]) -> list[ParseNote]:
    """Notes from what loaders recorded: OCR, unread, failed and truncated parts."""
    notes = []
    ocr = list(meta.get("ocr_pages") or [])
    if ocr:
        notes.append(ParseNote("ocr", f"{len(ocr)} page{'s' if len(ocr) != 1 else ''} recognised by OCR "
                                      f"({meta.get('ocr_engine', 'ocr')}, mean confidence "
                                      f"{float(meta.get('ocr_confidence', 0)):.2f})", warning=False))
    low = list(meta.get("ocr_low_pages") or [])
    if low:
        notes.append(ParseNote("ocr_confidence", f"OCR confidence below {float(meta.get('ocr_min_confidence', 0)):.2f} "
                                                 f"on pages {pages_list(low)}: check the scan's quality"))
    unread = list(meta.get("unread_pages") or [])
    if unread:
        why = str(meta.get("unread_reason") or "no OCR engine")
        notes.append(ParseNote("unread_pages", f"pages {pages_list(unread)} have no text layer and were not "
                                               f"recognised ({why})"))
    failed = list(meta.get("failed_pages") or [])
    if failed:
        notes.append(ParseNote("failed_pages", f"pages {pages_list(failed)} could not be read"))
    for item in list(meta.get("failed_attachments") or []):
        notes.append(ParseNote("failed_attachment", f"attachment {item}"))
    truncated = meta.get("truncated_rows")
    if truncated:
        notes.append(ParseNote("truncated", f"{int(truncated):,} rows past ingest.max_sheet_rows left out"))
    return notes


def flattened_pages(document: Document) -> list[int]:
    """Pages of ``document`` with at least :data:`MIN_NUMERIC_LINES` lines of three or more
    numbers outside table rows, and no table rows."""
    numeric: dict[int, int] = {}
    tables: set[int] = set()
    for block in document.blocks:
        if block.page is None:
            continue
        if block.kind == "table_row":
            tables.add(block.page)
            continue
        for line in document.text[block.start:block.end].split("\n"):
            tokens = line.split()
            numbers = sum(bool(_NUMBER.match(t)) for t in tokens)
            if numbers >= 3 and numbers * 2 >= len(tokens):
                numeric[block.page] = numeric.get(block.page, 0) + 1
    return sorted(p for p, n in numeric.items() if n >= MIN_NUMERIC_LINES and p not in tables)
