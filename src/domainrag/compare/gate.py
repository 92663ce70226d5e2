"""Gates: decide from a comparison whether the new run may ship (CI exit code 1 when not).

With thresholds in ``[gate]`` (per metric, and per metric within a scenario): the new run's
mean must reach ``floor`` and must not fall more than ``max_regression`` below the baseline's
(point estimate of the paired delta). With no thresholds configured, any significant regression
— verdict "worse", overall or in a scenario after Holm's correction — fails.
"""

from __future__ import annotations

from ..config import GateConfig, Threshold
from .results import Comparison, GateResult, MetricComparison


def gate(comparison: Comparison, config: GateConfig) -> GateResult:
    """Whether ``comparison``'s new run passes the ``[gate]`` configuration (see the module
    docstring); attach it with ``comparison.with_gate(result)``."""
    configured = bool(config.metrics or config.scenarios)
    reasons: list[str] = []
    if configured:
        for name, threshold in config.metrics.items():
            reasons += _check(name, comparison.metrics.get(name), threshold, "overall")
        for tag, metrics in config.scenarios.items():
            rows = comparison.scenarios[tag].metrics if tag in comparison.scenarios else {}
            for name, threshold in metrics.items():
                reasons += _check(name, rows.get(name), threshold, f"in scenario {tag!r}")
    else:
        reasons += [_worse(name, r, "overall") for name, r in comparison.metrics.items() if r.verdict == "worse"]
        for tag, scenario in comparison.scenarios.items():
            reasons += [_worse(name, r, f"in scenario {tag!r}")
                        for name, r in scenario.metrics.items() if r.verdict == "worse"]
    if comparison.forced:
        reasons.append("the runs were measured on different suites or corpora (--force)")
    return GateResult(passed=not reasons, reasons=tuple(reasons),
                      rule="thresholds from [gate]" if configured else "no significant regression")


def _check(name: str, result: MetricComparison | None, threshold: Threshold, where: str) -> list[str]:
    if result is None:
        return [f"{name} {where} could not be checked: not scored in both runs"]
    reasons = []
    if threshold.floor is not None and result.b < threshold.floor:
        reasons.append(f"{name} {where} is {result.b:.3f}, below the floor {threshold.floor:.3f}")
    if threshold.max_regression is not None and -result.delta > threshold.max_regression:
        reasons.append(f"{name} {where} fell by {-result.delta:.3f} ({result.a:.3f} → "
                       f"{result.b:.3f}), more than the allowed {threshold.max_regression:.3f}")
    return reasons


def _worse(name: str, r: MetricComparison, where: str) -> str:
    ci = f", 95% CI [{r.ci[0]:+.3f}, {r.ci[1]:+.3f}]" if r.ci else ""
    return (f"{name} {where} got worse: {r.a:.3f} → {r.b:.3f} (Δ {r.delta:+.3f}{ci}, "
            f"p = {r.p_value:.3g}, n = {r.n})")
