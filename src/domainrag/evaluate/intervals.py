"""Confidence intervals for mean scores: a deterministic percentile bootstrap."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from ..errors import ConfigError

#: Most resampled indices held in memory at once (32 MiB of int64); larger jobs run in blocks.
_MAX_BLOCK_DRAWS = 1 << 22


def bootstrap_ci(
    values: Sequence[float],
    confidence: float = 0.95,
    n_resamples: int = 2000,
    seed: int = 0,
) -> tuple[float, float, float]:
    """(mean, low, high): the sample mean and its percentile-bootstrap confidence interval.

    Draws ``n_resamples`` resamples of ``values`` with replacement (``numpy`` generator seeded
    with ``seed``, so the result is deterministic), takes each resample's mean, and returns the
    ``(1 - confidence) / 2`` and ``(1 + confidence) / 2`` quantiles of those means. A single
    value gives ``(x, x, x)``. Raises ``ValueError`` for no values or a NaN (filter missing
    scores first), a ``confidence`` outside (0, 1) or ``n_resamples`` < 1.
    """
    data = np.asarray(values, dtype=float)
    if data.size == 0 or np.isnan(data).any():
        raise ConfigError("bootstrap_ci needs at least one value and no NaN")
    if not 0.0 < confidence < 1.0 or n_resamples < 1:
        raise ConfigError(
            f"need 0 < confidence < 1 and n_resamples >= 1, got {confidence!r}, {n_resamples!r}"
        )
    mean = float(data.mean())
    if data.size == 1:
        return mean, mean, mean
    rng = np.random.default_rng(seed)
    block = max(1, _MAX_BLOCK_DRAWS // data.size)
    means = []
    for done in range(0, n_resamples, block):
        rows = min(block, n_resamples - done)
        means.append(data[rng.integers(0, data.size, size=(rows, data.size))].mean(axis=1))
    alpha = (1.0 - confidence) / 2
    low, high = np.quantile(np.concatenate(means), [alpha, 1.0 - alpha])
    return mean, float(low), float(high)


def mean_ci(
    values: Iterable[float | None],
    confidence: float = 0.95,
    n_resamples: int = 2000,
    seed: int = 0,
) -> dict[str, float | int | None]:
    """``{"mean", "low", "high", "n"}`` of the values that are not None.

    ``low``/``high`` bound a ``confidence`` (default 95%) interval for the mean score: if the
    evaluated cases were drawn again from the same population, intervals built this way would
    contain the true mean about that often. It is a percentile bootstrap (see
    :func:`bootstrap_ci`) with a fixed seed, so the same scores always give the same interval.
    ``n`` counts the values used; with none left every other field is None.
    """
    kept = [v for v in values if v is not None]
    if not kept:
        return {"mean": None, "low": None, "high": None, "n": 0}
    mean, low, high = bootstrap_ci(kept, confidence, n_resamples, seed)
    return {"mean": mean, "low": low, "high": high, "n": len(kept)}
