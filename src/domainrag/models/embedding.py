"""The embedding seam: implement ``embed_batch``; batching and query helpers are derived."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import ClassVar, Protocol, runtime_checkable

import numpy as np

from ..config import EmbedderConfig
from ..errors import EmbeddingError


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into L2-normalised float32 vectors of ``dimensions`` columns.

    ``id`` names the model precisely enough that vectors from two embedders with the same id are
    interchangeable (it goes into the index manifest). ``languages`` is the set of ISO 639-1
    codes the model understands, or ``None`` when it is multilingual.
    """

    id: str
    dimensions: int
    languages: frozenset[str] | None

    def embed_batch(self, texts: Sequence[str]) -> np.ndarray: ...


class BaseEmbedder:
    """Derives batching, query embedding and shape checks from one method, ``embed_batch``
    (models that embed queries differently, e.g. with a prefix, override ``embed_query_batch``).

    Subclasses are built from ``(model_name, config)`` — ``model_name`` is the part after
    ``provider:`` in the model spec.
    """

    default_languages: ClassVar[frozenset[str] | None] = None
    #: The weight hybrid search gives this model's dense ranking when ``retrieval.dense_weight``
    #: is unset (lexical gets the rest): measured per model family (benchmarks/RESULTS.md).
    fusion_weight: ClassVar[float] = 0.5
    #: True for models that send the text to a service (the server refuses them from requests).
    remote: ClassVar[bool] = False
    id: str
    dimensions: int

    def __init__(self, model_name: str, config: EmbedderConfig | None = None) -> None:
        self.model_name = model_name
        self.config = config or EmbedderConfig()
        langs = self.config.languages
        if langs is None:
            self.languages = self.default_languages
        else:
            self.languages = None if "*" in langs else frozenset(langs)

    def embed_batch(self, texts: Sequence[str]) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Embed any number of texts in batches of ``config.batch_size``."""
        if not texts:
            return np.zeros((0, self.dimensions), dtype=np.float32)
        size = self.config.batch_size
        parts = [self._checked(texts[i : i + size]) for i in range(0, len(texts), size)]
        return np.vstack(parts)

    def embed_query_batch(self, texts: Sequence[str]) -> np.ndarray:
        """Query vectors, one row per text; the passage form unless the model has its own."""
        return self.embed_batch(texts)

    def embed_query(self, text: str) -> np.ndarray:
        vector: np.ndarray = self._checked([text], query=True)[0]
        return vector

    def covers(self, language: str) -> bool:
        return self.languages is None or language in self.languages

    def fusion_weight_for(self, language: str) -> float:
        """Hybrid's dense weight for a query in ``language``: :attr:`fusion_weight`, unless a
        composite ranks that language with another of its parts."""
        return self.fusion_weight

    def similarity_model(self) -> BaseEmbedder:
        """The embedder whose cosines measure closeness of meaning between two texts (the
        citation checker's embedding rescue): this one, unless a composite names one of its parts."""
        return self

    def _checked(self, texts: Sequence[str], query: bool = False) -> np.ndarray:
        run = self.embed_query_batch if query else self.embed_batch
        vectors = np.asarray(run(encodable(texts)), dtype=np.float32)
        if vectors.shape != (len(texts), self.dimensions):
            raise EmbeddingError(
                f"Embedder {self.id} returned shape {vectors.shape}, "
                f"expected ({len(texts)}, {self.dimensions})"
            )
        return normalize(vectors)


_SURROGATES = re.compile("[\ud800-\udfff]")


def encodable(texts: Sequence[str]) -> list[str]:
    """``texts`` as UTF-8 can carry them: a lone surrogate (a broken file, a hostile query) becomes
    U+FFFD, where tokenizers and JSON encoders would raise."""
    out = []
    for text in texts:
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            text = _SURROGATES.sub("\ufffd", text)
        out.append(text)
    return out


def normalize(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    unit: np.ndarray = (vectors / norms).astype(np.float32, copy=False)
    return unit
