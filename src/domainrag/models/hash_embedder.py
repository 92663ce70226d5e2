"""A deterministic, model-free embedder: signed feature hashing of words and character n-grams.

Useful offline with no model installed and as the test double of real embedders. Its vectors
capture lexical overlap only; the spec ``hash:384`` sets the dimensions.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence

import numpy as np

from ..config import EmbedderConfig
from ..errors import ConfigError
from .embedding import BaseEmbedder

_WORD = re.compile(r"\w+", re.UNICODE)


class HashEmbedder(BaseEmbedder):
    default_languages = None  # script-agnostic

    def __init__(self, model_name: str = "384", config: EmbedderConfig | None = None) -> None:
        super().__init__(model_name, config)
        try:
            self.dimensions = int(model_name)
        except ValueError as exc:
            raise ConfigError(f"hash:{model_name} — the hash embedder takes its dimensions, e.g. hash:384") from exc
        if not 8 <= self.dimensions <= 8192:
            raise ConfigError(f"hash:{model_name} — dimensions must be between 8 and 8192")
        self.id = f"hash:{self.dimensions}:v1"

    def embed_batch(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dimensions), dtype=np.float32)
        for row, text in enumerate(texts):
            for feature in _features(text.lower()):
                digest = hashlib.blake2b(feature.encode(), digest_size=8).digest()
                value = int.from_bytes(digest, "little")
                out[row, value % self.dimensions] += 1.0 if (value >> 63) else -1.0
        return out


def _features(text: str) -> list[str]:
    words = _WORD.findall(text)
    grams = [w[i : i + 3] for w in words if len(w) > 3 for i in range(len(w) - 2)]
    return words + grams
