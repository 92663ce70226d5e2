"""Fusion of a lexical and a dense ranking into one.

- ``convex``: each list's scores are min-max normalised over its candidates, then
  ``(1 - w) * lexical + w * dense``; a row missing from one list gets 0 from it. ``w`` is the
  dense weight: ``retrieval.dense_weight``, or where that is unset the embedder's own
  ``fusion_weight`` (a stronger embedder earns more; :data:`DEFAULT_DENSE_WEIGHT` when it
  declares none).
- ``rrf``: reciprocal rank fusion, ``sum 1 / (rrf_k + rank)`` over the lists (rank from 1).
- ``adaptive``: convex fusion whose dense weight is moved per query, from ``w``, by the two
  score distributions (:func:`adaptive_weight`): a retriever whose best candidates stand out from
  the rest of its own list is trusted more for this query than one whose top scores are flat.
  It adds no constant tuned to any data set.

When ``dense`` is ``None`` (the embedder does not read the query's language, or the knowledge
base has no vectors) the lexical ranking is returned unchanged, so hybrid is never dragged
below lexical by a retriever that cannot understand the query.
"""

from __future__ import annotations

import numpy as np

from ..errors import ConfigError
from ..index.ranked import Ranked

#: Ranks whose scores :func:`confidence` compares with the best one (the first page of results).
CONFIDENCE_DEPTH = 10
#: The dense weight when neither the configuration nor the embedder gives one.
DEFAULT_DENSE_WEIGHT = 0.5
_EPSILON = 1e-6


def fuse(
    lexical: Ranked,
    dense: Ranked | None,
    method: str = "convex",
    dense_weight: float | None = None,
    rrf_k: int = 60,
) -> Ranked:
    """One ranking from ``lexical`` and ``dense`` (see the module docstring); ``dense_weight``
    None means :data:`DEFAULT_DENSE_WEIGHT`."""
    weight = DEFAULT_DENSE_WEIGHT if dense_weight is None else dense_weight
    if dense is None or not len(dense):
        return lexical
    if not len(lexical):
        return dense
    if method == "rrf":
        parts = [_rrf(lexical, rrf_k), _rrf(dense, rrf_k)]
    elif method == "convex":
        parts = [_minmax(lexical, 1.0 - weight), _minmax(dense, weight)]
    elif method == "adaptive":
        weight = adaptive_weight(lexical.scores, dense.scores, weight)
        parts = [_minmax(lexical, 1.0 - weight), _minmax(dense, weight)]
    else:
        raise ConfigError(
            f"Unknown fusion method {method!r}: set retrieval.fusion to 'adaptive', 'convex' or 'rrf'."
        )
    return _combine(parts)


def confidence(scores: np.ndarray, k: int = CONFIDENCE_DEPTH) -> float:
    """How far a ranking's best candidate stands out: 1 minus the mean min-max-normalised score
    of its ranks 2..k. 1 = the top one alone scores high, 0 = the top k score alike (no
    evidence which of them is right). Invariant to the scale and offset of the scores, so BM25
    and cosine scores are comparable."""
    if len(scores) < 2:
        return 1.0 if len(scores) else 0.0
    values = scores.astype(np.float64)
    low, high = values.min(), values.max()
    if high <= low:
        return 0.0
    return float(1.0 - np.mean((values[1:k] - low) / (high - low)))


def adaptive_weight(lexical: np.ndarray, dense: np.ndarray, prior: float = DEFAULT_DENSE_WEIGHT) -> float:
    """The dense weight for one query: the ``prior`` weight with its odds multiplied by the odds
    of dense's share of the two rankings' :func:`confidence` (a share of 1/2 — equal confidence,
    or none on either side — leaves the prior as it is; with the prior 1/2 the weight is that
    share)."""
    lex, den = confidence(lexical), confidence(dense)
    if prior <= 0.0 or prior >= 1.0 or lex + den <= 0.0:
        return prior
    share = min(max(den / (lex + den), _EPSILON), 1.0 - _EPSILON)
    odds = prior / (1.0 - prior) * share / (1.0 - share)
    return odds / (1.0 + odds)


def _rrf(ranked: Ranked, k: int) -> tuple[np.ndarray, np.ndarray]:
    return ranked.rows, 1.0 / (k + np.arange(1, len(ranked) + 1, dtype=np.float64))


def _minmax(ranked: Ranked, weight: float) -> tuple[np.ndarray, np.ndarray]:
    scores = ranked.scores.astype(np.float64)
    low, high = scores.min(), scores.max()
    norm = (scores - low) / (high - low) if high > low else np.ones_like(scores)
    return ranked.rows, weight * norm


def _combine(parts: list[tuple[np.ndarray, np.ndarray]]) -> Ranked:
    """The rows of ``parts`` by summed score; ties as :func:`listed_order` says."""
    rows = np.concatenate([p[0] for p in parts])
    scores = np.concatenate([p[1] for p in parts])
    unique, inverse = np.unique(rows, return_inverse=True)
    total = np.zeros(len(unique), dtype=np.float64)
    np.add.at(total, inverse, scores)
    order = np.lexsort((*reversed(listed_order(unique, [p[0] for p in parts])), -total))
    return Ranked(unique[order], total[order].astype(np.float32))


def listed_order(unique: np.ndarray, lists: list[np.ndarray]) -> list[np.ndarray]:
    """For each row of ``unique`` (sorted), its position in each of ``lists`` (``len(list)``
    where absent): fused ties go by the first list's order, then the next one's.

    Row numbers are the store's own (list positions in one store, database ids in another), so
    ties broken by them would make a ranking depend on the store and on the order files were
    ingested; the retrievers' own orders are the same in every store (score, then chunk id)."""
    positions = []
    for rows in lists:
        at = np.full(len(unique), len(rows), dtype=np.int64)
        at[np.searchsorted(unique, rows)] = np.arange(len(rows))
        positions.append(at)
    return positions
