"""A hostile-input corpus: broken and malicious files mixed with good ones, each labelled with
what an ingest must do with it.

``generate(root, outside)`` writes one round of every hostile kind plus good files under
``root`` (and link targets under ``outside``, a folder that is not ingested) and returns the
:class:`Expected` files. Expectations:

- ``good``: ingested, and a lexical search for its ``probe`` word finds it;
- ``failed``: reported in ``IngestReport.failed`` with a reason;
- ``ignored``: reported in ``IngestReport.ignored`` (unsupported type, link leaving the folder);
- ``excluded``: silently not taken (the default ``**/.*`` exclude);
- ``either``: damaged files a lenient parser may partly read: ingested or failed, never lost.

Plain good files have kinds starting with ``good-``; every other file is hostile (some of them,
such as a lone surrogate in JSON or a name that is not UTF-8, must still be ingested).

Used by ``tests/test_hostile_ingest.py`` and ``benchmarks/hardening.py`` (many rounds).
"""

from __future__ import annotations

import io
import json
import os
import random
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

MB = 1024 * 1024


@dataclass(frozen=True)
class Expected:
    """One generated file: its path relative to the ingested root (bytes: names need not be
    UTF-8), what must happen to it, and for good files a word only it contains."""

    rel: bytes
    kind: str
    expect: str
    probe: str = ""

    @property
    def name(self) -> str:
        """The relative path as Python holds it (undecodable bytes as surrogates)."""
        return os.fsdecode(self.rel)


class _Writer:
    def __init__(self, root: Path, outside: Path, seed: int) -> None:
        self.root, self.outside = root, outside
        self.rng = random.Random(seed)
        self.files: list[Expected] = []
        self.counter = seed * 1000

    def probe(self) -> str:
        self.counter += 1
        letters = "".join(self.rng.choice("bcdfghjklmnpqrstvwxz") for _ in range(6))
        return f"zq{letters}{self.counter}"

    def add(self, rel: str | bytes, data: bytes, kind: str, expect: str, probe: str = "") -> Path:
        raw = os.fsencode(rel)
        path = Path(os.fsdecode(os.fsencode(self.root) + b"/" + raw))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        self.files.append(Expected(raw, kind, expect, probe))
        return path

    def mark(self, rel: str | bytes, kind: str, expect: str) -> Path:
        raw = os.fsencode(rel)
        self.files.append(Expected(raw, kind, expect))
        path = Path(os.fsdecode(os.fsencode(self.root) + b"/" + raw))
        path.parent.mkdir(parents=True, exist_ok=True)
        return path


def generate(root: Path, outside: Path, seed: int = 0, huge_mb: float = 5.0, heavy: bool = True) -> list[Expected]:
    """Write one round of the hostile corpus (see module docstring). ``huge_mb`` sizes the
    single-token and single-line texts; ``heavy`` adds the costly kinds (zip bombs, a FIFO,
    symlink escapes) that one round per corpus is enough of."""
    root.mkdir(parents=True, exist_ok=True)
    outside.mkdir(parents=True, exist_ok=True)
    w = _Writer(root, outside, seed)
    for make in ROUND:
        make(w)
    _huge(w, huge_mb)
    if heavy:
        _heavy(w)
    return w.files


# -- good files ------------------------------------------------------------------------------
def _good_files(w: _Writer) -> None:
    p = w.probe()
    text = f"Plain text about aspirin dosage {p}.\n\nA second paragraph."
    w.add("good/plain.txt", text.encode(), "good-txt", "good", p)
    p = w.probe()
    w.add("good/notes.md", f"# Notes\n\nMarkdown body mentioning {p} and more.\n".encode(), "good-md", "good", p)
    p = w.probe()
    html = f"<html><head><title>Page</title><script>var x = 'evil';</script></head><body><p>Body {p}</p></body></html>"
    w.add("good/page.html", html.encode(), "good-html", "good", p)
    p = w.probe()
    w.add("good/rows.csv", f"name,value\nalpha,{p}\nbeta,2\n".encode(), "good-csv", "good", p)
    p = w.probe()
    record = json.dumps({"_id": "r1", "text": f"record {p}"}) + "\n"
    w.add("good/records.jsonl", record.encode(), "good-jsonl", "good", p)
    p = w.probe()
    w.add("good/report.docx", _docx(f"Quarterly report {p}"), "good-docx", "good", p)
    p = w.probe()
    w.add("good/paper.pdf", _pdf([f"Clinical paper {p}"]), "good-pdf", "good", p)


# -- PDF ---------------------------------------------------------------------------------------
def _pdfs(w: _Writer) -> None:
    data = _pdf([f"Truncated paper {w.probe()}"] * 3)
    cut = w.rng.randint(len(data) // 4, len(data) * 3 // 4)
    w.add("pdf/truncated.pdf", data[:cut], "pdf-truncated", "either")
    start = data.rfind(b"xref")
    garbage = data[:start] + bytes(w.rng.randrange(256) for _ in range(200)) + data[start + 200 :]
    w.add("pdf/garbage-xref.pdf", garbage, "pdf-garbage-xref", "either")
    w.add("pdf/encrypted.pdf", _pdf(["Secret"], encrypt="s3cret"), "pdf-encrypted", "failed")
    huge_count = data.replace(b"/Count 3", b"/Count 2147483647")
    w.add("pdf/huge-page-count.pdf", huge_count, "pdf-huge-count", "either")
    w.add("pdf/random.pdf", b"%PDF-1.7\n" + w.rng.randbytes(4000), "pdf-random", "failed")
    w.add("pdf/empty-page.pdf", _pdf([""]), "pdf-no-text", "failed")


def _pdf(lines: list[str], encrypt: str | None = None) -> bytes:
    from reportlab.pdfgen import canvas

    buffer = io.BytesIO()
    pdf = canvas.Canvas(buffer, encrypt=encrypt)
    for line in lines:
        pdf.drawString(72, 720, line)
        pdf.showPage()
    pdf.save()
    return buffer.getvalue()


# -- DOCX --------------------------------------------------------------------------------------
_BASE_DOCX: dict[str, bytes] = {}


def _docx(text: str) -> bytes:
    import docx

    document = docx.Document()
    document.add_paragraph(text)
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def _docx_with(document_xml: bytes, extra: dict[str, bytes] | None = None, level: int = 6) -> bytes:
    """A minimal valid package whose word/document.xml is ``document_xml``."""
    if not _BASE_DOCX:
        with zipfile.ZipFile(io.BytesIO(_docx("base"))) as base:
            _BASE_DOCX.update({name: base.read(name) for name in base.namelist()})
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=level) as out:
        for name, data in _BASE_DOCX.items():
            out.writestr(name, document_xml if name == "word/document.xml" else data)
        for name, data in (extra or {}).items():
            out.writestr(name, data)
    return buffer.getvalue()


_W = 'xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"'


def _body(inner: str, prolog: str = "") -> bytes:
    return (f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n{prolog}'
            f"<w:document {_W}><w:body>{inner}</w:body></w:document>").encode()


def _docx_files(w: _Writer) -> None:
    laughs = '<!DOCTYPE lolz [<!ENTITY lol "lol">' + "".join(
        f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">' for i in range(1, 10)
    ) + "]>"
    w.add("docx/billion-laughs.docx", _docx_with(_body("<w:p><w:r><w:t>&lol9;</w:t></w:r></w:p>", laughs)),
          "docx-xml-bomb", "failed")
    xxe = '<!DOCTYPE d [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
    w.add("docx/external-entity.docx", _docx_with(_body("<w:p><w:r><w:t>&xxe;</w:t></w:r></w:p>", xxe)),
          "docx-xxe", "failed")
    w.add("docx/truncated.docx", _docx("cut short")[:700], "docx-truncated", "failed")
    w.add("docx/not-a-zip.docx", b"PK\x03\x04" + w.rng.randbytes(2000), "docx-garbage", "failed")
    w.add("docx/bad-xml.docx", _docx_with(b"<w:document><unclosed>"), "docx-bad-xml", "failed")


# -- HTML --------------------------------------------------------------------------------------
def _html_files(w: _Writer) -> None:
    depth = w.rng.randint(5000, 20000)
    p = w.probe()
    w.add("html/deep-nesting.html", ("<div>" * depth + f"deep {p}" + "</div>" * depth).encode(), "html-deep", "either")
    w.add("html/only-scripts.html", b"<html><script>" + b"alert(1);" * 1000 + b"</script></html>", "html-script",
          "failed")
    p = w.probe()
    attr = "x" * w.rng.randint(1 * MB, 3 * MB)
    w.add("html/huge-attribute.html", f'<p title="{attr}">text {p}</p>'.encode(), "html-huge-attr", "either")
    p = w.probe()
    w.add("html/unclosed.html", f"<html><body><p>broken <b>markup {p} <table><tr><td>cell".encode(), "html-unclosed",
          "good", p)


# -- encodings ---------------------------------------------------------------------------------
def _encodings(w: _Writer) -> None:
    p = w.probe()
    w.add("enc/utf16.txt", f"UTF-16 text with a byte-order mark {p}.".encode("utf-16"), "utf16", "good", p)
    p = w.probe()
    w.add("enc/latin1.txt", f"Café résumé naïve façade {p} déjà vu.".encode("cp1252"), "cp1252", "good", p)
    p = w.probe()
    mixed = f"Mostly ASCII {p} with stray bytes ".encode() + b"\xff\xfe\x80 and more text.\n"
    w.add("enc/stray-bytes.txt", mixed, "stray-bytes", "good", p)
    w.add("enc/binary.txt", bytes(range(256)) * 40, "binary", "failed")
    w.add("enc/bad-bom.txt", b"\xef\xbb\xbf" + b"\xff\xfe\xfd" * 30, "bad-bom", "failed")


# -- JSON --------------------------------------------------------------------------------------
def _json_files(w: _Writer) -> None:
    p = w.probe()
    w.add("json/lone-surrogate.json", ('{"title": "t \\ud800", "text": "lone \\udc00 surrogate ' + p + '"}').encode(),
          "json-surrogate", "good", p)
    p = w.probe()
    w.add("json/surrogate-id.jsonl", ('{"_id": "\\ud83d", "text": "id surrogate ' + p + '"}\n').encode(),
          "json-surrogate-id", "good", p)
    w.add("json/invalid.json", b'{"text": "unterminated', "json-invalid", "failed")
    w.add("json/deep.json", b"[" * 200_000 + b"]" * 200_000, "json-deep", "failed")
    w.add("json/no-text.json", b'[{"a": 1}, {"b": 2}]', "json-no-text", "failed")


# -- CSV ---------------------------------------------------------------------------------------
def _csv_files(w: _Writer) -> None:
    p = w.probe()
    w.add("csv/sniffer-killer.csv", (f"{p}" + ', "' * 20000).encode(), "csv-sniffer", "either")
    p = w.probe()
    w.add("csv/quoted-lines.csv", (f"{p},b\n" + 'a,b,"c\n' * 8000).encode(), "csv-quotes", "either")
    w.add("csv/huge-field.csv", b'a,"' + b"x" * 300_000 + b'"\n', "csv-huge-field", "either")


# -- names -------------------------------------------------------------------------------------
def _names(w: _Writer) -> None:
    for rel, kind in ((b"names/caf\xe9-latin1-name.txt", "name-not-utf8"), ("names/line\nbreak.txt", "name-newline"),
                      ("names/-rf --help.txt", "name-dash"), ("names/a..b.txt", "name-dots"),
                      ("names/[bold]markup[/bold] [/quote].txt", "name-markup"),
                      ("names/ünï cødé 文件.txt", "name-unicode"), ("names/tab\there.txt", "name-tab")):
        p = w.probe()
        w.add(rel, f"Odd name, good content {p}.".encode(), kind, "good", p)
    w.add("names/..hidden-dots.txt", b"hidden by the default exclude", "name-leading-dots", "excluded")
    w.add(b"names/\xff\xfe-binary-name.exe", b"MZ", "name-not-utf8-unsupported", "ignored")
    w.add(b"names/\xff-empty.txt", b"", "name-not-utf8-empty", "failed")
    # A failing file whose path is Rich markup: its reason line must print as written.
    w.add("names/[/[link=x]y[/link] [/quote].txt", b"", "name-markup-failed", "failed")


# -- symlinks ----------------------------------------------------------------------------------
def _links(w: _Writer) -> None:
    a, b = w.mark("links/ping.txt", "symlink-pair", "failed"), w.mark("links/pong.txt", "symlink-pair", "failed")
    a.symlink_to(b.name)
    b.symlink_to(a.name)
    w.mark("links/self.md", "symlink-self", "failed").symlink_to("self.md")
    w.mark("links/loop", "symlink-dir-loop", "failed").symlink_to("..", target_is_directory=True)
    w.mark("links/broken.txt", "symlink-broken", "failed").symlink_to("does-not-exist.txt")
    secret = w.outside / f"secret-{w.counter}.txt"
    secret.write_text(f"outside the folder {w.probe()}")
    w.mark("links/escape.txt", "symlink-escape-file", "ignored").symlink_to(secret)
    folder = w.outside / f"folder-{w.counter}"
    folder.mkdir(exist_ok=True)
    (folder / "inner.txt").write_text(f"outside folder {w.probe()}")
    w.mark("links/escape-dir", "symlink-escape-dir", "ignored").symlink_to(folder, target_is_directory=True)
    p = w.probe()
    target = w.add("links/real.txt", f"Real file {p}".encode(), "symlink-target", "good", p)
    w.mark("links/alias.txt", "symlink-inside", "ignored").symlink_to(target.name)


# -- odd files ---------------------------------------------------------------------------------
def _odd_files(w: _Writer) -> None:
    w.add("odd/empty.txt", b"", "empty", "failed")
    w.add("odd/blank.md", b" \n\n\t \n", "blank", "failed")
    w.add("odd/program.exe", b"MZ\x90\x00", "unsupported", "ignored")
    w.add("odd/nul.txt", b"text\x00with\x00nuls" * 100, "nul-bytes", "failed")
    if os.geteuid() != 0:  # root reads a chmod 000 file anyway: nothing to test there
        w.add("odd/unreadable.txt", b"secret", "unreadable", "failed").chmod(0)


def _huge(w: _Writer, huge_mb: float) -> None:
    size = int(huge_mb * MB)
    p = w.probe()
    w.add("huge/one-token.txt", (p + " " + "a" * size).encode(), "huge-token", "good", p)
    p = w.probe()
    words = " ".join(w.rng.choice(("dose", "risk", "aspirin", "mg", "daily")) for _ in range(size // 6))
    w.add("huge/one-line.txt", f"{p} {words}".encode(), "huge-line", "good", p)


def _heavy(w: _Writer) -> None:
    bomb = _docx_with(_body("<w:p><w:r><w:t>" + " " * (40 * MB) + "</w:t></w:r></w:p>"), level=9)
    w.add("docx/zip-bomb.docx", bomb, "docx-zip-bomb", "failed")
    many = {f"word/media/pad{i}.bin": b"" for i in range(10_500)}
    w.add("docx/many-entries.docx", _docx_with(_body("<w:p/>"), many), "docx-entries", "failed")
    fifo = w.mark("odd/fifo.txt", "fifo", "failed")
    os.mkfifo(fifo)


#: The kinds written by every round.
ROUND: tuple[Callable[[_Writer], None], ...] = (_good_files, _pdfs, _docx_files, _html_files, _encodings,
                                                _json_files, _csv_files, _names, _links, _odd_files)
