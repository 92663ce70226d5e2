"""Stage 4: grounded answers — context packing, prompting, citation checking, abstention."""

from domainrag.answer.citations import CheckResult, CitationChecker, CitedSentence, Source

__all__ = ["CheckResult", "CitationChecker", "CitedSentence", "Source"]
