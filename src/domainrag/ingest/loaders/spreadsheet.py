"""Spreadsheets (``.xlsx``, ``.xlsm``, ``.xlsb``, ``.ods``, ``.xls``) via python-calamine.

Every worksheet becomes one document, ``{file id}#{sheet name}``, titled ``{file} – {sheet}``, its
blocks on page = the sheet's 1-based position (so a citation names the sheet in its document id
and its number as the page). A sheet is read as a table, exactly as a CSV file is
(:func:`.csv.add_table`): its first non-empty row is the header, each further row one
``table_row`` block. Cells hold what the file stores: a formula's cached value (the value
Excel or LibreOffice computed when the file was last saved), dates as ISO 8601, whole numbers
without ``.0``. A merged range's value is repeated down the rows it spans (each row stands
alone) and given once across the columns it spans; empty trailing cells and empty rows are
dropped. Chart sheets and empty sheets are skipped.

Zip-based formats are checked before calamine reads them (:func:`.ooxml.check_package`: zip and
XML bombs); a sheet longer than ``ingest.max_sheet_rows`` is cut there, and the parse report
names the file.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, ClassVar

from ...errors import LoaderError, missing
from ...types import Document
from ..seams import BaseLoader, DocumentBuilder
from .csv import add_table
from .ooxml import check_package, corrupt

_ZIPPED = (".xlsx", ".xlsm", ".xlsb", ".ods")


class SpreadsheetLoader(BaseLoader):
    """Loads every worksheet of a workbook as a table document."""

    extensions: ClassVar[tuple[str, ...]] = (".xlsx", ".xlsm", ".xlsb", ".ods", ".xls")
    format: ClassVar[str] = "spreadsheet"

    def load(self, path: Path, doc_id: str) -> list[Document]:
        try:
            import python_calamine as calamine
        except ImportError as exc:
            raise missing("python-calamine", "office", "Reading spreadsheets (.xlsx, .ods, .xls)") from exc
        if path.suffix.lower() in _ZIPPED:
            check_package(path, self.config)
        try:
            workbook = calamine.CalamineWorkbook.from_path(str(path))
        except Exception as exc:  # noqa: BLE001 - calamine raises its own error types and ValueError
            raise corrupt(path, exc) from exc
        try:
            sheets = [m for m in workbook.sheets_metadata if str(m.typ).endswith("WorkSheet")]
            documents = []
            for name in [m.name for m in sheets]:
                try:
                    sheet = workbook.get_sheet_by_name(name)
                except Exception as exc:  # noqa: BLE001 - a damaged sheet part
                    raise LoaderError(f"sheet {name!r} cannot be read ({type(exc).__name__}: {exc}); "
                                      "open and re-save the workbook") from exc
                number = workbook.sheet_names.index(name) + 1
                document = self._sheet(sheet, name, number, len(workbook.sheet_names), path, doc_id)
                if document is not None:
                    documents.append(document)
        finally:
            workbook.close()
        return documents

    def _sheet(self, sheet: Any, name: str, number: int, count: int, path: Path, doc_id: str) -> Document | None:
        limit = self.config.max_sheet_rows
        grid = sheet_rows(sheet.to_python(skip_empty_area=False, nrows=limit), limit)
        merged = list(sheet.merged_cell_ranges or [])
        rows = trim_left([r for r in merged_rows(grid, merged) if any(c.strip() for c in r)])
        if not rows:
            return None
        builder = DocumentBuilder()
        builder.page = number
        meta: dict[str, Any] = {"sheet": name, "sheet_index": number, "sheet_count": count}
        end = sheet.end
        cut = max(int(end[0]) + 1 - limit, 0) if end else 0
        meta.update(add_table(builder, rows))
        if cut:
            meta["truncated_rows"] = cut
        return builder.build(f"{doc_id}#{name}", str(path), title=f"{path.stem} – {name}", metadata=meta)


def sheet_rows(rows: Iterable[list[Any]], limit: int) -> list[list[str]]:
    """At most ``limit`` rows of cell values as text (:func:`cell_text`)."""
    out: list[list[str]] = []
    for row in rows:
        if len(out) >= limit:
            break
        out.append([cell_text(v) for v in row])
    return out


def cell_text(value: Any) -> str:
    """A cell as text: whole floats without ``.0``, dates and times in ISO 8601, booleans as
    ``TRUE``/``FALSE`` (as spreadsheets show them)."""
    kind = type(value)   # exact types first: this runs once per cell
    if kind is str:
        return value  # type: ignore[no-any-return]
    if kind is float:
        return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)
    if kind is int:
        return str(value)
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ", timespec="seconds") if value.time() != dt.time() else value.date().isoformat()
    if isinstance(value, (dt.date, dt.time)):
        return value.isoformat()
    if value is None:
        return ""
    return str(value)


def trim_left(rows: list[list[str]]) -> list[list[str]]:
    """``rows`` without the leading columns that are empty in every row."""
    lead = min((next(i for i, c in enumerate(r) if c.strip()) for r in rows), default=0)
    return [r[lead:] for r in rows] if lead else rows


def merged_rows(grid: list[list[str]], merged: list[tuple[tuple[int, int], tuple[int, int]]]) -> Iterator[list[str]]:
    """The rows of ``grid`` (the sheet from cell A1, as merged ranges count) with merged ranges
    resolved (module docstring); trailing empty cells dropped."""
    skip: set[tuple[int, int]] = set()
    for (r0, c0), (r1, c1) in merged:
        if r0 >= len(grid) or c0 >= len(grid[r0]):
            continue
        value = grid[r0][c0]
        for r in range(r0, min(r1, len(grid) - 1) + 1):
            if c0 < len(grid[r]):
                grid[r][c0] = value
            skip.update((r, c) for c in range(c0 + 1, c1 + 1))
    for r, row in enumerate(grid):
        cells = [v for c, v in enumerate(row) if (r, c) not in skip]
        while cells and not cells[-1].strip():
            cells.pop()
        yield cells
