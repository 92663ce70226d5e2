"""Cost of PDF table extraction: pypdf text alone vs pypdf + pdfplumber tables.

Generates a report-like PDF (``--pages`` pages, each a heading, two paragraphs and a ruled
table of 9 rows x 4 columns, built with reportlab) and loads it with the real ``PdfLoader``
under ``ingest.pdf_tables = "off"`` and ``"auto"`` (pdfplumber installed), ``--repeats`` times
each, alternating. Reports the median ms per page and what came out: table rows recovered as
``table_row`` blocks and whether every cell value survived.

Usage::

    python benchmarks/pdf_tables.py [--pages 40] [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from retrieval import machine, markdown_table, write_json

from domainrag.config import IngestConfig
from domainrag.ingest.discover import FoundFile
from domainrag.ingest.loading import load_file, loaders_by_extension


def make_pdf(path: Path, pages: int) -> list[list[str]]:
    from reportlab.lib import colors
    from reportlab.lib.styles import getSampleStyleSheet
    from reportlab.platypus import PageBreak, Paragraph, SimpleDocTemplate, Table, TableStyle

    styles = getSampleStyleSheet()
    story, rows_all = [], []
    for p in range(pages):
        rows = [["Segment", "2019", "2018", "Change"]] + [
            [f"Segment {p}-{i}", f"{1200 + 37 * i + p:,}", f"{1100 + 29 * i:,}", f"{(3 * i + p) % 11}%"]
            for i in range(8)]
        rows_all += rows
        table = Table(rows)
        table.setStyle(TableStyle([("GRID", (0, 0), (-1, -1), 0.5, colors.black)]))
        story += [Paragraph(f"Results by segment, part {p}", styles["Heading2"]),
                  Paragraph("Revenue grew in most segments while costs fell. " * 5, styles["BodyText"]),
                  table,
                  Paragraph("Figures are unaudited and in thousands of dollars. " * 3, styles["BodyText"]),
                  PageBreak()]
    SimpleDocTemplate(str(path)).build(story)
    return rows_all


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--pages", type=int, default=40)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "pdf_tables.json")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "report.pdf"
        rows = make_pdf(path, args.pages)
        found = FoundFile(path, "report.pdf", path.stat().st_size)
        settings = {"off": loaders_by_extension(IngestConfig(pdf_tables="off")),
                    "auto": loaders_by_extension(IngestConfig(pdf_tables="auto"))}
        times: dict[str, list[float]] = {k: [] for k in settings}
        docs = {}
        for _ in range(args.repeats):
            for name, loaders in settings.items():
                started = time.perf_counter()
                docs[name] = load_file(found, loaders)[0]
                times[name].append((time.perf_counter() - started) * 1000 / args.pages)
    results = {}
    expected = [" | ".join(r) for r in rows]
    for name, doc in docs.items():
        table_rows = [doc.text[b.start:b.end] for b in doc.blocks if b.kind == "table_row"]
        results[name] = {"ms_per_page_median": statistics.median(times[name]),
                         "ms_per_page_runs": times[name], "table_rows": len(table_rows),
                         "rows_exact": sum(r in set(table_rows) for r in expected),
                         "cells_in_text": all(c in doc.text for r in rows for c in r)}
    header = ["pdf_tables", "ms / page (median)", "table rows", "rows exactly as cells", "every cell in text"]
    print(markdown_table(header, [[k, f"{v['ms_per_page_median']:.1f}", v["table_rows"],
                                   f"{v['rows_exact']} / {len(expected)}", v["cells_in_text"]]
                                  for k, v in results.items()]))
    write_json(args.out, {"config": {"pages": args.pages, "repeats": args.repeats},
                          "machine": machine(), "results": results})


if __name__ == "__main__":
    main()
