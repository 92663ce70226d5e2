"""One public verification API: is each claim of an answer supported by its sources?

``verify(answer_text, sources)`` runs exactly the checker behind ``ask``, ``chat``, the server
and the evaluation metrics (:class:`.citations.CitationChecker` with the offline verifier by
default) on an answer from any RAG system, and returns a :class:`Verification`: per claim its
text, the sources it cites, the sources it was checked against, the verdict (``supported``,
``unsupported``, or ``not_a_claim`` for connective and meta talk), the support probability and
the reason when unsupported (``uncited``, ``meaning``, ``number``, ``unit``, ``echo``, or — for
text the verifier does not read — ``words``/``negation`` of the word rules).

Sources are numbered 1..n in the order given unless they carry their own ``number``; each is a
:class:`~domainrag.types.Source`, a string, or a mapping with ``text`` (and optionally
``number``, ``id``/``doc_id``, ``title``, ``page``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import ConfigError
from ..index.analyzer import Analyzer
from ..models.verification import Verifier, load_verifier
from ..types import Source
from .citations import (
    DEFAULT_VERIFY_THRESHOLD,
    META,
    CheckResult,
    CitationChecker,
    CitedSentence,
)

SourceLike = Source | str | Mapping[str, Any]


@dataclass(frozen=True)
class ClaimVerdict:
    """One piece of the answer: ``text`` as written, ``claim`` the words checked, ``cites`` the
    source numbers its markers name, ``checked`` those it was checked against."""

    text: str
    claim: str
    start: int
    end: int
    cites: tuple[int, ...]
    checked: tuple[int, ...]
    verdict: str
    score: float | None
    reason: str
    role: str

    def to_dict(self) -> dict[str, Any]:
        return {"text": self.text, "claim": self.claim, "start": self.start, "end": self.end,
                "cites": list(self.cites), "checked": list(self.checked), "verdict": self.verdict,
                "score": None if self.score is None else round(self.score, 4), "reason": self.reason,
                "role": self.role}


@dataclass(frozen=True)
class Verification:
    """The verified answer: ``text`` with invalid markers removed, one :class:`ClaimVerdict`
    per piece, ``grounded`` the share of counted claims supported (as ``Answer.grounded``),
    ``verifier`` what checked (its id and threshold)."""

    text: str
    claims: tuple[ClaimVerdict, ...]
    grounded: float
    verifier: str
    removed_markers: tuple[int, ...] = ()

    @property
    def supported(self) -> bool:
        """Every counted claim is supported (and there is at least one)."""
        counted = [c for c in self.claims if c.verdict != "not_a_claim"]
        return bool(counted) and all(c.verdict == "supported" for c in counted)

    @property
    def unsupported(self) -> tuple[ClaimVerdict, ...]:
        return tuple(c for c in self.claims if c.verdict == "unsupported")

    def to_dict(self) -> dict[str, Any]:
        return {"text": self.text, "grounded": round(self.grounded, 4), "supported": self.supported,
                "verifier": self.verifier, "removed_markers": list(self.removed_markers),
                "claims": [c.to_dict() for c in self.claims]}


def verify(answer_text: str, sources: Sequence[SourceLike], *, verifier: Verifier | str | None = "offline",
           threshold: float | None = None, analyzer: Analyzer | None = None,
           instructions: str = "") -> Verification:
    """Verify ``answer_text`` (with ``[n]`` markers) against ``sources``.

    ``verifier``: a :class:`~domainrag.models.verification.Verifier`, the name of a verifier
    plug-in (``offline``), or ``None`` for the word rules alone; ``threshold`` the support
    probability from which a claim is supported (default 0.45)."""
    if not isinstance(answer_text, str):
        raise ConfigError(f"The answer to verify must be a string, got {type(answer_text).__name__}.")
    model = load_verifier(verifier) if isinstance(verifier, str) else verifier
    checker = CitationChecker(analyzer=analyzer, verifier=model,
                              verify_threshold=DEFAULT_VERIFY_THRESHOLD if threshold is None else threshold)
    return verification(checker.check(answer_text, as_sources(sources), instructions), checker.id)


def verification(check: CheckResult, verifier_id: str) -> Verification:
    """A :class:`Verification` from the checker's result."""
    claims = tuple(_claim(s) for s in check.sentences)
    return Verification(check.text, claims, check.grounded, verifier_id, check.removed_markers)


def _claim(s: CitedSentence) -> ClaimVerdict:
    if s.role == META:
        verdict, score = "not_a_claim", None
    else:
        verdict, score = ("supported" if s.supported else "unsupported"), s.support
    return ClaimVerdict(s.text, s.claim, s.start, s.end, s.sources, s.checked, verdict, score,
                        "" if s.supported else s.reason, s.role)


def as_sources(sources: Sequence[SourceLike]) -> list[Source]:
    """``sources`` as numbered :class:`Source` records (1..n unless numbered)."""
    if isinstance(sources, str | bytes) or not isinstance(sources, Sequence):
        raise ConfigError("sources must be a list of texts or of objects with a 'text' field, "
                          f"got {type(sources).__name__}.")
    out: list[Source] = []
    for i, item in enumerate(sources, start=1):
        if isinstance(item, Source):
            out.append(item)
        elif isinstance(item, str):
            out.append(Source(number=i, chunk_id=f"source-{i}", doc_id=f"source-{i}", text=item, start=0,
                              end=len(item)))
        elif isinstance(item, Mapping) and isinstance(item.get("text"), str):
            number = item.get("number", i)
            if not isinstance(number, int) or isinstance(number, bool) or number < 0:
                raise ConfigError(f"Source {i}: 'number' must be a non-negative integer, got {number!r}.")
            doc = str(item.get("doc_id") or item.get("id") or f"source-{number}")
            page = item.get("page")
            out.append(Source(number=number, chunk_id=str(item.get("chunk_id") or doc), doc_id=doc,
                              text=item["text"], start=0, end=len(item["text"]),
                              page=page if isinstance(page, int) and not isinstance(page, bool) else None,
                              title=str(item.get("title") or "")))
        else:
            raise ConfigError(f"Source {i} must be a text or an object with a 'text' string, got {item!r:.80}.")
    numbers = [s.number for s in out]
    if len(set(numbers)) != len(numbers):
        raise ConfigError(f"Source numbers must be unique, got {numbers}.")
    return out


def source_dict(source: Source) -> dict[str, Any]:
    """A source as ``ask --json`` lists it (and :func:`as_sources` reads it back)."""
    return {"number": source.number, "doc_id": source.doc_id, "chunk_id": source.chunk_id, "title": source.title,
            "page": source.page, "text": source.text}


def read_answer_json(raw: str, where: str = "the input") -> tuple[str, list[Source]]:
    """(answer text, sources) from the JSON of ``ask --json`` or ``{"answer": ..., "sources": [...]}``."""
    import json

    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise ConfigError(f"{where} is not JSON ({exc}). Give the output of 'domainrag ask --json' or "
                          '{"answer": "...", "sources": ["...", ...]}.') from exc
    if not isinstance(data, dict):
        raise ConfigError(f'{where} must hold one JSON object with "answer" (or "text") and "sources".')
    text = data.get("answer", data.get("text"))
    if not isinstance(text, str):
        raise ConfigError(f'{where} has no "answer" (or "text") string to verify.')
    sources = data.get("sources")
    if not isinstance(sources, list) or not sources:
        raise ConfigError(f'{where} has no "sources" list: the answer can only be checked against the texts it '
                          "cites. 'domainrag ask --json' writes them.")
    return text, as_sources(sources)
