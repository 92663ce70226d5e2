"""Self-contained HTML page of a comparison of two runs (``compare_runs``'s JSON dict).

In order: what changed (the manifest diff, the headline sentence, the gate's verdict and
reasons), the metrics table (B − A paired per case: n, means, Δ, 95% CI, p, MDE, verdict) with a
Δ-with-CI chart per headline metric, overall and per scenario, coloured by verdict; the
cost/latency/token axes; each scenario's table (Holm-corrected); the flipped cases with both
answers and their citations. Same guarantees as the run report (:mod:`.html`): offline, every
value escaped, any part may be missing.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from . import markup as mk
from .html import HEADLINE

#: Dot colours of the delta charts by verdict (anything else: muted grey).
VERDICT_COLOURS = {"better": "#15803d", "worse": "#b91c1c"}


def render_comparison_html(report: Mapping[str, Any]) -> str:
    """A comparison of two runs (``compare_runs``'s JSON dict) as one self-contained page:
    what changed, metric deltas with CIs and verdicts, cost/latency, scenarios, flips, gate."""
    return mk.page(f"{report.get('a')} vs {report.get('b')}", _sections(report))


def render_matrix_html(reports: Sequence[Mapping[str, Any]]) -> str:
    """The comparisons of a matrix run (every cell against the first) on one page: an index
    of the cells' headlines, then each comparison as :func:`render_comparison_html` shows it."""
    items = "".join(f'<li><a href="#cell{i}">{mk.esc(r.get("b_name") or r.get("b"))}</a>: '
                    f'{mk.esc(r.get("headline") or mk.MISSING)}</li>' for i, r in enumerate(reports, 1))
    base = reports[0].get("a_name") or reports[0].get("a") if reports else mk.MISSING
    index = (f"<header>\n<h1>Matrix: every cell against {mk.esc(base)}</h1>\n<ol>{items}</ol>\n"
             "</header>")
    cells = [f'<article id="cell{i}">\n' + "\n".join(_sections(r, f"cell{i}-")) + "\n</article>"
             for i, r in enumerate(reports, 1)]
    return mk.page(f"matrix against {base}", [index, *cells])


def _sections(report: Mapping[str, Any], anchor: str = "") -> list[str]:
    return [
        _comparison_header(report),
        mk.section(f"{anchor}metrics", "Metrics (B − A, paired per case)",
                   _delta_table(mk.sub(report, "metrics")) + _delta_charts(report)),
        mk.section(f"{anchor}axes", "Cost and latency (lower is better)", _delta_table(mk.sub(report, "axes"))),
        mk.section(f"{anchor}scenarios", "Scenarios (Holm-corrected verdicts)", _scenario_deltas(report)),
        mk.section(f"{anchor}flips", "Flipped cases", _flips(mk.as_list(report.get("flips")))),
    ]


def _comparison_header(report: Mapping[str, Any]) -> str:
    title = f"<h1>{mk.code(report.get('a'))} → {mk.code(report.get('b'))}</h1>"
    if report.get("headline"):
        title += f"\n<p><strong>{mk.esc(report['headline'])}</strong></p>"
    forced = ("<p><strong>Forced: the runs used different suites or corpora.</strong></p>"
              if report.get("forced") else "")
    note = mk.sub(report, "cases").get("note")
    changes = [[mk.esc(k), mk.esc(mk.manifest_value(v.get("a"))), mk.esc(mk.manifest_value(v.get("b")))]
               for k, v in mk.sub(report, "manifest_diff").items()]
    gate = mk.sub(report, "gate")
    verdict = ""
    if gate:
        status = "passed" if gate.get("passed") else "failed"
        reasons = "".join(f"<li>{mk.esc(r)}</li>" for r in mk.as_list(gate.get("reasons")))
        verdict = f"<p>Gate ({mk.esc(gate.get('rule'))}): <strong>{status}</strong></p><ul>{reasons}</ul>"
    table = mk.table(("changed", "A", "B"), changes, "manifest") if changes else "<p>No manifest difference.</p>"
    return f"<header>\n{title}\n{forced}{f'<p>{mk.esc(note)}</p>' if note else ''}{table}\n{verdict}</header>"


def _delta_table(rows: Mapping[str, Any]) -> str:
    if not rows:
        return f"<p>{mk.MISSING}</p>"
    head = ("metric", "n", "A", "B", "Δ", "95% CI", "p", "MDE", "verdict")
    body = [[mk.code(name), *(mk.esc(mk.fmt(r.get(key))) for key in ("n", "a", "b", "delta")),
             mk.esc(mk.ci_text(r.get("ci"))), mk.esc(mk.fmt(r.get("p_holm", r.get("p")))), mk.esc(mk.fmt(r.get("mde"))),
             mk.esc(r.get("verdict")) + (f" · {mk.esc(r['summary'])}" if r.get("summary") else "")]
            for name, r in rows.items() if isinstance(r, Mapping)]
    return mk.table(head, body, "metrics")


def _delta_charts(report: Mapping[str, Any]) -> str:
    """One chart per headline metric: Δ with its 95% CI overall and per scenario, around 0."""
    metrics, scenarios = mk.sub(report, "metrics"), mk.sub(report, "scenarios")
    figures = []
    for metric in dict.fromkeys(HEADLINE.values()):
        if metric not in metrics:
            continue
        rows = [("all cases", metrics[metric])]
        rows += [(f"{tag} (n={mk.fmt(s.get('n'))})", mk.sub(s, "metrics")[metric])
                 for tag, s in scenarios.items() if metric in mk.sub(s, "metrics")]
        figures.append(mk.figure(_delta_svg(f"Δ {metric}, B − A", rows),
                               f"Δ {metric} (B − A) with 95% CI; green better, red worse, grey no "
                               "detectable difference (scenarios Holm-corrected)"))
    return "\n".join(figures)


def _delta_svg(title: str, rows: Sequence[tuple[str, Mapping[str, Any]]]) -> str:
    """Rows of (label, metric comparison) as dots and whiskers on an axis symmetric around 0."""
    bounds = [abs(v) for _, r in rows for v in (mk.number(r.get("delta")), *(mk.interval(r.get("ci")) or ()))
              if v is not None]
    span = _nice(max(bounds + [1e-3]) * 1.05)
    mid = (mk.LEFT + mk.RIGHT) / 2

    def x(value: float) -> float:
        return mid + max(-1.0, min(1.0, value / span)) * (mk.RIGHT - mk.LEFT) / 2

    height = mk.TOP + len(rows) * mk.ROW + mk.PAD
    parts = [mk.svg_line(x(t * span), mk.TOP - 6, x(t * span), height - mk.PAD, mk.MUTED if t == 0 else mk.GRID)
             + mk.svg_text(x(t * span), mk.TOP - 16, f"{t * span:+g}" if t else "0", "middle", mk.MUTED)
             for t in (-1.0, -0.5, 0.0, 0.5, 1.0)]
    for i, (label, r) in enumerate(rows):
        y = mk.TOP + i * mk.ROW + mk.ROW / 2
        short = mk.short_label(label)
        point, ci = mk.number(r.get("delta")), mk.interval(r.get("ci"))
        colour = VERDICT_COLOURS.get(str(r.get("verdict")), mk.MUTED)
        shown = mk.MISSING if point is None else f"{point:+.3f}"
        parts.append(mk.svg_text(mk.LEFT - 10, y, short, "end") + mk.svg_text(mk.RIGHT + 10, y, shown))
        if ci is not None:
            parts.append(mk.svg_line(x(ci[0]), y, x(ci[1]), y, mk.INK, ' stroke-width="1.5"'))
        if point is not None:
            parts.append(f'<circle cx="{x(point):.1f}" cy="{y:.1f}" r="4.5" fill="{colour}"/>')
    return mk.svg(mk.WIDTH, height, title, parts)


def _nice(value: float) -> float:
    """The smallest of 1, 2, 2.5, 5 (times a power of ten) that is >= ``value`` > 0."""
    scale = 10.0 ** math.floor(math.log10(value))
    return next(m * scale for m in (1.0, 2.0, 2.5, 5.0, 10.0) if m * scale >= value * (1 - 1e-12))


def _scenario_deltas(report: Mapping[str, Any]) -> str:
    parts = [f"<h3>{mk.esc(tag)} (n={mk.esc(mk.fmt(s.get('n')))})</h3>\n{_delta_table(mk.sub(s, 'metrics'))}"
             for tag, s in mk.sub(report, "scenarios").items()]
    return "\n".join(parts) or f"<p>{mk.MISSING}</p>"


def _flips(flips: list) -> str:
    if not flips:
        return "<p>No case changed between pass and fail.</p>"
    rows = [[mk.code(f.get("id")), mk.esc(f.get("direction")), mk.esc(f.get("question")),
             mk.esc(f"{mk.fmt(f.get('a_score'))} → {mk.fmt(f.get('b_score'))}"),
             mk.esc(f.get("a_answer") or mk.MISSING) + _cited(f.get("a_citations")),
             mk.esc(f.get("b_answer") or mk.MISSING) + _cited(f.get("b_citations"))] for f in flips]
    return mk.table(("case", "flip", "question", "score", "answer A", "answer B"), rows, "flips")


def _cited(citations: Any) -> str:
    """A compact line under an answer: each citation's number, document and support mark."""
    marks = [f"[{mk.esc(mk.fmt(c.get('number')))}] {mk.code(c.get('doc_id'))} {mk.supported(c.get('supported'))}"
             for c in mk.as_list(citations) if isinstance(c, Mapping)]
    return f"<br><small>{' · '.join(marks)}</small>" if marks else ""
