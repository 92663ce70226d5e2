"""The retriever: lexical, dense and language-aware hybrid search over a store."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal

import numpy as np

from ..config import RetrievalConfig
from ..errors import ConfigError
from ..index.analyzer import Analyzer
from ..index.base import Store
from ..index.ranked import Ranked
from ..models.base import BaseEmbedder
from ..text import detect_language
from ..types import Hit
from .fusion import fuse

Mode = Literal["hybrid", "lexical", "dense"]
MODES = ("hybrid", "lexical", "dense")
#: Query vectors kept per retriever: a question searched twice (evaluation ranks documents and
#: then retrieves chunks to answer from; chat, retries) is embedded once.
QUERY_CACHE = 512


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
    loaded only when a dense search first needs it."""

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
        filters: Mapping[str, Any] | None = None,
        one_per_doc: bool = False,
    ) -> list[Hit]:
        """The ``k`` best chunks for ``query`` (see :meth:`KnowledgeBase.search`)."""
        k = k or self.config.k
        ranked = self._checked_ranked(query, k, mode, filters, one_per_doc)
        if one_per_doc:
            ranked = self._one_per_doc(ranked)
        return self.store.hits(ranked.head(k))

    def rank_documents(self, query: str, k: int, mode: Mode | None = None,
                       filters: Mapping[str, Any] | None = None) -> list[str]:
        """The ids of the ``k`` best documents (each by its best chunk), without building hits:
        what document-level evaluation needs, several times faster than ``search``."""
        ranked = self._checked_ranked(query, k, mode, filters, one_per_doc=True)
        return list(dict.fromkeys(self.store.doc_ids(ranked.rows)))[:k]

    def prepare(self, mode: Mode | None = None) -> None:
        """Load what a search in ``mode`` needs (the embedder, unless lexical or no vectors), so
        that the first timed search does not pay for loading a model."""
        if (mode or self.config.mode) != "lexical" and self.store.has_vectors:
            self._embedder()

    def _checked_ranked(self, query: str, k: int, mode: Mode | None, filters: Mapping[str, Any] | None,
                        one_per_doc: bool) -> Ranked:
        mode = mode or self.config.mode
        if mode not in MODES:
            raise ConfigError(f"Unknown search mode {mode!r}; use one of {', '.join(MODES)}")
        if not query or not query.strip():
            raise ConfigError("The query is empty; give a question or keywords to search for")
        allowed = self.store.allowed(filters)
        n = max(self.config.candidates, k * 4 if one_per_doc else k)
        return self._ranked(query, mode, n, allowed)

    def _ranked(self, query: str, mode: Mode, n: int, allowed: np.ndarray | None) -> Ranked:
        if mode == "lexical":
            return self.store.lexical(self.analyzer.tokenize(query), n, allowed)
        if mode == "dense":
            return self._dense(query, n, allowed)
        cands = self.candidates(query, n, allowed)
        c = self.config
        return fuse(cands.lexical, cands.dense, c.fusion, c.dense_weight, c.rrf_k)

    def candidates(self, query: str, n: int | None = None, allowed: np.ndarray | None = None) -> Candidates:
        """Lexical and (where applicable) dense candidates for ``query``, unfused."""
        n = n or self.config.candidates
        language = detect_language(query)
        lexical = self.store.lexical(self.analyzer.tokenize(query), n, allowed)
        dense = None
        if self._dense_applies(language):
            dense = self._dense(query, n, allowed)
        return Candidates(lexical, dense, language)

    def _dense_applies(self, language: str) -> bool:
        return self.store.has_vectors and self._embedder().covers(language)

    def _dense(self, query: str, n: int, allowed: np.ndarray | None) -> Ranked:
        return self.store.dense(self._query_vector(query), n, allowed)

    def _embed_query(self, query: str) -> np.ndarray:
        vector = self._embedder().embed_query(query)
        vector.flags.writeable = False   # shared by every search of this query
        return vector

    def _one_per_doc(self, ranked: Ranked) -> Ranked:
        docs = self.store.doc_ids(ranked.rows)
        seen: set[str] = set()
        keep = [i for i, d in enumerate(docs) if not (d in seen or seen.add(d))]  # type: ignore[func-returns-value]
        return Ranked(ranked.rows[keep], ranked.scores[keep])

    def rows_to_doc_ids(self, rows: np.ndarray) -> list[str]:
        return self.store.doc_ids(rows)
