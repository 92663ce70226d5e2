"""The parse-quality report: which files parsed suspiciously, kept in the catalog, shown by
``ingest``, ``status --parse``, the Python API and the HTTP API."""

from __future__ import annotations

import json
from pathlib import Path

from domainrag.ingest.quality import ParseNote, assess, flattened_pages, garbled_share
from domainrag.ingest.seams import DocumentBuilder
from domainrag.types import Document


def _pdf_like(pages: list[list[str]], tables: set[int] = frozenset(), **meta: object) -> Document:
    builder = DocumentBuilder()
    for number, paragraphs in enumerate(pages, start=1):
        builder.page = number
        for text in paragraphs:
            if number in tables:
                builder.table_row(text.split())
            else:
                builder.paragraph(text)
    return builder.build("d.pdf", "d.pdf", metadata={"format": "pdf", "page_count": len(pages), **meta})


def codes(document: Document) -> list[str]:
    return [n.code for n in assess([document])]


def test_a_clean_document_has_no_notes() -> None:
    assert codes(_pdf_like([["A clean page of ordinary prose, long enough to count as a real page of text. " * 3]])) == []


def test_empty_and_sparse_text_are_warned() -> None:
    assert codes(_pdf_like([["p. 1"]])) == ["empty"]
    sparse = _pdf_like([["Title of the report with a few words"], [], [], []])
    assert codes(sparse) == ["sparse"] and "per page on average over 4 pages" in assess([sparse])[0].message


def test_mojibake_and_unmapped_glyphs_are_warned() -> None:
    latin1 = "The cafÃ© served crÃ¨me brÃ»lÃ©e and the caf\u00c3\u00a9 was full. " * 4
    assert garbled_share(latin1) > 0.02 and codes(_pdf_like([[latin1]])) == ["mojibake"]
    cid = "(cid:12)(cid:7)(cid:44) " * 30 + "some words"
    assert codes(_pdf_like([[cid]])) == ["mojibake"]
    assert garbled_share("Ordinary text, with accents: café, crème, 中文 too.") == 0


def test_number_columns_without_table_rows_are_flattened_tables() -> None:
    table = ["Segment 2019 2018 Change", "Retail 1,204 1,100 9%", "Cards 877 812 8%", "Loans 2,310 2,015 15%",
             "Treasury (120) 45 -", "Total 4,271 3,972 7.5%"]
    flat = _pdf_like([["Results by segment"] + table])
    assert flattened_pages(flat) == [1]
    note = assess([flat])[0]
    assert note.code == "flattened_tables" and "pdf-tables" in note.message
    assert flattened_pages(_pdf_like([table], tables={1})) == []


def test_loader_facts_become_notes() -> None:
    doc = _pdf_like([["Scanned text read by OCR engine on this page, with plenty of characters to count. " * 2]] * 3,
                    ocr_pages=[1, 2, 3], ocr_engine="rapidocr", ocr_confidence=0.71, ocr_low_pages=[2, 3],
                    ocr_min_confidence=0.8, failed_pages=[4], unread_pages=[5], unread_reason="no OCR engine")
    notes = assess([doc])
    assert [n.code for n in notes] == ["ocr_confidence", "unread_pages", "failed_pages", "ocr"]
    assert notes[0].message == "OCR confidence below 0.80 on pages 2, 3: check the scan's quality"
    assert notes[-1] == ParseNote("ocr", "3 pages recognised by OCR (rapidocr, mean confidence 0.71)", warning=False)
    assert ParseNote.from_dict(notes[0].to_dict()) == notes[0]


def _folder(tmp_path: Path) -> Path:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "clean.txt").write_text("Passwords must be rotated every ninety days by every employee.")
    (docs / "garbled.txt").write_text("Le cafÃ© de la gare sert des crÃªpes Ã  midi et le soir. " * 5)
    return docs


def test_ingest_reports_and_the_catalog_keeps_the_suspicious_files(tmp_path: Path, kb_factory) -> None:
    kb = kb_factory()
    report = kb.ingest([_folder(tmp_path)])
    assert list(report.suspicious) == ["docs/garbled.txt"] and report.summary()["suspicious"] == 1
    (entry,) = kb.parse_report()
    assert entry["source"].endswith("garbled.txt") and entry["notes"][0]["code"] == "mojibake"
    (tmp_path / "docs" / "garbled.txt").write_text("Le café de la gare sert des crêpes à midi. " * 5)
    kb.ingest([tmp_path / "docs"])
    assert kb.parse_report() == []


def test_cli_ingest_ends_with_the_suspicious_files_and_status_lists_them(tmp_path: Path) -> None:
    from test_cli import run

    folder = _folder(tmp_path)
    done = run("ingest", str(folder), "--embedder", "hash:64", cwd=tmp_path)
    assert "1 file(s) parsed suspiciously" in done.stderr and "mojibake" in done.stderr
    assert "docs/garbled.txt" in done.stderr and "clean.txt" not in done.stderr
    listed = run("status", "--parse", cwd=tmp_path).stdout
    assert "garbled.txt" in listed and "mojibake" in listed and "clean.txt" not in listed
    as_json = json.loads(run("status", "--parse", "--json", cwd=tmp_path).stdout)
    assert [f["notes"][0]["code"] for f in as_json["files"]] == ["mojibake"]
    (folder / "garbled.txt").unlink()
    run("ingest", str(folder), "--prune", cwd=tmp_path)
    assert "No file parsed suspiciously." in run("status", "--parse", cwd=tmp_path).stdout
