"""What the CLI prints: ingest reports, search hits, answers, evaluation runs, comparisons,
stored runs and progress bars (Rich).

Document and user text (chunk text, answers, quotes, questions, file names, run names, scenario
tags, manifest values) is never read as Rich markup: it goes through :func:`escape` or is
printed with ``markup=False``, so a document holding ``[/quote]`` or ``[link=…]`` prints as
written and cannot crash the terminal or hide a hyperlink.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.markup import escape as _rich_escape
from rich.table import Table

if TYPE_CHECKING:  # pragma: no cover
    from ..answer.verify import Verification
    from ..compare.results import Comparison, MetricComparison
    from ..evaluate.run_records import Run, RunInfo
    from ..index.builder import IngestReport
    from ..types import Answer, Hit

#: The columns of the scenario table: the headline metric of each group, when present.
HEADLINES = (
    ("retrieval", "ndcg@10"),
    ("answer", "token_f1"),
    ("citation", "citation_precision"),
    ("abstention", "abstention_recall"),
)


def escape(text: object) -> str:
    """``text`` as literal text inside Rich markup (markup-like tags escaped, control characters
    shown as ``?``) — file names may hold newlines or escape sequences."""
    value = "".join(ch if ch.isprintable() or ch in "\n\t" else "?" for ch in str(text))
    return _rich_escape(value)


def fmt(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


# -- ingest, search, answers -----------------------------------------------------------------------
def print_ingest_report(report: IngestReport, out: Console, err: Console) -> None:
    s = report.summary()
    out.print(
        f"[bold]Ingested[/bold] in {s['seconds']:.1f}s: [green]{s['added']} added[/green], "
        f"{s['updated']} updated, {s['skipped']} unchanged, {s['removed']} removed, "
        f"[red]{s['failed']} failed[/red], {s['ignored']} ignored; "
        f"{s['chunks']} chunks written, {s['embedded']} embedded."
    )
    for path, reason in report.failed:
        err.print(f"  [red]failed[/red] {escape(path)}: {escape(reason)}")
    for path, notes in report.notes.items():
        for note in notes:
            if not note.warning:
                out.print(f"  [dim]note[/dim] {escape(path)}: {escape(note.message)}")
    suspicious = report.suspicious
    if suspicious:
        err.print(f"[yellow]{len(suspicious)} file(s) parsed suspiciously[/yellow] "
                  "(check them; 'domainrag status --parse' lists them again):")
        for path, notes in suspicious.items():
            for note in notes:
                err.print(f"  [yellow]{escape(note.code)}[/yellow] {escape(path)}: {escape(note.message)}")
    if report.interrupted:
        err.print("[yellow]Interrupted: run the same command again to finish.[/yellow]")


def print_parse_report(files: Sequence[Mapping[str, Any]], out: Console) -> None:
    """``KnowledgeBase.parse_report`` as lines: each file, then its notes."""
    if not files:
        out.print("[green]No file parsed suspiciously.[/green]")
        return
    for entry in files:
        out.print(f"[bold]{escape(entry['source'])}[/bold]")
        for note in entry["notes"]:
            style = "yellow" if note.get("warning", True) else "dim"
            out.print(f"  [{style}]{escape(note['code'])}[/{style}] {escape(note['message'])}")


def print_hits(hits: Sequence[Hit], out: Console) -> None:
    if not hits:
        out.print("[yellow]No results.[/yellow]")
        return
    table = Table(show_lines=True)
    for name, style in (("#", "dim"), ("score", ""), ("document", "cyan"), ("text", "")):
        table.add_column(name, style=style, overflow="fold")
    for rank, hit in enumerate(hits, start=1):
        where = escape(hit.doc_id) + (f" p.{hit.span.page}" if hit.span.page else "")
        if hit.heading_path:
            where += "\n" + escape(" > ".join(hit.heading_path))
        text = " ".join(hit.text.split())
        table.add_row(str(rank), f"{hit.score:.3f}", where, escape(_cut(text, 300)))
    out.print(table)


class Streamer:
    """Prints the answer's text as the model writes it (never as markup) and keeps it, so the
    checked answer is shown again when it differs from what was streamed."""

    def __init__(self, out: Console) -> None:
        self.out = out
        self.text = ""

    def __call__(self, delta: str) -> None:
        self.text += delta
        self.out.print(delta, end="", markup=False, highlight=False, soft_wrap=True)


def streamer(out: Console) -> Streamer:
    return Streamer(out)


def print_answer(answer: Answer, out: Console, err: Console, streamed: Streamer | None = None) -> None:
    if streamed is not None:
        out.print()
    trace = answer.trace
    if answer.abstained:
        out.print(answer.text, style="yellow", markup=False, highlight=False)
        out.print(f"[dim]abstained: {escape(trace.abstain_reason)}[/dim]")
        return
    changed = streamed is not None and " ".join(streamed.text.split()) != " ".join(answer.text.split())
    if streamed is None or changed or trace.retried:
        if streamed is not None:
            out.print("[dim]Checked answer:[/dim]")
        out.print(answer.text, markup=False, highlight=False)
    if not answer.complete:
        err.print(f"[red]The answer is incomplete: the model stopped early "
                  f"({escape(trace.finish_reason)}).[/red]")
    if answer.citations:
        table = Table(show_lines=False, box=None, pad_edge=False)
        for name in ("", "source", "quote", "check"):
            table.add_column(name, overflow="fold")
        for c in answer.citations:
            where = escape(c.doc_id) + (f" p.{c.span.page}" if c.span.page else "")
            quote = escape(_cut(" ".join(c.quote.split()), 160))
            mark = f"[green]✓ {c.support:.2f}[/green]" if c.supported else f"[red]✗ {c.support:.2f}[/red]"
            table.add_row(f"\\[{c.number}]", where, quote, mark)
        out.print(table)
    flagged = trace.get("unsupported_sentences") or []
    if flagged:
        done = "removed" if flagged[0].get("action") == "remove" else "marked [unsupported]"
        out.print(f"[yellow]{len(flagged)} sentence(s) that no source supports were {escape(done)}: "
                  "check them before relying on the answer.[/yellow]")
    removed = trace.removed_markers
    usage = answer.usage
    cost = f" · ${usage.cost_usd:.4f}" if usage.cost_usd else ""
    out.print(f"[dim]{escape(answer.manifest.get('model'))} · grounded {answer.grounded:.0%} · "
              f"{usage.prompt_tokens}+{usage.completion_tokens} tokens{cost} · {trace.total_ms:.0f} ms"
              + (f" · {len(removed)} fabricated citation(s) removed" if removed else "") + "[/dim]")


def print_verification(result: Verification, out: Console) -> None:
    """Each claim with its verdict, support probability and reason; then the grounded share."""
    table = Table(show_lines=False, box=None, pad_edge=False)
    for name in ("", "claim", "cites", "support", "why"):
        table.add_column(name, overflow="fold")
    for c in result.claims:
        if c.verdict == "not_a_claim":
            continue
        mark = "[green]✓[/green]" if c.verdict == "supported" else "[red]✗[/red]"
        cites = " ".join(f"[{n}]" for n in c.cites) or "-"
        score = "" if c.score is None else f"{c.score:.2f}"
        table.add_row(mark, escape(_cut(c.claim or c.text, 200)), escape(cites), score, escape(c.reason))
    out.print(table)
    unsupported = len(result.unsupported)
    if result.supported:
        verdict = "[green]every claim supported[/green]"
    elif unsupported:
        verdict = f"[red]{unsupported} unsupported[/red]"
    else:
        verdict = "[yellow]no claim to check[/yellow]"
    out.print(f"[dim]grounded {result.grounded:.0%} · {escape(result.verifier)} ·[/dim] {verdict}")


def _cut(text: str, limit: int) -> str:
    return text[:limit] + ("…" if len(text) > limit else "")


# -- evaluation runs ---------------------------------------------------------------------------------
def print_run(run: Run, console: Console) -> None:
    m = run.manifest
    console.print(
        f"[bold]{escape(run.name)}[/bold] · run {run.run_id} · {m.cases} cases · "
        f"model {escape(m.model or '—')} · mode {escape(m.mode)}"
    )
    console.print(_overall(run))
    if len(run.scenarios) > 1:
        console.print(_scenarios(run))
    failed = run.failed
    if failed:
        kinds = ", ".join(f"{n} {kind.replace('_', ' ')}" for kind, n in sorted((failed.get("by_kind") or {}).items()))
        console.print(f"[red]{failed.get('count')} of {len(run.cases)} cases failed[/red]: {escape(kinds)}; "
                      "re-run the same command to retry them")
    for warning in run.warnings:
        console.print(f"[yellow]warning:[/yellow] {escape(warning)}")


def _overall(run: Run) -> Table:
    table = Table(title="Metrics (95% bootstrap CI)", title_justify="left")
    for name in ("group", "metric", "value", "95% CI"):
        table.add_column(name, justify="right" if name in ("value", "95% CI") else "left")
    ci95 = run.summary.ci95 if run.summary else {}
    for group, values in run.metrics.items():
        for name, value in values.items():
            ci = ci95.get(group, {}).get(name)
            table.add_row(group, name, fmt(value), f"{fmt(ci[0])} – {fmt(ci[1])}" if ci else "")
    return table


def _scenarios(run: Run) -> Table:
    scenarios = run.scenarios
    columns = [(g, n) for g, n in HEADLINES if any(n in s.metrics.get(g, {}) for s in scenarios.values())]
    table = Table(title="Per scenario (value [95% CI])", title_justify="left")
    table.add_column("scenario")
    table.add_column("n", justify="right")
    for _, name in columns:
        table.add_column(name, justify="right")
    for tag, s in scenarios.items():
        cells = []
        for group, name in columns:
            value = s.metrics.get(group, {}).get(name)
            ci = s.ci95.get(group, {}).get(name)
            cells.append(fmt(value) + (f" [dim]{ci[0]:.2f}–{ci[1]:.2f}[/dim]" if ci and None not in ci else ""))
        table.add_row(escape(tag), str(s.n), *cells)
    return table


def print_adaptive(result: Mapping[str, Any] | None, console: Console) -> None:
    """The outcome of ``eval --adaptive`` (the run manifest's ``stop_result``)."""
    if not result:
        return
    low, high = result["interval"]
    where = f"{result['metric']} after {result['n']} of {result['total']} paired cases"
    interval = f"anytime-valid {1 - result['alpha']:.0%} interval of the mean delta [{low:+.4f}, {high:+.4f}]"
    if result["verdict"] == "undecided":
        console.print(f"Adaptive: undecided on {where} ({interval}); the comparison below is the fixed-n "
                      "test on the cases judged")
    else:
        console.print(f"Adaptive: [bold]{result['verdict']}[/bold] on {where} — {escape(result['reason'])}; "
                      f"{interval}")


def print_runs(listed: Sequence[RunInfo], pins: Mapping[str, str], console: Console) -> None:
    """The stored runs, newest first, with their baseline names and headline numbers."""
    if not listed:
        console.print("[yellow]No runs yet: domainrag eval SUITE[/yellow]")
        return
    table = Table()
    table.add_column("run", no_wrap=True, min_width=22)   # the handle users type (it carries the date)
    table.add_column("name", overflow="ellipsis", min_width=8)
    table.add_column("status", no_wrap=True)
    table.add_column("model", overflow="ellipsis", min_width=8)
    for column in ("cases", "ndcg@10", "token_f1"):
        table.add_column(column, no_wrap=True)
    pinned = {run_id: name for name, run_id in pins.items()}
    for r in listed:
        name = escape(r.name) + (f" [bold](baseline {escape(pinned[r.run_id])})[/bold]" if r.run_id in pinned else "")
        cases, status = str(r.manifest.cases), r.status
        if r.judged < r.manifest.cases:    # interrupted, or stopped early by --adaptive
            cases = f"{r.judged}/{cases}"
            status = "stopped" if r.manifest.stop_rule and status == "done" else status
        status += f", {r.failed} failed" if r.failed else ""
        table.add_row(r.run_id, name, status, escape(r.manifest.model or "—"), cases,
                      _num(r.metric("ndcg@10")), _num(r.metric("token_f1")))
    console.print(table)


def _num(value: Any) -> str:
    return "—" if value is None else f"{value:.3f}"


@contextmanager
def case_progress(total: int, console: Console, label: str = "Evaluating") -> Iterator[Callable[[str], None] | None]:
    """A progress bar over ``total`` cases on an interactive ``console`` (None otherwise); the
    callback takes the runner's progress lines."""
    if not console.is_terminal:
        yield None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from ..evaluate.runner import NOTICES

    with Progress(TextColumn(f"[bold]{escape(label)}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                  console=console, transient=True) as bar:
        task = bar.add_task("", total=total)

        def tick(line: str) -> None:
            if line.startswith("note:"):
                bar.console.print(f"[dim]{escape(line)}[/dim]")
            bar.update(task, advance=0 if line.startswith(NOTICES) else 1)

        yield tick


# -- comparisons -----------------------------------------------------------------------------------
def print_comparison(report: Comparison, console: Console) -> None:
    """What changed, then per metric and per scenario deltas with CIs and verdicts, the cost
    and latency axes, flipped cases and the gate."""
    console.print(f"[bold]A[/bold] {report.a} ({escape(report.a_name)})  →  [bold]B[/bold] "
                  f"{report.b} ({escape(report.b_name)})")
    if report.forced:
        console.print("[red]Forced: the runs used different suites or corpora.[/red]")
    if report.headline:
        console.print(f"[bold]{escape(report.headline)}[/bold]", highlight=False)
    for key, change in report.manifest_diff.items():
        console.print(f"  changed {escape(key)}: {escape(fmt(change['a']))} → {escape(fmt(change['b']))}",
                      highlight=False)
    if report.cases.note:
        console.print(f"[yellow]{escape(report.cases.note)}[/yellow]")
    console.print(_comparison_table("Metrics (B − A, paired)", report.metrics))
    if report.axes:
        console.print(_comparison_table("Cost and latency (lower is better)", report.axes))
    for tag, scenario in report.scenarios.items():
        decided = {k: v for k, v in scenario.metrics.items() if v.decided}
        if decided:
            console.print(_comparison_table(f"Scenario {escape(tag)} (n={scenario.n}, Holm-corrected)", decided))
    for flip in report.flips[:10]:
        console.print(f"  [dim]{flip.direction}[/dim] {escape(flip.id)}: {escape(flip.question)} "
                      f"({flip.metric} {fmt(flip.a_score)} → {fmt(flip.b_score)})", highlight=False)
    if report.gate:
        status = "[green]passed[/green]" if report.gate.passed else "[red]failed[/red]"
        console.print(f"Gate ({report.gate.rule}): {status}")
        for reason in report.gate.reasons:
            console.print(f"  ✗ {escape(reason)}", highlight=False)


_VERDICT_STYLE = {"better": "green", "worse": "red"}


def _comparison_table(title: str, rows: Mapping[str, MetricComparison]) -> Table:
    table = Table(title=title, title_justify="left")
    for name in ("metric", "n", "A", "B", "Δ", "95% CI", "p", "MDE", "verdict"):
        table.add_column(name, justify="left" if name in ("metric", "verdict") else "right")
    for name, r in rows.items():
        ci = f"{r.ci[0]:+.3f} … {r.ci[1]:+.3f}" if r.ci else ""
        style = _VERDICT_STYLE.get(r.verdict, "dim")
        verdict = f"[{style}]{r.verdict}[/{style}]" + (f" · {escape(r.summary)}" if r.summary else "")
        table.add_row(escape(name), str(r.n), fmt(r.a), fmt(r.b), f"{r.delta:+.3f}", ci, f"{r.p_value:.3g}",
                      fmt(r.mde), verdict)
    return table
