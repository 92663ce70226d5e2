"""Terminal report of an evaluation run: overall metrics with 95% intervals, then per scenario."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.markup import escape
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
        table.add_row(escape(tag), str(s["n"]), *cells)
    return table


def fmt(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def print_comparison(report: dict[str, Any], console: Console) -> None:
    """What changed, then per metric and per scenario deltas with CIs and verdicts, the cost
    and latency axes, flipped cases and the gate."""
    console.print(f"[bold]A[/bold] {report['a']} ({escape(str(report.get('a_name')))})  →  [bold]B[/bold] "
                  f"{report['b']} ({escape(str(report.get('b_name')))})")
    if report.get("forced"):
        console.print("[red]Forced: the runs used different suites or corpora.[/red]")
    if report.get("headline"):
        console.print(f"[bold]{escape(report['headline'])}[/bold]", highlight=False)
    for key, change in report["manifest_diff"].items():
        console.print(f"  changed {key}: {escape(fmt(change['a']))} → {escape(fmt(change['b']))}", highlight=False)
    if report["cases"]["note"]:
        console.print(f"[yellow]{report['cases']['note']}[/yellow]")
    console.print(_comparison_table("Metrics (B − A, paired)", report["metrics"]))
    if report["axes"]:
        console.print(_comparison_table("Cost and latency (lower is better)", report["axes"]))
    for tag, scenario in report["scenarios"].items():
        decided = {k: v for k, v in scenario["metrics"].items() if v["verdict"] != "no detectable difference"}
        if decided:
            console.print(_comparison_table(f"Scenario {tag} (n={scenario['n']}, Holm-corrected)", decided))
    for flip in report["flips"][:10]:
        console.print(f"  [dim]{flip['direction']}[/dim] {escape(flip['id'])}: {escape(str(flip['question']))} "
                      f"({flip['metric']} {fmt(flip['a_score'])} → {fmt(flip['b_score'])})", highlight=False)
    gate = report.get("gate")
    if gate:
        status = "[green]passed[/green]" if gate["passed"] else "[red]failed[/red]"
        console.print(f"Gate ({gate['rule']}): {status}")
        for reason in gate["reasons"]:
            console.print(f"  ✗ {escape(reason)}", highlight=False)


_VERDICT_STYLE = {"better": "green", "worse": "red"}


def _comparison_table(title: str, rows: dict[str, Any]) -> Table:
    table = Table(title=title, title_justify="left")
    for name in ("metric", "n", "A", "B", "Δ", "95% CI", "p", "MDE", "verdict"):
        table.add_column(name, justify="left" if name in ("metric", "verdict") else "right")
    for name, r in rows.items():
        ci = f"{r['ci'][0]:+.3f} … {r['ci'][1]:+.3f}" if r.get("ci") else ""
        style = _VERDICT_STYLE.get(r["verdict"], "dim")
        verdict = f"[{style}]{r['verdict']}[/{style}]" + (f" · {r['summary']}" if r.get("summary") else "")
        table.add_row(name, str(r["n"]), fmt(r["a"]), fmt(r["b"]), f"{r['delta']:+.3f}", ci,
                      f"{r.get('p_holm', r['p']):.3g}", fmt(r["mde"]), verdict)
    return table
