"""The embedding cache shared by every knowledge base of a machine (issue 24, item 5)."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

from domainrag.models.vector_cache import SharedVectorCache


def _docs(tmp_path: Path) -> Path:
    docs = tmp_path / "docs"
    docs.mkdir()
    for i in range(6):
        (docs / f"{i}.md").write_text(f"# Part {i}\n\nClause {i} says the tenant pays {i * 100} euros on day {i}.")
    return docs



def test_a_second_knowledge_base_embeds_nothing_already_embedded(kb_factory, tmp_path) -> None:
    docs = _docs(tmp_path)
    first = kb_factory("one").ingest([docs])
    second_kb = kb_factory("two", **{"chunking.target_tokens": 64})
    second = second_kb.ingest([docs])
    assert first.embedded == first.chunks > 0
    assert second.chunks == first.chunks and second.embedded == 0
    one, two = kb_factory("one").search("tenant pays 300", k=3), second_kb.search("tenant pays 300", k=3)
    assert [(h.chunk_id, h.score) for h in one] == [(h.chunk_id, h.score) for h in two]


def test_another_model_or_the_cache_turned_off_embeds_again(kb_factory, tmp_path) -> None:
    docs = _docs(tmp_path)
    chunks = kb_factory("one").ingest([docs]).chunks
    assert kb_factory("other-model", **{"embedder.model": "fake-en:32"}).ingest([docs]).embedded == chunks
    assert kb_factory("off", **{"ingest.shared_cache": False}).ingest([docs]).embedded == chunks


def test_the_cache_is_one_file_in_the_cache_dir_and_round_trips(tmp_path) -> None:
    cache = SharedVectorCache()
    assert cache.path == Path(os.environ["DOMAINRAG_CACHE_DIR"]) / "embeddings.sqlite3"
    vectors = {f"k{i}": np.arange(4, dtype=np.float32) + i for i in range(1000)}
    cache.put("m", vectors)
    cache.put("m", {"k1": np.zeros(4, dtype=np.float32)})   # first writer wins: same model, same text
    got = SharedVectorCache().get("m", [*vectors, "absent"])
    assert set(got) == set(vectors) and all(np.array_equal(got[k], v) for k, v in vectors.items())
    assert SharedVectorCache().get("other", ["k1"]) == {}
    cache.close()


def test_a_damaged_cache_is_a_warning_not_a_failure(kb_factory, tmp_path, caplog) -> None:
    cache_file = Path(os.environ["DOMAINRAG_CACHE_DIR"]) / "embeddings.sqlite3"
    cache_file.parent.mkdir(parents=True, exist_ok=True)
    cache_file.write_bytes(b"not a database" * 100)
    with caplog.at_level(logging.WARNING):
        report = kb_factory().ingest([_docs(tmp_path)])
    assert report.embedded == report.chunks > 0 and not report.failed
    assert "shared embedding cache" in caplog.text
