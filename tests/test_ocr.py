"""OCR: scanned PDF pages and images read by the real engines.

The pages are rendered from real text with DejaVu / Noto CJK fonts and degraded as scans
(rotation, blur, noise, JPEG; :mod:`domainrag.testing.scans`) — not real scans. The character
error rate is asserted against a generous bound; benchmarks/ocr.py has the exact figures."""

from __future__ import annotations

import struct
import time
import zlib
from pathlib import Path
from typing import ClassVar

import pytest
from office_files import make_pdf, need, need_fonts, need_tesseract, scanned_pdf

from domainrag.config import IngestConfig
from domainrag.errors import LoaderError, MissingDependencyError
from domainrag.ingest import budget, ocr
from domainrag.ingest.discover import FoundFile
from domainrag.ingest.loading import load_file, loaders_by_extension
from domainrag.ingest.quality import assess
from domainrag.ingest.seams import BaseLoader, DocumentBuilder
from domainrag.ingest.worker import ParseWorker
from domainrag.testing.scans import character_error_rate, degrade, levenshtein, normalise, render_page
from domainrag.types import Document

ENGLISH = ("Adult acute lymphoblastic leukemia is a type of cancer in which the bone marrow makes too many "
           "lymphocytes. Signs and symptoms include fever, feeling tired, and easy bruising or bleeding.")
CHINESE = "战国无双3是由光荣和开发的战国无双系列的正统第三续作。本作以三大故事为主轴，分别是以武田信玄等人为主的关东三国志。"
SHORT_PAGE = (1654, 700)
#: Generous: the benchmark measures 2-3% on full English pages (benchmarks/RESULTS.md).
MAX_CER = {"en": 0.10, "zh": 0.20}


def load(path: Path, **config: object):
    return load_file(FoundFile(path, path.name, path.stat().st_size), loaders_by_extension(IngestConfig(**config)))


@pytest.fixture(autouse=True)
def _ocr() -> None:
    need("rapidocr", "pypdfium2", "PIL")
    need_fonts("en", "zh")


def _page(text: str, language: str, seed: int = 0):
    image, drawn = render_page(text, language, size=SHORT_PAGE)
    return degrade(image, seed=seed), drawn


def test_levenshtein_and_cer_definitions() -> None:
    assert levenshtein("kitten", "sitting") == 3 and levenshtein("", "abc") == 3 and levenshtein("同意", "同意") == 0
    assert normalise("患者 每天\n服用，") == "患者每天服用,"   # no space next to CJK; NFKC folds the comma
    assert character_error_rate("the cat", "the  cat") == 0 and character_error_rate("abcd", "abxd") == 0.25


# Tesseract is not held to a bound on Chinese: it misreads whole lines of these pages (see RESULTS.md).
@pytest.mark.parametrize("engine, language", [("rapidocr", "en"), ("rapidocr", "zh"), ("tesseract", "en")])
def test_engines_read_rendered_scans_within_a_generous_error_rate(engine: str, language: str) -> None:
    if engine == "tesseract":
        need("pytesseract")
        need_tesseract()
    image, drawn = _page(ENGLISH if language == "en" else CHINESE, language, seed=3)
    result = ocr.engine(engine).recognise(ocr.fit(image))
    assert character_error_rate(drawn, result.text) < MAX_CER[language], result.text
    assert 0.5 < result.confidence <= 1.0


def test_a_scanned_pdf_is_read_page_by_page_and_a_text_page_kept(tmp_path: Path) -> None:
    from pypdf import PdfWriter

    scan, drawn = scanned_pdf(tmp_path / "scan.pdf", [ENGLISH, "The Meridian clinic opens at seven thirty."])
    text = make_pdf(tmp_path / "text.pdf", ["This page has a real text layer about invoices."])
    writer = PdfWriter()
    writer.append(str(scan), pages=(0, 1))
    writer.append(str(text))
    writer.append(str(scan), pages=(1, 2))
    writer.write(tmp_path / "mixed.pdf")
    (doc,) = load(tmp_path / "mixed.pdf")
    assert doc.metadata["ocr_pages"] == [1, 3] and doc.metadata["ocr_engine"] == "rapidocr"
    by_page = {p: " ".join(doc.text[b.start:b.end] for b in doc.blocks if b.page == p) for p in (1, 2, 3)}
    assert character_error_rate(drawn[0], by_page[1]) < MAX_CER["en"]
    assert by_page[2] == "This page has a real text layer about invoices."
    assert "Meridian clinic" in by_page[3]
    notes = assess([doc])
    assert [(n.code, n.warning) for n in notes] == [("ocr", False)] and notes[0].message.startswith("2 pages recognised by OCR")


def test_without_an_engine_scanned_pages_are_named_with_the_install_hint(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    from pypdf import PdfWriter

    monkeypatch.setattr(ocr, "available", lambda name: False)   # as if domainrag[ocr] were not installed
    scan, _ = scanned_pdf(tmp_path / "scan.pdf", ["Scanned words."])
    with pytest.raises(LoaderError, match=r"no text layer.*pip install 'domainrag\[ocr\]'"):
        load(scan)
    writer = PdfWriter()
    writer.append(str(make_pdf(tmp_path / "t.pdf", ["A typed cover letter about the loan application."])))
    writer.append(str(scan))
    writer.write(tmp_path / "half.pdf")
    (doc,) = load(tmp_path / "half.pdf")
    assert doc.metadata["unread_pages"] == [2]
    (note,) = [n for n in assess([doc]) if n.code == "unread_pages"]
    assert note.warning and "pages 2" in note.message and "domainrag[ocr]" in note.message
    with pytest.raises(MissingDependencyError, match=r"pip install 'domainrag\[ocr\]'"):
        image, _ = _page("words", "en")
        image.save(tmp_path / "photo.png")
        load(tmp_path / "photo.png")


def test_ocr_off_leaves_scans_unread_and_refuses_images(tmp_path: Path) -> None:
    scan, _ = scanned_pdf(tmp_path / "scan.pdf", ["Scanned words."])
    with pytest.raises(LoaderError, match="no extractable text"):
        load(scan, ocr="off")
    image, _ = _page("words", "en")
    image.save(tmp_path / "a.png")
    with pytest.raises(LoaderError, match='ingest.ocr = "off"'):
        load(tmp_path / "a.png", ocr="off")


@pytest.mark.parametrize("suffix", [".png", ".jpg", ".tiff"])
def test_images_are_documents(tmp_path: Path, suffix: str) -> None:
    image, drawn = _page(ENGLISH, "en", seed=5)
    path = tmp_path / f"letter{suffix}"
    image.save(path)
    (doc,) = load(path)
    assert doc.metadata["format"] == "image" and doc.metadata["ocr_pages"] == [1]
    assert {b.page for b in doc.blocks} == {1}
    assert character_error_rate(drawn, doc.text) < MAX_CER["en"]


def test_a_multi_page_tiff_keeps_its_pages(tmp_path: Path) -> None:
    first, _ = _page("Page one is about the mortgage rate.", "en", seed=1)
    second, _ = _page("第二页说明贷款的利率和期限。", "zh", seed=2)
    first.save(tmp_path / "fax.tif", save_all=True, append_images=[second])
    (doc,) = load(tmp_path / "fax.tif")
    pages = {p: " ".join(doc.text[b.start:b.end] for b in doc.blocks if b.page == p) for p in (1, 2)}
    assert "mortgage" in pages[1] and "贷款" in pages[2] and doc.metadata["page_count"] == 2


def _png_header(width: int, height: int) -> bytes:
    """A PNG whose header claims ``width`` x ``height`` pixels (the data is a few bytes)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def test_a_30000_pixel_square_image_is_refused_before_decoding(tmp_path: Path) -> None:
    (tmp_path / "bomb.png").write_bytes(_png_header(30_000, 30_000))
    started = time.monotonic()
    config = IngestConfig()
    with ParseWorker(loaders_by_extension(config), config) as worker, \
            pytest.raises(LoaderError, match="decompression bomb"):
        worker.load(FoundFile(tmp_path / "bomb.png", "bomb.png", 100))
    assert time.monotonic() - started < config.parse_timeout_s   # refused, not timed out


def test_the_pixel_limit_is_a_setting(tmp_path: Path) -> None:
    image, _ = _page("words", "en")
    image.save(tmp_path / "a.png")
    with pytest.raises(LoaderError, match=r"over ingest.max_image_pixels=10,000"):
        load(tmp_path / "a.png", max_image_pixels=10_000)


class _SlowPages(BaseLoader):
    """Takes 1.5 s per 'page' for 2 pages, asking for more time per page when ``extend``."""

    extensions: ClassVar[tuple[str, ...]] = (".slow",)
    extend = True

    def load(self, path: Path, doc_id: str) -> list[Document]:
        for _ in range(2):
            if self.extend:
                budget.extend(self.config.ocr_page_timeout_s)
            time.sleep(1.5)
        builder = DocumentBuilder()
        builder.paragraph("done")
        return [builder.build(doc_id, str(path))]


def test_slow_pages_get_more_time_and_other_slowness_does_not(tmp_path: Path) -> None:
    path = tmp_path / "a.slow"
    path.write_text("x")
    config = IngestConfig(parse_timeout_s=1, ocr_page_timeout_s=5)
    found = FoundFile(path, "a.slow", 1)
    with ParseWorker({".slow": _SlowPages(config)}, config) as worker:
        assert worker.load(found)[0].text == "done"
    stingy = _SlowPages(config)
    stingy.extend = False
    with ParseWorker({".slow": stingy}, config) as worker, pytest.raises(LoaderError, match="parse_timeout_s=1"):
        worker.load(found)


def test_a_short_typed_page_is_not_sent_to_ocr_and_a_logo_is_no_failed_attachment(tmp_path: Path) -> None:
    from office_files import make_message

    (doc,) = load(make_pdf(tmp_path / "cover.pdf", ["Chapter 3"]))
    assert doc.text == "Chapter 3" and "ocr_pages" not in doc.metadata   # no image on the page: nothing to read
    from PIL import Image

    logo = tmp_path / "logo.png"
    Image.new("L", (120, 40), 255).save(logo)
    letter, _ = _page("The loan committee meets on Tuesday.", "en")
    letter.save(tmp_path / "letter.png")
    message = make_message("Minutes", "Attached.", attachments=[("logo.png", logo.read_bytes()),
                                                                 ("letter.png", (tmp_path / "letter.png").read_bytes())])
    (tmp_path / "m.eml").write_bytes(bytes(message))
    mail, scan = load(tmp_path / "m.eml")
    assert mail.metadata["skipped_attachments"] == ["logo.png"] and "failed_attachments" not in mail.metadata
    assert "loan committee" in scan.text and scan.metadata["parent"] == "m.eml"
