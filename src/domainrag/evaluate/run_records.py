"""Typed records of evaluation runs: :class:`Run`, :class:`CaseRecord` and their parts.

They are what the evaluation API returns and what the run store keeps. Each has
``to_dict()``/``from_dict()`` for the JSON contract (``eval --json``, the run store, the HTML
reports): ``Run.from_dict(d).to_dict() == d`` key for key and in the same order, so a report
written by one version reads in the next. Keys a record does not know (written by a newer
version, or by a plug-in) are kept in ``extra`` and written back after the known ones.

The manifest is a typed *view* (:class:`RunManifest`): it is open-ended by design (every
setting, the models that answered, the stop rule's outcome) and compared key by key, so it keeps
its mapping and names the entries that code reads.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from ..types import Citation, Evidence, OpenRecord, Span, Usage

#: A per-case score: a number, or None where the metric does not apply.
Score = float | None
JSONDict = dict[str, Any]


def _extra(data: Mapping[str, Any], known: Sequence[str]) -> Mapping[str, Any]:
    return MappingProxyType({k: v for k, v in data.items() if k not in known})


def citation_from_dict(data: Mapping[str, Any]) -> Citation:
    """A :class:`Citation` from its ``to_dict()`` form."""
    span = data.get("span") or {}
    return Citation(number=int(data["number"]), doc_id=str(data["doc_id"]), chunk_id=str(data.get("chunk_id", "")),
                    span=Span(str(data["doc_id"]), int(span.get("start", 0)), int(span.get("end", 0)),
                              data.get("page")),
                    quote=str(data.get("quote", "")), sentence=str(data.get("sentence", "")),
                    support=float(data.get("support", 0.0)), supported=bool(data.get("supported")),
                    source=str(data.get("source", "")), title=str(data.get("title", "")),
                    semantic=data.get("semantic"))


def usage_from_dict(data: Mapping[str, Any]) -> Usage:
    return Usage(int(data.get("prompt_tokens") or 0), int(data.get("completion_tokens") or 0), data.get("cost_usd"))


def evidence_from_dict(data: Mapping[str, Any]) -> Evidence:
    return Evidence(str(data["doc_id"]), data.get("start"), data.get("end"), data.get("quote"), data.get("page"),
                    int(data.get("relevance", 1)))


@dataclass(frozen=True, slots=True, kw_only=True)
class JudgeVerdict:
    """What the judge said about a case's answer: ``status`` ok / repaired / unparseable."""

    status: str
    unsupported_claims: tuple[str, ...] = ()
    reason: str = ""
    version: str | None = None

    def to_dict(self) -> JSONDict:
        return {"status": self.status, "unsupported_claims": list(self.unsupported_claims),
                "reason": self.reason, "version": self.version}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> JudgeVerdict:
        return cls(status=str(data["status"]), unsupported_claims=tuple(data.get("unsupported_claims") or ()),
                   reason=str(data.get("reason") or ""), version=data.get("version"))


@dataclass(frozen=True, slots=True, kw_only=True)
class Sample:
    """One of a case's repeated answers (``eval --repeat``)."""

    answer: str | None
    abstained: bool | None
    citations: tuple[Citation, ...]
    scores: Mapping[str, Score]

    def to_dict(self) -> JSONDict:
        return {"answer": self.answer, "abstained": self.abstained,
                "citations": [c.to_dict() for c in self.citations], "scores": dict(self.scores)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Sample:
        return cls(answer=data.get("answer"), abstained=data.get("abstained"),
                   citations=tuple(citation_from_dict(c) for c in data.get("citations") or ()),
                   scores=MappingProxyType(dict(data.get("scores") or {})))


@dataclass(frozen=True, slots=True, kw_only=True)
class AnswerOutcome:
    """The answer half of a case record (absent in a retrieval-only run)."""

    abstained: bool
    complete: bool
    grounded: float
    citations: tuple[Citation, ...]
    usage: Usage
    model_id: str | None
    model_version: str | None
    abstain_reason: str | None

    KEYS = ("abstained", "complete", "grounded", "citations", "usage", "model_id", "model_version", "abstain_reason")

    def to_dict(self) -> JSONDict:
        return {"abstained": self.abstained, "complete": self.complete, "grounded": self.grounded,
                "citations": [c.to_dict() for c in self.citations], "usage": self.usage.to_dict(),
                "model_id": self.model_id, "model_version": self.model_version,
                "abstain_reason": self.abstain_reason}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AnswerOutcome:
        return cls(abstained=bool(data["abstained"]), complete=bool(data.get("complete", True)),
                   grounded=float(data.get("grounded") or 0.0),
                   citations=tuple(citation_from_dict(c) for c in data.get("citations") or ()),
                   usage=usage_from_dict(data.get("usage") or {}), model_id=data.get("model_id"),
                   model_version=data.get("model_version"), abstain_reason=data.get("abstain_reason"))


@dataclass(frozen=True, slots=True, kw_only=True)
class Repeats:
    """A case answered several times: per-score standard deviations, whether the pass/fail of
    the headline metric differed between samples, and every sample."""

    score_sd: Mapping[str, float]
    flaky: bool
    samples: tuple[Sample, ...]

    def to_dict(self) -> JSONDict:
        return {"score_sd": dict(self.score_sd), "flaky": self.flaky, "repeats": [s.to_dict() for s in self.samples]}


@dataclass(frozen=True, slots=True, kw_only=True)
class CaseRecord:
    """One evaluated case: what was retrieved (document ids, best first) and answered, and its
    scores (``None`` where a metric does not apply). ``answer`` is None in a retrieval-only
    run; ``outcome`` holds the rest of the answer then."""

    id: str
    question: str
    scenario: tuple[str, ...] = ()
    generated: bool = False
    answerable: bool = True
    answers: tuple[str, ...] = ()
    gold: tuple[Evidence, ...] = ()
    unknown_gold: tuple[str, ...] = ()
    retrieved: tuple[str, ...] = ()
    scores: Mapping[str, Score] = field(default_factory=dict)
    latency_ms: float = 0.0
    answer: str | None = None
    outcome: AnswerOutcome | None = None
    judge: JudgeVerdict | None = None
    repeats: Repeats | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    _HEAD = ("id", "question", "scenario", "generated", "answerable", "answers", "gold", "unknown_gold",
             "retrieved", "scores", "latency_ms", "answer")

    @property
    def tags(self) -> tuple[str, ...]:
        """Its scenario tags, plus ``generated`` for machine-written cases."""
        return (*self.scenario, *(("generated",) if self.generated else ()))

    @property
    def abstained(self) -> bool | None:
        return None if self.outcome is None else self.outcome.abstained

    @property
    def citations(self) -> tuple[Citation, ...]:
        return () if self.outcome is None else self.outcome.citations

    @property
    def flaky(self) -> bool:
        return bool(self.repeats and self.repeats.flaky)

    @property
    def failed(self) -> bool:
        """True when a model call of this case failed: the record then holds its retrieval
        scores only, and ``error`` says why (see evaluate/faults.py)."""
        return self.extra.get("status") == "failed"

    @property
    def error(self) -> Mapping[str, str] | None:
        """``{"kind", "stage", "message"}`` of a failed case; None otherwise."""
        error = self.extra.get("error")
        return error if self.failed and isinstance(error, Mapping) else None

    def to_dict(self) -> JSONDict:
        data: JSONDict = {
            "id": self.id, "question": self.question, "scenario": list(self.scenario), "generated": self.generated,
            "answerable": self.answerable, "answers": list(self.answers), "gold": [e.to_dict() for e in self.gold],
            "unknown_gold": list(self.unknown_gold), "retrieved": list(self.retrieved), "scores": dict(self.scores),
            "latency_ms": self.latency_ms, "answer": self.answer,
        }
        if self.outcome is not None:
            data.update(self.outcome.to_dict())
        if self.judge is not None:
            data["judge"] = self.judge.to_dict()
        if self.repeats is not None:
            data.update(self.repeats.to_dict())
        data.update(self.extra)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CaseRecord:
        consumed = list(cls._HEAD)
        outcome = None
        if "abstained" in data:
            outcome = AnswerOutcome.from_dict(data)
            consumed += AnswerOutcome.KEYS
        judge = None
        if data.get("judge"):
            judge = JudgeVerdict.from_dict(data["judge"])
            consumed.append("judge")
        repeats = None
        if "repeats" in data:
            repeats = Repeats(score_sd=MappingProxyType(dict(data.get("score_sd") or {})),
                              flaky=bool(data.get("flaky")),
                              samples=tuple(Sample.from_dict(s) for s in data["repeats"]))
            consumed += ("score_sd", "flaky", "repeats")
        return cls(
            id=str(data["id"]), question=str(data.get("question", "")), scenario=tuple(data.get("scenario") or ()),
            generated=bool(data.get("generated", False)), answerable=bool(data.get("answerable", True)),
            answers=tuple(data.get("answers") or ()), gold=tuple(evidence_from_dict(e) for e in data.get("gold") or ()),
            unknown_gold=tuple(data.get("unknown_gold") or ()), retrieved=tuple(data.get("retrieved") or ()),
            scores=MappingProxyType(dict(data.get("scores") or {})), latency_ms=float(data.get("latency_ms") or 0.0),
            answer=data.get("answer"), outcome=outcome, judge=judge, repeats=repeats,
            extra=_extra(data, consumed),
        )


class RunManifest(OpenRecord):
    """What a run measured and with what: suite, corpus and index hashes, model, template,
    every setting, seed... A read-only mapping (the JSON contract), with the entries that code
    reads as typed properties."""

    __slots__ = ()

    def _str(self, key: str) -> str | None:
        value = self._data.get(key)
        return None if value is None else str(value)

    @property
    def suite_hash(self) -> str | None:
        return self._str("suite_hash")

    @property
    def corpus_hash(self) -> str | None:
        return self._str("corpus_hash")

    @property
    def model(self) -> str | None:
        return self._str("model")

    @property
    def mode(self) -> str | None:
        return self._str("mode")

    @property
    def cases(self) -> int:
        return int(self._data.get("cases") or 0)

    @property
    def stop_rule(self) -> str | None:
        return self._str("stop_rule")

    @property
    def stop_result(self) -> Mapping[str, Any] | None:
        value = self._data.get("stop_result")
        return value if isinstance(value, Mapping) else None


@dataclass(frozen=True, slots=True, kw_only=True)
class ScenarioSummary:
    """A scenario tag's share of a run: its case count, metric means and 95% intervals, and how
    many of its cases failed (in the JSON only when some did)."""

    n: int
    metrics: Mapping[str, Mapping[str, Any]]
    ci95: Mapping[str, Mapping[str, list[float]]]
    failed: int = 0

    def to_dict(self) -> JSONDict:
        data = {"n": self.n, "metrics": _plain(self.metrics), "ci95": _plain(self.ci95)}
        return {**data, "failed": self.failed} if self.failed else data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ScenarioSummary:
        return cls(n=int(data["n"]), metrics=data.get("metrics") or {}, ci95=data.get("ci95") or {},
                   failed=int(data.get("failed") or 0))


@dataclass(frozen=True, slots=True, kw_only=True)
class RunSummary:
    """A finished run's aggregates: metric means by group (``{"retrieval": {"ndcg@10": …}}``),
    their 95% bootstrap intervals, the same per scenario tag, and warnings."""

    metrics: Mapping[str, Mapping[str, Any]]
    ci95: Mapping[str, Mapping[str, list[float]]]
    scenarios: Mapping[str, ScenarioSummary]
    warnings: tuple[str, ...] = ()
    extra: Mapping[str, Any] = field(default_factory=dict)

    KEYS = ("metrics", "ci95", "scenarios", "warnings")

    def to_dict(self) -> JSONDict:
        return {"metrics": _plain(self.metrics), "ci95": _plain(self.ci95),
                "scenarios": {tag: s.to_dict() for tag, s in self.scenarios.items()},
                "warnings": list(self.warnings), **self.extra}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RunSummary:
        return cls(metrics=data.get("metrics") or {}, ci95=data.get("ci95") or {},
                   scenarios={t: ScenarioSummary.from_dict(s) for t, s in (data.get("scenarios") or {}).items()},
                   warnings=tuple(data.get("warnings") or ()), extra=_extra(data, cls.KEYS))


@dataclass(frozen=True, slots=True, kw_only=True)
class Run:
    """A stored evaluation run: its id (``r-YYYYMMDD-HHMMSS-xxxx``), name, manifest, per-case
    records and — once finished — its summary."""

    run_id: str
    name: str = ""
    created: str = ""
    manifest: RunManifest = field(default_factory=RunManifest)
    summary: RunSummary | None = None
    cases: tuple[CaseRecord, ...] = ()
    extra: Mapping[str, Any] = field(default_factory=dict)

    _KNOWN = ("run_id", "name", "created", "manifest", *RunSummary.KEYS, "cases")

    @property
    def metrics(self) -> Mapping[str, Mapping[str, Any]]:
        """Metric means by group; empty for a run that did not finish."""
        return self.summary.metrics if self.summary else {}

    @property
    def scenarios(self) -> Mapping[str, ScenarioSummary]:
        return self.summary.scenarios if self.summary else {}

    @property
    def warnings(self) -> tuple[str, ...]:
        return self.summary.warnings if self.summary else ()

    @property
    def failed(self) -> Mapping[str, Any] | None:
        """``{"count", "by_kind", "cases"}`` when some case failed (a model call failed; running
        the same evaluation again retries them), else None."""
        failed = self.summary.extra.get("failed") if self.summary else None
        return failed if isinstance(failed, Mapping) else None

    def metric(self, name: str) -> Any:
        """The overall value of metric ``name`` (e.g. ``"ndcg@10"``) whatever its group, or None."""
        return next((values[name] for values in self.metrics.values() if name in values), None)

    def case(self, case_id: str) -> CaseRecord:
        for record in self.cases:
            if record.id == case_id:
                return record
        raise KeyError(case_id)

    def to_dict(self) -> JSONDict:
        data: JSONDict = {"run_id": self.run_id, "name": self.name, "created": self.created,
                          "manifest": self.manifest.to_dict()}
        if self.summary is not None:
            data.update(self.summary.to_dict())
        data["cases"] = [c.to_dict() for c in self.cases]
        data.update(self.extra)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Run:
        has_summary = any(k in data for k in RunSummary.KEYS)
        return cls(run_id=str(data["run_id"]), name=str(data.get("name") or ""), created=str(data.get("created") or ""),
                   manifest=RunManifest(data.get("manifest") or {}),
                   summary=RunSummary.from_dict(data) if has_summary else None,
                   cases=tuple(CaseRecord.from_dict(c) for c in data.get("cases") or ()),
                   extra=_extra(data, cls._KNOWN))


@dataclass(frozen=True, slots=True, kw_only=True)
class RunInfo:
    """A run as ``RunStore.list()`` shows it: without its cases; ``judged`` counts the stored
    case records (fewer than ``manifest.cases`` when interrupted or stopped early), ``failed``
    those of them whose model call failed."""

    run_id: str
    name: str
    created: str
    status: str
    judged: int
    manifest: RunManifest
    metrics: Mapping[str, Mapping[str, Any]]
    failed: int = 0

    def to_dict(self) -> JSONDict:
        data: JSONDict = {"run_id": self.run_id, "name": self.name, "created": self.created,
                          "status": self.status, "judged": self.judged}
        if self.failed:  # the key only appears when some case failed (the listing's contract)
            data["failed"] = self.failed
        return {**data, "manifest": self.manifest.to_dict(), "metrics": _plain(self.metrics)}

    def metric(self, name: str) -> Any:
        return next((values[name] for values in self.metrics.values() if name in values), None)


def _plain(value: Any) -> Any:
    """Mappings (read-only views included) as plain dicts, for JSON."""
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    return value
