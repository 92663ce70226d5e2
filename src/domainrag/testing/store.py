"""Conformance suite for :class:`domainrag.index.store.Store` implementations.

Subclass :class:`StoreConformance` in a pytest module and provide a ``store`` fixture that yields
a fresh, empty store; every test here must pass::

    class TestMyStore(StoreConformance):
        @pytest.fixture
        def store(self, tmp_path):
            yield MyStore(tmp_path)

Rankings are read on views (``store.view()``); a scope (filters and access groups) is applied
inside each ranking, before its top n. Hybrid rankings (the two rankings fused, by every fusion
method) must come out the same whatever order the sources were written in, ties in chunk-id
order: that makes one knowledge base rank alike in every store.
"""

from __future__ import annotations

import contextlib

import numpy as np
import pytest

from ..errors import DomainragError
from ..index.store import Scope, SnapshotExpired, SourceUpdate, Store
from ..retrieve.fusion import fuse
from ..types import Chunk, Document, Span


def make_update(source: str, doc_id: str, texts: list[str], dim: int = 8, seed: int = 0,
                acl: list[str] | None = None) -> SourceUpdate:
    """A source holding one document whose chunks are ``texts`` (tokens = lower-cased words);
    ``acl``: the document's access groups."""
    text = "\n\n".join(texts)
    chunks, pos = [], 0
    for i, piece in enumerate(texts):
        chunks.append(Chunk(f"{doc_id}::{i}", doc_id, piece, Span(doc_id, pos, pos + len(piece)), ("H",), i))
        pos += len(piece) + 2
    rng = np.random.default_rng(seed)
    vectors = rng.normal(size=(len(texts), dim)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    metadata: dict[str, object] = {"kind": source.split(".")[-1]}
    if acl is not None:
        metadata["acl"] = acl
    document = Document(doc_id, text, source, title=doc_id, metadata=metadata)
    return SourceUpdate(source, f"hash-{source}-{seed}", len(text), 1, [document], chunks,
                        [t.lower().split() for t in texts], vectors)


class StoreConformance:
    """The Store contract (see :mod:`domainrag.index.store`)."""

    def test_write_then_search_sees_it(self, store: Store) -> None:
        store.write([make_update("a.txt", "a", ["apples are red", "bananas are yellow"])])
        view = store.view()
        ranked = view.lexical(["bananas"], 5)
        assert view.doc_ids(ranked.rows) == ["a"]
        hits = view.hits(ranked)
        assert hits[0].text == "bananas are yellow" and hits[0].span.start == len("apples are red") + 2

    def test_dense_search_finds_exact_vector(self, store: Store) -> None:
        update = make_update("a.txt", "a", ["one", "two", "three"])
        store.write([update])
        assert update.vectors is not None
        view = store.view()
        ranked = view.dense(update.vectors[2], 1)
        assert view.hits(ranked)[0].chunk_id == "a::2"
        assert abs(float(ranked.scores[0]) - 1.0) < 1e-5

    def test_rewrite_replaces_everything_of_a_source(self, store: Store) -> None:
        store.write([make_update("a.txt", "a", ["old text here", "more old text"])])
        store.write([make_update("a.txt", "a", ["new words"], seed=1)])
        assert store.stats()["chunks"] == 1
        assert not len(store.view().lexical(["old"], 5))
        assert store.source_states()["a.txt"].content_hash == "hash-a.txt-1"

    def test_remove_sources(self, store: Store) -> None:
        store.write([make_update("a.txt", "a", ["alpha"]), make_update("b.md", "b", ["alpha beta"])])
        assert store.remove_sources(["a.txt"]) == 1
        assert store.view().doc_ids(store.view().lexical(["alpha"], 5).rows) == ["b"]
        assert set(store.source_states()) == {"b.md"}

    def test_batch_is_atomic(self, store: Store) -> None:
        store.write([make_update("a.txt", "a", ["alpha"])])
        clash = make_update("c.txt", "a", ["duplicate id from another source"])
        with pytest.raises(DomainragError):
            store.write([make_update("b.txt", "b", ["beta"]), clash])
        assert set(store.source_states()) == {"a.txt"}
        assert not len(store.view().lexical(["beta"], 5))

    def test_filters_apply_inside_the_rankings(self, store: Store) -> None:
        store.write([make_update("a.txt", "a", ["alpha"]), make_update("b.md", "b", ["alpha"])])
        view = store.view()
        assert view.doc_ids(view.lexical(["alpha"], 5, Scope(filters={"kind": "md"})).rows) == ["b"]
        only_a = Scope(filters={"doc_id": ["a", "zzz"]})
        assert view.doc_ids(view.dense(np.ones(8, dtype=np.float32) / 8**0.5, 5, only_a).rows) == ["a"]
        assert view.doc_ids(view.lexical(["alpha"], 5, Scope(filters={"path": "b*"})).rows) == ["b"]

    def test_a_narrow_scope_still_fills_the_ranking(self, store: Store) -> None:
        """The scope is applied before the top n: the only matching document is found even when
        many outside the scope rank above it."""
        store.write([make_update(f"n{i}.txt", f"n{i}", ["alpha alpha alpha"], seed=i) for i in range(30)]
                    + [make_update("z.md", "z", ["alpha and many other words besides"], seed=99)])
        view = store.view()
        assert view.doc_ids(view.lexical(["alpha"], 2, Scope(filters={"kind": "md"})).rows) == ["z"]
        z_vector = np.asarray(make_update("z.md", "z", ["alpha and many other words besides"], seed=99).vectors)[0]
        far = -z_vector
        assert view.doc_ids(view.dense(far, 1, Scope(filters={"kind": "md"})).rows) == ["z"]

    def test_access_groups(self, store: Store) -> None:
        store.write([make_update("pub.txt", "pub", ["salary policy"]),
                     make_update("hr.txt", "hr", ["salary bands"], seed=1, acl=["hr"]),
                     make_update("fin.txt", "fin", ["salary budget"], seed=2, acl=["finance", "board"]),
                     make_update("empty.txt", "empty", ["salary empty acl"], seed=3, acl=[])])
        view = store.view()
        vector = np.ones(8, dtype=np.float32) / 8**0.5

        def seen(groups: frozenset[str] | None) -> set[str]:
            scope = Scope(groups=groups)
            lexical = set(view.doc_ids(view.lexical(["salary"], 10, scope).rows))
            dense = set(view.doc_ids(view.dense(vector, 10, scope).rows))
            assert lexical == dense
            return lexical

        assert seen(None) == {"pub", "hr", "fin", "empty"}
        assert seen(frozenset()) == {"pub", "empty"}
        assert seen(frozenset({"hr"})) == {"pub", "empty", "hr"}
        assert seen(frozenset({"board", "other"})) == {"pub", "empty", "fin"}
        both = Scope(filters={"doc_id": ["hr", "fin"]}, groups=frozenset({"hr"}))
        assert view.doc_ids(view.lexical(["salary"], 10, both).rows) == ["hr"]

    def test_manifest_and_embedding_cache_round_trip(self, store: Store) -> None:
        assert store.manifest() is None
        store.set_manifest({"embedder": {"id": "x"}})
        assert store.manifest() == {"embedder": {"id": "x"}}
        vec = np.arange(4, dtype=np.float32)
        store.cache_vectors("m", {"k1": vec})
        assert np.array_equal(store.cached_vectors("m", ["k1", "k2"])["k1"], vec)
        assert store.cached_vectors("other", ["k1"]) == {}

    def test_has_vectors_follows_writes(self, store: Store) -> None:
        assert not store.view().has_vectors
        store.write([make_update("a.txt", "a", ["alpha"])])
        assert store.view().has_vectors

    def test_empty_store_searches_return_nothing(self, store: Store) -> None:
        assert not len(store.view().lexical(["x"], 5))
        assert store.view().hits(store.view().lexical(["x"], 5)) == []

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
        ranked = view.lexical(["alpha"], 5)
        store.write([make_update("c.txt", "c", ["alpha three"])])
        assert view.lexical(["alpha"], 5).rows.tolist() == ranked.rows.tolist()  # c is not seen
        assert sorted(h.doc_id for h in view.hits(ranked)) == ["a", "b"]  # chunks still there
        store.remove_sources(["a.txt"])
        with pytest.raises(SnapshotExpired):
            view.hits(ranked)  # a's chunk is gone: the caller repeats on a new view
        with contextlib.suppress(SnapshotExpired):  # an old view answers from its state, or expires
            assert set(view.doc_ids(view.lexical(["alpha"], 5, Scope(filters={"kind": "txt"})).rows)) <= {"a", "b"}
        fresh = store.view()
        assert sorted(h.doc_id for h in fresh.hits(fresh.lexical(["alpha"], 5))) == ["b", "c"]

    def test_rankings_do_not_depend_on_write_order(self, store: Store) -> None:
        """Equal catalogs rank equally, ties included (incremental and fresh ingest agree)."""
        updates = [make_update(f"{name}.txt", name, ["same words here", f"{name} own"], seed=i)
                   for i, name in enumerate("dacb")]
        query = updates[0].vectors
        assert query is not None

        def ranking() -> list[str]:
            view = store.view()
            lexical = [h.chunk_id for h in view.hits(view.lexical(["same", "words"], 10))]
            dense = [h.chunk_id for h in view.hits(view.dense(query[0], 10))]
            return lexical + dense

        store.write(updates[:2])
        store.write(updates[2:])
        first = ranking()
        store.remove_sources([u.source for u in updates])
        store.write(updates[::-1])
        assert ranking() == first

    def test_hybrid_ranking_does_not_depend_on_write_order(self, store: Store) -> None:
        """Fused ties (duplicate chunks score alike in both rankings) go in chunk-id order in
        every store, whatever order the sources were written in and whatever row numbers the
        store gave them."""
        same = make_update("x.txt", "x", ["shared clause of the contract"], seed=7)
        assert same.vectors is not None
        names = ["e", "a", "d", "b", "c"]
        updates = [make_update(f"{n}.txt", n, ["shared clause of the contract", f"{n} own words clause"], seed=i)
                   for i, n in enumerate(names)]
        for u in updates:
            assert u.vectors is not None
            u.vectors[0] = same.vectors[0]    # the duplicate chunk has the same vector everywhere

        def hybrid() -> list[list[str]]:
            view = store.view()
            lexical = view.lexical(["shared", "clause"], 10)
            dense = view.dense(np.asarray(same.vectors)[0], 10)
            return [[h.chunk_id for h in view.hits(fuse(lexical, dense, method).head(10))]
                    for method in ("convex", "adaptive", "rrf")]

        store.write(updates)
        first = hybrid()
        assert first[0][:5] == sorted(f"{n}::0" for n in names)   # the tie, in chunk-id order
        store.remove_sources([u.source for u in updates])
        store.write(updates[::-1])
        assert hybrid() == first

    def test_parse_notes_are_kept_replaced_and_removed_with_their_source(self, store: Store) -> None:
        note = {"code": "ocr_confidence", "message": "OCR confidence below 0.80 on pages 2 — 扫描", "warning": True}
        first = make_update("scan.pdf", "scan", ["a scanned page"])
        first.notes = [note, {"code": "ocr", "message": "1 page recognised by OCR", "warning": False}]
        store.write([first, make_update("clean.txt", "clean", ["clean text"])])
        assert store.parse_notes() == {"scan.pdf": first.notes}
        again = make_update("scan.pdf", "scan", ["a rescanned page"], seed=1)
        again.notes = [note]
        store.write([again])
        assert store.parse_notes() == {"scan.pdf": [note]}
        store.write([make_update("scan.pdf", "scan", ["a clean copy"], seed=2)])
        assert store.parse_notes() == {}
        store.write([again])
        store.remove_sources(["scan.pdf"])
        assert store.parse_notes() == {}
        store.write([again])
        store.clear()
        assert store.parse_notes() == {}
