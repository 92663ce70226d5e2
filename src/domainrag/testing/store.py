"""Conformance suite for :class:`domainrag.index.store.Store` implementations.

Subclass :class:`StoreConformance` in a pytest module and provide a ``store`` fixture that yields
a fresh, empty store; every test here must pass::

    class TestMyStore(StoreConformance):
        @pytest.fixture
        def store(self, tmp_path):
            yield MyStore(tmp_path)
"""

from __future__ import annotations

import numpy as np
import pytest

from ..errors import DomainragError
from ..index.store import SnapshotExpired, SourceUpdate, Store
from ..types import Chunk, Document, Span


def make_update(source: str, doc_id: str, texts: list[str], dim: int = 8, seed: int = 0) -> SourceUpdate:
    """A source holding one document whose chunks are ``texts`` (tokens = lower-cased words)."""
    text = "\n\n".join(texts)
    chunks, pos = [], 0
    for i, piece in enumerate(texts):
        chunks.append(Chunk(f"{doc_id}::{i}", doc_id, piece, Span(doc_id, pos, pos + len(piece)), ("H",), i))
        pos += len(piece) + 2
    rng = np.random.default_rng(seed)
    vectors = rng.normal(size=(len(texts), dim)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    document = Document(doc_id, text, source, title=doc_id, metadata={"kind": source.split(".")[-1]})
    return SourceUpdate(source, f"hash-{source}-{seed}", len(text), 1, [document], chunks,
                        [t.lower().split() for t in texts], vectors)


class StoreConformance:
    """The Store contract (see ``domainrag/index/base.py``)."""

    def test_write_then_search_sees_it(self, store: Store) -> None:
        store.write([make_update("a.txt", "a", ["apples are red", "bananas are yellow"])])
        ranked = store.lexical(["bananas"], 5, None)
        assert store.doc_ids(ranked.rows) == ["a"]
        hits = store.hits(ranked)
        assert hits[0].text == "bananas are yellow" and hits[0].span.start == len("apples are red") + 2

    def test_dense_search_finds_exact_vector(self, store: Store) -> None:
        update = make_update("a.txt", "a", ["one", "two", "three"])
        store.write([update])
        assert update.vectors is not None
        ranked = store.dense(update.vectors[2], 1, None)
        assert store.hits(ranked)[0].chunk_id == "a::2"
        assert abs(float(ranked.scores[0]) - 1.0) < 1e-5

    def test_rewrite_replaces_everything_of_a_source(self, store: Store) -> None:
        store.write([make_update("a.txt", "a", ["old text here", "more old text"])])
        store.write([make_update("a.txt", "a", ["new words"], seed=1)])
        assert store.stats()["chunks"] == 1
        assert not len(store.lexical(["old"], 5, None))
        assert store.source_states()["a.txt"].content_hash == "hash-a.txt-1"

    def test_remove_sources(self, store: Store) -> None:
        store.write([make_update("a.txt", "a", ["alpha"]), make_update("b.md", "b", ["alpha beta"])])
        assert store.remove_sources(["a.txt"]) == 1
        assert store.doc_ids(store.lexical(["alpha"], 5, None).rows) == ["b"]
        assert set(store.source_states()) == {"b.md"}

    def test_batch_is_atomic(self, store: Store) -> None:
        store.write([make_update("a.txt", "a", ["alpha"])])
        clash = make_update("c.txt", "a", ["duplicate id from another source"])
        with pytest.raises(DomainragError):
            store.write([make_update("b.txt", "b", ["beta"]), clash])
        assert set(store.source_states()) == {"a.txt"}
        assert not len(store.lexical(["beta"], 5, None))

    def test_filters_become_masks(self, store: Store) -> None:
        store.write([make_update("a.txt", "a", ["alpha"]), make_update("b.md", "b", ["alpha"])])
        assert store.allowed(None) is None
        mask = store.allowed({"kind": "md"})
        assert store.doc_ids(store.lexical(["alpha"], 5, mask).rows) == ["b"]
        mask = store.allowed({"doc_id": ["a", "zzz"]})
        assert store.doc_ids(store.dense(np.ones(8, dtype=np.float32) / 8**0.5, 5, mask).rows) == ["a"]

    def test_manifest_and_embedding_cache_round_trip(self, store: Store) -> None:
        assert store.manifest() is None
        store.set_manifest({"embedder": {"id": "x"}})
        assert store.manifest() == {"embedder": {"id": "x"}}
        vec = np.arange(4, dtype=np.float32)
        store.cache_vectors("m", {"k1": vec})
        assert np.array_equal(store.cached_vectors("m", ["k1", "k2"])["k1"], vec)
        assert store.cached_vectors("other", ["k1"]) == {}

    def test_has_vectors_follows_writes(self, store: Store) -> None:
        assert not store.has_vectors
        store.write([make_update("a.txt", "a", ["alpha"])])
        assert store.has_vectors

    def test_empty_store_searches_return_nothing(self, store: Store) -> None:
        assert not len(store.lexical(["x"], 5, None))
        assert store.hits(store.lexical(["x"], 5, None)) == []

    def test_corpus_hash_follows_the_sources(self, store: Store) -> None:
        empty = store.corpus_hash()
        store.write([make_update("a.txt", "a", ["alpha"])])
        one = store.corpus_hash()
        assert one != empty and store.corpus_hash() == one

    def test_iter_documents_lists_every_document(self, store: Store) -> None:
        store.write([make_update("b.txt", "b", ["beta"]), make_update("a.txt", "a", ["alpha"])])
        assert [d["id"] for d in store.iter_documents()] == ["a", "b"]

    def test_a_view_is_one_committed_state(self, store: Store) -> None:
        store.write([make_update("a.txt", "a", ["alpha one"]), make_update("b.txt", "b", ["alpha two"])])
        view = store.view()
        ranked = view.lexical(["alpha"], 5, None)
        store.write([make_update("c.txt", "c", ["alpha three"])])
        assert view.lexical(["alpha"], 5, None).rows.tolist() == ranked.rows.tolist()  # c is not seen
        assert sorted(h.doc_id for h in view.hits(ranked)) == ["a", "b"]  # chunks still there
        store.remove_sources(["a.txt"])
        with pytest.raises(SnapshotExpired):
            view.hits(ranked)  # a's chunk is gone: the caller repeats on a new view
        with pytest.raises(SnapshotExpired):
            view.allowed({"kind": "txt"})
        fresh = store.view()
        assert sorted(h.doc_id for h in fresh.hits(fresh.lexical(["alpha"], 5, None))) == ["b", "c"]

    def test_rankings_do_not_depend_on_write_order(self, store: Store) -> None:
        """Equal catalogs rank equally, ties included (incremental and fresh ingest agree)."""
        updates = [make_update(f"{name}.txt", name, ["same words here", f"{name} own"], seed=i)
                   for i, name in enumerate("dacb")]
        query = updates[0].vectors
        assert query is not None

        def ranking() -> list[str]:
            view = store.view()
            lexical = [h.chunk_id for h in view.hits(view.lexical(["same", "words"], 10, None))]
            dense = [h.chunk_id for h in view.hits(view.dense(query[0], 10, None))]
            return lexical + dense

        store.write(updates[:2])
        store.write(updates[2:])
        first = ranking()
        store.remove_sources([u.source for u in updates])
        store.write(updates[::-1])
        assert ranking() == first
