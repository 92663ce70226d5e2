"""The retriever: lexical, dense and language-aware hybrid search over a store."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal, TypeVar

import numpy as np

from ..config import RetrievalConfig
from ..errors import ConfigError, DomainragError
from ..index.analyzer import Analyzer
from ..index.ranked import Ranked
from ..index.store import Scope, SnapshotExpired, Store, StoreView
from ..models.embedding import BaseEmbedder
from ..text import detect_language
from ..types import Hit
from .fusion import fuse

Mode = Literal["hybrid", "lexical", "dense"]
MODES = ("hybrid", "lexical", "dense")
#: Query vectors kept per retriever: a question searched twice (evaluation ranks documents and
#: then retrieves chunks to answer from; chat, retries) is embedded once.
QUERY_CACHE = 512
#: Views a search may try when writers in other processes keep replacing the chunks it found.
VIEW_ATTEMPTS = 8
T = TypeVar("T")


@dataclass(frozen=True)
class Candidates:
    """Per-retriever candidate rankings for one query, before fusion.

    ``dense`` is ``None`` when dense retrieval does not apply: the embedder does not cover the
    query's ``language`` or the knowledge base holds no vectors.
    """

    lexical: Ranked
    dense: Ranked | None
    language: str


class Retriever:
    """Searches a :class:`Store`. ``embedder`` is a zero-argument callable so that the model is
    loaded only when a dense search first needs it.

    Each search runs on one :class:`~domainrag.index.store.StoreView` — one committed state, the
    latest when the search starts — so a concurrent ingest in another process never mixes two
    states in one result; when that ingest replaced the chunks a search found before it read
    them, the search is repeated on the new state.
    """

    def __init__(
        self,
        store: Store,
        embedder: Callable[[], BaseEmbedder],
        config: RetrievalConfig | None = None,
        analyzer: Analyzer | None = None,
    ) -> None:
        self.store = store
        self._embedder = embedder
        self.config = config or RetrievalConfig()
        self.analyzer = analyzer or Analyzer()
        self._query_vector = lru_cache(maxsize=QUERY_CACHE)(self._embed_query)

    def search(
        self,
        query: str,
        k: int | None = None,
        mode: Mode | None = None,
        scope: Scope | None = None,
        one_per_doc: bool = False,
    ) -> list[Hit]:
        """The ``k`` best chunks for ``query`` within ``scope`` (see :meth:`KnowledgeBase.search`)."""
        top = k or self.config.k

        def search_view(view: StoreView) -> list[Hit]:
            ranked = self._checked_ranked(view, query, top, mode, scope, one_per_doc)
            if one_per_doc:
                ranked = _one_per_doc(view, ranked)
            return view.hits(ranked.head(top))

        return self._on_a_view(search_view)

    def rank_documents(self, query: str, k: int, mode: Mode | None = None,
                       scope: Scope | None = None) -> list[str]:
        """The ids of the ``k`` best documents (each by its best chunk), without building hits:
        what document-level evaluation needs, several times faster than ``search``."""

        def rank_view(view: StoreView) -> list[str]:
            ranked = self._checked_ranked(view, query, k, mode, scope, one_per_doc=True)
            return list(dict.fromkeys(view.doc_ids(ranked.rows)))[:k]

        return self._on_a_view(rank_view)

    def _on_a_view(self, search: Callable[[StoreView], T]) -> T:
        """``search`` on the latest view, repeated on a newer one while writes expire it."""
        for _ in range(VIEW_ATTEMPTS):
            try:
                return search(self.store.view())
            except SnapshotExpired:
                continue
        raise DomainragError(
            f"The knowledge base changed under {VIEW_ATTEMPTS} attempts at this search (another process "
            "is writing to it); retry, or search when the ingest has finished."
        )

    def prepare(self, mode: Mode | None = None) -> None:
        """Load what a search in ``mode`` needs (the embedder, unless lexical or no vectors), so
        that the first timed search does not pay for loading a model."""
        if (mode or self.config.mode) != "lexical" and self.store.view().has_vectors:
            self._embedder()

    def _checked_ranked(self, view: StoreView, query: str, k: int, mode: Mode | None,
                        scope: Scope | None, one_per_doc: bool) -> Ranked:
        mode = mode or self.config.mode
        if mode not in MODES:
            raise ConfigError(f"Unknown search mode {mode!r}; use one of {', '.join(MODES)}")
        if not query or not query.strip():
            raise ConfigError("The query is empty; give a question or keywords to search for")
        n = max(self.config.candidates, k * 4 if one_per_doc else k)
        return self._ranked(view, query, mode, n, scope)

    def _ranked(self, view: StoreView, query: str, mode: Mode, n: int, scope: Scope | None) -> Ranked:
        if mode == "lexical":
            return view.lexical(self.analyzer.tokenize(query), n, scope)
        if mode == "dense":
            return self._dense(view, query, n, scope)
        cands = self.candidates(query, n, scope, view)
        c = self.config
        weight = self.dense_weight(cands.language) if cands.dense is not None else None
        return fuse(cands.lexical, cands.dense, c.fusion, weight, c.rrf_k)

    def dense_weight(self, language: str | None = None) -> float:
        """``retrieval.dense_weight``, or where unset the weight the embedder declares for its own
        rankings of a query in ``language`` (:meth:`BaseEmbedder.fusion_weight_for`; its
        ``fusion_weight`` when no language is given)."""
        if self.config.dense_weight is not None:
            return self.config.dense_weight
        embedder = self._embedder()
        return embedder.fusion_weight if language is None else embedder.fusion_weight_for(language)

    def candidates(self, query: str, n: int | None = None, scope: Scope | None = None,
                   view: StoreView | None = None) -> Candidates:
        """Lexical and (where applicable) dense candidates for ``query`` within ``scope``,
        unfused, on ``view`` (default: the latest)."""
        view = view or self.store.view()
        n = n or self.config.candidates
        language = detect_language(query)
        lexical = view.lexical(self.analyzer.tokenize(query), n, scope)
        dense = None
        if view.has_vectors and self._embedder().covers(language):
            dense = self._dense(view, query, n, scope)
        return Candidates(lexical, dense, language)

    def _dense(self, view: StoreView, query: str, n: int, scope: Scope | None) -> Ranked:
        return view.dense(self._query_vector(query), n, scope)

    def _embed_query(self, query: str) -> np.ndarray:
        vector = self._embedder().embed_query(query)
        vector.flags.writeable = False   # shared by every search of this query
        return vector


def _one_per_doc(view: StoreView, ranked: Ranked) -> Ranked:
    docs = view.doc_ids(ranked.rows)
    seen: set[str] = set()
    keep = [i for i, d in enumerate(docs) if not (d in seen or seen.add(d))]  # type: ignore[func-returns-value]
    return Ranked(ranked.rows[keep], ranked.scores[keep])
