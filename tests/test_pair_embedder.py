"""The ``pair`` embedder: two models side by side in one vector, the second only where it reads
the text's language; the query weighs the two cosines by ``mix`` (issue 21)."""

from __future__ import annotations

import numpy as np
import pytest

from domainrag import KnowledgeBase
from domainrag.config import EmbedderConfig
from domainrag.errors import ConfigError
from domainrag.models.embedders import load_embedder
from domainrag.models.pair_embedder import PairEmbedder

SPEC = "pair:hash:48+fake-en:32"
EN = ["Green tea is not fermented; black tea is.", "The high-speed line links Beijing and Shanghai."]
ZH = "绿茶不发酵，红茶发酵。"


def part(spec: str) -> np.ndarray:
    return load_embedder(EmbedderConfig(model=spec))


def test_a_passage_holds_both_vectors_each_at_half_weight() -> None:
    pair = load_embedder(EmbedderConfig(model=SPEC))
    assert isinstance(pair, PairEmbedder)
    assert (pair.dimensions, pair.id) == (80, "pair:hash:48:v1+fake-en:32")
    vectors = pair.embed([*EN, ZH])
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-6)
    first, second = part("hash:48"), part("fake-en:32")
    half = 1 / np.sqrt(2)
    assert np.allclose(vectors[:, :48], first.embed([*EN, ZH]) * half, atol=1e-6)
    assert np.allclose(vectors[:2, 48:], second.embed(EN) * half, atol=1e-6)
    # the English-only model does not read Chinese: its half is its vector of an empty text
    # (the fake gives an empty text no vector, so a fixed unit vector stands in for it)
    assert np.allclose(vectors[2, 48:], pair.blank() * half, atol=1e-6)
    assert np.isclose(np.linalg.norm(pair.blank()), 1.0)


def test_the_query_weighs_the_two_cosines_by_mix() -> None:
    first, second = part("hash:48"), part("fake-en:32")
    passages = [*EN, "Fermented black tea and green tea differ."]
    query = "is green tea fermented"
    cos_first = first.embed(passages) @ first.embed_query(query)
    cos_second = second.embed(passages) @ second.embed_query(query)
    for mix in (0.0, 0.3, 1.0):
        pair = PairEmbedder("hash:48+fake-en:32", mix=mix)
        scores = pair.embed(passages) @ pair.embed_query(query)
        expected = (1 - mix) * cos_first + mix * cos_second
        ratio = scores / expected
        assert np.allclose(ratio, ratio[0], atol=1e-5), mix   # the same ranking, up to one factor
        assert ratio[0] > 0


def test_a_query_the_second_model_cannot_read_uses_the_first_alone() -> None:
    pair = PairEmbedder("hash:48+fake-en:32", mix=0.5)
    vector = pair.embed_query(ZH)
    assert not vector[48:].any()
    assert np.allclose(vector[:48], part("hash:48").embed_query(ZH), atol=1e-6)
    # and passages are met on equal terms whether the second model read them or not
    passages = pair.embed([EN[0], ZH])
    first = part("hash:48").embed([EN[0], ZH])
    assert np.allclose(passages @ vector, (first @ vector[:48]) / np.sqrt(2), atol=1e-6)


def test_the_citation_checker_measures_meaning_with_the_first_model() -> None:
    pair = load_embedder(EmbedderConfig(model=SPEC))
    assert pair.similarity_model().id == "hash:48:v1"
    assert part("hash:48").similarity_model().id == "hash:48:v1"


@pytest.mark.parametrize("spec", ["pair:hash:48", "pair:hash:48+", "pair:hash:48+fake-en:32+hash:8",
                                  "pair:pair:hash:8+hash:8+hash:8"])
def test_a_pair_must_name_two_plain_embedders(spec: str) -> None:
    with pytest.raises(ConfigError, match="two embedders"):
        load_embedder(EmbedderConfig(model=spec))


def test_mix_outside_zero_to_one_is_refused() -> None:
    with pytest.raises(ConfigError, match="mix=1.5"):
        PairEmbedder("hash:48+fake-en:32", mix=1.5)


def test_a_knowledge_base_on_a_pair_searches_both_languages_and_reopens(kb_factory, tmp_path) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "tea.md").write_text("# Tea\n\n" + EN[0], encoding="utf-8")
    (folder / "rail.md").write_text("# Rail\n\n" + EN[1], encoding="utf-8")
    (folder / "cha.md").write_text("# 茶\n\n" + ZH, encoding="utf-8")
    kb = kb_factory("pair", **{"embedder.model": SPEC})
    kb.ingest([folder])
    assert kb.store.manifest()["embedder"]["id"] == "pair:hash:48:v1+fake-en:32"
    assert kb.store.manifest()["embedder"]["dimensions"] == 80
    for mode in ("dense", "hybrid"):
        assert kb.search("is black tea fermented", k=1, mode=mode)[0].doc_id.endswith("tea.md")
        assert kb.search("红茶发酵", k=1, mode=mode)[0].doc_id.endswith("cha.md")
    kb.close()
    again = KnowledgeBase.open(tmp_path / "pair")
    assert again.search("high-speed line", k=1, mode="dense")[0].doc_id.endswith("rail.md")
    again.close()


def test_hybrid_weighs_a_query_by_the_models_that_rank_it(kb_factory, tmp_path) -> None:
    pair = PairEmbedder("hash:48+fake-en:32")
    first = part("hash:48")
    assert pair.fusion_weight_for("en") == PairEmbedder.fusion_weight
    assert pair.fusion_weight_for("zh") == first.fusion_weight != PairEmbedder.fusion_weight
    assert PairEmbedder("hash:48+fake-en:32", mix=0.0).fusion_weight_for("en") == first.fusion_weight
    kb = kb_factory("weights", **{"embedder.model": SPEC})
    assert kb.retriever.dense_weight("zh") == first.fusion_weight
    assert kb.retriever.dense_weight("en") == kb.retriever.dense_weight() == PairEmbedder.fusion_weight
    fixed = kb_factory("fixed", **{"embedder.model": SPEC, "retrieval.dense_weight": 0.3})
    assert fixed.retriever.dense_weight("zh") == fixed.retriever.dense_weight("en") == 0.3
