"""A fresh process's search: the same hits as a warm one, without the ingest-only libraries, with
the embedder loaded once in the background (``KnowledgeBase.open(preload=...)``), and the BM25
index read from disk scoring exactly as bm25s does."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from domainrag import KnowledgeBase, registry
from domainrag.errors import EmbeddingError
from domainrag.index.lexical import LexicalIndex
from domainrag.models.hash_embedder import HashEmbedder

REPO = Path(__file__).resolve().parent.parent
DOCS = {
    "kidney.md": "# Kidney disease\n\nMetformin dose is reduced when kidney function falls.\n\n"
                 "## Dialysis\n\nDialysis filters the blood when the kidneys fail.",
    "thyroid.md": "# Hypothyroidism\n\nLevothyroxine, a synthetic thyroxine, treats hypothyroidism.",
    "revenue.md": "# Revenue 2019\n\nRevenues from FinTech and Business Services increased in 2019.",
    "law.txt": "劳动者在用人单位连续工作满十年的，可以签订无固定期限劳动合同。",
}
QUERIES = ("metformin dose for kidney disease", "what treats hypothyroidism", "revenue increase 2019",
           "无固定期限劳动合同")


def _build(tmp_path: Path, embedder: str) -> Path:
    folder = tmp_path / "docs"
    folder.mkdir(exist_ok=True)
    for name, text in DOCS.items():
        (folder / name).write_text(text, encoding="utf-8")
    kb_dir = tmp_path / embedder.replace(":", "-")
    with KnowledgeBase.open(kb_dir, create=True, overrides={"embedder.model": embedder}) as kb:
        kb.ingest([folder])
    return kb_dir


@pytest.fixture
def built_kb(tmp_path: Path) -> Path:
    return _build(tmp_path, "hash:64")


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    return subprocess.run([sys.executable, "-m", "domainrag.cli", *args], capture_output=True, text=True, env=env,
                          check=False)


@pytest.mark.parametrize("mode", ["hybrid", "lexical", "dense"])
def test_a_cold_cli_search_returns_the_hits_of_a_warm_one(built_kb: Path, mode: str) -> None:
    with KnowledgeBase.open(built_kb) as kb:
        for query in QUERIES:
            kb.search(query, k=5, mode=mode)  # warm: indexes and embedder loaded, query cache filled
        warm = {q: [h.to_dict() for h in kb.search(q, k=5, mode=mode)] for q in QUERIES}
    for query in QUERIES:
        proc = _cli("search", query, "--kb", str(built_kb), "-k", "5", "--mode", mode, "--json")
        assert proc.returncode == 0, proc.stderr
        assert json.loads(proc.stdout) == warm[query]


def test_a_search_process_imports_neither_bm25s_nor_scipy_nor_the_ingest_machinery(built_kb: Path) -> None:
    script = (
        "import sys\nfrom domainrag import KnowledgeBase\n"
        f"with KnowledgeBase.open({str(built_kb)!r}, preload=True) as kb:\n"
        "    assert kb.search('metformin dose', k=3)\n"
        "print(sorted(m for m in ('bm25s', 'scipy', 'domainrag.index.builder', 'domainrag.ingest.files', "
        "'domainrag.evaluate', 'jieba') if m in sys.modules))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


class _Counting(HashEmbedder):
    loads = 0
    threads: list[str] = []
    fail = False

    def __init__(self, model_name: str = "64", config: object = None) -> None:
        type(self).loads += 1
        type(self).threads.append(threading.current_thread().name)
        if type(self).fail:
            raise EmbeddingError("counting: the model file is damaged")
        super().__init__(model_name, config)  # type: ignore[arg-type]


@pytest.fixture
def counting(tmp_path: Path) -> Iterator[tuple[type[_Counting], Path]]:
    """The counting embedder's class, after a knowledge base was built with it (returned)."""
    registry.register("domainrag.embedders", "counting", _Counting)
    kb_dir = _build(tmp_path, "counting:64")
    _Counting.loads, _Counting.threads, _Counting.fail = 0, [], False
    yield _Counting, kb_dir
    registry.unregister("domainrag.embedders", "counting")


def test_preload_loads_the_embedder_once_on_a_background_thread(counting: tuple[type[_Counting], Path]) -> None:
    counting_cls, kb_dir = counting
    with KnowledgeBase.open(kb_dir) as reference:
        expected = [h.to_dict() for h in reference.search(QUERIES[0], k=5)]
    counting_cls.loads, counting_cls.threads = 0, []
    with KnowledgeBase.open(kb_dir, preload=True) as kb:
        hits = [h.to_dict() for h in kb.search(QUERIES[0], k=5)]
        kb.search(QUERIES[1], k=5)
    assert hits == expected
    assert counting_cls.loads == 1 and counting_cls.threads == ["domainrag-preload"]


def test_a_lexical_preload_loads_no_model(counting: tuple[type[_Counting], Path]) -> None:
    counting_cls, kb_dir = counting
    with KnowledgeBase.open(kb_dir, preload="lexical") as kb:
        kb.search(QUERIES[0], k=5, mode="lexical")
    assert counting_cls.loads == 0


def test_a_failed_preload_raises_to_the_search_not_the_thread(counting: tuple[type[_Counting], Path]) -> None:
    counting_cls, kb_dir = counting
    counting_cls.fail = True
    with KnowledgeBase.open(kb_dir, preload=True) as kb:
        with pytest.raises(EmbeddingError, match="damaged"):
            kb.search(QUERIES[0], k=5)
        assert kb.search(QUERIES[0], k=5, mode="lexical")
    assert counting_cls.threads == ["domainrag-preload", "MainThread"]


def _corpus() -> list[list[str]]:
    rng = np.random.default_rng(7)
    words = [f"w{i}" for i in range(300)]
    return [[words[int(j)] for j in rng.zipf(1.3, size=int(rng.integers(1, 60))) % 300] for _ in range(400)]


def test_a_saved_bm25_index_scores_exactly_as_bm25s(tmp_path: Path) -> None:
    bm25s = pytest.importorskip("bm25s")
    corpus = _corpus()
    reference = bm25s.BM25(k1=1.2, b=0.75, method="lucene")
    reference.index(corpus, show_progress=False)
    built = LexicalIndex.build(corpus)
    built.save(tmp_path / "lexical", 5)
    loaded = LexicalIndex.load(tmp_path / "lexical", 5)
    assert loaded is not None and LexicalIndex.load(tmp_path / "lexical", 6) is None
    rng = np.random.default_rng(3)
    for _ in range(100):
        query = [f"w{int(i)}" for i in rng.integers(0, 320, size=int(rng.integers(1, 8)))]
        query += query[:1]  # a repeated term counts twice, as in bm25s
        expected = reference.get_scores(query)
        assert np.array_equal(built.scores(query), expected)
        assert np.array_equal(loaded.scores(query), expected)
        a, b = built.search(query, 20), loaded.search(query, 20)
        assert np.array_equal(a.rows, b.rows) and np.array_equal(a.scores, b.scores)


def test_an_index_saved_by_bm25s_itself_loads(tmp_path: Path) -> None:
    bm25s = pytest.importorskip("bm25s")
    corpus = _corpus()
    reference = bm25s.BM25(k1=1.2, b=0.75, method="lucene")
    reference.index(corpus, show_progress=False)
    folder = tmp_path / "lexical"
    reference.save(str(folder), show_progress=False)
    (folder / "state.json").write_text(json.dumps({"generation": 2, "size": len(corpus)}))
    loaded = LexicalIndex.load(folder, 2)
    assert loaded is not None
    assert np.array_equal(loaded.scores(["w1", "w2", "w299"]), reference.get_scores(["w1", "w2", "w299"]))


def test_bm25_files_of_other_parameters_are_refused(tmp_path: Path) -> None:
    LexicalIndex.build(_corpus()).save(tmp_path / "lexical", 1)
    params = tmp_path / "lexical" / "params.index.json"
    params.write_text(json.dumps({**json.loads(params.read_text()), "k1": 1.5}))
    with pytest.raises(ValueError, match="other BM25 parameters"):
        LexicalIndex.load(tmp_path / "lexical", 1)
