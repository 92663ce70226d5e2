"""Tables in PDFs, through pdfplumber (optional: ``pip install 'domainrag[pdf-tables]'``).

pypdf's text layer flattens a table into lines of values with no cell boundaries, so a chunk
of a financial statement reads "Segment 3 1,311 1,187 9%". pdfplumber finds ruled tables from
the page's drawn lines and returns their cells; :func:`page_segments` gives, for each page, the
text outside the tables and the tables' rows, in reading order (top to bottom), so the loader
can emit table rows as ``cell | cell | cell`` blocks like the HTML and DOCX loaders do.

It costs time: pdfminer lays out every page to look for tables (about 27 ms a page against
pypdf's 3 ms on a generated report, ``benchmarks/pdf_tables.py``); only the pages where it finds
one replace pypdf's text, the others keep it. Tables without ruling lines (columns aligned by whitespace alone) are not
detected — their text still comes through as lines.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

Row = list[str]
#: ("text", str) or ("table", rows)
Segment = tuple[str, str | list[Row]]


def available() -> bool:
    """True when pdfplumber can be imported."""
    try:
        import pdfplumber  # noqa: F401
    except ImportError:
        return False
    return True


def page_segments(path: Path) -> Iterator[tuple[int, list[Segment]]]:
    """(1-based page number, segments) for each page holding at least one table."""
    import pdfplumber

    with pdfplumber.open(path) as pdf:
        for number, page in enumerate(pdf.pages, start=1):
            tables = [t for t in page.find_tables() if _useful(t)]
            if tables:
                yield number, _segments(page, tables)
            page.close()   # pdfplumber caches each page's layout otherwise


def _useful(table: Any) -> bool:
    """At least two rows and two columns with text (a ruled box around a paragraph is not one)."""
    rows = [[c for c in row if c and c.strip()] for row in table.extract()]
    return sum(1 for r in rows if r) >= 2 and max((len(r) for r in rows), default=0) >= 2


def _segments(page: Any, tables: list[Any]) -> list[Segment]:
    boxes = [t.bbox for t in tables]

    def outside(obj: dict[str, Any]) -> bool:
        if obj.get("object_type") != "char":
            return True
        x, y = (obj["x0"] + obj["x1"]) / 2, (obj["top"] + obj["bottom"]) / 2
        return not any(x0 <= x <= x1 and top <= y <= bottom for x0, top, x1, bottom in boxes)

    items: list[tuple[float, Segment]] = [
        (line["top"], ("text", line["text"])) for line in page.filter(outside).extract_text_lines()
    ]
    items += [(t.bbox[1], ("table", [[_cell(c) for c in row] for row in t.extract()])) for t in tables]
    items.sort(key=lambda item: item[0])
    out: list[Segment] = []
    for _, (kind, value) in items:
        if kind == "text" and out and out[-1][0] == "text":
            out[-1] = ("text", f"{out[-1][1]}\n{value}")   # consecutive lines: one text segment
        else:
            out.append((kind, value))
    return out


def _cell(value: str | None) -> str:
    return " ".join((value or "").split())
