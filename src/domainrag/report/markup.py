"""Building blocks of domainrag's self-contained HTML pages (run reports, comparisons).

Values to text (``fmt``: floats to 3 decimals, None as "—"), escaping (``esc``: every piece of
text from a run is untrusted), tolerant readers of run JSON (``sub``, ``number``, ``interval``:
a missing, null or malformed part reads as empty), page and table scaffolding with the inline
stylesheet, and the SVG primitives the charts are drawn with. No scripts, fonts or requests
from elsewhere.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from html import escape
from typing import Any

MISSING = "—"

# Geometry of the SVG charts, in pixels.
WIDTH = 680
LEFT, RIGHT = 210, 600  # the dot-and-whisker plot's x range (labels left, values right)
TOP, ROW, PAD = 28, 26, 10
LABEL_CHARS = 30

INK, MUTED, GRID, ACCENT = "#1f2937", "#6b7280", "#e5e7eb", "#2563eb"

CSS = """
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

def page(title: str, sections: Iterable[str]) -> str:
    return (
        "<!doctype html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{esc(title)} · domainrag report</title>\n"
        f"<style>{CSS}</style>\n</head>\n<body>\n" + "\n".join(sections) + "\n</body>\n</html>\n"
    )


def esc(value: Any) -> str:
    return escape(str(value))


def fmt(value: Any) -> str:
    """A value as text: floats to 3 decimals, integers as they are, None as "—"."""
    if value is None:
        return MISSING
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def number(value: Any) -> float | None:
    """``value`` as a finite float, or None when it is missing, not a number, NaN or infinite."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def interval(pair: Any) -> tuple[float, float] | None:
    """A 95% CI ``[low, high]`` as two floats, or None when it is missing or malformed."""
    if not isinstance(pair, Sequence) or isinstance(pair, str) or len(pair) != 2:
        return None
    low, high = number(pair[0]), number(pair[1])
    return None if low is None or high is None else (low, high)


def ci_text(pair: Any) -> str:
    bounds = interval(pair)
    return MISSING if bounds is None else f"[{bounds[0]:.3f}, {bounds[1]:.3f}]"


def sub(mapping: Any, *keys: str) -> dict[str, Any]:
    """The dict at ``mapping[k1][k2]...``, or {} where a level is missing, null or not a dict."""
    for key in keys:
        mapping = mapping.get(key) if isinstance(mapping, Mapping) else None
    return dict(mapping) if isinstance(mapping, Mapping) else {}


def as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


def section(anchor: str, heading: str, body: str) -> str:
    return f'<section id="{anchor}">\n<h2>{esc(heading)}</h2>\n{body}\n</section>'


def table(head: Iterable[str], rows: Iterable[Sequence[str]], css_class: str) -> str:
    """A table; ``head`` is plain text (escaped here), ``rows`` hold cells of ready HTML."""
    header = "".join(f"<th>{esc(cell)}</th>" for cell in head)
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>\n" for row in rows)
    return (
        f'<table class="{css_class}">\n<thead><tr>{header}</tr></thead>\n'
        f"<tbody>\n{body}</tbody>\n</table>"
    )


def figure(svg: str, caption: str) -> str:
    return f"<figure>\n{svg}\n<figcaption>{esc(caption)}</figcaption>\n</figure>"


def code(value: Any) -> str:
    return f"<code>{esc(MISSING if value is None else value)}</code>"


def manifest_value(value: Any) -> str:
    """Strings as they are, null as "—", anything else (numbers, lists, dicts) as JSON."""
    if value is None:
        return MISSING
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def supported(flag: Any) -> str:
    if flag is None:
        return MISSING
    return '<span class="ok">✓</span>' if flag else '<span class="bad">✗</span>'


def svg(width: int, height: int, title: str, parts: Iterable[str]) -> str:
    return (
        f'<svg viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" '
        f'aria-label="{esc(title)}"><title>{esc(title)}</title>\n' + "\n".join(parts) + "\n</svg>"
    )


def svg_text(x: float, y: float, text: str, anchor: str = "start", fill: str = INK) -> str:
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" dominant-baseline="middle" '
        f'fill="{fill}">{esc(text)}</text>'
    )


def svg_line(x1: float, y1: float, x2: float, y2: float, stroke: str, extra: str = "") -> str:
    return (
        f'<line x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}" stroke="{stroke}"{extra}/>'
    )


def short_label(label: str) -> str:
    """``label`` cut to :data:`LABEL_CHARS` characters (with an ellipsis) for a chart's margin."""
    return label if len(label) <= LABEL_CHARS else label[: LABEL_CHARS - 1] + "…"
