"""The ``domainrag`` command line (an edge: errors become short messages here).

Exit codes: 0 success, 1 error, 2 usage error, 3 partial ingest (some files failed).
Set ``DOMAINRAG_TRACEBACK=1`` to see full tracebacks instead of short messages.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console

from .errors import DomainragError

if TYPE_CHECKING:  # pragma: no cover
    from .index.builder import IngestReport
    from .kb import KnowledgeBase
    from .types import Answer, Hit

EXIT_PARTIAL = 3

app = typer.Typer(
    name="domainrag",
    help="Grounded answers and honest evaluation over your own domain documents.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
out = Console()
err = Console(stderr=True)

KbOption = typer.Option(
    None, "--kb", envvar="DOMAINRAG_KB", help="Knowledge-base folder [default: ./.domainrag]."
)


def _open(kb: Path | None, create: bool = False, overrides: dict[str, Any] | None = None) -> KnowledgeBase:
    from .kb import KnowledgeBase

    return KnowledgeBase.open(kb, create=create, overrides=overrides)


@app.command()
def ingest(
    paths: list[Path] = typer.Argument(..., help="Files or folders (or BEIR folders with --format beir)."),
    kb: Path | None = KbOption,
    prune: bool = typer.Option(False, "--prune", help="Remove documents whose files are gone."),
    format: str = typer.Option("files", "--format", help="files | beir"),
    reindex: bool = typer.Option(False, "--reindex", help="Empty the index first (after changing embedder or chunker)."),
    embedder: str | None = typer.Option(None, "--embedder", help="Embedding model for a new knowledge base, e.g. minilm, hash:384."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """Ingest documents incrementally: unchanged files are skipped, changed ones replaced."""
    overrides = {"embedder.model": embedder} if embedder else None
    with _open(kb, create=True, overrides=overrides) as base:
        report = base.ingest(paths, format=format, prune=prune, reindex=reindex,  # type: ignore[arg-type]
                             progress=not as_json and sys.stderr.isatty())
    if as_json:
        out.print_json(json.dumps({**report.summary(), "failures": report.failed}))
    else:
        _print_report(report)
    if report.partial:
        raise typer.Exit(EXIT_PARTIAL)


def _print_report(report: IngestReport) -> None:
    s = report.summary()
    out.print(
        f"[bold]Ingested[/bold] in {s['seconds']:.1f}s: [green]{s['added']} added[/green], "
        f"{s['updated']} updated, {s['skipped']} unchanged, {s['removed']} removed, "
        f"[red]{s['failed']} failed[/red], {s['ignored']} ignored; "
        f"{s['chunks']} chunks written, {s['embedded']} embedded."
    )
    for path, reason in report.failed:
        err.print(f"  [red]failed[/red] {path}: {reason}")
    if report.interrupted:
        err.print("[yellow]Interrupted: run the same command again to finish.[/yellow]")


@app.command()
def search(
    query: str = typer.Argument(..., help="The question or keywords."),
    kb: Path | None = KbOption,
    k: int = typer.Option(10, "-k", "--k", min=1, help="Number of results."),
    mode: str | None = typer.Option(None, "--mode", help="hybrid | lexical | dense [default: from config]"),
    filter: list[str] = typer.Option([], "--filter", help="FIELD=VALUE (path=GLOB, doc_id=ID, or a metadata field); repeatable."),
    one_per_doc: bool = typer.Option(False, "--one-per-doc", help="Only the best chunk of each document."),
    as_json: bool = typer.Option(False, "--json", help="Print hits as JSON."),
) -> None:
    """Search the knowledge base."""
    with _open(kb) as base:
        hits = base.search(query, k=k, mode=mode, filters=_filters(filter), one_per_doc=one_per_doc)  # type: ignore[arg-type]
    if as_json:
        out.print_json(json.dumps([h.to_dict() for h in hits], ensure_ascii=False))
    else:
        _print_hits(hits)


def _filters(items: list[str]) -> dict[str, list[str]] | None:
    filters: dict[str, list[str]] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"{item!r} is not FIELD=VALUE", param_hint="--filter")
        filters.setdefault(key.strip(), []).append(value)
    return filters or None


def _print_hits(hits: list[Hit]) -> None:
    from rich.table import Table

    if not hits:
        out.print("[yellow]No results.[/yellow]")
        return
    table = Table(show_lines=True)
    for name, style in (("#", "dim"), ("score", ""), ("document", "cyan"), ("text", "")):
        table.add_column(name, style=style, overflow="fold")
    for rank, hit in enumerate(hits, start=1):
        where = hit.doc_id + (f" p.{hit.span.page}" if hit.span.page else "")
        if hit.heading_path:
            where += "\n" + " > ".join(hit.heading_path)
        text = " ".join(hit.text.split())
        table.add_row(str(rank), f"{hit.score:.3f}", where, text[:300] + ("…" if len(text) > 300 else ""))
    out.print(table)


ModelOption = typer.Option(
    None, "--model", "-m", help="provider:model, e.g. openai:gpt-4o-mini [default: answer.model, $DOMAINRAG_MODEL, else extractive]."
)
TemplateOption = typer.Option(None, "--template", help="Prompt template: general, finance, medical, legal, or one in <kb>/templates.")


@app.command()
def ask(
    question: str = typer.Argument(..., help="The question."),
    kb: Path | None = KbOption,
    model: str | None = ModelOption,
    template: str | None = TemplateOption,
    k: int | None = typer.Option(None, "-k", "--k", min=1, help="Chunks to retrieve [default: answer.k]."),
    mode: str | None = typer.Option(None, "--mode", help="hybrid | lexical | dense"),
    filter: list[str] = typer.Option([], "--filter", help="FIELD=VALUE; repeatable (as for search)."),
    as_json: bool = typer.Option(False, "--json", help="Print the answer as JSON."),
    stream: bool = typer.Option(False, "--stream", help="Print the answer as the model writes it."),
) -> None:
    """Answer a question from the documents, with checked citations (or say they do not answer)."""
    with _open(kb) as base:
        on_token = _streamer() if stream and not as_json else None
        answer = base.ask(question, model=model, template=template, k=k, mode=mode,  # type: ignore[arg-type]
                          filters=_filters(filter), on_token=on_token)
    if as_json:
        out.print_json(json.dumps(answer.to_dict(), ensure_ascii=False))
    else:
        _print_answer(answer, streamed=on_token is not None)


@app.command()
def chat(
    kb: Path | None = KbOption,
    model: str | None = ModelOption,
    template: str | None = TemplateOption,
    stream: bool = typer.Option(False, "--stream", help="Print answers as the model writes them."),
) -> None:
    """Converse with the documents: follow-up questions are understood in context
    (with a model; the offline default answers each question as asked). /reset clears the
    history, /exit or Ctrl-D quits."""
    with _open(kb) as base:
        conversation = base.chat(model=model, template=template)
        out.print(f"[dim]Model {base.answerer.model_spec(model)} · /reset clears the history · /exit quits[/dim]")
        while True:
            try:
                question = input("\n? ").strip()
            except EOFError:
                break
            if question in ("/exit", "/quit"):
                break
            if question == "/reset":
                conversation.reset()
                out.print("[dim]History cleared.[/dim]")
                continue
            if not question:
                continue
            try:
                on_token = _streamer() if stream else None
                answer = conversation.ask(question, on_token=on_token)
            except DomainragError as exc:  # one bad turn does not end the conversation
                err.print(f"[red]error:[/red] {exc}")
                continue
            _print_answer(answer, streamed=on_token is not None)


@app.command()
def models(kb: Path | None = KbOption) -> None:
    """List model providers, what each needs, and which model answers by default."""
    from rich.table import Table

    from . import registry
    from .config import load
    from .kb import DEFAULT_KB
    from .models.generation import GROUP, resolve_model

    kb_dir = Path(kb or os.environ.get("DOMAINRAG_KB") or DEFAULT_KB)
    configured = load(kb_dir).answer.model if (kb_dir / "domainrag.toml").exists() else None
    table = Table(title="Answer model providers (--model provider:model)")
    for name in ("provider", "example", "key (environment variable)", "endpoint"):
        table.add_column(name, overflow="fold")
    for name in registry.names(GROUP):
        try:
            info = registry.get(GROUP, name).info()
        except DomainragError as exc:
            table.add_row(name, "", "", f"[red]unavailable: {exc}[/red]")
            continue
        key = "none needed" if not info.key_env else info.key_env + (" ✓ set" if os.environ.get(info.key_env) else " (not set)")
        table.add_row(name, info.example, key, info.base_url or ("offline" if info.offline else ""))
    out.print(table)
    env = os.environ.get("DOMAINRAG_MODEL")
    chosen = resolve_model(None, configured, env)
    origin = ("answer.model in " + str(kb_dir / "domainrag.toml")) if configured else (
        "$DOMAINRAG_MODEL" if env and env.strip() else "the offline default")
    out.print(f"Default model: [bold]{chosen}[/bold] (from {origin}). Override per call with --model.")


def _streamer():
    def on_token(delta: str) -> None:
        out.print(delta, end="", markup=False, highlight=False, soft_wrap=True)

    return on_token


def _print_answer(answer: Answer, streamed: bool = False) -> None:
    from rich.table import Table

    if streamed:
        out.print()
    if answer.abstained:
        out.print(f"[yellow]{answer.text}[/yellow]")
        reason = answer.trace.get("abstain_reason")
        out.print(f"[dim]abstained: {reason}[/dim]")
        return
    if not streamed or answer.trace.get("removed_markers") or answer.trace.get("retried"):
        if streamed:
            out.print("[dim]Checked answer:[/dim]")
        out.print(answer.text, markup=False, highlight=False)
    if not answer.complete:
        err.print(f"[red]The answer is incomplete: the model stopped early "
                  f"({answer.trace.get('finish_reason')}).[/red]")
    if answer.citations:
        table = Table(show_lines=False, box=None, pad_edge=False)
        for name in ("", "source", "quote", "check"):
            table.add_column(name, overflow="fold")
        for c in answer.citations:
            where = c.doc_id + (f" p.{c.span.page}" if c.span.page else "")
            quote = " ".join(c.quote.split())
            mark = f"[green]✓ {c.support:.2f}[/green]" if c.supported else f"[red]✗ {c.support:.2f}[/red]"
            table.add_row(f"[{c.number}]", where, quote[:160] + ("…" if len(quote) > 160 else ""), mark)
        out.print(table)
    removed = answer.trace.get("removed_markers") or []
    usage = answer.usage
    cost = f" · ${usage.cost_usd:.4f}" if usage.cost_usd else ""
    out.print(f"[dim]{answer.manifest.get('model')} · grounded {answer.grounded:.0%} · "
              f"{usage.prompt_tokens}+{usage.completion_tokens} tokens{cost} · "
              f"{answer.trace.get('timings_ms', {}).get('total_ms', 0):.0f} ms"
              + (f" · {len(removed)} fabricated citation(s) removed" if removed else "") + "[/dim]")


@app.command(name="eval")
def eval_(
    suite: Path = typer.Argument(..., help="A JSONL suite, or a BEIR folder (corpus.jsonl, queries.jsonl, qrels/)."),
    kb: Path | None = typer.Option(None, "--kb", envvar="DOMAINRAG_KB", help="Knowledge base [default: ./.domainrag; for a BEIR folder a cached one built from its corpus]."),
    split: str = typer.Option("test", "--split", help="BEIR qrels split."),
    models: list[str] = typer.Option([], "--model", "-m", help="provider:model; repeat it (and --template) to run a matrix compared against the first."),
    templates: list[str] = typer.Option([], "--template", help="Prompt template; repeatable (a matrix)."),
    metrics: str = typer.Option("retrieval,answer,citation", "--metrics", help="Comma-separated: retrieval, answer, citation, judge."),
    judge: str | None = typer.Option(None, "--judge", help="Judge model provider:model (sets answer.judge)."),
    limit: int | None = typer.Option(None, "--limit", min=1, help="Only the first N cases."),
    concurrency: int = typer.Option(4, "--concurrency", min=1, help="Answers computed at a time."),
    json_out: Path | None = typer.Option(None, "--json", help="Write the run as JSON here."),
    html_out: Path | None = typer.Option(None, "--html", help="Write a self-contained HTML report here."),
    name: str | None = typer.Option(None, "--name", help="Name of the run [default: the suite's]."),
    mode: str | None = typer.Option(None, "--mode", help="hybrid | lexical | dense"),
    set_: list[str] = typer.Option([], "--set", help="KEY=VALUE configuration override for this run (e.g. retrieval.k=20); repeatable."),
    repeat: int = typer.Option(1, "--repeat", min=1, help="Answers per case (nondeterministic models): per-case variance and flaky cases."),
    compare_to: str | None = typer.Option(None, "--compare-to", help="Compare with this run or pinned baseline afterwards."),
    gate: bool = typer.Option(False, "--gate", help="With --compare-to: exit 1 when the [gate] fails."),
    adaptive: bool = typer.Option(False, "--adaptive", help="With --compare-to: cases in random order, stop as soon as the verdict is decided (anytime-valid betting test)."),
    futility: float | None = typer.Option(None, "--futility", min=0.0, max=0.49, help="With --adaptive: stop for 'no detectable difference' when a full run would find one with less than this probability [default: 0.05; 0: off]."),
    margin: float = typer.Option(0.0, "--margin", min=0.0, max=1.0, help="With --adaptive: also stop once |delta| < MARGIN is proven (equivalence; 0: off)."),
    budget: int | None = typer.Option(None, "--budget", min=1, help="With --adaptive: judge at most N cases, decided or not."),
) -> None:
    """Evaluate a suite: retrieval, answer and citation metrics, per scenario with 95% CIs."""
    from .evaluate.runner import EvalOptions
    from .evaluate.suite import load_suite
    from .report.terminal import print_run

    groups = _metric_groups(metrics)
    overrides = _settings(set_)
    if judge:
        overrides["answer.judge"] = judge
    grid = [(m, t) for m in (models or [None]) for t in (templates or [None])]
    if len(grid) > 1 and (compare_to or adaptive or gate):
        raise typer.BadParameter("a matrix run (several --model/--template) compares every cell with the first "
                                 "itself; --compare-to, --gate and --adaptive apply to a single run",
                                 param_hint="--model/--template")
    if not adaptive and (budget or margin or futility is not None):
        raise typer.BadParameter("--budget, --margin and --futility only apply with --adaptive", param_hint="--adaptive")
    loaded = load_suite(suite, split)
    base = _eval_kb(kb, loaded, overrides)
    options = EvalOptions(groups | {"retrieval"}, None, judge, mode, limit, concurrency, name, overrides, repeat=repeat)
    with base:
        if len(grid) > 1:
            _eval_matrix(base, loaded, grid, options, json_out, html_out)
            return
        options.model, options.template = grid[0]
        run, baseline, stopper = _eval_one(base, loaded, options, compare_to,
                                           (futility, margin, budget) if adaptive else None)
    print_run(run, out)
    if stopper is not None:
        _print_adaptive(stopper.result())
    _write_reports(run, json_out, html_out)
    if baseline is not None:
        _compare_and_report(baseline, run, base.config.gate, False, gate, None, None)


def _metric_groups(metrics: str) -> frozenset[str]:
    from .evaluate.runner import GROUPS

    groups = frozenset(g.strip() for g in metrics.split(",") if g.strip())
    if not groups <= set(GROUPS):
        raise typer.BadParameter(f"unknown group(s) {sorted(groups - set(GROUPS))}; use {', '.join(GROUPS)}", param_hint="--metrics")
    return groups | {"answer"} if groups & {"citation", "judge"} else groups


def _eval_one(base: KnowledgeBase, suite: Any, options: Any, compare_to: str | None,
              adaptive: tuple[float | None, float, int | None] | None) -> tuple[dict, dict | None, Any]:
    """Run one evaluation (resuming an interrupted one); returns the run, the baseline it is to
    be compared with (or None) and the adaptive stop rule (or None)."""
    from .evaluate.runner import run_suite
    from .evaluate.runs import RunStore

    with RunStore(base.path) as store:
        baseline_id = store.resolve(compare_to) if compare_to else None  # fail before the work
        stopper = None
        if adaptive is not None:
            from .compare.adaptive import AdaptiveStop
            from .compare.sequential import FUTILITY

            if not baseline_id:
                raise typer.BadParameter("needs --compare-to RUN", param_hint="--adaptive")
            futility, margin, budget = adaptive
            stopper = AdaptiveStop(store.load(baseline_id), [c.id for c in suite.cases[:options.limit]],
                                   answers="answer" in options.metrics, alpha=base.config.gate.alpha,
                                   futility=FUTILITY if futility is None else futility, margin=margin,
                                   budget=budget)
            stopper.apply(options)
        base.answerer.cache = _model_cache(base.path)
        try:
            with _case_progress(len(suite.cases[:options.limit])) as tick:
                run = run_suite(base, suite, options, store, tick)
        except KeyboardInterrupt:
            err.print("[yellow]Interrupted: the finished cases are saved; run the same command "
                      "again to resume.[/yellow]")
            raise typer.Exit(130) from None
        return run, (store.load(baseline_id) if baseline_id else None), stopper


suite_app = typer.Typer(no_args_is_help=True)
app.add_typer(suite_app, name="suite", help="Evaluation suites: generate one from the knowledge base's own documents.")


@suite_app.command("generate")
def suite_generate(
    out_file: Path = typer.Option(..., "--out", help="Where to write the JSONL suite."),
    n: int = typer.Option(100, "--n", min=1, help="Number of cases."),
    kb: Path | None = KbOption,
    model: str | None = typer.Option(None, "--model", "-m", help="provider:model writing the questions [default: heuristic cloze questions, no model]."),
    seed: int = typer.Option(0, "--seed", help="Sampling seed: the same seed gives the same suite."),
) -> None:
    """Write questions with gold spans and scenario tags from the documents (marked generated)."""
    from collections import Counter

    from .evaluate.generate import HEURISTIC, generate_suite, write_suite

    with _open(kb) as base:
        if model:
            base.answerer.cache = _model_cache(base.path)
        suite = generate_suite(base, n, model, seed)
    write_suite(suite.records, out_file)
    how = "heuristic cloze questions (no model)" if suite.generator == HEURISTIC else f"questions written by {suite.generator}"
    out.print(f"Wrote {len(suite.records)} case(s) to {out_file}: {how}.")
    tags = Counter(t for r in suite.records for t in r["scenario"] if not t.startswith("generator:"))
    out.print("  by scenario: " + " · ".join(f"{tag} {count}" for tag, count in sorted(tags.items())))
    if suite.skipped or suite.unparseable:
        out.print(f"  [dim]{suite.skipped} passage(s) skipped, {suite.unparseable} unparseable model repl(ies)[/dim]")
    if len(suite.records) < n:
        out.print(f"[yellow]Asked for {n}, wrote {len(suite.records)}: too few usable passages or model replies.[/yellow]")


runs_app = typer.Typer(help="Stored evaluation runs: list them, pin baselines.", no_args_is_help=False)
app.add_typer(runs_app, name="runs")


def _print_adaptive(result: dict[str, Any]) -> None:
    from rich.markup import escape

    low, high = result["interval"]
    where = f"{result['metric']} after {result['n']} of {result['total']} paired cases"
    interval = f"anytime-valid {1 - result['alpha']:.0%} interval of the mean delta [{low:+.4f}, {high:+.4f}]"
    if result["verdict"] == "undecided":
        out.print(f"Adaptive: undecided on {where} ({interval}); the comparison below is the fixed-n "
                  "test on the cases judged")
    else:
        out.print(f"Adaptive: [bold]{result['verdict']}[/bold] on {where} — {escape(result['reason'])}; {interval}")


def _eval_matrix(base: KnowledgeBase, suite: Any, grid: list[tuple[str | None, str | None]],
                 options: Any, json_out: Path | None, html_out: Path | None = None) -> None:
    """Run every (model, template) of the grid, sharing retrieval, and compare each with the first."""
    from dataclasses import replace

    from .compare.compare import compare_runs
    from .evaluate.runner import run_suite
    from .evaluate.runs import RunStore
    from .report.terminal import print_comparison, print_run

    base.answerer.cache = _model_cache(base.path)
    shared: dict[Any, Any] = {}
    runs = []
    with RunStore(base.path) as store:
        for model, template in grid:
            label = (f"{options.name or suite.name} / {model or base.answerer.model_spec()} / "
                     f"{template or base.config.answer.template}")
            cell = replace(options, model=model, template=template, name=label, retrieval_cache=shared)
            with _case_progress(min(options.limit or len(suite.cases), len(suite.cases))) as tick:
                runs.append(run_suite(base, suite, cell, store, tick))
            print_run(runs[-1], out)
    comparisons = [compare_runs(runs[0], run) for run in runs[1:]]
    for report in comparisons:
        print_comparison(report, out)
    from .report.comparison_html import render_matrix_html

    _write_reports(comparisons, json_out, html_out, render_matrix_html,
                   json_data={"runs": [r["run_id"] for r in runs], "comparisons": comparisons})


@runs_app.callback(invoke_without_command=True)
def runs(ctx: typer.Context, kb: Path | None = KbOption, as_json: bool = typer.Option(False, "--json")) -> None:
    """List stored evaluation runs, newest first."""
    if ctx.invoked_subcommand:
        return
    from rich.markup import escape
    from rich.table import Table

    from .evaluate.runs import RunStore

    with _open(kb) as base, RunStore(base.path) as store:
        listed, pins = store.list(), store.pins()
    if as_json:
        out.print_json(json.dumps(listed, ensure_ascii=False))
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
        m, metrics = r["manifest"], r["metrics"]
        name = escape(r["name"]) + (f" [bold](baseline {escape(pinned[r['run_id']])})[/bold]" if r["run_id"] in pinned else "")
        cases, status = str(m.get("cases")), r["status"]
        if r["judged"] < (m.get("cases") or 0):    # interrupted, or stopped early by --adaptive
            cases = f"{r['judged']}/{cases}"
            status = "stopped" if m.get("stop_rule") and status == "done" else status
        table.add_row(r["run_id"], name, status, escape(str(m.get("model") or "—")), cases,
                      _num(metrics.get("retrieval", {}).get("ndcg@10")),
                      _num(metrics.get("answer", {}).get("token_f1")))
    out.print(table if listed else "[yellow]No runs yet: domainrag eval SUITE[/yellow]")


@runs_app.command("show")
def runs_show(run: str = typer.Argument("last", help="Run id, name, pinned baseline, last or last~N."),
              kb: Path | None = KbOption,
              json_out: Path | None = typer.Option(None, "--json", help="Write the run as JSON here."),
              html_out: Path | None = typer.Option(None, "--html", help="Write its HTML report here.")) -> None:
    """Show a stored run (summary, scenarios) and write its JSON or HTML report again."""
    from .evaluate.runs import RunStore
    from .report.terminal import print_run

    with _open(kb) as base, RunStore(base.path) as store:
        loaded = store.load(run)
    print_run(loaded, out)
    _write_reports(loaded, json_out, html_out)


@runs_app.command("delete")
def runs_delete(runs_: list[str] = typer.Argument(..., metavar="RUN...", help="Run ids, names, last or last~N."),
                kb: Path | None = KbOption) -> None:
    """Delete stored runs and their case records (pinned baselines are refused: unpin first)."""
    from .evaluate.runs import RunStore

    with _open(kb) as base, RunStore(base.path) as store:
        deleted = store.delete(runs_)
    out.print(f"Deleted {len(deleted)} run(s): {', '.join(deleted)}")


@runs_app.command("unpin")
def runs_unpin(name: str = typer.Argument(..., help="Baseline name."), kb: Path | None = KbOption) -> None:
    """Remove a baseline name (the run stays)."""
    from .evaluate.runs import RunStore

    with _open(kb) as base, RunStore(base.path) as store:
        run_id = store.unpin(name)
    out.print(f"Baseline {name!r} removed (it named {run_id})")


@runs_app.command("pin")
def runs_pin(run: str = typer.Argument(..., help="Run id, name, last or last~N."),
             name: str = typer.Argument(..., help="Baseline name, e.g. production."),
             kb: Path | None = KbOption) -> None:
    """Name a run as a baseline (for compare and eval --compare-to)."""
    from .evaluate.runs import RunStore

    with _open(kb) as base, RunStore(base.path) as store:
        run_id = store.pin(run, name)
    out.print(f"Baseline {name!r} → {run_id}")


@app.command()
def compare(
    run_a: str = typer.Argument(..., help="Baseline run: id, name, pinned baseline, last or last~N."),
    run_b: str = typer.Argument("last", help="New run [default: last]."),
    kb: Path | None = KbOption,
    json_out: Path | None = typer.Option(None, "--json", help="Write the comparison as JSON here."),
    html_out: Path | None = typer.Option(None, "--html", help="Write a self-contained HTML comparison here."),
    force: bool = typer.Option(False, "--force", help="Compare runs over different suites or corpora (the report is marked)."),
    gate: bool = typer.Option(False, "--gate", help="Apply [gate] thresholds; exit 1 when they fail."),
    alpha: float | None = typer.Option(None, "--alpha", min=0.0001, max=0.5, help="Significance level [default: gate.alpha, 0.05]."),
) -> None:
    """Compare two runs case by case: deltas with CIs, p-values, MDE, verdicts per scenario."""
    from .evaluate.runs import RunStore

    with _open(kb) as base:
        with RunStore(base.path) as store:
            a, b = store.load(run_a), store.load(run_b)
        _compare_and_report(a, b, base.config.gate, force, gate, alpha, json_out, html_out)


def _compare_and_report(a: dict[str, Any], b: dict[str, Any], gate_config: Any, force: bool,
                        gate: bool, alpha: float | None, json_out: Path | None,
                        html_out: Path | None = None) -> None:
    from .compare.compare import compare_runs
    from .compare.gate import apply_gate
    from .report.terminal import print_comparison

    report = compare_runs(a, b, force=force, alpha=alpha or gate_config.alpha)
    report["gate"] = apply_gate(report, gate_config)
    print_comparison(report, out)
    from .report.comparison_html import render_comparison_html

    _write_reports(report, json_out, html_out, render_comparison_html)
    if gate and not report["gate"]["passed"]:
        raise typer.Exit(1)


def _write_reports(data: Any, json_out: Path | None, html_out: Path | None, render: Any = None,
                   json_data: Any = None) -> None:
    """``--json``/``--html`` of a run or comparison: ``json_data`` (default ``data``) as JSON,
    ``render(data)`` (default the run report) as a self-contained page; says where each went."""
    if json_out:
        payload = data if json_data is None else json_data
        json_out.write_text(json.dumps(payload, ensure_ascii=False, indent=1), encoding="utf-8")
        out.print(f"JSON: {json_out}")
    if html_out:
        from .report.html import write_html

        out.print(f"HTML report: {write_html(data, html_out, render)}")


def _num(value: Any) -> str:
    return "—" if value is None else f"{value:.3f}"


def _settings(items: list[str]) -> dict[str, Any]:
    """``--set KEY=VALUE`` pairs; values are parsed as JSON when they can be (numbers, lists)."""
    overrides: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or "." not in key:
            raise typer.BadParameter(f"{item!r} is not SECTION.KEY=VALUE", param_hint="--set")
        try:
            overrides[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            overrides[key.strip()] = value
    return overrides


def _eval_kb(kb: Path | None, suite: Any, overrides: dict[str, Any]) -> KnowledgeBase:
    """The knowledge base to evaluate on; for a BEIR suite an absent or empty one is built from
    its corpus first (by default in a cache folder keyed by the corpus's hash)."""
    from .kb import DEFAULT_KB, KnowledgeBase

    path = kb
    if path is None and suite.is_beir and not Path(DEFAULT_KB).exists():
        path = _beir_cache(Path(suite.path), overrides)
    base = KnowledgeBase.open(path, create=suite.is_beir, overrides=overrides or None)
    if suite.is_beir and not base.store.stats()["chunks"]:
        err.print(f"Ingesting the BEIR corpus {suite.path} into {base.path} (once; cached)")
        report = base.ingest([suite.path], format="beir", progress=sys.stderr.isatty())
        if report.partial:
            err.print(f"[yellow]{len(report.failed)} corpus entries failed to ingest[/yellow]")
    return base


def _beir_cache(root: Path, overrides: dict[str, Any]) -> Path:
    import hashlib

    from .models.onnx_export import cache_dir

    digest = hashlib.sha256((root / "corpus.jsonl").read_bytes())
    digest.update(json.dumps(overrides.get("embedder.model"), default=str).encode())
    return cache_dir() / "eval" / f"{root.name}-{digest.hexdigest()[:12]}"


def _model_cache(kb_path: Path) -> Any:
    from .models.cache import ModelCache

    return ModelCache(kb_path / "model_cache.sqlite3")


@contextmanager
def _case_progress(total: int) -> Iterator[Any]:
    if not sys.stderr.isatty():
        yield None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    with Progress(TextColumn("[bold]Evaluating"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                  console=err, transient=True) as bar:
        task = bar.add_task("", total=total)
        yield lambda label: bar.update(task, advance=0 if label.startswith(("starting", "resuming")) else 1)


@app.command()
def status(kb: Path | None = KbOption, as_json: bool = typer.Option(False, "--json")) -> None:
    """Show what the knowledge base holds and how it was built."""
    with _open(kb) as base:
        info = base.status()
    if as_json:
        out.print_json(json.dumps(info))
        return
    manifest = info.get("manifest") or {}
    out.print(f"[bold]{info['path']}[/bold]")
    out.print(f"  sources {info['sources']} · documents {info['documents']} · chunks {info['chunks']}")
    if manifest:
        e = manifest["embedder"]
        out.print(f"  embedder {e['id']} ({e['dimensions']} dims) · chunker {manifest['chunker']}")
    out.print(f"  config hash {info['config_hash']} · ANN {'on' if info['ann'] else 'off (exact search)'}")


@app.command()
def quickstart(
    kb: Path = typer.Option(Path(".domainrag-quickstart"), "--kb", help="Where to build the sample knowledge base."),
    embedder: str | None = typer.Option(None, "--embedder", help="Embedding model [default: minilm]."),
) -> None:
    """Ingest the bundled sample (medical, finance, Chinese law) and run example searches."""
    from .quickstart import run

    run(kb, embedder, out)


def _version(value: bool) -> None:
    if value:
        from . import __version__

        out.print(f"domainrag {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Show the version."),
) -> None:
    """Grounded answers and honest evaluation over your own domain documents."""


def main() -> None:
    """Entry point: run the app, turning domainrag errors into one-line messages."""
    try:
        app()
    except DomainragError as exc:
        if os.environ.get("DOMAINRAG_TRACEBACK"):
            raise
        err.print(f"[red]error:[/red] {exc}")
        sys.exit(1)
    except KeyboardInterrupt:
        err.print("[yellow]Interrupted.[/yellow]")
        sys.exit(130)


if __name__ == "__main__":  # pragma: no cover
    main()
