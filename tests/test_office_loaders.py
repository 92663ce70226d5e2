"""Spreadsheets, slide decks and e-mail: real files written by openpyxl, python-pptx and the
``email`` package, read through the registered loaders (``load_file``), and bad input of each
kind failing with a clear reason inside the parse worker's bounds."""

from __future__ import annotations

import mailbox
import zipfile
from pathlib import Path

import pytest
from office_files import make_message, make_pdf, make_pptx, make_xlsx, need

from domainrag.config import IngestConfig
from domainrag.errors import LoaderError
from domainrag.ingest.chunking import StructureChunker
from domainrag.ingest.discover import FoundFile
from domainrag.ingest.loading import load_file, loaders_by_extension
from domainrag.ingest.quality import assess
from domainrag.ingest.worker import ParseWorker


def load(path: Path, **config: object):
    return load_file(FoundFile(path, path.name, path.stat().st_size), loaders_by_extension(IngestConfig(**config)))


@pytest.fixture(autouse=True)
def _office() -> None:
    need("python_calamine", "pptx", "openpyxl")


# -- spreadsheets ---------------------------------------------------------------------------------
def test_every_sheet_is_a_table_document_with_its_sheet_as_page(tmp_path: Path) -> None:
    book = make_xlsx(tmp_path / "finance.xlsx", {
        "Revenue": [["Region", "Q1", "Q2", "Total"], ["North", 10, 20.5, "=B2+C2"], ["South", 5, 7, "=B3+C3"]],
        "Staff": [["Team", "Head count"], ["Audit", 12]],
        "Blank": [],
    }, cached={"B2+C2": "30.5", "B3+C3": "12"})
    docs = load(book)
    assert [d.id for d in docs] == ["finance.xlsx#Revenue", "finance.xlsx#Staff"]
    revenue, staff = docs
    assert revenue.text.split("\n") == ["Region | Q1 | Q2 | Total", "North | 10 | 20.5 | 30.5", "South | 5 | 7 | 12"]
    assert {b.kind for b in revenue.blocks} == {"table_row"} and {b.page for b in revenue.blocks} == {1}
    assert {b.page for b in staff.blocks} == {2}
    assert revenue.title == "finance – Revenue" and revenue.metadata["format"] == "spreadsheet"
    assert revenue.metadata["columns"] == ["Region", "Q1", "Q2", "Total"] and revenue.metadata["rows"] == 2
    assert staff.metadata["sheet"] == "Staff" and staff.metadata["sheet_count"] == 3


def test_merged_cells_repeat_down_rows_and_count_once_across_columns(tmp_path: Path) -> None:
    book = make_xlsx(tmp_path / "m.xlsx", {"S": [
        ["Division", "Unit", "Budget", "Note"],
        ["Retail", "Cards", 100, "wide note"],
        [None, "Loans", 200],
    ]}, merged={"S": ["A2:A3", "D2:E2"]})
    (doc,) = load(book)
    assert doc.text.split("\n") == ["Division | Unit | Budget | Note", "Retail | Cards | 100 | wide note",
                                    "Retail | Loans | 200"]


def test_rows_chunk_whole_with_the_header_in_the_indexed_context(tmp_path: Path) -> None:
    from domainrag.config import ChunkingConfig
    from domainrag.ingest.context import DocumentContext

    rows = [["Account", "Owner", "Balance"]] + [[f"ACC-{i:04d}", f"Owner {i}", i * 10] for i in range(200)]
    (doc,) = load(make_xlsx(tmp_path / "big.xlsx", {"Ledger": rows}))
    chunks = StructureChunker(ChunkingConfig(target_tokens=64, overlap_tokens=0, context="full")).split(doc)
    assert len(chunks) > 5
    context = DocumentContext.of(doc, whole_file=False)
    for chunk in chunks:
        assert doc.text[chunk.span.start:chunk.span.end] == chunk.text and chunk.span.page == 1
        assert all(line.startswith("ACC-") or line.startswith("Account") for line in chunk.text.split("\n"))
        assert "Account | Owner | Balance" in " ".join(context.lines(chunk, "full")) + chunk.text


def test_a_sheet_past_max_sheet_rows_is_cut_and_named_in_the_report(tmp_path: Path) -> None:
    rows = [["n", "square"]] + [[i, i * i] for i in range(1, 60)]
    (doc,) = load(make_xlsx(tmp_path / "long.xlsx", {"Data": rows}), max_sheet_rows=20)
    assert len(doc.text.split("\n")) == 20 and doc.metadata["truncated_rows"] == 40
    assert [n.code for n in assess([doc])] == ["truncated"]


def test_ods_and_xls_suffixes_are_claimed() -> None:
    loaders = loaders_by_extension(IngestConfig())
    assert {".xlsx", ".xlsm", ".ods", ".xls", ".pptx", ".eml", ".mbox", ".png", ".tiff"} <= set(loaders)


# -- slides ----------------------------------------------------------------------------------------
def test_one_section_per_slide_with_notes_tables_and_slide_numbers(tmp_path: Path) -> None:
    deck = make_pptx(tmp_path / "plan.pptx", [
        {"title": "Expansion plan", "bullets": [("Open the Lisbon office in March", 0), ("Hire 12 analysts", 1)],
         "notes": "The budget is 4 million euros"},
        {"title": "Costs", "table": [["Item", "Cost"], ["Rent", "1.2M"], ["Salaries", "2.8M"]]},
        {"text": "Questions welcome"},
    ])
    (doc,) = load(deck)
    assert doc.metadata["slide_count"] == 3 and doc.metadata["format"] == "pptx"
    by_page = {}
    for block in doc.blocks:
        if block.kind != "page_break":
            by_page.setdefault(block.page, []).append((block.kind, doc.text[block.start:block.end]))
    assert [b.page for b in doc.blocks if b.kind == "page_break"] == [1, 2]   # closing slides 1 and 2
    assert by_page[1] == [("heading", "Expansion plan"), ("paragraph", "Open the Lisbon office in March"),
                          ("list_item", "Hire 12 analysts"), ("paragraph", "Notes: The budget is 4 million euros")]
    assert by_page[2] == [("heading", "Costs"), ("table_row", "Item | Cost"), ("table_row", "Rent | 1.2M"),
                          ("table_row", "Salaries | 2.8M")]
    assert by_page[3] == [("heading", "Slide 3"), ("paragraph", "Questions welcome")]
    chunks = StructureChunker().split(doc)
    assert [c.span.page for c in chunks] == [1, 2, 3]   # a chunk never runs into the next slide


# -- e-mail ----------------------------------------------------------------------------------------
def test_a_message_with_attachments_becomes_linked_documents(tmp_path: Path) -> None:
    sheet = make_xlsx(tmp_path / "src.xlsx", {"Costs": [["Item", "Cost"], ["Server", 1200]]}).read_bytes()
    pdf = make_pdf(tmp_path / "src.pdf", ["The contract renews on 1 July 2027."]).read_bytes()
    message = make_message(
        "Server budget", "Hi team,\n\nThe server budget is attached.\n\nAnn",
        html="<html><body><script>steal()</script><p>Hi team, the <b>server</b> budget is attached.</p></body></html>",
        attachments=[("budget.xlsx", sheet), ("../../contract.pdf", pdf), ("blob.bin", b"\x00\x01\x02")])
    (tmp_path / "mail.eml").write_bytes(bytes(message))
    docs = load(tmp_path / "mail.eml")
    ids = [d.id for d in docs]
    assert ids == ["mail.eml", "mail.eml#att1-budget.xlsx#Costs", "mail.eml#att2-contract.pdf"]
    mail, sheet_doc, pdf_doc = docs
    assert mail.title == "Server budget" and mail.text.startswith("From: Ann Lee <ann@example.com>\nTo: team@example.com")
    assert "The server budget is attached." in mail.text and "steal" not in mail.text   # the plain part
    assert "Attachments: budget.xlsx, contract.pdf, blob.bin" in mail.text
    assert mail.metadata["date"] == "2026-12-07T09:30:00+00:00" and mail.metadata["skipped_attachments"] == ["blob.bin"]
    assert sheet_doc.text == "Item | Cost\nServer | 1200" and sheet_doc.metadata["parent"] == "mail.eml"
    assert pdf_doc.metadata["attachment"] == "contract.pdf" and pdf_doc.metadata["parent_subject"] == "Server budget"
    assert "renews on 1 July 2027" in pdf_doc.text and {b.page for b in pdf_doc.blocks} == {1}
    assert all(d.source == str(tmp_path / "mail.eml") for d in docs)


def test_an_html_only_body_is_cleaned_and_a_forward_nests(tmp_path: Path) -> None:
    inner = make_message("Original terms", "The fee is 2 percent.")
    message = make_message("Fwd: terms", "", forwarded=inner)
    message.get_body(("plain",)).set_content("See below.")
    html_only = make_message("Newsletter", "x")
    html_only.set_content("<html><head><style>p{}</style></head><body><nav>menu</nav><p>Rates rise in May.</p></body></html>",
                          subtype="html")
    (tmp_path / "fwd.eml").write_bytes(bytes(message))
    (tmp_path / "news.eml").write_bytes(bytes(html_only))
    fwd, nested = load(tmp_path / "fwd.eml")
    assert nested.id == "fwd.eml#att1-attachment-1.eml" and "The fee is 2 percent." in nested.text
    assert nested.metadata["parent"] == "fwd.eml" and nested.title == "Original terms"
    (news,) = load(tmp_path / "news.eml")
    assert "Rates rise in May." in news.text and "menu" not in news.text and "p{}" not in news.text


def test_an_mbox_holds_one_document_per_message(tmp_path: Path) -> None:
    box = mailbox.mbox(str(tmp_path / "archive.mbox"))
    for subject in ("First quarter", "Second quarter"):
        box.add(make_message(subject, f"Notes on the {subject.lower()}."))
    box.flush()
    box.close()
    docs = load(tmp_path / "archive.mbox")
    assert [(d.id, d.title) for d in docs] == [("archive.mbox#1", "First quarter"), ("archive.mbox#2", "Second quarter")]


def test_a_broken_attachment_is_reported_and_the_message_kept(tmp_path: Path) -> None:
    message = make_message("Report", "The report is attached.", attachments=[("report.xlsx", b"PK\x03\x04 broken")])
    (tmp_path / "m.eml").write_bytes(bytes(message))
    (doc,) = load(tmp_path / "m.eml")
    assert doc.metadata["failed_attachments"][0].startswith("report.xlsx: corrupt or not a .xlsx file")
    assert [n.code for n in assess([doc])] == ["failed_attachment"]


# -- bad input -------------------------------------------------------------------------------------
def _bomb(path: Path, member: str) -> Path:
    """A package whose ``member`` unpacks to 300 MB of zeros from ~300 kB."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        with archive.open(member, "w", force_zip64=True) as part:
            block = b"\0" * (1 << 20)
            for _ in range(300):
                part.write(block)
    return path


@pytest.mark.parametrize("name, reason", [
    ("corrupt.xlsx", "corrupt or not a .xlsx file"),
    ("corrupt.pptx", "corrupt or not a .pptx file"),
    ("corrupt.ods", "corrupt or not a .ods file"),
])
def test_corrupt_office_files_fail_with_the_fix(tmp_path: Path, name: str, reason: str) -> None:
    (tmp_path / name).write_bytes(b"PK\x03\x04 this is not a zip at all" * 10)
    with pytest.raises(LoaderError, match=reason + r".*re-save"):
        load(tmp_path / name)


def test_a_file_that_is_no_email_fails(tmp_path: Path) -> None:
    (tmp_path / "x.eml").write_bytes(bytes(range(256)) * 40)
    with pytest.raises(LoaderError, match="not an e-mail message"):
        load(tmp_path / "x.eml")


@pytest.mark.parametrize("name, member", [("bomb.xlsx", "xl/worksheets/sheet1.xml"), ("bomb.pptx", "ppt/slides/slide1.xml")])
def test_zip_bombs_in_ooxml_are_refused_before_parsing(tmp_path: Path, name: str, member: str) -> None:
    bomb = _bomb(tmp_path / name, member)
    assert bomb.stat().st_size < 2_000_000
    with pytest.raises(LoaderError, match=r"(unpacks to more than ingest.max_unpacked_mb|times its packed size)"):
        load(bomb)


def test_an_xml_bomb_in_a_sheet_is_refused(tmp_path: Path) -> None:
    book = make_xlsx(tmp_path / "x.xlsx", {"S": [["a"]]})
    with zipfile.ZipFile(book) as archive:
        parts = {i.filename: archive.read(i) for i in archive.infolist()}
    parts["xl/worksheets/sheet1.xml"] = b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]>' + parts["xl/worksheets/sheet1.xml"]
    with zipfile.ZipFile(book, "w") as archive:
        for name, data in parts.items():
            archive.writestr(name, data)
    with pytest.raises(LoaderError, match="DTD or entities"):
        load(book)


def test_bad_files_fail_in_the_worker_and_the_good_ones_load(tmp_path: Path) -> None:
    good = make_xlsx(tmp_path / "good.xlsx", {"S": [["k", "v"], ["a", 1]]})
    bomb = _bomb(tmp_path / "bomb.xlsx", "xl/worksheets/sheet1.xml")
    (tmp_path / "junk.pptx").write_bytes(b"\x00" * 5000)
    config = IngestConfig(parse_timeout_s=60)
    with ParseWorker(loaders_by_extension(config), config) as worker:
        results = {}
        for path in (bomb, tmp_path / "junk.pptx", good):
            try:
                results[path.name] = worker.load(FoundFile(path, path.name, path.stat().st_size))
            except LoaderError as exc:
                results[path.name] = str(exc)
    assert "zip bomb" in results["bomb.xlsx"] and "corrupt or not a .pptx file" in results["junk.pptx"]
    assert [d.id for d in results["good.xlsx"]] == ["good.xlsx#S"]
