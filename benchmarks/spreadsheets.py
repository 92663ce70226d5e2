"""Spreadsheet reading speed: the XLSX loader (python-calamine) in rows per second, side by side
with the same rows read by the CSV loader and by openpyxl's read-only mode (the usual
alternative reader).

Writes a workbook of ``--rows`` rows x 8 columns (text, integers, floats, dates; one sheet) with
openpyxl and the same rows as a CSV file, then loads each ``--repeats`` times, alternating, and
reports the median seconds and rows/s.

Usage::

    python benchmarks/spreadsheets.py [--rows 20000] [--repeats 5]
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from retrieval import machine, markdown_table, write_json

from domainrag.config import IngestConfig
from domainrag.ingest.loaders.csv import CsvLoader
from domainrag.ingest.loaders.spreadsheet import SpreadsheetLoader

RESULTS = Path(__file__).parent / "results" / "spreadsheets.json"
HEADER = ["Account", "Owner", "Region", "Opened", "Balance", "Rate", "Products", "Note"]


def rows(n: int) -> list[list[Any]]:
    regions = ["North", "South", "East", "West"]
    return [[f"ACC-{i:07d}", f"Owner {i % 977}", regions[i % 4], dt.date(2020, 1, 1) + dt.timedelta(days=i % 1500),
             round(1000 + i * 3.17, 2), round(0.5 + (i % 40) / 10, 2), i % 9, f"Reviewed in batch {i % 31}"]
            for i in range(n)]


def openpyxl_rows(path: Path) -> int:
    import openpyxl

    book = openpyxl.load_workbook(path, read_only=True, data_only=True)
    count = sum(1 for row in book.active.iter_rows(values_only=True) if any(v is not None for v in row))
    book.close()
    return count


def main(argv: list[str] | None = None) -> None:
    import openpyxl

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    folder = Path(tempfile.mkdtemp(prefix="sheets-"))
    data = rows(args.rows)
    book = openpyxl.Workbook()
    book.active.title = "Accounts"
    book.active.append(HEADER)
    for row in data:
        book.active.append(row)
    book.save(folder / "accounts.xlsx")
    with (folder / "accounts.csv").open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows([HEADER, *data])
    config = IngestConfig(max_sheet_rows=args.rows + 10)
    readers: dict[str, Callable[[], int]] = {
        "xlsx: SpreadsheetLoader (python-calamine)":
            lambda: sum(len(d.blocks) for d in SpreadsheetLoader(config).load(folder / "accounts.xlsx", "a.xlsx")),
        "csv: CsvLoader (same rows)":
            lambda: sum(len(d.blocks) for d in CsvLoader(config).load(folder / "accounts.csv", "a.csv")),
        "xlsx: openpyxl read-only, values only (no documents)": lambda: openpyxl_rows(folder / "accounts.xlsx"),
    }
    times: dict[str, list[float]] = {name: [] for name in readers}
    counts: dict[str, int] = {}
    for _ in range(args.repeats):
        for name, read in readers.items():
            t0 = time.perf_counter()
            counts[name] = read()
            times[name].append(time.perf_counter() - t0)
    results = {name: {"rows": counts[name], "median_s": round(statistics.median(t), 3),
                      "rows_per_s": round(counts[name] / statistics.median(t))} for name, t in times.items()}
    base = results["xlsx: SpreadsheetLoader (python-calamine)"]["median_s"]
    table = [[name, r["rows"], f"{r['median_s']:.3f}", f"{r['rows_per_s']:,}", f"{r['median_s'] / base:.2f}x"]
             for name, r in results.items()]
    print(markdown_table(["reader", "rows", "median s", "rows/s", "time vs calamine"], table))
    write_json(args.out, {"machine": machine(), "date": time.strftime("%Y-%m-%d"), "rows": args.rows,
                          "repeats": args.repeats, "file_mb": round((folder / "accounts.xlsx").stat().st_size / 1e6, 2),
                          "results": results})


if __name__ == "__main__":
    main()
