"""Hostile files (tests/hostile): every good file ingested and searchable, every bad one reported
with a one-line reason, nothing escapes ``KnowledgeBase.ingest`` or the CLI; parse budgets."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import ClassVar

import pytest
from hostile import Expected, generate

from domainrag import registry
from domainrag.config import IngestConfig
from domainrag.errors import LoaderError
from domainrag.index.builder import IndexBuilder, one_line
from domainrag.ingest.chunking import StructureChunker
from domainrag.ingest.discover import FoundFile, display_path
from domainrag.ingest.seams import BaseLoader, DocumentBuilder
from domainrag.ingest.sources import SourceItem
from domainrag.ingest.worker import ParseWorker
from domainrag.types import Document

REPO = Path(__file__).resolve().parent.parent


def _label(root: Path, item: Expected) -> str:
    """The tail every report label of ``item`` ends with (labels are a doc id or a full path)."""
    return one_line(display_path(f"{root.name}/{item.name}"))


def _doc_id(root: Path, item: Expected) -> str:
    return f"{root.name}/{display_path(item.name)}"


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Expected]]:
    base = tmp_path_factory.mktemp("hostile")
    root = base / "corpus"
    return root, generate(root, base / "outside", seed=7, huge_mb=2.0)


@pytest.mark.slow
def test_every_good_file_is_searchable_and_every_bad_one_reported(kb_factory, corpus) -> None:
    root, files = corpus
    kb = kb_factory(**{"ingest.parse_timeout_s": 60})
    report = kb.ingest([root])

    failed = {label: reason for label, reason in report.failed}
    ignored = {label for label, _ in report.ignored}
    assert all(reason and "\n" not in reason and "\n" not in label for label, reason in report.failed)

    def reported(item: Expected, labels: set[str] | dict[str, str]) -> bool:
        return any(label.endswith(_label(root, item)) for label in labels)

    taken = set(report.added)
    for item in files:
        if item.expect == "good":
            assert _doc_id(root, item) in taken, (item, failed)
            hits = kb.search(item.probe, k=3, mode="lexical")
            assert hits and hits[0].doc_id.split("#")[0] == _doc_id(root, item), (item, hits[:1])
        elif item.expect == "failed":
            assert reported(item, failed), item
        elif item.expect == "ignored":
            assert reported(item, ignored), (item, ignored)
        elif item.expect == "either":
            assert _doc_id(root, item) in taken or reported(item, failed), item
        else:
            assert _doc_id(root, item) not in taken and not reported(item, failed), item
    expected_bad = [f for f in files if f.expect in ("failed", "either")]
    assert all(any(label.endswith(_label(root, f)) for f in expected_bad) for label in failed), failed
    assert report.partial and not report.interrupted

    again = kb.ingest([root], prune=True)  # idempotent: the same failures, nothing rewritten
    assert not again.added and not again.updated and not again.removed
    assert sorted(again.failed) == sorted(report.failed)


@pytest.mark.slow
def test_cli_ingest_of_hostile_corpus_exits_3_without_traceback(corpus, tmp_path: Path) -> None:
    root, _ = corpus
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    env.pop("DOMAINRAG_TRACEBACK", None)
    command = [sys.executable, "-m", "domainrag.cli", "ingest", str(root), "--kb", str(tmp_path / "kb"),
               "--embedder", "hash:64"]
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600, errors="replace")
    assert done.returncode == 3, done.stderr[-3000:]
    assert "Traceback" not in done.stderr and "Traceback" not in done.stdout, done.stderr[-3000:]
    assert "failed" in done.stdout


class _FailingStore:
    """The real store, except that writing one source fails as a full disk would."""

    def __init__(self, store: object, bad: str) -> None:
        self.store, self.bad = store, bad

    def write(self, updates: list) -> None:
        if any(u.source == self.bad for u in updates):
            raise sqlite3.OperationalError("database or disk is full")
        self.store.write(updates)  # type: ignore[attr-defined]

    def __getattr__(self, name: str) -> object:
        return getattr(self.store, name)


def _item(name: str, text: str) -> SourceItem:
    builder = DocumentBuilder()
    builder.paragraph(text)
    document = builder.build(name, name)  # not through load_file: a plug-in source could do this
    return SourceItem(name, name, len(text), 1, lambda: name, lambda: [document])


def test_a_batch_keeps_its_good_sources_when_one_cannot_be_stored(kb_factory) -> None:
    kb = kb_factory()
    items = [_item("a", "first good text"), _item("bad", "second text"), _item("c", "third good text")]
    builder = IndexBuilder(_FailingStore(kb.store, "bad"), kb.chunker, kb._embedder_for_write, kb.analyzer)
    report = builder.run(items)  # type: ignore[arg-type]
    assert report.added == ["a", "c"]
    assert report.failed == [("bad", "cannot be stored: OperationalError: database or disk is full")]


def test_lone_surrogates_from_any_source_are_stored_as_replacement_characters(kb_factory) -> None:
    kb = kb_factory()
    builder = IndexBuilder(kb.store, kb.chunker, kb._embedder_for_write, kb.analyzer)
    report = builder.run([_item("a", "lone \ud800 surrogate zqlone"), _item("b", "fine text")])
    assert report.added == ["a", "b"] and not report.failed
    kb.store.refresh()
    assert kb.search("zqlone", mode="lexical")[0].text == "lone \ufffd surrogate zqlone"


# --- the parse worker's budgets --------------------------------------------------------------


class _Hostile(BaseLoader):
    """Test loaders registered at run time: the forked worker inherits them."""

    extensions: ClassVar[tuple[str, ...]] = (".slow", ".hog", ".crash", ".ok")

    def load(self, path: Path, doc_id: str) -> list[Document]:
        kind = path.suffix
        if kind == ".slow":
            time.sleep(120)
        elif kind == ".hog":
            hog = [bytearray(64 * 1024 * 1024) for _ in range(64)]  # 4 GB
            del hog
        elif kind == ".crash":
            os.kill(os.getpid(), signal.SIGKILL)
        builder = DocumentBuilder()
        builder.paragraph(path.read_text())
        return [builder.build(doc_id, str(path))]


def _found(path: Path) -> FoundFile:
    return FoundFile(path, path.name, path.stat().st_size)


@pytest.mark.slow
def test_worker_stops_a_slow_file_and_goes_on(tmp_path: Path) -> None:
    for name in ("a.slow", "b.ok", "c.crash", "d.ok"):
        (tmp_path / name).write_text(f"content of {name}")
    loader = _Hostile()
    config = IngestConfig(parse_timeout_s=1.5)
    with ParseWorker({s: loader for s in loader.extensions}, config) as worker:
        started = time.perf_counter()
        with pytest.raises(LoaderError, match=r"parse_timeout_s=1.5"):
            worker.load(_found(tmp_path / "a.slow"))
        assert time.perf_counter() - started < 30
        assert worker.load(_found(tmp_path / "b.ok"))[0].text == "content of b.ok"
        with pytest.raises(LoaderError, match="crashed .*SIGKILL"):
            worker.load(_found(tmp_path / "c.crash"))
        assert worker.load(_found(tmp_path / "d.ok"))[0].text == "content of d.ok"


@pytest.mark.skipif(not Path("/proc/self/statm").exists(), reason="the memory budget is enforced on Linux")
def test_worker_refuses_a_file_over_the_memory_budget(tmp_path: Path) -> None:
    (tmp_path / "a.hog").write_text("hog")
    (tmp_path / "b.ok").write_text("fine")
    loader = _Hostile()
    with ParseWorker({s: loader for s in loader.extensions}, IngestConfig(parse_memory_mb=256)) as worker:
        with pytest.raises(LoaderError, match="parse_memory_mb=256"):
            worker.load(_found(tmp_path / "a.hog"))
        assert worker.load(_found(tmp_path / "b.ok"))[0].text == "fine"


@pytest.mark.slow
def test_ingest_reports_budget_failures_per_file(kb_factory, tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "stuck.slow").write_text("never finishes")
    (docs / "fine.ok").write_text("plugin text about zqfine")
    (docs / "plain.txt").write_text("plain text about zqplain")
    registry.register("domainrag.loaders", "hostile-test", _Hostile)
    try:
        kb = kb_factory(**{"ingest.parse_timeout_s": 1.0})
        report = kb.ingest([docs])
    finally:
        registry.unregister("domainrag.loaders", "hostile-test")
    assert sorted(report.added) == ["docs/fine.ok", "docs/plain.txt"]
    assert [label for label, _ in report.failed] == ["docs/stuck.slow"]
    assert "parse_timeout_s=1" in report.failed[0][1]


def test_docx_unpacked_size_is_configurable(tmp_path: Path) -> None:
    from hostile import _body, _docx_with

    from domainrag.ingest.loaders.docx import DocxLoader

    path = tmp_path / "big.docx"
    text = " ".join(f"word{i}" for i in range(300_000))
    path.write_bytes(_docx_with(_body(f"<w:p><w:r><w:t>{text}</w:t></w:r></w:p>")))
    with pytest.raises(LoaderError, match="max_unpacked_mb=1"):
        DocxLoader(IngestConfig(max_unpacked_mb=1)).load(path, "big.docx")
    assert "word299999" in DocxLoader(IngestConfig()).load(path, "big.docx")[0].text


def test_a_50mb_single_token_becomes_bounded_chunks() -> None:
    text = "b" * (50 * 1024 * 1024)
    builder = DocumentBuilder()
    builder.paragraph(text)
    document = builder.build("huge", "mem")
    chunker = StructureChunker()
    chunks = chunker.split(document)
    assert len(chunks) == -(-len(text) // chunker.max_chars)
    assert max(len(c.text) for c in chunks) <= chunker.max_chars
    assert all(document.text[c.span.start : c.span.end] == c.text for c in chunks[:50])
    assert "".join(c.text for c in chunks) == text
