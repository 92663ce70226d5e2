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

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from . import markup as mk

HEADLINE = {"retrieval": "ndcg@10", "answer": "token_f1", "citation": "citation_precision"}
"""The metric each group's per-scenario chart shows."""

DISTRIBUTIONS = ("ndcg@10", "token_f1")
"""Per-case scores drawn as histograms."""

WORST_CASES = 20
TOP_RETRIEVED = 5
BINS = 10

# Geometry of the histograms, in pixels (the dot-and-whisker charts use markup's).
_HIST_HEIGHT, _HIST_LEFT, _HIST_RIGHT, _HIST_TOP, _HIST_BOTTOM = 220, 40, 660, 20, 190


def render_html(run: Mapping[str, Any]) -> str:
    """The report of ``run`` (an evaluation run's JSON dict) as one self-contained HTML page."""
    sections = (
        _header(run),
        _overall(run),
        _scenarios(run),
        _distributions(run),
        _worst_cases(run),
    )
    return mk.page(_run_title(run), sections)


def write_html(run: Any, path: str | Path, render: Any = None) -> Path:
    """Write the report of ``run`` (or what ``render`` makes of it — a comparison, the list of a
    matrix's comparisons) to ``path`` (UTF-8, parent folders created); return the path."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text((render or render_html)(run), encoding="utf-8", newline="\n")
    return target


def _run_title(run: Mapping[str, Any]) -> str:
    return str(run.get("name") or run.get("run_id") or "evaluation run")


# --- 1. header ----------------------------------------------------------------------------------


def _header(run: Mapping[str, Any]) -> str:
    facts = f"run {mk.code(run.get('run_id'))} · created {mk.esc(run.get('created') or mk.MISSING)}"
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
        f'<header>\n<h1>{mk.esc(_run_title(run))}</h1>\n<p class="meta">{facts}</p>\n'
        f"<nav>{nav}</nav>\n<h2>Manifest</h2>\n{_manifest(mk.sub(run, 'manifest'))}\n</header>"
    )


def _manifest(manifest: dict[str, Any]) -> str:
    if not manifest:
        return "<p>No manifest.</p>"
    rows = [(mk.code(key), mk.esc(mk.manifest_value(value))) for key, value in manifest.items()]
    return mk.table(("key", "value"), rows, "manifest")


# --- 2. overall metrics -------------------------------------------------------------------------


def _overall(run: Mapping[str, Any]) -> str:
    groups = mk.sub(run, "metrics")
    tables = [
        _metric_table(group, mk.sub(groups, group), mk.sub(run, "ci95", group))
        for group in groups
        if mk.sub(groups, group)
    ]
    return mk.section("overall", "Overall metrics", "\n".join(tables) or "<p>No metrics.</p>")


def _metric_table(group: str, values: dict[str, Any], ci95: dict[str, Any]) -> str:
    rows = [
        (mk.code(name), mk.esc(mk.fmt(value)), mk.esc(mk.ci_text(ci95.get(name))))
        for name, value in values.items()
    ]
    return f"<h3>{mk.esc(group)}</h3>\n" + mk.table(("metric", "value", "95% CI"), rows, "metrics")


# --- 3. per scenario ----------------------------------------------------------------------------


def _scenarios(run: Mapping[str, Any]) -> str:
    scenarios = mk.sub(run, "scenarios")
    if not scenarios:
        return mk.section("scenarios", "Per scenario", "<p>No scenarios.</p>")
    charts = [
        _headline_chart(run, scenarios, group, metric)
        for group, metric in HEADLINE.items()
        if _has_metric(run, scenarios, group, metric)
    ]
    tables = [_scenario_table(scenarios, group) for group in _scenario_groups(scenarios)]
    return mk.section("scenarios", "Per scenario", "\n".join(charts + tables))


def _has_metric(run: Mapping[str, Any], scenarios: dict[str, Any], group: str, metric: str) -> bool:
    groups = [mk.sub(run, "metrics", group)] + [mk.sub(s, "metrics", group) for s in scenarios.values()]
    return any(metric in values for values in groups)


def _scenario_groups(scenarios: dict[str, Any]) -> list[str]:
    """Metric groups with values in some scenario, in first-seen order."""
    return list(
        dict.fromkeys(
            group
            for scenario in scenarios.values()
            for group in mk.sub(scenario, "metrics")
            if mk.sub(scenario, "metrics", group)
        )
    )


def _scenario_table(scenarios: dict[str, Any], group: str) -> str:
    names = list(dict.fromkeys(n for s in scenarios.values() for n in mk.sub(s, "metrics", group)))
    rows = [
        [mk.esc(label), mk.esc(mk.fmt(mk.sub(scenarios, label).get("n")))]
        + [mk.esc(mk.fmt(mk.sub(scenarios, label, "metrics", group).get(name))) for name in names]
        for label in scenarios
    ]
    return f"<h3>{mk.esc(group)} by scenario</h3>\n" + mk.table(
        ["scenario", "n", *names], rows, "metrics"
    )


def _headline_chart(run: Mapping[str, Any], scenarios: dict[str, Any], group: str, metric: str) -> str:
    rows = [
        (
            f"{label} (n={mk.fmt(mk.sub(scenarios, label).get('n'))})",
            mk.sub(scenarios, label, "metrics", group).get(metric),
            mk.sub(scenarios, label, "ci95", group).get(metric),
        )
        for label in scenarios
    ]
    overall = mk.sub(run, "metrics", group).get(metric)
    title = f"{group} {metric} by scenario"
    caption = f"{title}: dot = value, whisker = 95% CI, dashed line = overall ({mk.fmt(overall)})"
    return mk.figure(_dot_whisker_svg(title, rows, overall), caption)


# --- inline SVG ---------------------------------------------------------------------------------


def _x(value: float) -> float:
    """The x coordinate of a value in [0, 1] on the dot-and-whisker plot (clamped)."""
    return mk.LEFT + min(1.0, max(0.0, value)) * (mk.RIGHT - mk.LEFT)


def _dot_whisker_svg(title: str, rows: Sequence[tuple[str, Any, Any]], overall: Any) -> str:
    """Rows of (label, value, [low, high]) on a 0..1 axis, with ``overall`` as a dashed line."""
    height = mk.TOP + len(rows) * mk.ROW + mk.PAD
    parts = [_axis(height), _reference_line(overall, height)]
    parts += [_dot_row(i, *row) for i, row in enumerate(rows)]
    return mk.svg(mk.WIDTH, height, title, parts)


def _axis(height: int) -> str:
    ticks = (0.0, 0.25, 0.5, 0.75, 1.0)
    return "\n".join(
        mk.svg_line(_x(t), mk.TOP - 6, _x(t), height - mk.PAD, mk.GRID)
        + mk.svg_text(_x(t), mk.TOP - 16, f"{t:g}", "middle", mk.MUTED)
        for t in ticks
    )


def _dot_row(index: int, label: str, value: Any, ci: Any) -> str:
    y = mk.TOP + index * mk.ROW + mk.ROW / 2
    short = mk.short_label(label)
    point, bounds = mk.number(value), mk.interval(ci)
    parts = [mk.svg_text(mk.LEFT - 10, y, short, "end"), mk.svg_text(mk.RIGHT + 10, y, mk.fmt(point))]
    if bounds is not None:
        parts.append(mk.svg_line(_x(bounds[0]), y, _x(bounds[1]), y, mk.INK, ' stroke-width="1.5"'))
    if point is not None:
        parts.append(f'<circle cx="{_x(point):.1f}" cy="{y:.1f}" r="4.5" fill="{mk.ACCENT}"/>')
    return "".join(parts)


def _reference_line(overall: Any, height: int) -> str:
    value = mk.number(overall)
    if value is None:
        return ""
    return mk.svg_line(_x(value), mk.TOP - 6, _x(value), height - mk.PAD, mk.MUTED, ' stroke-dasharray="4 3"')


def _bin_counts(values: Iterable[float]) -> list[int]:
    """Counts of ``values`` in ``BINS`` equal bins over [0, 1]; 1.0 falls in the last bin."""
    counts = [0] * BINS
    for value in values:
        counts[min(BINS - 1, max(0, int(value * BINS)))] += 1
    return counts


def _histogram_svg(title: str, counts: Sequence[int]) -> str:
    width = (_HIST_RIGHT - _HIST_LEFT) / len(counts)
    tallest = max(max(counts), 1)
    parts = [mk.svg_line(_HIST_LEFT, _HIST_BOTTOM, _HIST_RIGHT, _HIST_BOTTOM, mk.MUTED)]
    for i, count in enumerate(counts):
        parts.append(_bar(_HIST_LEFT + i * width, width, count / tallest, count))
    parts += [
        mk.svg_text(_HIST_LEFT + i * width, _HIST_BOTTOM + 14, f"{i / len(counts):.1f}", "middle", mk.MUTED)
        for i in range(len(counts) + 1)
    ]
    return mk.svg(mk.WIDTH, _HIST_HEIGHT, title, parts)


def _bar(x: float, width: float, fraction: float, count: int) -> str:
    height = fraction * (_HIST_BOTTOM - _HIST_TOP - 12)
    top = _HIST_BOTTOM - height
    return (
        f'<rect x="{x + 1:.1f}" y="{top:.1f}" width="{width - 2:.1f}" height="{height:.1f}" '
        f'fill="{mk.ACCENT}"/>' + mk.svg_text(x + width / 2, top - 7, str(count), "middle")
    )


# --- 4. score distributions ---------------------------------------------------------------------


def _distributions(run: Mapping[str, Any]) -> str:
    cases = mk.as_list(run.get("cases"))
    figures = [
        mk.figure(
            _histogram_svg(f"{metric} per case", _bin_counts(scores)),
            f"{metric} per case: {len(scores)} cases in {BINS} bins over [0, 1]",
        )
        for metric in DISTRIBUTIONS
        if (scores := _case_scores(cases, metric))
    ]
    return mk.section(
        "distributions", "Score distributions", "\n".join(figures) or "<p>No scores.</p>"
    )


def _case_scores(cases: Iterable[Any], metric: str) -> list[float]:
    values = (mk.number(mk.sub(case, "scores").get(metric)) for case in cases)
    return [value for value in values if value is not None]


# --- 5. worst cases -----------------------------------------------------------------------------


def _worst_cases(run: Mapping[str, Any]) -> str:
    cases = [case for case in mk.as_list(run.get("cases")) if isinstance(case, Mapping)]
    if not cases:
        return mk.section("worst", "Worst cases", "<p>No cases.</p>")
    metric = "token_f1" if _case_scores(cases, "token_f1") else "ndcg@10"
    worst = _lowest(cases, metric)
    intro = f"<p>The {len(worst)} cases with the lowest {mk.code(metric)} (ties by id).</p>"
    return mk.section(
        "worst", "Worst cases", intro + "\n" + "\n".join(_case_card(c, metric) for c in worst)
    )


def _lowest(cases: list[Any], metric: str) -> list[Any]:
    """The ``WORST_CASES`` cases with the lowest ``metric``, ties by id, unscored ones last."""

    def key(case: Mapping[str, Any]) -> tuple[bool, float, str]:
        score = mk.number(mk.sub(case, "scores").get(metric))
        return (score is None, score or 0.0, str(case.get("id", "")))

    return sorted(cases, key=key)[:WORST_CASES]


def _case_card(case: Mapping[str, Any], metric: str) -> str:
    return (
        f'<article class="case" id="case-{mk.esc(case.get("id", ""))}">\n'
        f"{_case_title(case, metric)}\n{_case_fields(case)}\n</article>"
    )


def _case_title(case: Mapping[str, Any], metric: str) -> str:
    tags = [f'<span class="tag">{mk.esc(s)}</span>' for s in mk.as_list(case.get("scenario"))]
    if case.get("generated"):
        tags.append('<span class="tag generated">generated</span>')
    score = mk.fmt(mk.sub(case, "scores").get(metric))
    headline = f'<span class="headline">{mk.esc(metric)} {mk.esc(score)}</span>'
    return f"<h3>{mk.code(case.get('id'))}{''.join(tags)}{headline}</h3>"


def _case_fields(case: Mapping[str, Any]) -> str:
    fields = [("question", mk.esc(case.get("question") or mk.MISSING))]
    if case.get("answer") is not None or "abstained" in case:
        fields.append(("answer", _answer(case)))
    if "answers" in case or "answerable" in case:
        fields.append(("reference answers", _references(case)))
    if "citations" in case:
        fields.append(("citations", _citations(mk.as_list(case["citations"]))))
    fields += [
        ("gold evidence", _gold(mk.as_list(case.get("gold")))),
        (f"retrieved (top {TOP_RETRIEVED}, gold marked)", _retrieved(case)),
        ("scores", _scores(mk.sub(case, "scores"))),
    ]
    items = "".join(f"<dt>{mk.esc(label)}</dt><dd>{body}</dd>\n" for label, body in fields)
    return f"<dl>\n{items}</dl>"


def _answer(case: Mapping[str, Any]) -> str:
    if case.get("abstained"):
        return "<em>abstained</em>"
    return mk.esc(case.get("answer") or mk.MISSING)


def _references(case: Mapping[str, Any]) -> str:
    items = "".join(f"<li>{mk.esc(answer)}</li>" for answer in mk.as_list(case.get("answers")))
    listing = f"<ul>{items}</ul>" if items else ""
    unanswerable = "<em>unanswerable</em>" if case.get("answerable") is False else ""
    return listing + unanswerable or mk.MISSING


def _citations(citations: list[Any]) -> str:
    if not citations:
        return "<em>none</em>"
    rows = [
        (
            mk.esc(mk.fmt(c.get("number"))),
            mk.code(c.get("doc_id")),
            mk.esc(mk.fmt(c.get("page"))),
            mk.esc(c.get("quote") or mk.MISSING),
            mk.supported(c.get("supported")),
        )
        for c in citations
        if isinstance(c, Mapping)
    ]
    return mk.table(("#", "doc", "page", "quote", "supported"), rows, "evidence")


def _gold(gold: list[Any]) -> str:
    rows = [
        (mk.code(g.get("doc_id")), mk.esc(g.get("quote") or mk.MISSING))
        for g in gold
        if isinstance(g, Mapping)
    ]
    return mk.table(("doc", "quote"), rows, "evidence") if rows else "<em>none</em>"


def _retrieved(case: Mapping[str, Any]) -> str:
    gold = {g.get("doc_id") for g in mk.as_list(case.get("gold")) if isinstance(g, Mapping)}
    top = mk.as_list(case.get("retrieved"))[:TOP_RETRIEVED]
    if not top:
        return "<em>nothing retrieved</em>"
    items = "".join(
        f'<li><mark class="gold">{mk.esc(doc)}</mark></li>'
        if doc in gold
        else f"<li>{mk.code(doc)}</li>"
        for doc in top
    )
    return f'<ol class="retrieved">{items}</ol>'


def _scores(scores: dict[str, Any]) -> str:
    if not scores:
        return mk.MISSING
    return " · ".join(f"{mk.code(name)} {mk.esc(mk.fmt(value))}" for name, value in scores.items())
