"""Gates: decide from a comparison whether the new run may ship (CI exit code 1 when not).

With thresholds in ``[gate]`` (per metric, and per metric within a scenario): the new run's
mean must reach ``floor`` and must not fall more than ``max_regression`` below the baseline's
(point estimate of the paired delta). With no thresholds configured, any significant regression
— verdict "worse", overall or in a scenario after Holm's correction — fails.
"""

from __future__ import annotations

from typing import Any

from ..config import GateConfig, Threshold


def apply_gate(report: dict[str, Any], gate: GateConfig) -> dict[str, Any]:
    """``{"passed": bool, "reasons": [plain sentences]}`` for a comparison report."""
    configured = bool(gate.metrics or gate.scenarios)
    reasons: list[str] = []
    if configured:
        for name, threshold in gate.metrics.items():
            reasons += _check(name, report["metrics"].get(name), threshold, "overall")
        for tag, metrics in gate.scenarios.items():
            scenario = report["scenarios"].get(tag, {}).get("metrics", {})
            for name, threshold in metrics.items():
                reasons += _check(name, scenario.get(name), threshold, f"in scenario {tag!r}")
    else:
        reasons += [_worse(name, r, "overall") for name, r in report["metrics"].items()
                    if r["verdict"] == "worse"]
        for tag, scenario in report["scenarios"].items():
            reasons += [_worse(name, r, f"in scenario {tag!r}")
                        for name, r in scenario["metrics"].items() if r["verdict"] == "worse"]
    if report.get("forced"):
        reasons.append("the runs were measured on different suites or corpora (--force)")
    return {"passed": not reasons, "reasons": reasons,
            "rule": "thresholds from [gate]" if configured else "no significant regression"}


def _check(name: str, result: dict[str, Any] | None, threshold: Threshold, where: str) -> list[str]:
    if result is None:
        return [f"{name} {where} could not be checked: not scored in both runs"]
    reasons = []
    if threshold.floor is not None and result["b"] < threshold.floor:
        reasons.append(f"{name} {where} is {result['b']:.3f}, below the floor {threshold.floor:.3f}")
    if threshold.max_regression is not None and -result["delta"] > threshold.max_regression:
        reasons.append(f"{name} {where} fell by {-result['delta']:.3f} ({result['a']:.3f} → "
                       f"{result['b']:.3f}), more than the allowed {threshold.max_regression:.3f}")
    return reasons


def _worse(name: str, r: dict[str, Any], where: str) -> str:
    ci = f", 95% CI [{r['ci'][0]:+.3f}, {r['ci'][1]:+.3f}]" if r.get("ci") else ""
    p = r.get("p_holm", r["p"])
    return (f"{name} {where} got worse: {r['a']:.3f} → {r['b']:.3f} (Δ {r['delta']:+.3f}{ci}, "
            f"p = {p:.3g}, n = {r['n']})")
