"""domainrag: retrieval-augmented answers and honest evaluation over your own documents.

The public API is imported lazily so that ``import domainrag`` stays fast::

    from domainrag import KnowledgeBase
    kb = KnowledgeBase.open(".domainrag", create=True)
    kb.ingest(["./policies"])
    hits = kb.search("How long is data retained?", k=5)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = [
    "KnowledgeBase",
    "IngestReport",
    "Document",
    "Chunk",
    "Hit",
    "Span",
    "DomainragError",
    "__version__",
]

_LAZY = {
    "KnowledgeBase": "domainrag.kb",
    "IngestReport": "domainrag.kb",
    "Document": "domainrag.types",
    "Chunk": "domainrag.types",
    "Hit": "domainrag.types",
    "Span": "domainrag.types",
    "DomainragError": "domainrag.errors",
}

if TYPE_CHECKING:  # pragma: no cover
    from .errors import DomainragError
    from .kb import IngestReport, KnowledgeBase
    from .types import Chunk, Document, Hit, Span


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'domainrag' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
