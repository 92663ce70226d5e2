"""Self-contained HTML report of one evaluation run.

:func:`render_html` turns a run, the JSON-able dict of the product's JSON contract (``run_id``,
``name``, ``created``, ``manifest``, ``metrics``, ``ci95``, ``scenarios``, ``cases``), into one
HTML page that opens offline: inline CSS, no scripts, no fonts, images or requests from elsewhere;
the plots are inline SVG drawn here. The page holds, in order:

1. a header: the run's name, id and date, and its manifest as a table (nested values as JSON);
2. overall metrics: a table a metric group (metric | value | 95% CI);
3. per scenario: for each group's headline metric (retrieval ``ndcg@10``, answer ``token_f1``,
   citation ``citation_precision``) a dot-and-whisker chart, a row a scenario with its point at
   the value, its whisker over the 95% CI and a dashed vertical line at the overall value; then a
   table a group with every metric of every scenario;
4. score distributions: a 10-bin histogram over [0, 1] of the cases' ``ndcg@10`` and ``token_f1``;
5. worst cases: the 20 cases with the lowest ``token_f1`` (``ndcg@10`` when no case has one), ties
   broken by id and cases without the score last, each with its question, answer, reference
   answers, citations, gold evidence, top-5 retrieved documents (gold ones marked) and scores.

Any part of the run may be missing or null. Every piece of text from the run is escaped
(questions and documents are untrusted). Floats show 3 decimals, integers as they are, missing
values "—". The output depends on the run alone: the same run renders to the same string.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from html import escape
from pathlib import Path
from typing import Any

HEADLINE = {"retrieval": "ndcg@10", "answer": "token_f1", "citation": "citation_precision"}
"""The metric each group's per-scenario chart shows."""

DISTRIBUTIONS = ("ndcg@10", "token_f1")
"""Per-case scores drawn as histograms."""

WORST_CASES = 20
TOP_RETRIEVED = 5
BINS = 10
MISSING = "—"

# Geometry of the SVG charts, in pixels.
_WIDTH = 680
_LEFT, _RIGHT = 210, 600  # the dot-and-whisker plot's x range (labels left, values right)
_TOP, _ROW, _PAD = 28, 26, 10
_LABEL_CHARS = 30
_HIST_HEIGHT, _HIST_LEFT, _HIST_RIGHT, _HIST_TOP, _HIST_BOTTOM = 220, 40, 660, 20, 190

_INK, _MUTED, _GRID, _ACCENT = "#1f2937", "#6b7280", "#e5e7eb", "#2563eb"
_VERDICT_COLOURS = {"better": "#15803d", "worse": "#b91c1c"}   # anything else: _MUTED

_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif;
       color: #1f2937; line-height: 1.4; max-width: 72rem; margin: 2rem auto; padding: 0 1rem; }
h1 { margin-bottom: .2rem; }
h2 { border-bottom: 1px solid #d1d5db; padding-bottom: .2rem; margin-top: 2.2rem; }
h3 { margin: 1.2rem 0 .4rem; font-size: 1.05rem; }
code { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: .9em; }
nav a { margin-right: 1rem; }
.meta, figcaption { color: #6b7280; font-size: .9rem; }
table { border-collapse: collapse; margin: .4rem 0 1rem; font-size: .9rem; }
th, td { border: 1px solid #e5e7eb; padding: .2rem .5rem; text-align: left; vertical-align: top; }
th { background: #f3f4f6; }
table.metrics td:not(:first-child) { text-align: right; font-variant-numeric: tabular-nums; }
table.manifest td:last-child { font-family: ui-monospace, Menlo, Consolas, monospace;
                               word-break: break-all; }
figure { margin: 1rem 0; }
svg { max-width: 100%; height: auto; font-family: inherit; font-size: 12px; }
.case { border: 1px solid #e5e7eb; border-radius: 4px; padding: .4rem 1rem; margin: 1rem 0; }
.case h3 { margin: .3rem 0 .6rem; }
.tag { font-size: .8rem; font-weight: normal; border: 1px solid #d1d5db; border-radius: 3px;
       padding: 0 .3rem; margin-left: .3rem; }
.tag.generated { background: #fef3c7; border-color: #d97706; }
.headline { font-size: .85rem; font-weight: normal; color: #6b7280; margin-left: .6rem; }
dl { display: grid; grid-template-columns: 12rem 1fr; gap: .3rem 1rem; margin: 0 0 .6rem; }
dt { font-weight: 600; color: #4b5563; }
dd { margin: 0; }
dd table { margin: 0; }
ol.retrieved { margin: 0; padding-left: 1.4rem; }
mark.gold { background: #bbf7d0; font-weight: 600; -webkit-print-color-adjust: exact;
            print-color-adjust: exact; }
.ok { color: #15803d; }
.bad { color: #b91c1c; }
@media print {
  body { max-width: none; margin: 0; }
  nav { display: none; }
  .case, figure, table { break-inside: avoid; }
}
"""


def render_html(run: Mapping[str, Any]) -> str:
    """The report of ``run`` (an evaluation run's JSON dict) as one self-contained HTML page."""
    sections = (
        _header(run),
        _overall(run),
        _scenarios(run),
        _distributions(run),
        _worst_cases(run),
    )
    return _page(_run_title(run), sections)


def render_comparison_html(report: Mapping[str, Any]) -> str:
    """A comparison of two runs (``compare_runs``'s JSON dict) as one self-contained page:
    what changed, metric deltas with CIs and verdicts, cost/latency, scenarios, flips, gate."""
    sections = (
        _comparison_header(report),
        _section("metrics", "Metrics (B − A, paired per case)",
                 _delta_table(_sub(report, "metrics")) + _delta_charts(report)),
        _section("axes", "Cost and latency (lower is better)", _delta_table(_sub(report, "axes"))),
        _section("scenarios", "Scenarios (Holm-corrected verdicts)", _scenario_deltas(report)),
        _section("flips", "Flipped cases", _flips(_as_list(report.get("flips")))),
    )
    return _page(f"{report.get('a')} vs {report.get('b')}", sections)


def write_html(run: Mapping[str, Any], path: str | Path, render: Any = None) -> Path:
    """Write the report of ``run`` (or what ``render`` makes of it) to ``path`` (UTF-8, parent
    folders created); return the path."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text((render or render_html)(run), encoding="utf-8", newline="\n")
    return target


def _page(title: str, sections: Iterable[str]) -> str:
    return (
        "<!doctype html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{_esc(title)} · domainrag report</title>\n"
        f"<style>{_CSS}</style>\n</head>\n<body>\n" + "\n".join(sections) + "\n</body>\n</html>\n"
    )


# --- values -------------------------------------------------------------------------------------


def _esc(value: Any) -> str:
    return escape(str(value))


def _fmt(value: Any) -> str:
    """A value as text: floats to 3 decimals, integers as they are, None as "—"."""
    if value is None:
        return MISSING
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def _number(value: Any) -> float | None:
    """``value`` as a finite float, or None when it is missing, not a number, NaN or infinite."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _interval(pair: Any) -> tuple[float, float] | None:
    """A 95% CI ``[low, high]`` as two floats, or None when it is missing or malformed."""
    if not isinstance(pair, Sequence) or isinstance(pair, str) or len(pair) != 2:
        return None
    low, high = _number(pair[0]), _number(pair[1])
    return None if low is None or high is None else (low, high)


def _ci(pair: Any) -> str:
    bounds = _interval(pair)
    return MISSING if bounds is None else f"[{bounds[0]:.3f}, {bounds[1]:.3f}]"


def _sub(mapping: Any, *keys: str) -> dict:
    """The dict at ``mapping[k1][k2]...``, or {} where a level is missing, null or not a dict."""
    for key in keys:
        mapping = mapping.get(key) if isinstance(mapping, Mapping) else None
    return dict(mapping) if isinstance(mapping, Mapping) else {}


def _as_list(value: Any) -> list:
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


def _run_title(run: Mapping[str, Any]) -> str:
    return str(run.get("name") or run.get("run_id") or "evaluation run")


# --- HTML building blocks -----------------------------------------------------------------------


def _section(anchor: str, heading: str, body: str) -> str:
    return f'<section id="{anchor}">\n<h2>{_esc(heading)}</h2>\n{body}\n</section>'


def _table(head: Iterable[str], rows: Iterable[Sequence[str]], css_class: str) -> str:
    """A table; ``head`` is plain text (escaped here), ``rows`` hold cells of ready HTML."""
    header = "".join(f"<th>{_esc(cell)}</th>" for cell in head)
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>\n" for row in rows)
    return (
        f'<table class="{css_class}">\n<thead><tr>{header}</tr></thead>\n'
        f"<tbody>\n{body}</tbody>\n</table>"
    )


def _figure(svg: str, caption: str) -> str:
    return f"<figure>\n{svg}\n<figcaption>{_esc(caption)}</figcaption>\n</figure>"


def _code(value: Any) -> str:
    return f"<code>{_esc(MISSING if value is None else value)}</code>"


# --- 1. header ----------------------------------------------------------------------------------


def _header(run: Mapping[str, Any]) -> str:
    facts = f"run {_code(run.get('run_id'))} · created {_esc(run.get('created') or MISSING)}"
    nav = " ".join(
        f'<a href="#{anchor}">{label}</a>'
        for anchor, label in (
            ("overall", "Overall"),
            ("scenarios", "Scenarios"),
            ("distributions", "Distributions"),
            ("worst", "Worst cases"),
        )
    )
    return (
        f'<header>\n<h1>{_esc(_run_title(run))}</h1>\n<p class="meta">{facts}</p>\n'
        f"<nav>{nav}</nav>\n<h2>Manifest</h2>\n{_manifest(_sub(run, 'manifest'))}\n</header>"
    )


def _manifest(manifest: dict) -> str:
    if not manifest:
        return "<p>No manifest.</p>"
    rows = [(_code(key), _esc(_manifest_value(value))) for key, value in manifest.items()]
    return _table(("key", "value"), rows, "manifest")


def _manifest_value(value: Any) -> str:
    """Strings as they are, null as "—", anything else (numbers, lists, dicts) as JSON."""
    if value is None:
        return MISSING
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


# --- 2. overall metrics -------------------------------------------------------------------------


def _overall(run: Mapping[str, Any]) -> str:
    groups = _sub(run, "metrics")
    tables = [
        _metric_table(group, _sub(groups, group), _sub(run, "ci95", group))
        for group in groups
        if _sub(groups, group)
    ]
    return _section("overall", "Overall metrics", "\n".join(tables) or "<p>No metrics.</p>")


def _metric_table(group: str, values: dict, ci95: dict) -> str:
    rows = [
        (_code(name), _esc(_fmt(value)), _esc(_ci(ci95.get(name))))
        for name, value in values.items()
    ]
    return f"<h3>{_esc(group)}</h3>\n" + _table(("metric", "value", "95% CI"), rows, "metrics")


# --- 3. per scenario ----------------------------------------------------------------------------


def _scenarios(run: Mapping[str, Any]) -> str:
    scenarios = _sub(run, "scenarios")
    if not scenarios:
        return _section("scenarios", "Per scenario", "<p>No scenarios.</p>")
    charts = [
        _headline_chart(run, scenarios, group, metric)
        for group, metric in HEADLINE.items()
        if _has_metric(run, scenarios, group, metric)
    ]
    tables = [_scenario_table(scenarios, group) for group in _scenario_groups(scenarios)]
    return _section("scenarios", "Per scenario", "\n".join(charts + tables))


def _has_metric(run: Mapping[str, Any], scenarios: dict, group: str, metric: str) -> bool:
    groups = [_sub(run, "metrics", group)] + [_sub(s, "metrics", group) for s in scenarios.values()]
    return any(metric in values for values in groups)


def _scenario_groups(scenarios: dict) -> list[str]:
    """Metric groups with values in some scenario, in first-seen order."""
    return list(
        dict.fromkeys(
            group
            for scenario in scenarios.values()
            for group in _sub(scenario, "metrics")
            if _sub(scenario, "metrics", group)
        )
    )


def _scenario_table(scenarios: dict, group: str) -> str:
    names = list(dict.fromkeys(n for s in scenarios.values() for n in _sub(s, "metrics", group)))
    rows = [
        [_esc(label), _esc(_fmt(_sub(scenarios, label).get("n")))]
        + [_esc(_fmt(_sub(scenarios, label, "metrics", group).get(name))) for name in names]
        for label in scenarios
    ]
    return f"<h3>{_esc(group)} by scenario</h3>\n" + _table(
        ["scenario", "n", *names], rows, "metrics"
    )


def _headline_chart(run: Mapping[str, Any], scenarios: dict, group: str, metric: str) -> str:
    rows = [
        (
            f"{label} (n={_fmt(_sub(scenarios, label).get('n'))})",
            _sub(scenarios, label, "metrics", group).get(metric),
            _sub(scenarios, label, "ci95", group).get(metric),
        )
        for label in scenarios
    ]
    overall = _sub(run, "metrics", group).get(metric)
    title = f"{group} {metric} by scenario"
    caption = f"{title}: dot = value, whisker = 95% CI, dashed line = overall ({_fmt(overall)})"
    return _figure(_dot_whisker_svg(title, rows, overall), caption)


# --- inline SVG ---------------------------------------------------------------------------------


def _svg(width: int, height: int, title: str, parts: Iterable[str]) -> str:
    return (
        f'<svg viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" '
        f'aria-label="{_esc(title)}"><title>{_esc(title)}</title>\n' + "\n".join(parts) + "\n</svg>"
    )


def _text(x: float, y: float, text: str, anchor: str = "start", fill: str = _INK) -> str:
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" dominant-baseline="middle" '
        f'fill="{fill}">{_esc(text)}</text>'
    )


def _line(x1: float, y1: float, x2: float, y2: float, stroke: str, extra: str = "") -> str:
    return (
        f'<line x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}" stroke="{stroke}"{extra}/>'
    )


def _x(value: float) -> float:
    """The x coordinate of a value in [0, 1] on the dot-and-whisker plot (clamped)."""
    return _LEFT + min(1.0, max(0.0, value)) * (_RIGHT - _LEFT)


def _dot_whisker_svg(title: str, rows: Sequence[tuple[str, Any, Any]], overall: Any) -> str:
    """Rows of (label, value, [low, high]) on a 0..1 axis, with ``overall`` as a dashed line."""
    height = _TOP + len(rows) * _ROW + _PAD
    parts = [_axis(height), _reference_line(overall, height)]
    parts += [_dot_row(i, *row) for i, row in enumerate(rows)]
    return _svg(_WIDTH, height, title, parts)


def _axis(height: int) -> str:
    ticks = (0.0, 0.25, 0.5, 0.75, 1.0)
    return "\n".join(
        _line(_x(t), _TOP - 6, _x(t), height - _PAD, _GRID)
        + _text(_x(t), _TOP - 16, f"{t:g}", "middle", _MUTED)
        for t in ticks
    )


def _dot_row(index: int, label: str, value: Any, ci: Any) -> str:
    y = _TOP + index * _ROW + _ROW / 2
    short = label if len(label) <= _LABEL_CHARS else label[: _LABEL_CHARS - 1] + "…"
    point, bounds = _number(value), _interval(ci)
    parts = [_text(_LEFT - 10, y, short, "end"), _text(_RIGHT + 10, y, _fmt(point))]
    if bounds is not None:
        parts.append(_line(_x(bounds[0]), y, _x(bounds[1]), y, _INK, ' stroke-width="1.5"'))
    if point is not None:
        parts.append(f'<circle cx="{_x(point):.1f}" cy="{y:.1f}" r="4.5" fill="{_ACCENT}"/>')
    return "".join(parts)


def _reference_line(overall: Any, height: int) -> str:
    value = _number(overall)
    if value is None:
        return ""
    return _line(_x(value), _TOP - 6, _x(value), height - _PAD, _MUTED, ' stroke-dasharray="4 3"')


def _bin_counts(values: Iterable[float]) -> list[int]:
    """Counts of ``values`` in ``BINS`` equal bins over [0, 1]; 1.0 falls in the last bin."""
    counts = [0] * BINS
    for value in values:
        counts[min(BINS - 1, max(0, int(value * BINS)))] += 1
    return counts


def _histogram_svg(title: str, counts: Sequence[int]) -> str:
    width = (_HIST_RIGHT - _HIST_LEFT) / len(counts)
    tallest = max(max(counts), 1)
    parts = [_line(_HIST_LEFT, _HIST_BOTTOM, _HIST_RIGHT, _HIST_BOTTOM, _MUTED)]
    for i, count in enumerate(counts):
        parts.append(_bar(_HIST_LEFT + i * width, width, count / tallest, count))
    parts += [
        _text(_HIST_LEFT + i * width, _HIST_BOTTOM + 14, f"{i / len(counts):.1f}", "middle", _MUTED)
        for i in range(len(counts) + 1)
    ]
    return _svg(_WIDTH, _HIST_HEIGHT, title, parts)


def _bar(x: float, width: float, fraction: float, count: int) -> str:
    height = fraction * (_HIST_BOTTOM - _HIST_TOP - 12)
    top = _HIST_BOTTOM - height
    return (
        f'<rect x="{x + 1:.1f}" y="{top:.1f}" width="{width - 2:.1f}" height="{height:.1f}" '
        f'fill="{_ACCENT}"/>' + _text(x + width / 2, top - 7, str(count), "middle")
    )


# --- 4. score distributions ---------------------------------------------------------------------


def _distributions(run: Mapping[str, Any]) -> str:
    cases = _as_list(run.get("cases"))
    figures = [
        _figure(
            _histogram_svg(f"{metric} per case", _bin_counts(scores)),
            f"{metric} per case: {len(scores)} cases in {BINS} bins over [0, 1]",
        )
        for metric in DISTRIBUTIONS
        if (scores := _case_scores(cases, metric))
    ]
    return _section(
        "distributions", "Score distributions", "\n".join(figures) or "<p>No scores.</p>"
    )


def _case_scores(cases: Iterable[Any], metric: str) -> list[float]:
    values = (_number(_sub(case, "scores").get(metric)) for case in cases)
    return [value for value in values if value is not None]


# --- 5. worst cases -----------------------------------------------------------------------------


def _worst_cases(run: Mapping[str, Any]) -> str:
    cases = [case for case in _as_list(run.get("cases")) if isinstance(case, Mapping)]
    if not cases:
        return _section("worst", "Worst cases", "<p>No cases.</p>")
    metric = "token_f1" if _case_scores(cases, "token_f1") else "ndcg@10"
    worst = _lowest(cases, metric)
    intro = f"<p>The {len(worst)} cases with the lowest {_code(metric)} (ties by id).</p>"
    return _section(
        "worst", "Worst cases", intro + "\n" + "\n".join(_case_card(c, metric) for c in worst)
    )


def _lowest(cases: list, metric: str) -> list:
    """The ``WORST_CASES`` cases with the lowest ``metric``, ties by id, unscored ones last."""

    def key(case: Mapping[str, Any]) -> tuple[bool, float, str]:
        score = _number(_sub(case, "scores").get(metric))
        return (score is None, score or 0.0, str(case.get("id", "")))

    return sorted(cases, key=key)[:WORST_CASES]


def _case_card(case: Mapping[str, Any], metric: str) -> str:
    return (
        f'<article class="case" id="case-{_esc(case.get("id", ""))}">\n'
        f"{_case_title(case, metric)}\n{_case_fields(case)}\n</article>"
    )


def _case_title(case: Mapping[str, Any], metric: str) -> str:
    tags = [f'<span class="tag">{_esc(s)}</span>' for s in _as_list(case.get("scenario"))]
    if case.get("generated"):
        tags.append('<span class="tag generated">generated</span>')
    score = _fmt(_sub(case, "scores").get(metric))
    headline = f'<span class="headline">{_esc(metric)} {_esc(score)}</span>'
    return f"<h3>{_code(case.get('id'))}{''.join(tags)}{headline}</h3>"


def _case_fields(case: Mapping[str, Any]) -> str:
    fields = [("question", _esc(case.get("question") or MISSING))]
    if case.get("answer") is not None or "abstained" in case:
        fields.append(("answer", _answer(case)))
    if "answers" in case or "answerable" in case:
        fields.append(("reference answers", _references(case)))
    if "citations" in case:
        fields.append(("citations", _citations(_as_list(case["citations"]))))
    fields += [
        ("gold evidence", _gold(_as_list(case.get("gold")))),
        (f"retrieved (top {TOP_RETRIEVED}, gold marked)", _retrieved(case)),
        ("scores", _scores(_sub(case, "scores"))),
    ]
    items = "".join(f"<dt>{_esc(label)}</dt><dd>{body}</dd>\n" for label, body in fields)
    return f"<dl>\n{items}</dl>"


def _answer(case: Mapping[str, Any]) -> str:
    if case.get("abstained"):
        return "<em>abstained</em>"
    return _esc(case.get("answer") or MISSING)


def _references(case: Mapping[str, Any]) -> str:
    items = "".join(f"<li>{_esc(answer)}</li>" for answer in _as_list(case.get("answers")))
    listing = f"<ul>{items}</ul>" if items else ""
    unanswerable = "<em>unanswerable</em>" if case.get("answerable") is False else ""
    return listing + unanswerable or MISSING


def _citations(citations: list) -> str:
    if not citations:
        return "<em>none</em>"
    rows = [
        (
            _esc(_fmt(c.get("number"))),
            _code(c.get("doc_id")),
            _esc(_fmt(c.get("page"))),
            _esc(c.get("quote") or MISSING),
            _supported(c.get("supported")),
        )
        for c in citations
        if isinstance(c, Mapping)
    ]
    return _table(("#", "doc", "page", "quote", "supported"), rows, "evidence")


def _supported(flag: Any) -> str:
    if flag is None:
        return MISSING
    return '<span class="ok">✓</span>' if flag else '<span class="bad">✗</span>'


def _gold(gold: list) -> str:
    rows = [
        (_code(g.get("doc_id")), _esc(g.get("quote") or MISSING))
        for g in gold
        if isinstance(g, Mapping)
    ]
    return _table(("doc", "quote"), rows, "evidence") if rows else "<em>none</em>"


def _retrieved(case: Mapping[str, Any]) -> str:
    gold = {g.get("doc_id") for g in _as_list(case.get("gold")) if isinstance(g, Mapping)}
    top = _as_list(case.get("retrieved"))[:TOP_RETRIEVED]
    if not top:
        return "<em>nothing retrieved</em>"
    items = "".join(
        f'<li><mark class="gold">{_esc(doc)}</mark></li>'
        if doc in gold
        else f"<li>{_code(doc)}</li>"
        for doc in top
    )
    return f'<ol class="retrieved">{items}</ol>'


def _scores(scores: dict) -> str:
    if not scores:
        return MISSING
    return " · ".join(f"{_code(name)} {_esc(_fmt(value))}" for name, value in scores.items())


# --- comparison page ----------------------------------------------------------------------------


def _comparison_header(report: Mapping[str, Any]) -> str:
    title = f"<h1>{_code(report.get('a'))} → {_code(report.get('b'))}</h1>"
    if report.get("headline"):
        title += f"\n<p><strong>{_esc(report['headline'])}</strong></p>"
    forced = "<p><strong>Forced: the runs used different suites or corpora.</strong></p>" if report.get("forced") else ""
    note = _sub(report, "cases").get("note")
    changes = [[_esc(k), _esc(_manifest_value(v.get("a"))), _esc(_manifest_value(v.get("b")))]
               for k, v in _sub(report, "manifest_diff").items()]
    gate = _sub(report, "gate")
    verdict = ""
    if gate:
        status = "passed" if gate.get("passed") else "failed"
        reasons = "".join(f"<li>{_esc(r)}</li>" for r in _as_list(gate.get("reasons")))
        verdict = f"<p>Gate ({_esc(gate.get('rule'))}): <strong>{status}</strong></p><ul>{reasons}</ul>"
    table = _table(("changed", "A", "B"), changes, "manifest") if changes else "<p>No manifest difference.</p>"
    return f"<header>\n{title}\n{forced}{f'<p>{_esc(note)}</p>' if note else ''}{table}\n{verdict}</header>"


def _delta_table(rows: Mapping[str, Any]) -> str:
    if not rows:
        return f"<p>{MISSING}</p>"
    head = ("metric", "n", "A", "B", "Δ", "95% CI", "p", "MDE", "verdict")
    body = [[_code(name), _fmt(r.get("n")), _fmt(r.get("a")), _fmt(r.get("b")), _fmt(r.get("delta")),
             _ci(r.get("ci")), _fmt(r.get("p_holm", r.get("p"))), _fmt(r.get("mde")),
             _esc(r.get("verdict")) + (f" · {_esc(r['summary'])}" if r.get("summary") else "")]
            for name, r in rows.items()]
    return _table(head, body, "metrics")


def _delta_charts(report: Mapping[str, Any]) -> str:
    """One chart per headline metric: Δ with its 95% CI overall and per scenario, around 0."""
    metrics, scenarios = _sub(report, "metrics"), _sub(report, "scenarios")
    figures = []
    for metric in dict.fromkeys(HEADLINE.values()):
        if metric not in metrics:
            continue
        rows = [("all cases", metrics[metric])]
        rows += [(f"{tag} (n={_fmt(s.get('n'))})", _sub(s, "metrics")[metric])
                 for tag, s in scenarios.items() if metric in _sub(s, "metrics")]
        figures.append(_figure(_delta_svg(f"Δ {metric}, B − A", rows),
                               f"Δ {metric} (B − A) with 95% CI; green better, red worse, grey no "
                               "detectable difference (scenarios Holm-corrected)"))
    return "\n".join(figures)


def _delta_svg(title: str, rows: Sequence[tuple[str, Mapping[str, Any]]]) -> str:
    """Rows of (label, metric comparison) as dots and whiskers on an axis symmetric around 0."""
    bounds = [abs(v) for _, r in rows for v in (_number(r.get("delta")), *(_interval(r.get("ci")) or ()))
              if v is not None]
    span = _nice(max(bounds + [1e-3]) * 1.05)
    mid = (_LEFT + _RIGHT) / 2

    def x(value: float) -> float:
        return mid + max(-1.0, min(1.0, value / span)) * (_RIGHT - _LEFT) / 2

    height = _TOP + len(rows) * _ROW + _PAD
    parts = [_line(x(t * span), _TOP - 6, x(t * span), height - _PAD, _MUTED if t == 0 else _GRID)
             + _text(x(t * span), _TOP - 16, f"{t * span:+g}" if t else "0", "middle", _MUTED)
             for t in (-1.0, -0.5, 0.0, 0.5, 1.0)]
    for i, (label, r) in enumerate(rows):
        y = _TOP + i * _ROW + _ROW / 2
        short = label if len(label) <= _LABEL_CHARS else label[: _LABEL_CHARS - 1] + "…"
        point, ci = _number(r.get("delta")), _interval(r.get("ci"))
        colour = _VERDICT_COLOURS.get(str(r.get("verdict")), _MUTED)
        shown = MISSING if point is None else f"{point:+.3f}"
        parts.append(_text(_LEFT - 10, y, short, "end") + _text(_RIGHT + 10, y, shown))
        if ci is not None:
            parts.append(_line(x(ci[0]), y, x(ci[1]), y, _INK, ' stroke-width="1.5"'))
        if point is not None:
            parts.append(f'<circle cx="{x(point):.1f}" cy="{y:.1f}" r="4.5" fill="{colour}"/>')
    return _svg(_WIDTH, height, title, parts)


def _nice(value: float) -> float:
    """The smallest of 1, 2, 2.5, 5 (times a power of ten) that is >= ``value`` > 0."""
    scale = 10.0 ** math.floor(math.log10(value))
    return next(m * scale for m in (1.0, 2.0, 2.5, 5.0, 10.0) if m * scale >= value * (1 - 1e-12))


def _scenario_deltas(report: Mapping[str, Any]) -> str:
    parts = [f"<h3>{_esc(tag)} (n={_fmt(s.get('n'))})</h3>\n{_delta_table(_sub(s, 'metrics'))}"
             for tag, s in _sub(report, "scenarios").items()]
    return "\n".join(parts) or f"<p>{MISSING}</p>"


def _flips(flips: list) -> str:
    if not flips:
        return "<p>No case changed between pass and fail.</p>"
    rows = [[_code(f.get("id")), _esc(f.get("direction")), _esc(f.get("question")),
             f"{_fmt(f.get('a_score'))} → {_fmt(f.get('b_score'))}",
             _esc(f.get("a_answer") or MISSING) + _cited(f.get("a_citations")),
             _esc(f.get("b_answer") or MISSING) + _cited(f.get("b_citations"))] for f in flips]
    return _table(("case", "flip", "question", "score", "answer A", "answer B"), rows, "flips")


def _cited(citations: Any) -> str:
    """A compact line under an answer: each citation's number, document and support mark."""
    marks = [f"[{_esc(_fmt(c.get('number')))}] {_code(c.get('doc_id'))} {_supported(c.get('supported'))}"
             for c in _as_list(citations) if isinstance(c, Mapping)]
    return f"<br><small>{' · '.join(marks)}</small>" if marks else ""
