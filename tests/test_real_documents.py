"""End to end: a folder of the documents organisations really keep — a scanned PDF, a workbook,
a slide deck and an e-mail with an attachment — ingested, then asked: each answer is found in
its file and cited with the page, sheet or slide it sits on."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from office_files import make_message, make_pdf, make_pptx, make_xlsx, need, need_fonts, scanned_pdf

# Page 1 fills a chunk of its own: a citation names the page its chunk starts on.
SCAN_PAGES = [
    "Referral letter. The patient was referred by the district hospital for a review of her medication. "
    "She reports fewer headaches since the dose was lowered in spring, sleeps well and walks every day. "
    "Her blood pressure was normal at the last two visits and no new allergies were found by the nurse.",
    "The Meridian clinic opens at seven thirty on weekdays and at nine on Saturdays.",
]


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    need("rapidocr", "pypdfium2", "python_calamine", "pptx", "openpyxl")
    need_fonts("en")
    docs = tmp_path / "docs"
    docs.mkdir()
    scanned_pdf(docs / "referral.pdf", SCAN_PAGES, seed=7)
    make_xlsx(docs / "staffing.xlsx", {
        "Budget": [["Line", "Amount"], ["Travel", 12000], ["Training", 8000]],
        "Headcount": [["Team", "Analysts", "Lead"], ["Payments", 9, "Ruth Okafor"], ["Kestrel audit", 14, "Ivo Marsh"]],
    })
    make_pptx(docs / "strategy.pptx", [
        {"title": "Strategy 2027", "bullets": [("Grow deposits in the south", 0)]},
        {"title": "New offices", "bullets": [("The Lisbon office opens in March 2027", 0)],
         "notes": "Leases signed in November"},
    ])
    invoice = make_pdf(tmp_path / "invoice.pdf", ["The hosting invoice totals 4,200 euros for the quarter."])
    message = make_message("Vendor contract", "Hello,\n\nThe vendor contract renews automatically on 1 July 2027.",
                           attachments=[("invoice.pdf", invoice.read_bytes())])
    (docs / "vendor.eml").write_bytes(bytes(message))
    return docs


QUESTIONS = [
    ("When does the Meridian clinic open on weekdays?", "docs/referral.pdf", 2, "seven thirty"),
    ("How many analysts are in the Kestrel audit team?", "docs/staffing.xlsx#Headcount", 2, "14"),
    ("When does the Lisbon office open?", "docs/strategy.pptx", 2, "March 2027"),
    ("When does the vendor contract renew?", "docs/vendor.eml", None, "1 July 2027"),
    ("What does the hosting invoice total?", "docs/vendor.eml#att1-invoice.pdf", 1, "4,200 euros"),
]


def test_answers_come_from_each_kind_of_file_with_the_page_sheet_or_slide(folder: Path, kb_factory) -> None:
    kb = kb_factory(**{"ingest.parse_timeout_s": 300})
    report = kb.ingest([folder])
    assert report.failed == [] and len(report.added) == 4
    assert [n.message.split(" (")[0] for n in report.notes["docs/referral.pdf"]] == ["2 pages recognised by OCR"]
    for question, doc_id, page, words in QUESTIONS:
        answer = kb.ask(question)
        assert not answer.abstained, (question, answer.trace.abstain_reason)
        cited = [(c.doc_id, c.span.page) for c in answer.citations if c.supported]
        assert (doc_id, page) in cited, (question, cited, answer.text)
        assert words in answer.text, (question, answer.text)
    attachment = kb.document("docs/vendor.eml#att1-invoice.pdf")
    assert attachment["metadata"]["parent"] == "docs/vendor.eml"


def test_the_cli_cites_them_too_and_lists_the_ocr_note(folder: Path, tmp_path: Path) -> None:
    from test_cli import run

    run("ingest", str(folder), "--embedder", "hash:64", cwd=tmp_path)
    hits = json.loads(run("search", "Kestrel audit analysts", "--json", "-k", "3", cwd=tmp_path).stdout)
    assert (hits[0]["doc_id"], hits[0]["span"]["page"]) == ("docs/staffing.xlsx#Headcount", 2)
    shown = run("ask", "When does the Lisbon office open?", cwd=tmp_path).stdout
    assert "docs/strategy.pptx p.2" in shown
    notes = json.loads(run("status", "--parse", "--all", "--json", cwd=tmp_path).stdout)["files"]
    assert [(Path(f["source"]).name, f["notes"][0]["code"]) for f in notes] == [("referral.pdf", "ocr")]
