"""Compare two stored evaluation runs case by case.

1. **Manifest diff** first: what changed (model, version, template, config, corpus, index,
   suite...). Runs over different suites or corpora are refused unless ``force``, which marks
   the report.
2. **Cases**: the comparison is paired over the cases both runs scored (a run interrupted
   halfway is compared on the intersection, and the report says so). Cases that *failed* in
   either run (a model call failed: ``"status": "failed"``) are left out of every metric, the
   retrieval ones too, so that each delta is over one set of cases; ``cases`` then gives
   ``failed`` (per run) and ``excluded``, and the note says so. With ``--repeat``, a case's
   score is its mean over the samples, so the case stays the unit and every repeat is used.
3. **Metrics**: for every per-case score both runs have, :func:`.stats.paired` gives each run's
   mean, the mean delta (B − A) with a paired bootstrap CI, a p-value (McNemar for pass/fail
   metrics, a sign-flip permutation test otherwise), the minimum detectable effect at this n and
   a verdict. Higher is better for every quality metric.
4. **Scenarios**: the same per scenario tag; verdicts there use Holm's correction across the
   scenarios of each metric (family-wise error at ``alpha``).
5. **Axes**: cost, tokens and latency (lower is better) with CIs and a plain summary
   ("37% cheaper").
6. **Flips**: cases that pass in one run and fail in the other on the headline metric
   (pass = score >= 0.5; binary metrics pass at 1).
7. **Headline**: one sentence for people in a hurry — the headline quality metric's verdict
   ("ndcg@10 better by +0.022 [+0.012, +0.033]", or "token_f1 within ±0.018" when no
   difference is detectable: the CI's farthest bound) and each axis that moved detectably
   ("37% cheaper").
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from ..errors import ConfigError
from ..evaluate.run_records import CaseRecord, Run
from ..evaluate.runner import HEADLINE_METRICS, PASS_AT
from .paired_stats import PairedResult, holm_adjusted, is_score, paired, ratio_summary
from .results import Comparison, Coverage, Flip, MetricComparison, ScenarioComparison

#: Manifest keys that identify what was measured: a difference refuses the comparison.
SAME_REQUIRED = ("suite_hash", "corpus_hash")
#: Manifest keys that differ between any two runs and say nothing about what changed.
#: Not compared: the planned case count (the pairing reports coverage). Model and judge versions
#: *are*: a vendor changing what a name serves is exactly what a comparison must show.
IGNORED = ("cases",)
AXES = {"cost_usd": "cost", "latency_ms": "latency", "prompt_tokens": "tokens",
        "completion_tokens": "tokens"}
MAX_FLIPS = 50
Pair = tuple[CaseRecord, CaseRecord]


def compare_runs(a: Run, b: Run, *, force: bool = False, alpha: float = 0.05) -> Comparison:
    """The comparison of runs ``a`` (baseline) and ``b`` (see the module docstring)."""
    if a.run_id == b.run_id:
        raise ConfigError(f"Both sides are run {a.run_id}: compare two different runs.")
    diff = manifest_diff(a.manifest, b.manifest)
    refused = [k for k in SAME_REQUIRED if k in diff]
    if refused and not force:
        what = ", ".join(f"{k} {diff[k]['a']} vs {diff[k]['b']}" for k in refused)
        raise ConfigError(f"Runs {a.run_id} and {b.run_id} were measured on different data "
                          f"({what}); their scores are not comparable. Pass --force to compare "
                          "anyway (the report is marked).")
    cases_a = {c.id: c for c in a.cases}
    shared = [(cases_a[c.id], c) for c in b.cases if c.id in cases_a]
    if not shared:
        raise ConfigError(f"Runs {a.run_id} and {b.run_id} have no case in common.")
    common = [(ca, cb) for ca, cb in shared if not (ca.failed or cb.failed)]
    if not common:
        raise ConfigError(f"Runs {a.run_id} and {b.run_id} have no case that both completed: every shared "
                          "case failed in one of them. Run those evaluations again to retry their failed cases.")
    metrics, axes = _metrics(common, alpha)
    summary = headline(metrics, axes)
    if "verifier" in diff:
        summary += (f" Checked by different verifiers ({diff['verifier']['a']} vs {diff['verifier']['b']}): "
                    "grounded, faithfulness and citation scores moved with the checker, not only the answers.")
    return Comparison(
        a=a.run_id, b=b.run_id, a_name=a.name, b_name=b.name, forced=bool(refused), alpha=alpha,
        headline=summary, manifest_diff=diff, cases=_coverage(a, b, len(shared), len(common)),
        metrics=metrics, axes=axes, scenarios=_scenarios(common, alpha), flips=flips(common),
    )


def manifest_diff(a: Mapping[str, Any], b: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """``{key: {"a", "b"}}`` for every manifest entry that differs; the knowledge-base settings
    (``settings``) are compared setting by setting (``"settings.embedder.max_length"``) when
    both runs recorded them (runs of earlier versions did not: ``config_hash`` still differs)."""
    both = all(isinstance(m.get("settings"), Mapping) for m in (a, b))
    flat_a, flat_b = _expand_settings(a, both), _expand_settings(b, both)
    keys = [k for k in dict.fromkeys([*flat_a, *flat_b]) if k not in IGNORED]
    return {k: {"a": flat_a.get(k), "b": flat_b.get(k)} for k in keys if flat_a.get(k) != flat_b.get(k)}


def _expand_settings(manifest: Mapping[str, Any], expand: bool) -> dict[str, Any]:
    out = {k: v for k, v in manifest.items() if k != "settings"}
    if expand:
        out.update({f"settings.{k}": v for k, v in manifest["settings"].items()})
    return out


def _coverage(a: Run, b: Run, shared: int, common: int) -> Coverage:
    """How many cases each run has and how many were paired; ``failed`` (per run) and
    ``excluded`` only when a case failed in either run."""
    n_a, n_b = len(a.cases), len(b.cases)
    notes = []
    if shared < max(n_a, n_b):
        early = [side for side, run in (("A", a), ("B", b))
                 if run.manifest.stop_rule and len(run.cases) < max(n_a, n_b)]
        why = (f"{' and '.join(early)} stopped early by its adaptive rule" if early
               else "an interrupted or limited run")
        notes.append(f"compared on the {common} cases both runs scored (A has {n_a}, B has {n_b}: {why})")
    failed = {"a": sum(c.failed for c in a.cases), "b": sum(c.failed for c in b.cases)}
    if shared > common:
        notes.append(f"{shared - common} case(s) left out because a model call failed in A ({failed['a']} failed) "
                     f"or B ({failed['b']} failed); re-run an evaluation to retry its failed cases")
    return Coverage(a=n_a, b=n_b, common=common, note="; ".join(notes),
                    failed=failed if failed["a"] or failed["b"] else None, excluded=shared - common)


def _pairs(common: Sequence[Pair], name: str) -> tuple[list[float], list[float]]:
    xs, ys = [], []
    for ca, cb in common:
        x, y = ca.scores.get(name), cb.scores.get(name)
        if is_score(x) and is_score(y):   # missing, null or NaN on either side: not paired
            xs.append(float(x))
            ys.append(float(y))
    return xs, ys


def _names(common: Sequence[Pair]) -> list[str]:
    return list(dict.fromkeys(n for ca, cb in common for n in ca.scores if n in cb.scores))


def _metrics(common: Sequence[Pair], alpha: float
             ) -> tuple[dict[str, MetricComparison], dict[str, MetricComparison]]:
    metrics, axes = {}, {}
    for name in _names(common):
        xs, ys = _pairs(common, name)
        if len(xs) < 2:
            continue
        result = _result(paired(xs, ys, alpha=alpha))
        if name in AXES:
            axes[name] = replace(result, verdict=_axis_verdict(result.verdict), role="axis",
                                     summary=ratio_summary(sum(xs), sum(ys), kind=AXES[name]))
        else:
            metrics[name] = result
    return metrics, axes


def headline(metrics: Mapping[str, MetricComparison], axes: Mapping[str, MetricComparison]) -> str:
    """"ndcg@10 better by +0.022 [+0.012, +0.033]; 37% cheaper" (see the module docstring)."""
    parts = []
    name = next((m for m in HEADLINE_METRICS if m in metrics), None)
    if name:
        m = metrics[name]
        ci = m.ci or (m.delta, m.delta)
        if m.verdict == "no detectable difference":
            parts.append(f"{name} within ±{max(abs(ci[0]), abs(ci[1])):.3f} (no detectable difference)")
        else:
            parts.append(f"{name} {m.verdict} by {m.delta:+.3f} [{ci[0]:+.3f}, {ci[1]:+.3f}]")
    parts += [axis.summary for axis in axes.values()
              if axis.summary and axis.verdict != "no detectable difference"]
    return "; ".join(dict.fromkeys(parts))


def _axis_verdict(verdict: str) -> str:
    """Lower is better on cost and latency: an increase is worse."""
    return {"better": "worse", "worse": "better"}.get(verdict, verdict)


def _result(r: PairedResult) -> MetricComparison:
    return MetricComparison(n=r.n, a=r.mean_a, b=r.mean_b, delta=r.delta, ci=r.ci, p=r.p, test=r.test,
                            mde=r.mde, verdict=r.verdict)


def _scenarios(common: Sequence[Pair], alpha: float) -> dict[str, ScenarioComparison]:
    tags = sorted({t for _, cb in common for t in cb.scenario})
    by_tag = {t: [(ca, cb) for ca, cb in common if t in cb.scenario] for t in tags}
    rows: dict[str, dict[str, MetricComparison]] = {t: {} for t in tags}
    for name in _names(common):
        if name in AXES:
            continue
        results = {}
        for tag, pairs in by_tag.items():
            xs, ys = _pairs(pairs, name)
            if len(xs) >= 2:
                results[tag] = _result(paired(xs, ys, alpha=alpha))
        adjusted = holm_adjusted({t: r.p for t, r in results.items()})
        for tag, r in results.items():
            verdict = r.verdict if adjusted[tag] < alpha else "no detectable difference"
            rows[tag][name] = replace(r, p_holm=adjusted[tag], verdict=verdict, role="scenario")
    return {t: ScenarioComparison(n=len(by_tag[t]), metrics=rows[t]) for t in tags}


def flips(common: Sequence[Pair]) -> tuple[Flip, ...]:
    """Cases passing in one run and failing in the other on the headline metric."""
    names = _names(common)
    metric = next((m for m in HEADLINE_METRICS if m in names), None)
    if metric is None:
        return ()
    out = []
    for ca, cb in common:
        x, y = ca.scores.get(metric), cb.scores.get(metric)
        if not (is_score(x) and is_score(y)) or (x >= PASS_AT) == (y >= PASS_AT):
            continue
        out.append(Flip(id=cb.id, question=cb.question, metric=metric,
                        direction="fail→pass" if y >= PASS_AT else "pass→fail",
                        a_score=float(x), b_score=float(y),
                        a_answer=ca.answer, b_answer=cb.answer,
                        a_citations=tuple(c.to_dict() for c in ca.citations),
                        b_citations=tuple(c.to_dict() for c in cb.citations)))
    out.sort(key=lambda f: (f.direction != "pass→fail", f.id))
    return tuple(out[:MAX_FLIPS])
