"""domainrag: retrieval-augmented answers and honest evaluation over your own documents.

The public API is imported lazily so that ``import domainrag`` stays fast::

    from domainrag import KnowledgeBase
    kb = KnowledgeBase.open(".domainrag", create=True)
    kb.ingest(["./policies"])
    hits = kb.search("How long is data retained?", k=5)
    answer = kb.ask("How long is data retained?")
    checked = domainrag.verify(answer_text, ["source one", "source two"])  # any RAG system's answer
    run = kb.evaluate("suite.jsonl", model="openai:gpt-4o-mini")
    comparison = kb.compare("production", run)      # comparison.gate.passed
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_LAZY = {
    "KnowledgeBase": "domainrag.kb",
    "IngestReport": "domainrag.kb",
    "Document": "domainrag.types",
    "Chunk": "domainrag.types",
    "Hit": "domainrag.types",
    "Span": "domainrag.types",
    "Answer": "domainrag.types",
    "Citation": "domainrag.types",
    "Case": "domainrag.types",
    "DomainragError": "domainrag.errors",
    # verification
    "verify": "domainrag.answer.verify",
    "Verification": "domainrag.answer.verify",
    "ClaimVerdict": "domainrag.answer.verify",
    # evaluation
    "Suite": "domainrag.evaluate.suite",
    "load_suite": "domainrag.evaluate.suite",
    "Run": "domainrag.evaluate.run_records",
    "RunInfo": "domainrag.evaluate.run_records",
    "CaseRecord": "domainrag.evaluate.run_records",
    "RunStore": "domainrag.evaluate.runs",
    "Adaptive": "domainrag.evaluation",
    "Matrix": "domainrag.evaluation",
    "Comparison": "domainrag.compare.results",
    "MetricComparison": "domainrag.compare.results",
    "GateResult": "domainrag.compare.results",
    "compare_runs": "domainrag.compare.compare",
    "gate": "domainrag.compare.gate",
}

__all__ = [
    "KnowledgeBase",
    "IngestReport",
    "Document",
    "Chunk",
    "Hit",
    "Span",
    "Answer",
    "Citation",
    "Case",
    "DomainragError",
    "verify",
    "Verification",
    "ClaimVerdict",
    "Suite",
    "load_suite",
    "Run",
    "RunInfo",
    "CaseRecord",
    "RunStore",
    "Adaptive",
    "Matrix",
    "Comparison",
    "MetricComparison",
    "GateResult",
    "compare_runs",
    "gate",
    "__version__",
]

if TYPE_CHECKING:  # pragma: no cover
    from .answer.verify import ClaimVerdict, Verification, verify
    from .compare.compare import compare_runs
    from .compare.gate import gate
    from .compare.results import Comparison, GateResult, MetricComparison
    from .errors import DomainragError
    from .evaluate.run_records import CaseRecord, Run, RunInfo
    from .evaluate.runs import RunStore
    from .evaluate.suite import Suite, load_suite
    from .evaluation import Adaptive, Matrix
    from .kb import IngestReport, KnowledgeBase
    from .types import Answer, Case, Chunk, Citation, Document, Hit, Span


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'domainrag' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
