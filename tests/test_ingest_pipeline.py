"""Ingest overlaps reading with embedding: a batch is embedded on a background thread while the
next batch's sources are read, chunked and analysed; store calls stay on the calling thread and
batches are written in order."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from domainrag.errors import EmbeddingError
from domainrag.index.builder import IndexBuilder
from domainrag.index.sqlite_store import SQLiteStore
from domainrag.ingest.chunking import StructureChunker
from domainrag.ingest.sources import SourceItem, sha256_bytes
from domainrag.models.hash_embedder import HashEmbedder
from domainrag.types import Document

#: Long enough for a test that fails to hang no more than this; a passing test never waits it out.
WAIT_S = 10.0


class RecordingEmbedder(HashEmbedder):
    """The hash embedder, noting the thread and texts of each call; ``gate`` (when set) must be
    set by someone else before a call may return."""

    def __init__(self) -> None:
        super().__init__("16")
        self.threads: list[str] = []
        self.calls: list[list[str]] = []
        self.gate: threading.Event | None = None
        self.gate_opened: list[bool] = []

    def embed_batch(self, texts: Sequence[str]) -> np.ndarray:
        self.threads.append(threading.current_thread().name)
        self.calls.append(list(texts))
        if self.gate is not None:
            self.gate_opened.append(self.gate.wait(WAIT_S))
        return super().embed_batch(texts)


def item(name: str, text: str, loaded: threading.Event | None = None) -> SourceItem:
    def load() -> list[Document]:
        if loaded is not None:
            loaded.set()
        return [Document(id=name, text=text, source=name)]

    return SourceItem(name, name, len(text), 1, lambda: sha256_bytes(text.encode()), load)


@pytest.fixture
def store(tmp_path: Path) -> SQLiteStore:
    return SQLiteStore(tmp_path / "kb")


def builder(store: SQLiteStore, embedder: RecordingEmbedder) -> IndexBuilder:
    return IndexBuilder(store, StructureChunker(), lambda: embedder, batch_chunks=1)


def test_the_next_source_is_read_while_a_batch_embeds(store: SQLiteStore) -> None:
    """Each call to embed waits until the following source was loaded: that happens only when
    loading runs while embedding is still under way."""
    embedder = RecordingEmbedder()
    embedder.gate = loaded = threading.Event()
    first = item("a", "Aspirin lowers the risk of heart attacks.")
    second = item("b", "Metformin treats type 2 diabetes.", loaded=loaded)
    report = builder(store, embedder).run([first, second])
    assert embedder.gate_opened[0] is True
    assert report.added == ["a", "b"] and not report.failed
    assert all(name != threading.current_thread().name for name in embedder.threads)


def test_every_chunk_is_stored_with_its_own_vector(store: SQLiteStore) -> None:
    embedder = RecordingEmbedder()
    texts = {f"doc{i}": f"Passage {i} about topic {i % 3}." for i in range(7)}
    report = builder(store, embedder).run([item(name, text) for name, text in texts.items()])
    assert report.added == list(texts) and report.chunks == 7 and report.embedded == 7
    view = store.view()
    for name, text in texts.items():
        ranked = view.dense(HashEmbedder("16").embed_query(text), 1, None)
        assert view.doc_ids(ranked.rows) == [name]


def test_a_text_already_embedded_by_an_earlier_batch_is_not_embedded_again(store: SQLiteStore) -> None:
    embedder = RecordingEmbedder()
    same = "The same sentence in two files."
    report = builder(store, embedder).run([item("a", same), item("b", same), item("c", "Another one.")])
    assert report.added == ["a", "b", "c"]
    assert [t for call in embedder.calls for t in call].count(same) == 1
    assert report.embedded == 2


def test_an_embedding_error_surfaces_from_the_ingest(store: SQLiteStore) -> None:
    class Broken(RecordingEmbedder):
        def embed_batch(self, texts: Sequence[str]) -> np.ndarray:
            raise EmbeddingError("model crashed")

    with pytest.raises(EmbeddingError, match="model crashed"):
        builder(store, Broken()).run([item("a", "One."), item("b", "Two.")])
