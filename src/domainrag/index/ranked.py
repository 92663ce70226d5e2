"""``Ranked``: the currency between the index and retrieval — row positions with scores."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, slots=True)
class Ranked:
    """Index rows in descending score order (rows are positions in the store's index space)."""

    rows: np.ndarray
    scores: np.ndarray

    @classmethod
    def empty(cls) -> Ranked:
        return cls(np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32))

    def __len__(self) -> int:
        return len(self.rows)

    def head(self, n: int) -> Ranked:
        return Ranked(self.rows[:n], self.scores[:n])


def top_n(scores: np.ndarray, n: int, allowed: np.ndarray | None = None) -> Ranked:
    """The ``n`` best rows of a dense score array; rows outside ``allowed`` (a bool mask) and
    rows scoring ``-inf`` are left out. Ties break by row order (stable)."""
    if allowed is not None:
        scores = np.where(allowed, scores, -np.inf)
    n = min(n, len(scores))
    if n <= 0:
        return Ranked.empty()
    part = _best_rows(scores, n) if n < len(scores) else np.arange(len(scores))
    order = part[np.lexsort((part, -scores[part]))]
    keep = np.isfinite(scores[order])
    order = order[keep]
    return Ranked(order.astype(np.int64), scores[order].astype(np.float32))


def _best_rows(scores: np.ndarray, n: int) -> np.ndarray:
    """The ``n`` rows with the highest scores, the lowest rows among those tied with the n-th
    (``argpartition`` alone keeps an arbitrary subset of a tie at the cut, so which of several
    equal chunks made the list would depend on the array's layout, not on the rows)."""
    kth = scores[np.argpartition(-scores, n - 1)[n - 1]]
    above = np.flatnonzero(scores > kth)
    tied = np.flatnonzero(scores == kth)[: n - len(above)]
    return np.concatenate([above, tied])
