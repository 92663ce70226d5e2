"""Fusion of a lexical and a dense ranking into one.

- ``convex``: each list's scores are min-max normalised over its candidates, then
  ``(1 - w) * lexical + w * dense``; a row missing from one list gets 0 from it.
- ``rrf``: reciprocal rank fusion, ``sum 1 / (rrf_k + rank)`` over the lists (rank from 1).

When ``dense`` is ``None`` (the embedder does not read the query's language, or the knowledge
base has no vectors) the lexical ranking is returned unchanged, so hybrid is never dragged
below lexical by a retriever that cannot understand the query.
"""

from __future__ import annotations

import numpy as np

from ..errors import ConfigError
from ..index.ranked import Ranked


def fuse(
    lexical: Ranked,
    dense: Ranked | None,
    method: str = "convex",
    dense_weight: float = 0.5,
    rrf_k: int = 60,
) -> Ranked:
    if dense is None or not len(dense):
        return lexical
    if not len(lexical):
        return dense
    if method == "rrf":
        parts = [_rrf(lexical, rrf_k), _rrf(dense, rrf_k)]
    elif method == "convex":
        parts = [_minmax(lexical, 1.0 - dense_weight), _minmax(dense, dense_weight)]
    else:
        raise ConfigError(f"Unknown fusion method {method!r}: set retrieval.fusion to 'convex' or 'rrf'.")
    return _combine(parts)


def _rrf(ranked: Ranked, k: int) -> tuple[np.ndarray, np.ndarray]:
    return ranked.rows, 1.0 / (k + np.arange(1, len(ranked) + 1, dtype=np.float64))


def _minmax(ranked: Ranked, weight: float) -> tuple[np.ndarray, np.ndarray]:
    scores = ranked.scores.astype(np.float64)
    low, high = scores.min(), scores.max()
    norm = (scores - low) / (high - low) if high > low else np.ones_like(scores)
    return ranked.rows, weight * norm


def _combine(parts: list[tuple[np.ndarray, np.ndarray]]) -> Ranked:
    rows = np.concatenate([p[0] for p in parts])
    scores = np.concatenate([p[1] for p in parts])
    unique, inverse = np.unique(rows, return_inverse=True)
    total = np.zeros(len(unique), dtype=np.float64)
    np.add.at(total, inverse, scores)
    order = np.lexsort((unique, -total))
    return Ranked(unique[order], total[order].astype(np.float32))
