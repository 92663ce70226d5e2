"""Two embedders in one vector: a multilingual model for every text, and a second model for the
languages it reads best (the default: multilingual-e5-small + all-MiniLM-L6-v2 for English).

Spec ``pair:FIRST+SECOND`` (each part a spec or alias, e.g.
``pair:onnx:multilingual-e5-small-q4+onnx:all-MiniLM-L6-v2-int8``, alias ``default``).

- A passage's vector is ``[first(p); second(p)]`` with each half unit length, so the stored
  vector is unit length and one scan (exact or HNSW) ranks by the sum of the two cosines. A
  passage the second model does not read (:func:`~domainrag.text.detect_language`; Chinese for
  MiniLM) gets, in the second half, the second model's vector of an empty text — what the model
  makes of "nothing to read" (:meth:`PairEmbedder.blank`) — so every stored vector keeps the same shape and length and a
  query in the first model's language meets every passage on equal terms.
- A query's vector is ``[(1 - mix) * first(q); mix * second(q)]`` when the second model reads
  the query's language, else ``[first(q); 0]``: the dense score is then
  ``(1 - mix) * cos_first + mix * cos_second`` (up to a positive factor), or ``cos_first``
  alone. ``mix`` weighs only the query, so it may change without re-indexing; it is
  :data:`DEFAULT_MIX` (chosen by leave-one-dataset-out, benchmarks/RESULTS.md §36).

Why: multilingual-e5-small reads Chinese far better than MiniLM, but on English domain sets it
lost to MiniLM (consumer health questions −0.077 nDCG@10); adding MiniLM's cosine for English
recovers MiniLM's strength without giving up e5's (RESULTS §36). The cost is embedding English
passages twice (ingest) and scanning vectors twice as wide (search).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..config import EmbedderConfig
from ..errors import ConfigError
from ..text import detect_language
from .embedders import load_embedder
from .embedding import BaseEmbedder

#: The second model's share of an English query's dense score: chosen with the fusion weight by
#: the best worst-set margin over the six shared sets; five of six leave-one-dataset-out choices
#: agree (RESULTS §36).
DEFAULT_MIX = 0.25


def component_specs(model_name: str) -> list[str]:
    """The two embedder specs a pair's model name joins (``"A+B"`` -> ``["A", "B"]``), checked."""
    specs = [part.strip() for part in model_name.split("+")]
    if len(specs) != 2 or not all(specs) or any(s.startswith("pair:") for s in specs):
        raise ConfigError(
            f"pair:{model_name} — a pair names two embedders joined by '+', e.g. "
            "'pair:onnx:multilingual-e5-small-q4+onnx:all-MiniLM-L6-v2-int8'."
        )
    return specs


class PairEmbedder(BaseEmbedder):
    """``first`` reads every language; ``second`` adds its cosine where it reads the text.

    :meth:`component_specs` lets a caller that vets specs (the server's policy) vet each part."""

    component_specs = staticmethod(component_specs)

    default_languages = None  # the first model's: every language
    #: Hybrid's dense weight where both models rank the query: chosen with ``mix`` (RESULTS §36).
    fusion_weight = 0.6

    def __init__(self, model_name: str, config: EmbedderConfig | None = None,
                 mix: float = DEFAULT_MIX) -> None:
        super().__init__(model_name, config)
        specs = component_specs(model_name)
        if not 0.0 <= mix <= 1.0:
            raise ConfigError(f"mix={mix} must lie between 0 and 1 (the second model's share of the dense score).")
        part_config = self.config.model_copy(update={"languages": None})
        self.first = load_embedder(part_config.model_copy(update={"model": specs[0]}))
        self.second = load_embedder(part_config.model_copy(update={"model": specs[1]}))
        self.mix = mix
        self.dimensions = self.first.dimensions + self.second.dimensions
        self.id = f"pair:{self.first.id}+{self.second.id}"
        self._blank: np.ndarray | None = None

    def embed_batch(self, texts: Sequence[str]) -> np.ndarray:
        """``[first; second]`` per passage, each half unit length (see the module docstring)."""
        read = self._readable(texts)
        second = np.empty((len(texts), self.second.dimensions), dtype=np.float32)
        if read.any():
            second[read] = self.second.embed([t for t, r in zip(texts, read, strict=True) if r])
        if not read.all():
            second[~read] = self.blank()
        return np.hstack([self.first.embed(texts), second])

    def embed_query_batch(self, texts: Sequence[str]) -> np.ndarray:
        """``[(1 - mix) * first; mix * second]`` per query, or ``[first; 0]`` where the second model
        does not read the query's language."""
        out = np.zeros((len(texts), self.dimensions), dtype=np.float32)
        split = self.first.dimensions
        for row, (text, read) in enumerate(zip(texts, self._readable(texts), strict=True)):
            first = self.first.embed_query(text)
            if read and self.mix > 0.0:
                out[row, :split] = (1.0 - self.mix) * first
                out[row, split:] = self.mix * self.second.embed_query(text)
            else:
                out[row, :split] = first
        return out

    def query_parts(self, text: str) -> tuple[np.ndarray, np.ndarray | None]:
        """The two models' query vectors of ``text`` (the second ``None`` where it does not read
        it): what a benchmark needs to weigh them in other proportions."""
        second = self.second.embed_query(text) if self._readable([text])[0] else None
        return self.first.embed_query(text), second

    def fusion_weight_for(self, language: str) -> float:
        """:attr:`fusion_weight` where both models rank the query; the first model's own weight
        where it ranks alone (a Chinese query: multilingual-e5's 0.7, so Chinese search is what it
        was with multilingual-e5 alone)."""
        if self.mix > 0.0 and self.second.covers(language):
            return self.fusion_weight
        return self.first.fusion_weight_for(language)

    def similarity_model(self) -> BaseEmbedder:
        """Cosines of meaning (the citation checker's embedding rescue) come from the first model,
        whose threshold was calibrated; the pair's cosine would mix in the blank half."""
        return self.first.similarity_model()

    def blank(self) -> np.ndarray:
        """The second model's vector of an empty text (computed once); a model that gives an
        empty text no vector at all (all zeros) gets the first unit vector instead, so that the
        half keeps its length."""
        if self._blank is None:
            blank = self.second.embed([""])[0]
            if not blank.any():
                blank = np.zeros(self.second.dimensions, dtype=np.float32)
                blank[0] = 1.0
            self._blank = blank
        return self._blank

    def _readable(self, texts: Sequence[str]) -> np.ndarray:
        return np.array([self.second.covers(detect_language(t)) for t in texts], dtype=bool)
