from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from domainrag.config import IndexConfig
from domainrag.index.ranked import Ranked, top_n
from domainrag.index.vectors import VectorIndex
from domainrag.retrieve.fusion import fuse


def ranked(rows, scores) -> Ranked:
    return Ranked(np.asarray(rows, dtype=np.int64), np.asarray(scores, dtype=np.float32))


def test_rrf_matches_hand_computation() -> None:
    fused = fuse(ranked([1, 2, 3], [9, 5, 1]), ranked([3, 4], [0.9, 0.8]), "rrf", rrf_k=60)
    expected = {1: 1 / 61, 2: 1 / 62, 3: 1 / 63 + 1 / 61, 4: 1 / 62}
    assert list(fused.rows) == sorted(expected, key=lambda r: (-expected[r], r))
    assert np.allclose(fused.scores, sorted(expected.values(), reverse=True))


def test_convex_fusion_weights_normalised_scores() -> None:
    lex, dense = ranked([1, 2], [10, 0]), ranked([2, 3], [0.9, 0.5])
    only_lex = fuse(lex, dense, "convex", dense_weight=0.0)
    assert list(only_lex.rows[:1]) == [1]
    only_dense = fuse(lex, dense, "convex", dense_weight=1.0)
    assert list(only_dense.rows[:1]) == [2]
    mixed = fuse(lex, dense, "convex", dense_weight=0.5)
    assert dict(zip(mixed.rows.tolist(), mixed.scores.tolist(), strict=True)) == pytest.approx({1: 0.5, 2: 0.5, 3: 0.0})


def test_missing_dense_returns_lexical_unchanged() -> None:
    lex = ranked([4, 2], [3, 1])
    assert fuse(lex, None) is lex
    assert fuse(lex, Ranked.empty()) is lex
    with pytest.raises(ValueError, match="rrf"):
        fuse(lex, ranked([1], [1]), "magic")


def test_top_n_respects_mask_and_ties() -> None:
    scores = np.array([1.0, 3.0, 3.0, 2.0, -np.inf])
    assert top_n(scores, 3).rows.tolist() == [1, 2, 3]
    assert top_n(scores, 10).rows.tolist() == [1, 2, 3, 0]
    mask = np.array([True, False, True, True, True])
    assert top_n(scores, 2, mask).rows.tolist() == [2, 3]


def test_top_n_keeps_the_lowest_rows_of_a_tie_at_the_cut() -> None:
    """Which of several equal rows make the top n is decided by row, not by the partition."""
    rng = np.random.default_rng(3)
    for _ in range(50):
        scores = rng.choice([0.5, 0.9005785, 1.0, 2.0], size=int(rng.integers(20, 400))).astype(np.float32)
        n = int(rng.integers(1, len(scores)))
        expected = sorted(range(len(scores)), key=lambda r: (-scores[r], r))[:n]
        assert top_n(scores, n).rows.tolist() == expected


def test_fused_ties_follow_the_rankings_not_the_row_numbers() -> None:
    """Rows are each store's own numbers: fused ties go by the lexical order, then the dense one."""
    lexical = ranked([9, 2, 5], [3.0, 1.0, 1.0])
    dense = ranked([5, 2, 7], [0.9, 0.9, 0.1])
    assert fuse(lexical, dense, "convex", 0.5).rows.tolist() == [9, 2, 5, 7]
    assert fuse(ranked([8, 1], [1.0, 1.0]), ranked([4, 3], [1.0, 1.0]), "rrf").rows.tolist() == [8, 4, 1, 3]


def test_vector_index_exact_and_hnsw_agree() -> None:
    pytest.importorskip("faiss")
    rng = np.random.default_rng(0)
    matrix = rng.normal(size=(3000, 32)).astype(np.float32)
    matrix /= np.linalg.norm(matrix, axis=1, keepdims=True)
    exact = VectorIndex(matrix, IndexConfig(ann_threshold=10**9))
    ann = VectorIndex(matrix, IndexConfig(ann_threshold=100))
    ann.ensure_ann()
    assert ann.uses_ann and not exact.uses_ann
    queries = matrix[:50] + 0.05 * rng.normal(size=(50, 32)).astype(np.float32)
    recall = np.mean([len(set(exact.search(q, 10).rows) & set(ann.search(q, 10).rows)) / 10 for q in queries])
    assert recall >= 0.95
    mask = np.zeros(3000, dtype=bool)
    mask[::7] = True
    assert set(ann.search(queries[0], 10, mask).rows) <= set(np.flatnonzero(mask))


def write_beir(root: Path) -> Path:
    (root / "qrels").mkdir(parents=True)
    corpus = [
        {"_id": "d1", "title": "Aspirin", "text": "Aspirin reduces fever and pain."},
        {"_id": "d2", "title": "Revenue", "text": "Item | 2019 | 2018\nSales | 10 | 8\nCost | 4 | 3"},
        {"_id": "d3", "title": "", "text": "合同当事人应当遵循诚信原则。"},
    ]
    (root / "corpus.jsonl").write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in corpus))
    return root


def test_beir_import_keeps_ids_titles_and_tables(kb_factory, tmp_path: Path) -> None:
    kb = kb_factory()
    report = kb.ingest([write_beir(tmp_path / "beir")], format="beir")
    assert sorted(report.added) == ["d1", "d2", "d3"]
    doc = kb.store.document("d2")
    assert doc["title"] == "Revenue" and doc["text"].startswith("Revenue\n\nItem | 2019 | 2018\nSales")
    assert kb.search("fever", k=1)[0].doc_id == "d1"
    assert kb.search("诚信原则", k=1)[0].doc_id == "d3"
    assert kb.ingest([tmp_path / "beir"], format="beir").skipped == ["d1", "d2", "d3"]


def test_beir_bad_line_fails_alone(kb_factory, tmp_path: Path) -> None:
    root = write_beir(tmp_path / "beir")
    with (root / "corpus.jsonl").open("a") as f:
        f.write("\n{not json}\n")
    report = kb_factory().ingest([root], format="beir")
    assert len(report.added) == 3 and "line 4" in report.failed[0][1]


@pytest.mark.data
@pytest.mark.slow
def test_beir_import_and_lexical_quality_on_shared_data(kb_factory, shared_data: Path) -> None:
    from domainrag.evaluate.beir_qrels import load_beir_qrels, load_beir_queries
    from domainrag.evaluate.metrics import evaluate_run

    root = shared_data / "pubmedqa"
    kb = kb_factory(**{"embedder.model": "hash:64", "chunking.target_tokens": 200, "chunking.overlap_tokens": 32})
    report = kb.ingest([root], format="beir")
    assert len(report.added) == 1000 and not report.partial
    qrels = load_beir_qrels(root / "qrels" / "test.tsv")
    queries = load_beir_queries(root / "queries.jsonl")
    run = {}
    for qid in list(qrels)[:200]:
        hits = kb.search(queries[qid], k=10, mode="lexical", one_per_doc=True)
        run[qid] = [h.doc_id for h in hits]
    scores = evaluate_run(run, {q: qrels[q] for q in run}, metrics=("ndcg@10",))
    assert scores["ndcg@10"] > 0.8  # BM25 on PubMedQA is strong; a broken index scores ~0


def test_rank_documents_matches_one_per_doc_search(kb_factory, tmp_path) -> None:
    root = tmp_path / "docs"
    root.mkdir()
    for i in range(12):
        (root / f"d{i}.txt").write_text(f"Topic {i % 3} retention records policy number {i}. " * (i + 1))
    kb = kb_factory()
    kb.ingest([root])
    for mode in ("lexical", "dense", "hybrid"):
        expected = [h.doc_id for h in kb.search("retention records policy", 10, mode, one_per_doc=True)]
        assert kb.rank_documents("retention records policy", 10, mode) == expected


@pytest.fixture
def one_doc_kb(kb_factory, tmp_path):
    """A knowledge base holding docs/a.txt (one sentence), with vectors."""
    root = tmp_path / "docs"
    root.mkdir()
    (root / "a.txt").write_text("Customer records are kept for seven years.")
    kb = kb_factory()
    kb.ingest([root])
    return kb


def test_a_query_searched_twice_is_embedded_once(one_doc_kb, monkeypatch) -> None:
    kb = one_doc_kb
    calls: list[str] = []
    embed = kb.embedder.embed_query
    monkeypatch.setattr(kb.embedder, "embed_query", lambda q: calls.append(q) or embed(q))
    first = kb.search("how long are records kept", 3, "dense")
    assert kb.rank_documents("how long are records kept", 3, "hybrid") == [first[0].doc_id]
    kb.search("another question", 3, "dense")
    assert calls == ["how long are records kept", "another question"]


def test_prepare_loads_the_embedder_only_when_a_search_needs_it(one_doc_kb) -> None:
    from domainrag.retrieve.retriever import Retriever

    kb = one_doc_kb
    loads: list[int] = []
    retriever = Retriever(kb.store, lambda: loads.append(1) or kb.embedder, kb.config.retrieval)
    retriever.prepare("lexical")
    assert loads == []
    retriever.prepare("hybrid")
    assert loads == [1]


def test_evaluation_loads_models_before_timing_the_first_case(one_doc_kb, tmp_path, monkeypatch) -> None:
    from domainrag.evaluate.runner import EvalOptions, run_suite
    from domainrag.evaluate.runs import RunStore
    from domainrag.evaluate.suite import load_suite

    kb = one_doc_kb
    suite = tmp_path / "suite.jsonl"
    suite.write_text(json.dumps({"id": "q1", "question": "How long are records kept?", "gold": ["docs/a.txt"]}))
    events: list[str] = []
    prepare, rank = kb.retriever.prepare, kb.rank_documents
    monkeypatch.setattr(kb.retriever, "prepare", lambda mode=None: events.append("prepare") or prepare(mode))
    monkeypatch.setattr(kb, "rank_documents", lambda *a, **k: events.append("rank") or rank(*a, **k))
    run_suite(kb, load_suite(suite), EvalOptions(mode="hybrid"), RunStore(kb.path))
    assert events == ["prepare", "rank"]
