"""Stage 4: grounded answers — context packing, prompting, citation checking, abstention."""

from domainrag.answer.citations import CheckResult, CitationChecker, CitedSentence
from domainrag.types import Source

__all__ = ["CheckResult", "CitationChecker", "CitedSentence", "Source"]
