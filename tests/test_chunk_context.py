"""Chunks that know their context: what is indexed and embedded carries title, file name, heading
path, table caption and header row, a filing's company and period — the chunk itself does not."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domainrag import KnowledgeBase
from domainrag.config import ChunkingConfig
from domainrag.errors import IndexMismatchError
from domainrag.ingest.beir_corpus import beir_document
from domainrag.ingest.chunking import StructureChunker
from domainrag.ingest.context import MAX_PART_CHARS, DocumentContext, context_lines, contextual_text
from domainrag.ingest.seams import DocumentBuilder
from domainrag.types import Document


def _table_document(rows: int = 40, source: str = "reports/ACME_annual-report_2018.md") -> Document:
    b = DocumentBuilder()
    b.heading("Annual report", 1)
    b.heading("Cash flows", 2)
    b.paragraph("Table 4: Consolidated statement of cash flows (in millions)")
    b.table_row(["Item", "2018", "2017"])
    for i in range(rows):
        b.table_row([f"line item number {i} of the statement", str(100 + i), str(90 + i)])
    b.paragraph("The table above shows the cash flows.")
    return b.build("doc", source)


def _chunks(doc: Document, context: str = "full") -> list:
    return StructureChunker(ChunkingConfig(target_tokens=64, overlap_tokens=8, context=context)).split(doc)


def test_a_chunk_continuing_a_table_is_indexed_with_its_caption_and_header_row() -> None:
    doc = _table_document()
    chunks = _chunks(doc)
    context = DocumentContext.of(doc)
    later = [c for c in chunks if c.text.startswith("line item") and "Item | 2018" not in c.text]
    assert later, "the table should span several chunks"
    lines = context.lines(later[-1], "full")
    assert "Item | 2018 | 2017" in lines
    assert "Table 4: Consolidated statement of cash flows (in millions)" in lines
    assert "Cash flows" in lines and "Annual report" in lines
    # only the indexed text carries it; the chunk is still the document's own text
    assert later[-1].text == doc.text[later[-1].span.start:later[-1].span.end]
    assert contextual_text(later[-1], lines).endswith(later[-1].text)


def test_the_chunk_holding_the_header_row_gets_no_second_copy() -> None:
    doc = _table_document()
    first = next(c for c in _chunks(doc) if "Item | 2018 | 2017" in c.text)
    assert "Item | 2018 | 2017" not in DocumentContext.of(doc).lines(first, "full")


def test_file_name_is_context_for_files_but_not_for_records_of_a_collection() -> None:
    doc = _table_document(rows=2)
    chunk = _chunks(doc)[0]
    assert "ACME annual-report 2018" in context_lines(doc, chunk, "full")
    assert "ACME annual-report 2018" not in context_lines(doc, chunk, "headings")
    record = beir_document({"_id": "7", "title": "Aspirin", "text": "Aspirin thins the blood."}, "corpus.jsonl")
    assert context_lines(record, _chunks(record)[0], "full", whole_file=False) == []


def test_modes_none_and_headings() -> None:
    doc = _table_document()
    chunk = _chunks(doc)[-1]
    assert context_lines(doc, chunk, "none") == []
    assert context_lines(doc, chunk, "headings") == ["Annual report", "Cash flows"]
    assert contextual_text(chunk, []) == chunk.text


def test_a_filing_states_its_company_form_and_period() -> None:
    b = DocumentBuilder()
    b.paragraph("UNITED STATES SECURITIES AND EXCHANGE COMMISSION\nFORM 10-K\n"
                "ANNUAL REPORT PURSUANT TO SECTION 13 For the fiscal year ended September 29, 2018")
    b.paragraph("Apple Inc.\n(Exact name of Registrant as specified in its charter)")
    for i in range(30):
        b.paragraph(f"Paragraph {i} about products and services of the company, with enough words to fill.")
    doc = b.build("aapl", "filings/0000320193-18-000145.txt")
    last = _chunks(doc)[-1]
    assert "Apple Inc. · FORM 10-K · period ended September 29, 2018" in context_lines(doc, last, "full")


def test_a_document_that_is_not_a_filing_has_no_filing_context() -> None:
    doc = _table_document(rows=2, source="notes.md")
    assert DocumentContext.of(doc).filing == ""


def test_context_parts_are_cut() -> None:
    b = DocumentBuilder()
    b.paragraph("caption " * 10)
    b.table_row(["header cell " * 40, "b"])
    for i in range(60):
        b.table_row([f"row {i} with several words in it", "x"])
    doc = b.build("d", "t.md")
    later = [c for c in _chunks(doc) if c.text.startswith("row")][-1]
    assert all(len(part) <= MAX_PART_CHARS for part in context_lines(doc, later, "full"))


@settings(max_examples=40, deadline=None)
@given(rows=st.integers(0, 30), words=st.integers(1, 60), context=st.sampled_from(["none", "headings", "full"]))
def test_chunks_stay_slices_of_the_document_whatever_the_context(rows: int, words: int, context: str) -> None:
    b = DocumentBuilder()
    b.heading("Title", 1)
    b.paragraph(" ".join(f"w{i}" for i in range(words)))
    for i in range(rows):
        b.table_row([f"r{i}", "v"])
    doc = b.build("d", "x/y.md")
    ctx = DocumentContext.of(doc)
    for chunk in _chunks(doc, context):
        assert doc.text[chunk.span.start:chunk.span.end] == chunk.text
        assert contextual_text(chunk, ctx.lines(chunk, context)).endswith(chunk.text)


@pytest.fixture
def table_md(tmp_path: Path) -> Path:
    folder = tmp_path / "docs"
    folder.mkdir()
    rows = "\n".join(f"| widget {i} | {i} | {i + 1} |" for i in range(60))
    (folder / "zorblat_report.md").write_text(
        "# Report\n\nSome introduction.\n\n| Product | Capex | Opex |\n|---|---|---|\n" + rows + "\n",
        encoding="utf-8")
    return folder


def test_search_finds_a_table_continuation_by_its_header_only_with_full_context(kb_factory, table_md: Path) -> None:
    plain = kb_factory("plain", **{"chunking.context": "headings"})
    plain.ingest([table_md])
    full = kb_factory("full", **{"chunking.context": "full"})
    full.ingest([table_md])
    hits_full = full.search("capex", k=20, mode="lexical")
    hits_plain = plain.search("capex", k=20, mode="lexical")
    assert len(hits_full) > len(hits_plain)
    # the header row is found through the continuations' context, not copied into their text
    assert sum("Capex" in h.text for h in hits_full) == 1
    assert not any("zorblat" in h.text for h in hits_full)
    assert full.search("zorblat", k=5, mode="lexical") and not plain.search("zorblat", k=5, mode="lexical")


def test_records_of_a_collection_file_are_not_indexed_with_its_file_name(kb_factory, tmp_path: Path) -> None:
    folder = tmp_path / "beir"
    folder.mkdir()
    (folder / "corpus.jsonl").write_text('{"_id": "1", "title": "", "text": "Aspirin thins the blood."}\n'
                                         '{"_id": "2", "title": "", "text": "Insulin lowers blood sugar."}\n')
    kb = kb_factory("records", **{"chunking.context": "full"})
    kb.ingest([folder], format="beir")
    assert not kb.search("corpus", k=5, mode="lexical")
    assert kb.search("aspirin", k=5, mode="lexical")


def test_changing_the_context_needs_a_reindex(kb_factory, table_md: Path, tmp_path: Path) -> None:
    kb_factory("kb").ingest([table_md])
    with KnowledgeBase.open(tmp_path / "kb", overrides={"chunking.context": "full"}) as other:
        with pytest.raises(IndexMismatchError, match="context-full"):
            other.search("capex")
        other.ingest([table_md], reindex=True)
        assert other.search("zorblat", k=1, mode="lexical")
