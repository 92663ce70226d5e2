"""Fusion of a lexical and a dense ranking: convex, RRF and the per-query adaptive weight."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domainrag.config import RetrievalConfig
from domainrag.errors import ConfigError
from domainrag.index.ranked import Ranked
from domainrag.models.embedding import BaseEmbedder
from domainrag.retrieve.fusion import DEFAULT_DENSE_WEIGHT, adaptive_weight, confidence, fuse
from domainrag.retrieve.retriever import Retriever


def _ranked(rows: list[int], scores: list[float]) -> Ranked:
    return Ranked(np.array(rows, dtype=np.int64), np.array(scores, dtype=np.float32))


PEAKED = [10.0, 2.0, 1.9, 1.8, 1.7, 1.6, 1.5, 1.4, 1.3, 1.2, 1.0]
FLAT = [0.80, 0.79, 0.79, 0.78, 0.78, 0.78, 0.77, 0.77, 0.77, 0.76, 0.50]


def test_confidence_is_high_for_a_standout_top_and_low_for_flat_scores() -> None:
    assert confidence(np.array(PEAKED)) > 0.8
    assert confidence(np.array(FLAT)) < 0.2
    assert confidence(np.array([3.0, 3.0, 3.0])) == 0.0
    assert confidence(np.array([1.0])) == 1.0
    assert confidence(np.array([])) == 0.0


@given(scale=st.floats(0.01, 100.0), offset=st.floats(-50.0, 50.0))
def test_confidence_ignores_the_scale_and_offset_of_scores(scale: float, offset: float) -> None:
    base = np.array(PEAKED)
    assert confidence(base * scale + offset) == pytest.approx(confidence(base), abs=1e-6)


def test_adaptive_weight_trusts_the_confident_ranking() -> None:
    assert adaptive_weight(np.array(FLAT), np.array(PEAKED)) > 0.8
    assert adaptive_weight(np.array(PEAKED), np.array(FLAT)) < 0.2
    assert adaptive_weight(np.array(PEAKED), np.array(PEAKED)) == pytest.approx(0.5)
    assert adaptive_weight(np.array([2.0, 2.0]), np.array([1.0, 1.0])) == 0.5


def test_adaptive_weight_moves_the_prior_by_the_confidence_share() -> None:
    assert adaptive_weight(np.array(PEAKED), np.array(PEAKED), prior=0.7) == pytest.approx(0.7)
    assert adaptive_weight(np.array(FLAT), np.array(PEAKED), prior=0.7) > 0.7
    assert adaptive_weight(np.array(PEAKED), np.array(FLAT), prior=0.7) < 0.7
    assert adaptive_weight(np.array(PEAKED), np.array(FLAT), prior=0.0) == 0.0
    assert adaptive_weight(np.array(FLAT), np.array(PEAKED), prior=1.0) == 1.0


def test_adaptive_fusion_follows_the_confident_ranking() -> None:
    rows = list(range(11))
    lexical = _ranked(rows, FLAT)                 # lexical: 0 first, but barely
    dense = _ranked(rows[::-1], PEAKED)           # dense: 10 first, clearly
    assert fuse(lexical, dense, "adaptive").rows[0] == 10
    flipped = fuse(_ranked(rows, PEAKED), _ranked(rows[::-1], FLAT), "adaptive")
    assert flipped.rows[0] == 0


def test_a_missing_dense_ranking_leaves_lexical_unchanged() -> None:
    lexical = _ranked([3, 1, 2], [5.0, 4.0, 1.0])
    for method in ("adaptive", "convex", "rrf"):
        assert fuse(lexical, None, method) is lexical
        assert fuse(lexical, Ranked.empty(), method) is lexical


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(0, 50, allow_nan=False), min_size=1, max_size=30),
       st.lists(st.floats(-1, 1, allow_nan=False), min_size=1, max_size=30))
def test_adaptive_fusion_ranks_every_candidate_once(lex_scores: list[float], dense_scores: list[float]) -> None:
    lex = sorted(lex_scores, reverse=True)
    den = sorted(dense_scores, reverse=True)
    lexical = _ranked(list(range(len(lex))), lex)
    dense = _ranked(list(range(100, 100 + len(den))), den)
    fused = fuse(lexical, dense, "adaptive")
    assert sorted(fused.rows.tolist()) == sorted([*range(len(lex)), *range(100, 100 + len(den))])
    assert np.all(np.diff(fused.scores) <= 1e-6)
    assert 0.0 <= adaptive_weight(lexical.scores, dense.scores) <= 1.0


def test_unknown_method_names_the_choices() -> None:
    with pytest.raises(ConfigError, match="'adaptive', 'convex' or 'rrf'"):
        fuse(_ranked([1], [1.0]), _ranked([2], [1.0]), "magic")


def test_config_accepts_adaptive() -> None:
    assert RetrievalConfig(fusion="adaptive").fusion == "adaptive"


class _Embedder(BaseEmbedder):
    def __init__(self, weight: float | None) -> None:
        super().__init__("test")
        if weight is not None:
            self.fusion_weight = weight  # type: ignore[misc]


@pytest.mark.parametrize(("configured", "declared", "expected"), [
    (None, None, DEFAULT_DENSE_WEIGHT), (None, 0.7, 0.7), (0.3, 0.7, 0.3), (0.0, None, 0.0),
])
def test_dense_weight_is_the_configured_one_else_the_embedders(configured, declared, expected) -> None:
    retriever = Retriever(store=None, embedder=lambda: _Embedder(declared),  # type: ignore[arg-type]
                          config=RetrievalConfig(dense_weight=configured))
    assert retriever.dense_weight() == expected


def test_convex_fusion_without_a_weight_uses_the_default() -> None:
    lexical, dense = _ranked([1, 2, 3], [3.0, 2.0, 1.0]), _ranked([3, 2, 1], [0.9, 0.5, 0.1])
    unset = fuse(lexical, dense, "convex", None)
    half = fuse(lexical, dense, "convex", DEFAULT_DENSE_WEIGHT)
    assert unset.rows.tolist() == half.rows.tolist() and np.allclose(unset.scores, half.scores)
