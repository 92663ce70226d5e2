"""Typed results of comparing two runs: :class:`Comparison` with its :class:`MetricComparison`
rows, flipped cases and the :class:`GateResult`.

``to_dict()``/``from_dict()`` keep the JSON contract of ``compare --json`` (same keys, same
order); keys a record does not know are kept in ``extra``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any, Literal

Verdict = Literal["better", "worse", "no detectable difference"]
JSONDict = dict[str, Any]


@dataclass(frozen=True, slots=True, kw_only=True)
class MetricComparison:
    """One metric compared case by case: n pairs, each run's mean (``a``, ``b``), the mean
    delta B − A with its paired bootstrap CI, the p-value and its test (``mcnemar``,
    ``permutation`` or ``none``), the minimum detectable effect and the verdict. ``p_holm`` is
    set per scenario (Holm-corrected), ``summary`` on cost and latency axes ("37% cheaper")."""

    n: int
    a: float
    b: float
    delta: float
    ci: tuple[float, float] | None
    p: float
    test: str
    mde: float | None
    verdict: str
    summary: str | None = None
    p_holm: float | None = None
    #: ``overall`` (a quality metric), ``axis`` (cost, tokens, latency: lower is better; has a
    #: ``summary``) or ``scenario`` (within a scenario tag: has ``p_holm``).
    role: Literal["overall", "axis", "scenario"] = "overall"

    @property
    def decided(self) -> bool:
        return self.verdict != "no detectable difference"

    @property
    def p_value(self) -> float:
        """The p-value the verdict used (Holm-corrected within a scenario)."""
        return self.p if self.p_holm is None else self.p_holm

    def to_dict(self) -> JSONDict:
        data: JSONDict = {"n": self.n, "a": self.a, "b": self.b, "delta": self.delta,
                          "ci": list(self.ci) if self.ci else None, "p": self.p, "test": self.test,
                          "mde": self.mde, "verdict": self.verdict}
        if self.role == "axis":
            data["summary"] = self.summary
        if self.role == "scenario":
            data["p_holm"] = self.p_holm
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> MetricComparison:
        ci = data.get("ci")
        return cls(n=int(data["n"]), a=float(data["a"]), b=float(data["b"]), delta=float(data["delta"]),
                   ci=(float(ci[0]), float(ci[1])) if ci else None, p=float(data["p"]),
                   test=str(data.get("test", "")), mde=data.get("mde"), verdict=str(data["verdict"]),
                   summary=data.get("summary"), p_holm=data.get("p_holm"),
                   role="axis" if "summary" in data else "scenario" if "p_holm" in data else "overall")


@dataclass(frozen=True, slots=True, kw_only=True)
class ScenarioComparison:
    """The comparison within one scenario tag (verdicts Holm-corrected across scenarios)."""

    n: int
    metrics: Mapping[str, MetricComparison]
    correction: str = "holm"

    def to_dict(self) -> JSONDict:
        return {"n": self.n, "metrics": {k: m.to_dict() for k, m in self.metrics.items()},
                "correction": self.correction}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ScenarioComparison:
        return cls(n=int(data["n"]), correction=str(data.get("correction", "holm")),
                   metrics={k: MetricComparison.from_dict(m) for k, m in (data.get("metrics") or {}).items()})


@dataclass(frozen=True, slots=True, kw_only=True)
class Coverage:
    """How many cases each run has and how many were paired; ``note`` explains a shortfall.
    ``failed`` (``{"a": n, "b": n}``, None when no case failed) counts each run's failed cases
    (a model call failed); ``excluded`` the shared cases left out because they failed in A or B.
    Both appear in the JSON only when some case failed."""

    a: int
    b: int
    common: int
    note: str = ""
    failed: Mapping[str, int] | None = None
    excluded: int = 0
    extra: Mapping[str, Any] = field(default_factory=dict)

    _KEYS = ("a", "b", "common", "note", "failed", "excluded")

    def to_dict(self) -> JSONDict:
        data: JSONDict = {"a": self.a, "b": self.b, "common": self.common, "note": self.note}
        if self.failed is not None:
            data["failed"] = dict(self.failed)
        if self.excluded:
            data["excluded"] = self.excluded
        return {**data, **self.extra}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Coverage:
        failed = data.get("failed")
        return cls(a=int(data["a"]), b=int(data["b"]), common=int(data["common"]), note=str(data.get("note", "")),
                   failed=dict(failed) if isinstance(failed, Mapping) else None,
                   excluded=int(data.get("excluded") or 0),
                   extra=MappingProxyType({k: v for k, v in data.items() if k not in cls._KEYS}))


@dataclass(frozen=True, slots=True, kw_only=True)
class Flip:
    """A case that passes in one run and fails in the other on the headline metric."""

    id: str
    question: str | None
    metric: str
    direction: str
    a_score: float
    b_score: float
    a_answer: str | None = None
    b_answer: str | None = None
    a_citations: tuple[Mapping[str, Any], ...] = ()
    b_citations: tuple[Mapping[str, Any], ...] = ()

    def to_dict(self) -> JSONDict:
        return {"id": self.id, "question": self.question, "metric": self.metric, "direction": self.direction,
                "a_score": self.a_score, "b_score": self.b_score, "a_answer": self.a_answer,
                "b_answer": self.b_answer, "a_citations": [dict(c) for c in self.a_citations],
                "b_citations": [dict(c) for c in self.b_citations]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Flip:
        return cls(id=str(data["id"]), question=data.get("question"), metric=str(data["metric"]),
                   direction=str(data["direction"]), a_score=float(data["a_score"]), b_score=float(data["b_score"]),
                   a_answer=data.get("a_answer"), b_answer=data.get("b_answer"),
                   a_citations=tuple(data.get("a_citations") or ()), b_citations=tuple(data.get("b_citations") or ()))


@dataclass(frozen=True, slots=True, kw_only=True)
class GateResult:
    """Whether the new run may ship: ``passed``, the plain ``reasons`` it may not, and the
    ``rule`` applied (thresholds from ``[gate]``, or "no significant regression")."""

    passed: bool
    reasons: tuple[str, ...] = ()
    rule: str = ""

    def __bool__(self) -> bool:
        return self.passed

    def to_dict(self) -> JSONDict:
        return {"passed": self.passed, "reasons": list(self.reasons), "rule": self.rule}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> GateResult:
        return cls(passed=bool(data["passed"]), reasons=tuple(data.get("reasons") or ()),
                   rule=str(data.get("rule", "")))


@dataclass(frozen=True, slots=True, kw_only=True)
class Comparison:
    """Run ``b`` (new) against run ``a`` (baseline), paired by case: what changed in the
    manifests, the headline, per metric and per scenario rows, cost and latency axes, flipped
    cases and — once :func:`~domainrag.compare.gate.gate` has run — the gate."""

    a: str
    b: str
    a_name: str | None
    b_name: str | None
    forced: bool
    alpha: float
    headline: str
    manifest_diff: Mapping[str, Mapping[str, Any]]
    cases: Coverage
    metrics: Mapping[str, MetricComparison]
    axes: Mapping[str, MetricComparison]
    scenarios: Mapping[str, ScenarioComparison]
    flips: tuple[Flip, ...] = ()
    gate: GateResult | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    _KNOWN = ("a", "b", "a_name", "b_name", "forced", "alpha", "headline", "manifest_diff", "cases", "metrics",
              "axes", "scenarios", "flips", "gate")

    def verdict(self, metric: str, scenario: str | None = None) -> str | None:
        """The verdict on ``metric`` overall (or within ``scenario``); None when not compared."""
        rows = self.metrics if scenario is None else (
            self.scenarios[scenario].metrics if scenario in self.scenarios else {})
        row = rows.get(metric) or (self.axes.get(metric) if scenario is None else None)
        return row.verdict if row else None

    def with_gate(self, gate: GateResult) -> Comparison:
        return replace(self, gate=gate)

    def to_dict(self) -> JSONDict:
        data: JSONDict = {
            "a": self.a, "b": self.b, "a_name": self.a_name, "b_name": self.b_name, "forced": self.forced,
            "alpha": self.alpha, "headline": self.headline,
            "manifest_diff": {k: dict(v) for k, v in self.manifest_diff.items()}, "cases": self.cases.to_dict(),
            "metrics": {k: m.to_dict() for k, m in self.metrics.items()},
            "axes": {k: m.to_dict() for k, m in self.axes.items()},
            "scenarios": {k: s.to_dict() for k, s in self.scenarios.items()},
            "flips": [f.to_dict() for f in self.flips],
        }
        if self.gate is not None:
            data["gate"] = self.gate.to_dict()
        data.update(self.extra)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Comparison:
        return cls(
            a=str(data["a"]), b=str(data["b"]), a_name=data.get("a_name"), b_name=data.get("b_name"),
            forced=bool(data.get("forced")), alpha=float(data.get("alpha", 0.05)),
            headline=str(data.get("headline", "")),
            manifest_diff={k: dict(v) for k, v in (data.get("manifest_diff") or {}).items()},
            cases=Coverage.from_dict(data["cases"]),
            metrics={k: MetricComparison.from_dict(m) for k, m in (data.get("metrics") or {}).items()},
            axes={k: MetricComparison.from_dict(m) for k, m in (data.get("axes") or {}).items()},
            scenarios={k: ScenarioComparison.from_dict(s) for k, s in (data.get("scenarios") or {}).items()},
            flips=tuple(Flip.from_dict(f) for f in data.get("flips") or ()),
            gate=GateResult.from_dict(data["gate"]) if data.get("gate") else None,
            extra=MappingProxyType({k: v for k, v in data.items() if k not in cls._KNOWN}),
        )
