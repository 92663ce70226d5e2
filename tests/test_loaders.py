"""Loaders read real files built here (PDF with reportlab, DOCX with python-docx...) into
documents whose blocks slice the text exactly and carry headings and pages."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domainrag import registry
from domainrag.config import IngestConfig
from domainrag.errors import LoaderError
from domainrag.ingest.decode import decode_bytes, looks_binary
from domainrag.ingest.discover import FoundFile
from domainrag.ingest.loaders.pdf import page_paragraphs
from domainrag.ingest.loading import load_file, loaders_by_extension
from domainrag.ingest.seams import DocumentBuilder, Loader
from domainrag.types import Document

LOADERS = loaders_by_extension(IngestConfig())


def load(path: Path, doc_id: str | None = None, loaders: Any = None) -> list[Document]:
    found = FoundFile(path.resolve(), doc_id or path.name, path.stat().st_size)
    return load_file(found, LOADERS if loaders is None else loaders)


def load_one(path: Path) -> Document:
    docs = load(path)
    assert len(docs) == 1
    check_spans(docs[0])
    return docs[0]


def check_spans(doc: Document) -> None:
    """Every block is a non-empty, stripped slice of the text; blocks are ordered, disjoint."""
    previous_end = 0
    for block in doc.blocks:
        piece = doc.text[block.start : block.end]
        assert piece.strip(), block
        if block.kind != "code":
            assert piece == piece.strip(), block
        assert block.start >= previous_end
        previous_end = block.end
    assert previous_end <= len(doc.text)


def blocks_of(doc: Document, kind: str | None = None) -> list[str]:
    return [doc.text[b.start : b.end] for b in doc.blocks if kind is None or b.kind == kind]


def block_with(doc: Document, text: str) -> Any:
    return next(b for b in doc.blocks if text in doc.text[b.start : b.end])


def raises_loader_error(path: Path, *words: str) -> LoaderError:
    with pytest.raises(LoaderError) as info:
        load(path)
    for word in words:
        assert word in str(info.value)
    return info.value


# --- PDF -------------------------------------------------------------------------------------


def make_pdf(path: Path, pages: list[list[str]], title: str = "", **kwargs: Any) -> Path:
    from reportlab.pdfgen import canvas

    pdf = canvas.Canvas(str(path), **kwargs)
    if title:
        pdf.setTitle(title)
    for lines in pages:
        for i, line in enumerate(lines):
            pdf.drawString(72, 760 - 16 * i, line)
        pdf.showPage()
    pdf.save()
    return path


POLICY_PAGES = [
    [
        "Data Retention Policy",
        "",
        "Customer records are kept for seven years after the account is closed and are",
        "then destroyed securely by the records management team.",
        "",
        "Region | Days | Owner",
        "EU | 30 | Legal",
        "US | 60 | Compliance",
    ],
    ["Audits", "", "Internal audits of retention happen every quarter."],
]


def test_pdf_pages_paragraphs_and_table_rows(tmp_path: Path) -> None:
    path = make_pdf(tmp_path / "policy.pdf", POLICY_PAGES, title="Retention Policy")
    doc = load_one(path)
    assert doc.title == "Retention Policy"
    assert doc.metadata["page_count"] == 2
    assert doc.metadata["format"] == "pdf"
    assert doc.source == str(path.resolve())
    assert block_with(doc, "seven years").page == 1
    assert block_with(doc, "every quarter").page == 2
    assert "Customer records are kept for seven years" in blocks_of(doc)[1]
    assert "then destroyed securely" in blocks_of(doc)[1]  # wrapped lines stay one paragraph
    rows = [b for b in blocks_of(doc) if "|" in b]
    assert rows == ["Region | Days | Owner", "EU | 30 | Legal", "US | 60 | Compliance"]
    assert all(b.page in (1, 2) for b in doc.blocks)


def test_pdf_encrypted_with_user_password_is_refused(tmp_path: Path) -> None:
    path = make_pdf(tmp_path / "locked.pdf", [["Secret text"]], encrypt="s3cret")
    raises_loader_error(path, "encrypted PDF", "unencrypted copy")


def test_pdf_with_owner_password_only_opens(tmp_path: Path) -> None:
    from reportlab.lib.pdfencrypt import StandardEncryption

    encryption = StandardEncryption("", ownerPassword="owner", canPrint=0)
    path = make_pdf(tmp_path / "owner.pdf", [["Readable but protected"]], encrypt=encryption)
    assert "Readable but protected" in load_one(path).text


def test_pdf_image_only_is_refused_with_ocr_hint(tmp_path: Path) -> None:
    from reportlab.pdfgen import canvas

    path = tmp_path / "scan.pdf"
    pdf = canvas.Canvas(str(path))
    pdf.rect(100, 100, 300, 400, fill=1)
    pdf.showPage()
    pdf.save()
    raises_loader_error(path, "no extractable text", "OCR")


def test_pdf_corrupt_is_refused_with_reason(tmp_path: Path) -> None:
    data = make_pdf(tmp_path / "good.pdf", POLICY_PAGES).read_bytes()
    path = tmp_path / "truncated.pdf"
    path.write_bytes(data[: len(data) // 2])
    error = raises_loader_error(path, "corrupt")
    assert error.__cause__ is not None


def test_pdf_page_paragraphs_split_on_blank_short_and_bullet_lines() -> None:
    text = (
        "Heading\n"
        "A long line of body text that runs nearly across the whole page width\n"
        "and ends here.\n"
        "\n"
        "Next paragraph that is also long enough to fill most of the line\n"
        "• first bullet\n"
        "• second bullet"
    )
    assert page_paragraphs(text) == [
        "Heading",
        "A long line of body text that runs nearly across the whole page width\nand ends here.",
        "Next paragraph that is also long enough to fill most of the line",
        "• first bullet",
        "• second bullet",
    ]


# --- DOCX ------------------------------------------------------------------------------------


def make_docx(path: Path) -> Path:
    import docx

    document = docx.Document()
    document.core_properties.title = "Clinical Guideline"
    document.core_properties.author = "Dr. Ada"
    document.add_paragraph("Guideline Title", style="Title")
    document.add_heading("Dosage", level=1)
    document.add_paragraph("Adults take 500 mg twice daily.")
    document.add_heading("Children", level=2)
    document.add_paragraph("Weigh the child first.", style="List Bullet")
    document.add_paragraph("Give 10 mg per kg.", style="List Number")
    table = document.add_table(rows=3, cols=3)
    merged = table.cell(0, 0).merge(table.cell(0, 1))
    merged.text = "Weight band"
    table.cell(0, 2).text = "Dose"
    bands = [("small", "<10 kg", "50 mg"), ("large", ">=10 kg", "100 mg")]
    for r, values in enumerate(bands, start=1):
        for c, value in enumerate(values):
            table.cell(r, c).text = value
    document.add_paragraph("Paragraph after the table.")
    document.add_heading("Contraindications", level=1)
    document.add_paragraph("None known.")
    document.save(str(path))
    return path


def test_docx_headings_lists_tables_in_document_order(tmp_path: Path) -> None:
    doc = load_one(make_docx(tmp_path / "guide.docx"))
    assert doc.title == "Clinical Guideline"
    assert doc.metadata["author"] == "Dr. Ada"
    kinds = [b.kind for b in doc.blocks]
    assert kinds == [
        "heading", "heading", "paragraph", "heading", "list_item", "list_item",
        "table_row", "table_row", "table_row", "paragraph", "heading", "paragraph",
    ]  # fmt: skip
    assert blocks_of(doc, "table_row") == [
        "Weight band | Dose",
        "small | <10 kg | 50 mg",
        "large | >=10 kg | 100 mg",
    ]
    assert block_with(doc, "500 mg").heading_path == ("Dosage",)
    assert block_with(doc, "10 mg per kg").heading_path == ("Dosage", "Children")
    assert block_with(doc, "Paragraph after").heading_path == ("Dosage", "Children")
    assert block_with(doc, "None known").heading_path == ("Contraindications",)


def test_docx_corrupt_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "broken.docx"
    path.write_bytes(b"PK\x03\x04 this is not really a zip archive")
    error = raises_loader_error(path, "corrupt or not a .docx")
    assert error.__cause__ is not None


# --- HTML ------------------------------------------------------------------------------------

HTML = """<!doctype html>
<html lang="en"><head><title>Refund Policy | ACME</title>
<style>body { color: red }</style><script>var tracking = "JUNKSCRIPT";</script></head>
<body>
<header><a href="/">JUNKHEADER home</a></header>
<nav><ul><li>JUNKNAV one</li><li>JUNKNAV two</li></ul></nav>
<main>
  <h1>Refunds</h1>
  <p>Refunds are paid within <b>14</b> days.<br>Contact billing.</p>
  <h2>Exceptions</h2>
  <ul><li>Gift cards</li><li>Sale items <ul><li>final sale</li></ul></li></ul>
  <div>Loose text in a div.</div>
  <table><caption>Fees</caption>
    <tr><th>Method</th><th>Fee</th></tr>
    <tr><td>Card</td><td>1%</td></tr>
    <tr><td>Bank</td><td>0%</td></tr>
  </table>
  <pre>refund --order 42</pre>
  <blockquote>Be kind to customers.</blockquote>
  <form><input name="q"> JUNKFORM</form>
</main>
<aside>JUNKASIDE related</aside>
<footer>JUNKFOOTER copyright</footer>
</body></html>"""


def test_html_main_content_without_page_furniture(tmp_path: Path) -> None:
    path = tmp_path / "refunds.html"
    path.write_text(HTML, encoding="utf-8")
    doc = load_one(path)
    assert doc.title == "Refund Policy | ACME"
    assert "JUNK" not in doc.text and "color" not in doc.text
    assert blocks_of(doc, "heading") == ["Refunds", "Exceptions"]
    assert "Refunds are paid within 14 days. Contact billing." in blocks_of(doc, "paragraph")
    assert blocks_of(doc, "list_item") == ["Gift cards", "Sale items", "final sale"]
    assert blocks_of(doc, "table_row") == ["Method | Fee", "Card | 1%", "Bank | 0%"]
    assert blocks_of(doc, "code") == ["refund --order 42"]
    assert block_with(doc, "Gift cards").heading_path == ("Refunds", "Exceptions")
    assert "Loose text in a div." in blocks_of(doc, "paragraph")
    assert "Be kind to customers." in blocks_of(doc, "paragraph")
    assert doc.metadata["lang"] == "en"


def test_html_without_main_uses_body_and_title_fallback(tmp_path: Path) -> None:
    path = tmp_path / "page.htm"
    path.write_text("<html><body><nav>menu</nav><h3>Only</h3><p>Body text.</p></body></html>")
    doc = load_one(path)
    assert blocks_of(doc) == ["Only", "Body text."]
    assert doc.title == "Only"


# --- Markdown --------------------------------------------------------------------------------

MARKDOWN = """---
title: Onboarding Guide
owner: hr
---
# Onboarding

Welcome to **ACME**, see [the portal](https://example.com).

## Week one

1. Collect your badge
2. Meet your buddy
   - coffee
   - lunch

### Tools

```python
def hello():
    return "hi"
```

| Tool | Owner |
|------|-------|
| VPN  | IT    |
| Mail | IT    |

## Week two

Shadow a colleague.
"""


def test_markdown_structure(tmp_path: Path) -> None:
    path = tmp_path / "onboarding.md"
    path.write_text(MARKDOWN, encoding="utf-8")
    doc = load_one(path)
    assert doc.title == "Onboarding Guide"
    assert doc.metadata["owner"] == "hr"
    assert blocks_of(doc, "heading") == ["Onboarding", "Week one", "Tools", "Week two"]
    assert "Welcome to ACME, see the portal." in blocks_of(doc, "paragraph")
    assert blocks_of(doc, "list_item") == [
        "1. Collect your badge", "2. Meet your buddy", "coffee", "lunch",
    ]  # fmt: skip
    assert blocks_of(doc, "code") == ['def hello():\n    return "hi"']
    assert blocks_of(doc, "table_row") == ["Tool | Owner", "VPN | IT", "Mail | IT"]
    assert block_with(doc, "VPN").heading_path == ("Onboarding", "Week one", "Tools")
    assert block_with(doc, "Shadow").heading_path == ("Onboarding", "Week two")
    assert block_with(doc, "Week two").heading_path == ("Onboarding",)


# --- CSV / TSV -------------------------------------------------------------------------------


def test_csv_header_and_rows_are_row_blocks(tmp_path: Path) -> None:
    path = tmp_path / "drugs.csv"
    path.write_text('name,dose,notes\naspirin,100 mg,"with food, morning"\nibuprofen,200 mg,\n\n')
    doc = load_one(path)
    assert blocks_of(doc) == [
        "name | dose | notes",
        "aspirin | 100 mg | with food, morning",
        "ibuprofen | 200 mg |",
    ]
    assert all(b.kind == "table_row" for b in doc.blocks)
    assert doc.metadata["columns"] == ["name", "dose", "notes"]
    assert doc.metadata["rows"] == 2
    assert doc.metadata["title"] == "drugs"


def test_csv_semicolon_dialect_is_sniffed_and_tsv_uses_tabs(tmp_path: Path) -> None:
    semi = tmp_path / "eu.csv"
    semi.write_text("city;price\nParis;3,50\nRome;2,80\n", encoding="utf-8")
    assert blocks_of(load_one(semi)) == ["city | price", "Paris | 3,50", "Rome | 2,80"]
    tsv = tmp_path / "t.tsv"
    tsv.write_text("a\tb, c\n1\t2, 3\n", encoding="utf-8")
    assert blocks_of(load_one(tsv)) == ["a | b, c", "1 | 2, 3"]


# --- JSON / JSONL ----------------------------------------------------------------------------


def test_json_array_one_document_per_record(tmp_path: Path) -> None:
    records = [
        {"_id": "d1", "title": "Leave", "text": "Staff get 25 days.", "dept": "hr", "year": 2024},
        {"title": "Travel", "body": "Book economy class.", "tags": ["x"]},
    ]
    path = tmp_path / "policies.json"
    path.write_text(json.dumps(records), encoding="utf-8")
    docs = load(path, "kb/policies.json")
    assert [d.id for d in docs] == ["kb/policies.json#d1", "kb/policies.json#1"]
    first = docs[0]
    check_spans(first)
    assert first.title == "Leave"
    assert blocks_of(first, "heading") == ["Leave"]
    assert block_with(first, "25 days").heading_path == ("Leave",)
    assert first.metadata["dept"] == "hr" and first.metadata["year"] == 2024
    assert first.metadata["path"] == "kb/policies.json"
    assert "tags" not in docs[1].metadata  # only scalar fields become metadata


def test_jsonl_ids_from_line_numbers(tmp_path: Path) -> None:
    path = tmp_path / "c.jsonl"
    path.write_text('{"text": "one"}\n\n{"text": "three", "_id": 7}\n{"content": "four"}\n')
    assert [d.id for d in load(path)] == ["c.jsonl#1", "c.jsonl#7", "c.jsonl#4"]


def test_jsonl_bad_line_fails_the_file_naming_the_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.ndjson"
    path.write_text('{"text": "ok"}\n{"text": "ok too"}\n{"text": broken}\n')
    raises_loader_error(path, "line 3")


def test_json_single_object_and_missing_text_fields(tmp_path: Path) -> None:
    single = tmp_path / "one.json"
    single.write_text('{"title": "FAQ", "text": "Ask us.\\n\\nAnytime."}', encoding="utf-8")
    doc = load_one(single)
    assert doc.id == "one.json" and blocks_of(doc, "paragraph") == ["Ask us.", "Anytime."]
    no_text = tmp_path / "rows.json"
    no_text.write_text('[{"question": "q", "answer": "a"}]', encoding="utf-8")
    raises_loader_error(no_text, "json_text_fields", "question")


# --- Text and decoding -----------------------------------------------------------------------


def test_text_paragraphs_and_rst_headings(tmp_path: Path) -> None:
    txt = tmp_path / "notes.txt"
    txt.write_text("First paragraph\nstill first.\n\n\n  Second paragraph.  \n", encoding="utf-8")
    assert blocks_of(load_one(txt)) == ["First paragraph\nstill first.", "Second paragraph."]
    rst = tmp_path / "guide.rst"
    rst.write_text(
        "=====\nGuide\n=====\n\nIntro.\n\nInstall\n-------\nRun pip.\n\nUse\n---\n\nCall it.\n"
    )
    doc = load_one(rst)
    assert blocks_of(doc, "heading") == ["Guide", "Install", "Use"]
    assert block_with(doc, "Run pip").heading_path == ("Guide", "Install")
    assert block_with(doc, "Call it").heading_path == ("Guide", "Use")


@pytest.mark.parametrize(
    ("encoding", "text"),
    [
        (
            "cp1252",
            "Café naïve résumé — “smart quotes” cost €5 in Zürich.\nDéjà vu, façade, garçon.\n",
        ),
        (
            "gb18030",
            "数据保留政策：客户记录在账户关闭后保存七年，然后安全销毁。\n审计每季度进行一次。\n",
        ),
        ("utf-16", "UTF-16 with a byte-order mark: größe.\n"),
        ("utf-8-sig", "UTF-8 with a BOM.\n"),
    ],
)
def test_legacy_encodings_are_detected(tmp_path: Path, encoding: str, text: str) -> None:
    path = tmp_path / "legacy.txt"
    path.write_bytes(text.encode(encoding))
    assert load_one(path).text == text.strip()


def test_empty_binary_and_blank_files_are_refused(tmp_path: Path) -> None:
    empty = tmp_path / "empty.md"
    empty.write_bytes(b"")
    raises_loader_error(empty, "empty file")
    binary = tmp_path / "image.txt"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 4)
    raises_loader_error(binary, "binary content")
    blank = tmp_path / "blank.txt"
    blank.write_text("  \n\n \t\n")
    raises_loader_error(blank, "no text found")


def test_decode_normalises_line_endings_and_spots_control_bytes() -> None:
    assert decode_bytes(b"a\r\nb\rc") == "a\nb\nc"
    assert looks_binary(b"\x01\x02\x03text") and not looks_binary(b"plain\ttext\n")


# --- The loading seam ------------------------------------------------------------------------


class _BoomLoader:
    extensions: ClassVar[tuple[str, ...]] = (".txt",)

    def load(self, path: Path, doc_id: str) -> list[Document]:
        raise ValueError("parser exploded")


def test_load_file_translates_unexpected_errors(tmp_path: Path) -> None:
    path = tmp_path / "x.txt"
    path.write_text("hello")
    with pytest.raises(LoaderError, match="ValueError: parser exploded") as info:
        load(path, loaders={".txt": _BoomLoader()})
    assert isinstance(info.value.__cause__, ValueError)
    with pytest.raises(LoaderError, match="unsupported file type '.txt'"):
        load(path, loaders={})


def test_loaders_cover_every_builtin_extension_and_plugins_register() -> None:
    expected = {".txt", ".text", ".rst", ".log", ".md", ".markdown", ".html", ".htm", ".pdf",
                ".docx", ".csv", ".tsv", ".json", ".jsonl", ".ndjson",
                ".xlsx", ".xlsm", ".xlsb", ".ods", ".xls", ".pptx", ".eml", ".mbox",
                ".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp"}  # fmt: skip
    assert set(LOADERS) == expected
    assert all(isinstance(loader, Loader) for loader in LOADERS.values())

    class OrgLoader(_BoomLoader):
        extensions: ClassVar[tuple[str, ...]] = (".ORG",)

        def __init__(self, config: IngestConfig) -> None:
            self.config = config

    registry.register("domainrag.loaders", "org-test", OrgLoader)
    try:
        assert isinstance(loaders_by_extension(IngestConfig())[".org"], OrgLoader)
    finally:
        registry.unregister("domainrag.loaders", "org-test")


# --- DocumentBuilder -------------------------------------------------------------------------


def test_builder_separates_consecutive_tables_and_dedents_code() -> None:
    builder = DocumentBuilder()
    builder.table_row(["a", "b"])
    builder.separate()
    builder.table_row(["c", "d"])
    builder.code("\n\n    if x:\n        y()\n   \n")
    doc = builder.build("d", "s")
    assert doc.text == "a | b\n\nc | d\n\nif x:\n    y()"
    check_spans(doc)


_WORDS = st.text(alphabet=st.sampled_from("ab cd\n\t.|"), max_size=20)
_STEPS = st.lists(
    st.one_of(
        st.tuples(st.just("heading"), _WORDS, st.integers(1, 4)),
        st.tuples(st.sampled_from(["paragraph", "list_item", "code"]), _WORDS),
        st.tuples(st.just("table_row"), st.lists(_WORDS, max_size=4)),
        st.tuples(st.just("separate")),
        st.tuples(st.just("page"), st.integers(1, 5)),
    ),
    max_size=30,
)


@settings(max_examples=150, deadline=None)
@given(_STEPS)
def test_builder_property_every_block_is_an_exact_ordered_slice(
    steps: list[tuple[Any, ...]],
) -> None:
    builder = DocumentBuilder()
    added: list[tuple[str, tuple[str, ...], int | None]] = []
    for step in steps:
        kind, *args = step
        if kind == "page":
            builder.page = args[0]
            continue
        before = len(builder._blocks)
        getattr(builder, kind)(*args)
        if len(builder._blocks) > before:
            added.append((kind, builder.heading_path, builder.page))
    doc = builder.build("doc", "src")
    check_spans(doc)
    assert [b.kind for b in doc.blocks] == [kind for kind, _, _ in added]
    assert [b.page for b in doc.blocks] == [page for _, _, page in added]
    for block, (kind, path, _) in zip(doc.blocks, added, strict=True):
        expected = path[:-1] if kind == "heading" else path
        assert block.heading_path == expected
        if kind == "heading":
            assert doc.text[block.start : block.end] == path[-1]


def make_report_pdf(path: Path) -> Path:
    """Two pages: a heading, a paragraph, a ruled table, a paragraph after it; a boxed note."""
    from reportlab.lib import colors
    from reportlab.lib.styles import getSampleStyleSheet
    from reportlab.platypus import PageBreak, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

    styles = getSampleStyleSheet()
    grid = TableStyle([("GRID", (0, 0), (-1, -1), 0.5, colors.black)])
    rows = [["Segment", "2019", "2018"], ["Cloud", "1,311", "1,187"], ["Devices", "642", "701"]]
    table, note = Table(rows), Table([["Figures in thousands of dollars."]])
    table.setStyle(grid)
    note.setStyle(grid)
    story = [Paragraph("Revenue by segment", styles["Heading2"]),
             Paragraph("Revenue grew in the cloud segment and fell for devices.", styles["BodyText"]),
             table, Spacer(1, 12),
             Paragraph("The table above is unaudited.", styles["BodyText"]), PageBreak(),
             note, Paragraph("Nothing else on this page.", styles["BodyText"])]
    SimpleDocTemplate(str(path)).build(story)
    return path


def test_pdf_ruled_tables_become_rows_of_cells(tmp_path: Path) -> None:
    pytest.importorskip("pdfplumber")
    doc = load_one(make_report_pdf(tmp_path / "report.pdf"))
    assert blocks_of(doc, "table_row") == ["Segment | 2019 | 2018", "Cloud | 1,311 | 1,187",
                                           "Devices | 642 | 701"]
    texts = blocks_of(doc)
    order = [next(i for i, t in enumerate(texts) if word in t)
             for word in ("Revenue grew", "Segment | 2019", "unaudited")]
    assert order == sorted(order)                       # reading order kept around the table
    assert all(b.page == 1 for b in doc.blocks if b.kind == "table_row")
    assert doc.metadata["table_pages"] == [1]           # the one-cell box on page 2 is not a table
    assert block_with(doc, "Figures in thousands of dollars.").page == 2
    assert sum("1,311" in t for t in texts) == 1        # table text not repeated as lines


def test_pdf_tables_off_and_required(tmp_path: Path, monkeypatch) -> None:
    from domainrag.errors import MissingDependencyError
    from domainrag.ingest.loaders import pdf_tables

    path = make_report_pdf(tmp_path / "report.pdf")
    off = load(path, loaders=loaders_by_extension(IngestConfig(pdf_tables="off")))[0]
    assert blocks_of(off, "table_row") == [] and "1,311" in off.text
    monkeypatch.setattr(pdf_tables, "available", lambda: False)
    auto = load(path)[0]                                # auto without pdfplumber: text only
    assert blocks_of(auto, "table_row") == []
    with pytest.raises(MissingDependencyError, match=r"domainrag\[pdf-tables\]"):
        load(path, loaders=loaders_by_extension(IngestConfig(pdf_tables="on")))


def test_csv_dialect_is_sniffed_from_a_bounded_sample(tmp_path: Path) -> None:
    from domainrag.ingest.loaders.csv import SNIFF_CHARS, SNIFF_LINES, sniff_sample

    text = "a;b;c\n" + "1;2;3\n" * 5000
    sample = sniff_sample(text)
    assert sample.count("\n") == SNIFF_LINES - 1 and len(sample) <= SNIFF_CHARS
    assert len(sniff_sample("x" * 100_000)) == SNIFF_CHARS
    path = tmp_path / "semi.csv"
    path.write_text(text)
    assert load_one(path).text.startswith("a | b | c\n1 | 2 | 3")


def test_docx_declaring_a_dtd_is_refused_before_parsing(tmp_path: Path) -> None:
    import io
    import zipfile

    import docx

    buffer = io.BytesIO()
    docx.Document().save(buffer)
    path = tmp_path / "xxe.docx"
    with zipfile.ZipFile(io.BytesIO(buffer.getvalue())) as src, zipfile.ZipFile(path, "w") as out:
        for name in src.namelist():
            data = src.read(name)
            if name == "word/document.xml":
                data = data.replace(b"?>", b'?><!DOCTYPE d [<!ENTITY x SYSTEM "file:///etc/passwd">]>', 1)
            out.writestr(name, data)
    raises_loader_error(path, "declares a DTD or entities", "XML bomb or external-entity")
