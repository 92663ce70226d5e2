"""Delimited tables (``.csv``, ``.tsv``): one document per file, one block per row.

The header row is the first table row and every data row follows as its own row block, so a
chunker never cuts a row in half (:func:`add_table`, which the spreadsheet loader shares).
The dialect is sniffed from the first lines only (at most
:data:`SNIFF_CHARS`): ``csv.Sniffer`` is quadratic in its sample — 20 s on 60 kB of ``, "`` —
and a few rows tell the dialect as well as many. ``.tsv`` files are tab-separated.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any, ClassVar

from ...errors import LoaderError
from ...types import Document
from ..decode import read_text
from ..seams import BaseLoader, DocumentBuilder

SNIFF_CHARS = 4096
SNIFF_LINES = 20
_DELIMITERS = ",;\t|"


class CsvLoader(BaseLoader):
    """Loads a CSV/TSV file as a table: header row, then one row block per record."""

    extensions: ClassVar[tuple[str, ...]] = (".csv", ".tsv")
    format: ClassVar[str] = "csv"

    def load(self, path: Path, doc_id: str) -> list[Document]:
        text = read_text(path)
        rows = read_rows(text, tab=path.suffix.lower() == ".tsv")
        builder = DocumentBuilder()
        meta = add_table(builder, rows)
        return [builder.build(doc_id, str(path), metadata=meta)]


def add_table(builder: DocumentBuilder, rows: list[list[str]]) -> dict[str, Any]:
    """``rows`` as one table: the header row first, then one ``table_row`` block per row (a
    chunker never cuts one, and a chunk that continues the table is indexed with the header
    under ``chunking.context = "full"``). Returns the table's metadata: ``columns`` (the header
    cells) and ``rows`` (data rows). Spreadsheets use it for each sheet."""
    for row in rows:
        builder.table_row(row)
    builder.separate()
    header = rows[0] if rows else []
    return {"columns": [c.strip() for c in header], "rows": max(len(rows) - 1, 0)}


def read_rows(text: str, tab: bool = False) -> list[list[str]]:
    """The non-empty rows of ``text``; tab-separated if ``tab``, else the sniffed dialect."""
    dialect = sniff_dialect(sniff_sample(text), tab)
    try:
        rows = list(csv.reader(io.StringIO(text, newline=""), dialect))
    except csv.Error as exc:
        raise LoaderError(f"malformed CSV: {exc}; check quoting and the delimiter") from exc
    return [row for row in rows if any(cell.strip() for cell in row)]


def sniff_sample(text: str) -> str:
    """The first :data:`SNIFF_LINES` whole lines of ``text`` within :data:`SNIFF_CHARS` (a longer
    first line is cut)."""
    sample = text[:SNIFF_CHARS]
    if len(text) > SNIFF_CHARS and "\n" in sample:
        sample = sample[: sample.rindex("\n")]  # drop the line the limit cut
    return "\n".join(sample.split("\n")[:SNIFF_LINES])


def sniff_dialect(sample: str, tab: bool) -> type[csv.Dialect] | csv.Dialect:
    """``excel-tab`` for TSV; otherwise csv.Sniffer's guess, falling back to ``excel`` (comma)."""
    if tab:
        return csv.excel_tab
    try:
        return csv.Sniffer().sniff(sample, delimiters=_DELIMITERS)
    except csv.Error:
        return csv.excel
