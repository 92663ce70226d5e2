"""Retrieval metrics at document level, with trec_eval's definitions.

A *ranking* is a sequence of document ids, best first. Duplicated ids count once, at their
first occurrence (a document retrieved through several chunks is one retrieved document).
*Qrels* map a document id to an integer relevance grade; documents absent from the qrels are
non-relevant. A document is *relevant* when its grade is >= 1 (trec_eval's default
``relevance_level``); grades of 0 or below are non-relevant and contribute no gain.
``R`` is the number of relevant documents in the qrels.

- ``ndcg@k`` (trec_eval ``ndcg_cut.k``): DCG@k / IDCG@k, where DCG@k = sum over ranks
  r = 1..k of gain(d_r) / log2(r + 1), gain is the relevance grade when positive and 0
  otherwise, and IDCG@k is the DCG@k of the qrels' positive grades sorted in decreasing order.
  0 when R = 0.
- ``recall@k`` (trec_eval ``recall.k``): relevant documents in the top k, divided by R.
- ``precision@k`` (trec_eval ``P.k``): relevant documents in the top k, divided by k (even
  when fewer than k documents were retrieved).
- ``mrr@k``: 1 / rank of the first relevant document if it lies within the top k, else 0.
  (trec_eval's ``recip_rank`` is the same without the cut-off.)
- ``map`` (trec_eval ``map``, uncut average precision): the sum over relevant retrieved
  documents of precision at their rank, divided by R.

Every metric is 0 for a query with R = 0. :func:`evaluate_run` averages over the queries of
the qrels that have at least one relevant document; a query missing from the run scores 0
(trec_eval's ``-c``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence

from ..errors import ConfigError

Qrels = Mapping[str, int]
"""Relevance grades of one query's judged documents."""

DEFAULT_METRICS: tuple[str, ...] = ("ndcg@10", "recall@10", "recall@100", "mrr@10", "map")


def dedupe(ranking: Iterable[str]) -> list[str]:
    """The ranking with repeated document ids removed (first occurrence kept)."""
    return list(dict.fromkeys(ranking))


def _relevant_count(qrels: Qrels) -> int:
    return sum(1 for grade in qrels.values() if grade >= 1)


def _check_k(k: int) -> None:
    if k < 1:
        raise ConfigError(f"cut-off k must be a positive integer, got {k!r}")


def _dcg(gains: Iterable[float]) -> float:
    return sum(g / math.log2(rank + 1) for rank, g in enumerate(gains, start=1) if g > 0)


def ndcg_at_k(ranking: Sequence[str], qrels: Qrels, k: int) -> float:
    """Normalised discounted cumulative gain at k, graded (trec_eval ``ndcg_cut.k``)."""
    _check_k(k)
    ideal = _dcg(sorted((g for g in qrels.values() if g > 0), reverse=True)[:k])
    if ideal == 0.0:
        return 0.0
    return _dcg(qrels.get(doc, 0) for doc in dedupe(ranking)[:k]) / ideal


def recall_at_k(ranking: Sequence[str], qrels: Qrels, k: int) -> float:
    """Share of the relevant documents found in the top k (trec_eval ``recall.k``)."""
    _check_k(k)
    relevant = _relevant_count(qrels)
    if relevant == 0:
        return 0.0
    return sum(1 for doc in dedupe(ranking)[:k] if qrels.get(doc, 0) >= 1) / relevant


def precision_at_k(ranking: Sequence[str], qrels: Qrels, k: int) -> float:
    """Relevant documents in the top k divided by k (trec_eval ``P.k``)."""
    _check_k(k)
    if _relevant_count(qrels) == 0:
        return 0.0
    return sum(1 for doc in dedupe(ranking)[:k] if qrels.get(doc, 0) >= 1) / k


def mrr_at_k(ranking: Sequence[str], qrels: Qrels, k: int) -> float:
    """Reciprocal rank of the first relevant document within the top k, else 0."""
    _check_k(k)
    for rank, doc in enumerate(dedupe(ranking)[:k], start=1):
        if qrels.get(doc, 0) >= 1:
            return 1.0 / rank
    return 0.0


def average_precision(ranking: Sequence[str], qrels: Qrels) -> float:
    """Uncut average precision (trec_eval ``map``): mean precision at each relevant document."""
    relevant = _relevant_count(qrels)
    if relevant == 0:
        return 0.0
    found, total = 0, 0.0
    for rank, doc in enumerate(dedupe(ranking), start=1):
        if qrels.get(doc, 0) >= 1:
            found += 1
            total += found / rank
    return total / relevant


MetricFn = Callable[[Sequence[str], Qrels], float]

_AT_K: dict[str, Callable[[Sequence[str], Qrels, int], float]] = {
    "ndcg": ndcg_at_k,
    "recall": recall_at_k,
    "precision": precision_at_k,
    "mrr": mrr_at_k,
}


def metric(name: str) -> MetricFn:
    """The scoring function for a metric name such as ``"ndcg@10"``, ``"recall@100"`` or ``"map"``."""
    base, sep, cut = name.strip().lower().partition("@")
    if base == "map" and not sep:
        return average_precision
    if base in _AT_K and sep and cut.isdigit() and int(cut) > 0:
        fn, k = _AT_K[base], int(cut)
        return lambda ranking, qrels: fn(ranking, qrels, k)
    known = ", ".join(f"{b}@K" for b in _AT_K) + ", map"
    raise ConfigError(f"unknown retrieval metric {name!r}; use one of: {known} (K a positive integer)")


def per_query(
    run: Mapping[str, Sequence[str]],
    qrels: Mapping[str, Qrels],
    metrics: Sequence[str] = DEFAULT_METRICS,
) -> dict[str, dict[str, float]]:
    """Each metric for each query of ``qrels`` with at least one relevant document.

    A query absent from ``run`` is scored on an empty ranking (0 for every metric); queries of
    ``run`` absent from ``qrels`` are ignored.
    """
    fns = {name: metric(name) for name in metrics}
    scores: dict[str, dict[str, float]] = {}
    for qid, judged in qrels.items():
        if _relevant_count(judged) == 0:
            continue
        ranking = run.get(qid, ())
        scores[qid] = {name: fn(ranking, judged) for name, fn in fns.items()}
    return scores


def evaluate_run(
    run: Mapping[str, Sequence[str]],
    qrels: Mapping[str, Qrels],
    metrics: Sequence[str] = DEFAULT_METRICS,
) -> dict[str, float]:
    """Mean of each metric over the queries of ``qrels`` with at least one relevant document.

    Returns 0.0 for every metric when no query qualifies.
    """
    scores = per_query(run, qrels, metrics)
    n = len(scores)
    return {name: (sum(s[name] for s in scores.values()) / n if n else 0.0) for name in metrics}
