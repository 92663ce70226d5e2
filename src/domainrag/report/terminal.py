"""Terminal report of an evaluation run: overall metrics with 95% intervals, then per scenario."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

#: The columns of the scenario table: the headline metric of each group, when present.
HEADLINES = (
    ("retrieval", "ndcg@10"),
    ("answer", "token_f1"),
    ("citation", "citation_precision"),
    ("abstention", "abstention_recall"),
)


def print_run(run: dict[str, Any], console: Console) -> None:
    m = run["manifest"]
    console.print(
        f"[bold]{run['name']}[/bold] · run {run['run_id']} · {m.get('cases')} cases · "
        f"model {m.get('model') or '—'} · mode {m.get('mode')}"
    )
    console.print(_overall(run))
    if len(run.get("scenarios", {})) > 1:
        console.print(_scenarios(run))
    for warning in run.get("warnings", []):
        console.print(f"[yellow]warning:[/yellow] {warning}")


def _overall(run: dict[str, Any]) -> Table:
    table = Table(title="Metrics (95% bootstrap CI)", title_justify="left")
    for name in ("group", "metric", "value", "95% CI"):
        table.add_column(name, justify="right" if name in ("value", "95% CI") else "left")
    for group, values in run["metrics"].items():
        for name, value in values.items():
            ci = run.get("ci95", {}).get(group, {}).get(name)
            table.add_row(group, name, fmt(value), f"{fmt(ci[0])} – {fmt(ci[1])}" if ci else "")
    return table


def _scenarios(run: dict[str, Any]) -> Table:
    columns = [
        (g, n)
        for g, n in HEADLINES
        if any(n in s["metrics"].get(g, {}) for s in run["scenarios"].values())
    ]
    table = Table(title="Per scenario (value [95% CI])", title_justify="left")
    table.add_column("scenario")
    table.add_column("n", justify="right")
    for _, name in columns:
        table.add_column(name, justify="right")
    for tag, s in run["scenarios"].items():
        cells = []
        for group, name in columns:
            value = s["metrics"].get(group, {}).get(name)
            ci = s.get("ci95", {}).get(group, {}).get(name)
            cells.append(
                fmt(value)
                + (f" [dim]{ci[0]:.2f}–{ci[1]:.2f}[/dim]" if ci and None not in ci else "")
            )
        table.add_row(tag, str(s["n"]), *cells)
    return table


def fmt(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)
