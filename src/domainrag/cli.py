"""The ``domainrag`` command line: an edge over the library. Each command parses its options,
calls the Python API (``KnowledgeBase``) and prints through :mod:`.report.terminal`.

Exit codes: 0 success; 1 an error (a one-line message that names the fix); 2 a usage error
(bad option or argument); 3 partial work: an ingest where some files failed (each listed with
its reason) or an evaluation where some cases' model calls failed (re-run it to retry them);
130 interrupted (Ctrl-C: finished work is kept, the same command resumes). ``eval --gate`` and
``compare --gate`` exit 1 when the gate fails. Set ``DOMAINRAG_TRACEBACK=1`` to see full
tracebacks instead of short messages.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import typer
from rich.console import Console
from typer.core import TyperGroup

from .errors import ConfigError, DomainragError
from .report import terminal

if TYPE_CHECKING:  # pragma: no cover
    from .kb import KnowledgeBase

EXIT_ERROR = 1
EXIT_PARTIAL = 3
EXIT_INTERRUPTED = 130

Mode = Literal["hybrid", "lexical", "dense"]
out = Console()
err = Console(stderr=True)


class _Commands(TyperGroup):
    """Turns library errors into one-line messages (and Ctrl-C into exit 130) for every command."""

    def invoke(self, ctx: Any) -> Any:  # a (typer-vendored) click Context
        try:
            return super().invoke(ctx)
        except DomainragError as exc:
            if os.environ.get("DOMAINRAG_TRACEBACK"):
                raise
            err.print(f"[red]error:[/red] {terminal.escape(exc)}", highlight=False)
            raise typer.Exit(EXIT_ERROR) from None
        except KeyboardInterrupt:
            err.print("[yellow]Interrupted.[/yellow]")
            raise typer.Exit(EXIT_INTERRUPTED) from None


app = typer.Typer(name="domainrag", cls=_Commands, no_args_is_help=True, add_completion=False, rich_markup_mode=None,
                  pretty_exceptions_enable=False,
                  help="Grounded answers and honest evaluation over your own domain documents.")

KbOpt = Annotated[str | None, typer.Option(
    "--kb", envvar="DOMAINRAG_KB",
    help="Knowledge-base folder, or postgresql://USER@HOST/DB#COLLECTION for one kept wholly in PostgreSQL "
         "[default: ./.domainrag].")]
ModelOpt = Annotated[str | None, typer.Option(
    "--model", "-m",
    help="provider:model, e.g. openai:gpt-4o-mini [default: answer.model, $DOMAINRAG_MODEL, else extractive].")]
TemplateOpt = Annotated[str | None, typer.Option(
    "--template", help="Prompt template: general, finance, medical, legal, or one in <kb>/templates.")]
ModeOpt = Annotated[Mode | None, typer.Option("--mode", help="Retrieval mode [default: from config].")]
FilterOpt = Annotated[list[str] | None, typer.Option(
    "--filter", help="FIELD=VALUE (path=GLOB, doc_id=ID, or a metadata field); repeatable.")]
JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON.")]
JsonOut = Annotated[Path | None, typer.Option("--json", help="Write it as JSON here.")]
HtmlOut = Annotated[Path | None, typer.Option("--html", help="Write a self-contained HTML report here.")]


def _open(kb: str | None, create: bool = False, overrides: dict[str, Any] | None = None, *,
          searching: Mode | Literal[True] | None = None) -> KnowledgeBase:
    """The knowledge base; ``searching``: the mode a search will use (``True``: the configured
    one), so that the embedder it needs loads in the background while the index opens."""
    from .kb import KnowledgeBase

    return KnowledgeBase.open(kb, create=create, overrides=overrides, preload=searching or False)


def _print_json(data: Any) -> None:
    out.print_json(json.dumps(data, ensure_ascii=False))


# -- ingest, search, ask, chat ---------------------------------------------------------------------
@app.command()
def ingest(
    paths: Annotated[list[str] | None, typer.Argument(
        help="Files, folders, s3://BUCKET/PREFIX (or another fsspec URL), https://... (one page; a site with "
        "--crawl); or BEIR folders with --format beir [default: [sources] urls of the knowledge base].",
        show_default=False)] = None,
    kb: KbOpt = None,
    prune: Annotated[bool, typer.Option(
        "--prune", help="Remove documents whose files (objects, pages) are gone.")] = False,
    format: Annotated[Literal["files", "beir"], typer.Option("--format", help="Input format.")] = "files",
    reindex: Annotated[bool, typer.Option(
        "--reindex", help="Empty the index first (after changing embedder or chunker).")] = False,
    embedder: Annotated[str | None, typer.Option(
        "--embedder", help="Embedding model of a new knowledge base [default: multilingual]; e.g. minilm.")] = None,
    acl: Annotated[str | None, typer.Option(
        "--acl", help="Access groups of these documents, g1,g2: only API keys with one of them read them "
        "('' makes them visible to every key) [default: an [[ingest.acl]] rule, else the groups they had, "
        "else their own acl field].")] = None,
    crawl: Annotated[bool | None, typer.Option(
        "--crawl/--no-crawl", help="Web URLs: follow links on the same site (robots.txt and sitemap honoured), "
        "else one page each [default: off; sources.crawl for [sources] urls].", show_default=False)] = None,
    max_pages: Annotated[int | None, typer.Option("--max-pages", min=1, help="Crawl: most pages fetched "
                                                  "[default: sources.max_pages, 500].", show_default=False)] = None,
    max_depth: Annotated[int | None, typer.Option("--max-depth", min=0, help="Crawl: most links followed from "
                                                  "the start URL [default: sources.max_depth, 5].",
                                                  show_default=False)] = None,
    as_json: JsonFlag = False,
) -> None:
    """Ingest documents incrementally: unchanged files (and objects, pages) are skipped, changed ones replaced."""
    overrides: dict[str, Any] = {"embedder.model": embedder} if embedder else {}
    overrides |= {f"sources.{k}": v for k, v in (("max_pages", max_pages), ("max_depth", max_depth)) if v is not None}
    with _open(kb, create=True, overrides=overrides or None) as base:
        report = base.ingest(paths or None, format=format, prune=prune, reindex=reindex,
                             progress=not as_json and err.is_terminal, acl=acl, crawl=crawl)
    if as_json:
        _print_json({**report.summary(), "failures": report.failed,
                     "parse": [{"file": label, "notes": [n.to_dict() for n in notes]}
                               for label, notes in report.notes.items()]})
    else:
        terminal.print_ingest_report(report, out, err)
    if report.partial:
        raise typer.Exit(EXIT_PARTIAL)


@app.command()
def search(
    query: Annotated[str, typer.Argument(help="The question or keywords.")],
    kb: KbOpt = None,
    k: Annotated[int, typer.Option("-k", "--k", min=1, help="Number of results.")] = 10,
    mode: ModeOpt = None,
    filter: FilterOpt = None,
    one_per_doc: Annotated[bool, typer.Option("--one-per-doc", help="Only the best chunk of each document.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Search the knowledge base."""
    with _open(kb, searching=mode or True) as base:
        hits = base.search(query, k=k, mode=mode, filters=_filters(filter), one_per_doc=one_per_doc)
    if as_json:
        _print_json([h.to_dict() for h in hits])
    else:
        terminal.print_hits(hits, out)


def _filters(items: list[str] | None) -> dict[str, list[str]] | None:
    filters: dict[str, list[str]] = {}
    for item in items or ():
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"{item!r} is not FIELD=VALUE", param_hint="--filter")
        filters.setdefault(key.strip(), []).append(value)
    return filters or None


@app.command()
def ask(
    question: Annotated[str, typer.Argument(help="The question.")],
    kb: KbOpt = None,
    model: ModelOpt = None,
    template: TemplateOpt = None,
    k: Annotated[int | None, typer.Option("-k", "--k", min=1, help="Chunks to retrieve [default: answer.k].")] = None,
    mode: ModeOpt = None,
    filter: FilterOpt = None,
    as_json: JsonFlag = False,
    stream: Annotated[bool, typer.Option("--stream", help="Print the answer as the model writes it.")] = False,
) -> None:
    """Answer a question from the documents, with checked citations (or say they do not answer)."""
    with _open(kb, searching=mode or True) as base:
        on_token = terminal.streamer(out) if stream and not as_json else None
        answer = base.ask(question, model=model, template=template, k=k, mode=mode, filters=_filters(filter),
                          on_token=on_token)
    if as_json:
        from .answer.verify import source_dict

        _print_json({**answer.to_dict(), "sources": [source_dict(s) for s in answer.sources]})
    else:
        terminal.print_answer(answer, out, err, streamed=on_token)


@app.command()
def verify(
    file: Annotated[Path, typer.Argument(
        help='JSON of an answer: the output of "ask --json", or {"answer": TEXT, "sources": [TEXT or '
             '{"text": ...}, ...]} from any RAG system ("-" reads standard input).')],
    kb: Annotated[str | None, typer.Option(
        "--kb", help="Check as this knowledge base checks its answers (answer.verify, thresholds) "
                     "[default: the offline verifier].")] = None,
    model: ModelOpt = None,
    template: TemplateOpt = None,
    threshold: Annotated[float | None, typer.Option(
        "--threshold", min=0.0, max=1.0,
        help="Support probability a claim needs [default: 0.45, or the preset's].")] = None,
    gate: Annotated[bool, typer.Option("--gate", help="Exit 1 when any claim is unsupported.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Check every claim of an answer against its sources: supported, unsupported (and why)."""
    from .answer.verify import read_answer_json
    from .answer.verify import verify as check

    if kb is None and (model or template):
        raise typer.BadParameter("--model and --template choose how a knowledge base checks: give --kb too "
                                 "(without it the offline verifier checks; --threshold sets its bar).")
    text, sources = read_answer_json(_read_input(file), str(file))
    if kb is not None:
        overrides = {"answer.verify_threshold": threshold} if threshold is not None else None
        with _open(kb, overrides=overrides) as base:
            result = base.verify(text, sources, model=model, template=template)
    else:
        result = check(text, sources, threshold=threshold)
    if as_json:
        _print_json(result.to_dict())
    else:
        terminal.print_verification(result, out)
    if gate and not result.supported:
        raise typer.Exit(EXIT_ERROR)


def _read_input(file: Path) -> str:
    import sys

    try:
        if str(file) == "-":
            return sys.stdin.read()
        return file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"Cannot read {file}: {exc}. Pass a UTF-8 JSON file, or - for standard input.") from exc


@app.command()
def chat(
    kb: KbOpt = None,
    model: ModelOpt = None,
    template: TemplateOpt = None,
    stream: Annotated[bool, typer.Option("--stream", help="Print answers as the model writes them.")] = False,
) -> None:
    """Converse with the documents: follow-up questions are understood in context
    (with a model; the offline default answers each question as asked). /reset clears the
    history, /exit or Ctrl-D quits."""
    with _open(kb, searching=True) as base:   # the model loads while the user types
        conversation = base.chat(model=model, template=template)
        out.print(f"[dim]Model {terminal.escape(base.answerer.model_spec(model))} · /reset clears the history · "
                  "/exit quits[/dim]")
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
                on_token = terminal.streamer(out) if stream else None
                answer = conversation.ask(question, on_token=on_token)
            except DomainragError as exc:  # one bad turn does not end the conversation
                err.print(f"[red]error:[/red] {terminal.escape(exc)}")
                continue
            terminal.print_answer(answer, out, err, streamed=on_token)


@app.command()
def models(kb: KbOpt = None) -> None:
    """List model providers, what each needs, and which model answers by default."""
    from rich.table import Table

    from . import registry
    from .config import load
    from .index.postgres_connect import is_postgres_url
    from .kb import DEFAULT_KB
    from .models.generation import GROUP, resolve_model
    from .redaction import redact_url

    where = kb or os.environ.get("DOMAINRAG_KB") or DEFAULT_KB
    if is_postgres_url(where):
        from .index.postgres_config import read_config

        stored = read_config(where)
        configured, source = (stored.answer.model if stored else None), redact_url(where)
    else:
        source = str(Path(where) / "domainrag.toml")
        configured = load(Path(where)).answer.model if Path(source).exists() else None
    table = Table(title="Answer model providers (--model provider:model)")
    for name in ("provider", "example", "key (environment variable)", "endpoint"):
        table.add_column(name, overflow="fold")
    for name in registry.names(GROUP):
        try:
            info = registry.get(GROUP, name).info()
        except DomainragError as exc:
            table.add_row(name, "", "", f"[red]unavailable: {terminal.escape(exc)}[/red]")
            continue
        key = "none needed" if not info.key_env else info.key_env + (
            " ✓ set" if os.environ.get(info.key_env) else " (not set)")
        table.add_row(name, info.example, key, info.base_url or ("offline" if info.offline else ""))
    out.print(table)
    env = os.environ.get("DOMAINRAG_MODEL")
    chosen = resolve_model(None, configured, env)
    origin = ("answer.model in " + source) if configured else (
        "$DOMAINRAG_MODEL" if env and env.strip() else "the offline default")
    out.print(f"Default model: [bold]{terminal.escape(chosen)}[/bold] (from {terminal.escape(origin)}). "
              "Override per call with --model.")


# -- evaluation ------------------------------------------------------------------------------------
MetricsOpt = Annotated[str, typer.Option("--metrics", help="Comma-separated: retrieval, answer, citation, judge.")]


@app.command(name="eval")
def eval_(
    suite: Annotated[Path, typer.Argument(
        help="A JSONL suite, or a BEIR folder (corpus.jsonl, queries.jsonl, qrels/).")],
    kb: Annotated[str | None, typer.Option(
        "--kb", envvar="DOMAINRAG_KB",
        help="Knowledge base [default: ./.domainrag; for a BEIR folder a cached one built from its corpus].")] = None,
    split: Annotated[str, typer.Option("--split", help="BEIR qrels split.")] = "test",
    models: Annotated[list[str] | None, typer.Option(
        "--model", "-m",
        help="provider:model; repeat it (and --template) to run a matrix compared against the first.")] = None,
    templates: Annotated[list[str] | None, typer.Option(
        "--template", help="Prompt template; repeatable (a matrix).")] = None,
    metrics: MetricsOpt = "retrieval,answer,citation",
    judge: Annotated[str | None, typer.Option(
        "--judge", help="Judge model provider:model (sets answer.judge).")] = None,
    limit: Annotated[int | None, typer.Option("--limit", min=1, help="Only the first N cases.")] = None,
    concurrency: Annotated[int | None, typer.Option(
        "--concurrency", min=1, help="Answers at a time [default: 1 for a model server on this machine, else 4; "
                                     "lowered when the server falls behind].")] = None,
    json_out: JsonOut = None,
    html_out: HtmlOut = None,
    name: Annotated[str | None, typer.Option("--name", help="Name of the run [default: the suite's].")] = None,
    mode: ModeOpt = None,
    set_: Annotated[list[str] | None, typer.Option(
        "--set", help="KEY=VALUE configuration override for this run (e.g. retrieval.k=20); repeatable.")] = None,
    repeat: Annotated[int, typer.Option(
        "--repeat", min=1, help="Answers per case (nondeterministic models): per-case variance and flaky cases.")] = 1,
    compare_to: Annotated[str | None, typer.Option(
        "--compare-to", help="Compare with this run or pinned baseline afterwards.")] = None,
    gate: Annotated[bool, typer.Option("--gate", help="With --compare-to: exit 1 when the [gate] fails.")] = False,
    adaptive: Annotated[bool, typer.Option(
        "--adaptive", help="With --compare-to: cases in random order, stop as soon as the verdict is decided "
                           "(anytime-valid betting test).")] = False,
    futility: Annotated[float | None, typer.Option(
        "--futility", min=0.0, max=0.49, help="With --adaptive: stop for 'no detectable difference' when a full "
                                              "run would find one with less than this probability "
                                              "[default: 0.05; 0: off].")] = None,
    margin: Annotated[float, typer.Option(
        "--margin", min=0.0, max=1.0, help="With --adaptive: also stop once |delta| < MARGIN is proven "
                                           "(equivalence; 0: off).")] = 0.0,
    budget: Annotated[int | None, typer.Option(
        "--budget", min=1, help="With --adaptive: judge at most N cases, decided or not.")] = None,
) -> None:
    """Evaluate a suite: retrieval, answer and citation metrics, per scenario with 95% CIs."""
    from .evaluate.suite import load_suite
    from .evaluation import Adaptive

    grid_size = max(1, len(models or ())) * max(1, len(templates or ()))
    if grid_size > 1 and (compare_to or adaptive or gate):
        raise typer.BadParameter("a matrix run (several --model/--template) compares every cell with the first "
                                 "itself; --compare-to, --gate and --adaptive apply to a single run",
                                 param_hint="--model/--template")
    if not adaptive and (budget or margin or futility is not None):
        raise typer.BadParameter("--budget, --margin and --futility only apply with --adaptive",
                                 param_hint="--adaptive")
    if adaptive and not compare_to:
        raise typer.BadParameter("needs --compare-to RUN", param_hint="--adaptive")
    _check_outputs(json_out, html_out)
    loaded = load_suite(suite, split)
    settings: dict[str, Any] = dict(metrics=metrics.split(","), judge=judge, mode=mode, limit=limit,
                                    concurrency=concurrency, name=name, repeat=repeat)
    grid_models: list[str | None] = [*models] if models else [None]
    grid_templates: list[str | None] = [*templates] if templates else [None]
    with _eval_kb(kb, loaded, _settings(set_)) as base:
        if grid_size > 1:
            _eval_matrix(base, loaded, grid_models, grid_templates, settings, json_out, html_out)
            return
        baseline = base.runs.get(compare_to) if compare_to else None  # fail before the work
        plan = Adaptive(baseline=baseline, futility=futility, margin=margin, budget=budget) \
            if adaptive and baseline else None
        total = len(loaded.cases[:limit])
        try:
            with terminal.case_progress(total, err) as tick:
                run = base.evaluate(loaded, model=grid_models[0], template=grid_templates[0], adaptive=plan,
                                    progress=tick, **settings)
        except KeyboardInterrupt:
            err.print("[yellow]Interrupted: the finished cases are saved; run the same command "
                      "again to resume.[/yellow]")
            raise typer.Exit(EXIT_INTERRUPTED) from None
        terminal.print_run(run, out)
        terminal.print_adaptive(run.manifest.stop_result, out)
        _write_reports(run.to_dict(), json_out, html_out)
        if baseline is not None:
            _compare_and_report(base, baseline.run_id, run.run_id, force=False, gate=gate, alpha=None)
    if run.failed:
        raise typer.Exit(EXIT_PARTIAL)


def _eval_kb(kb: str | None, suite: Any, overrides: dict[str, Any]) -> KnowledgeBase:
    from .kb import KnowledgeBase

    return KnowledgeBase.for_suite(suite, kb, overrides=overrides, progress=err.is_terminal,
                                   notify=lambda line: err.print(terminal.escape(line)))


def _eval_matrix(base: KnowledgeBase, suite: Any, models: list[str | None], templates: list[str | None],
                 settings: Mapping[str, Any], json_out: Path | None, html_out: Path | None) -> None:
    """Run every (model, template) of the grid, sharing retrieval, and compare each with the first."""
    from .report.comparison_html import render_matrix_html

    total = len(suite.cases[:settings.get("limit")])
    with terminal.case_progress(total * len(models) * len(templates), err) as tick:
        matrix = base.evaluate_matrix(suite, models=models, templates=templates,
                                      progress=(lambda _cell, line: tick(line)) if tick else None, **settings)
    for run in matrix.runs:
        terminal.print_run(run, out)
    for comparison in matrix.comparisons:
        terminal.print_comparison(comparison, out)
    _write_reports([c.to_dict() for c in matrix.comparisons], json_out, html_out, render_matrix_html,
                   json_data=matrix.to_dict())


suite_app = typer.Typer(cls=_Commands, no_args_is_help=True, rich_markup_mode=None)
app.add_typer(suite_app, name="suite", help="Evaluation suites: generate one from the knowledge base's own documents.")


@suite_app.command("generate")
def suite_generate(
    out_file: Annotated[Path, typer.Option("--out", help="Where to write the JSONL suite.")],
    n: Annotated[int, typer.Option("--n", min=1, help="Number of cases.")] = 100,
    kb: KbOpt = None,
    model: Annotated[str | None, typer.Option(
        "--model", "-m", help="provider:model writing the questions [default: heuristic cloze questions, no model].")
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="Sampling seed: the same seed gives the same suite.")] = 0,
) -> None:
    """Write questions with gold spans and scenario tags from the documents (marked generated)."""
    from collections import Counter

    from .evaluate.generate import HEURISTIC, write_suite

    with _open(kb) as base:
        suite = base.generate_suite(n, model=model, seed=seed)
    write_suite(suite.records, out_file)
    how = ("heuristic cloze questions (no model)" if suite.generator == HEURISTIC
           else f"questions written by {suite.generator}")
    out.print(f"Wrote {len(suite.records)} case(s) to {terminal.escape(out_file)}: {terminal.escape(how)}.")
    tags = Counter(t for r in suite.records for t in r["scenario"] if not t.startswith("generator:"))
    out.print("  by scenario: " + " · ".join(f"{terminal.escape(tag)} {count}" for tag, count in sorted(tags.items())))
    if suite.skipped or suite.unparseable:
        out.print(f"  [dim]{suite.skipped} passage(s) skipped, {suite.unparseable} unparseable model repl(ies)[/dim]")
    if len(suite.records) < n:
        out.print(f"[yellow]Asked for {n}, wrote {len(suite.records)}: too few usable passages or model "
                  "replies.[/yellow]")


runs_app = typer.Typer(cls=_Commands, help="Stored evaluation runs: list them, pin baselines.", no_args_is_help=False,
                       rich_markup_mode=None)
app.add_typer(runs_app, name="runs")


@runs_app.callback(invoke_without_command=True)
def runs(ctx: typer.Context, kb: KbOpt = None, as_json: JsonFlag = False) -> None:
    """List stored evaluation runs, newest first."""
    if ctx.invoked_subcommand:
        return
    with _open(kb) as base:
        listed, pins = base.runs.list(), base.runs.pins()
    if as_json:
        _print_json([r.to_dict() for r in listed])
    else:
        terminal.print_runs(listed, pins, out)


@runs_app.command("show")
def runs_show(run: Annotated[str, typer.Argument(help="Run id, name, pinned baseline, last or last~N.")] = "last",
              kb: KbOpt = None, json_out: JsonOut = None, html_out: HtmlOut = None) -> None:
    """Show a stored run (summary, scenarios) and write its JSON or HTML report again."""
    _check_outputs(json_out, html_out)
    with _open(kb) as base:
        loaded = base.runs.get(run)
    terminal.print_run(loaded, out)
    _write_reports(loaded.to_dict(), json_out, html_out)


@runs_app.command("delete")
def runs_delete(refs: Annotated[list[str], typer.Argument(metavar="RUN...", help="Run ids, names, last or last~N.")],
                kb: KbOpt = None) -> None:
    """Delete stored runs and their case records (pinned baselines are refused: unpin first)."""
    with _open(kb) as base:
        deleted = base.runs.delete(refs)
    out.print(f"Deleted {len(deleted)} run(s): {', '.join(deleted)}")


@runs_app.command("unpin")
def runs_unpin(name: Annotated[str, typer.Argument(help="Baseline name.")], kb: KbOpt = None) -> None:
    """Remove a baseline name (the run stays)."""
    with _open(kb) as base:
        run_id = base.runs.unpin(name)
    out.print(f"Baseline {terminal.escape(repr(name))} removed (it named {run_id})")


@runs_app.command("pin")
def runs_pin(run: Annotated[str, typer.Argument(help="Run id, name, last or last~N.")],
             name: Annotated[str, typer.Argument(help="Baseline name, e.g. production.")],
             kb: KbOpt = None) -> None:
    """Name a run as a baseline (for compare and eval --compare-to)."""
    with _open(kb) as base:
        run_id = base.runs.pin(run, name)
    out.print(f"Baseline {terminal.escape(repr(name))} → {run_id}")


@app.command()
def compare(
    run_a: Annotated[str, typer.Argument(help="Baseline run: id, name, pinned baseline, last or last~N.")],
    run_b: Annotated[str, typer.Argument(help="New run.")] = "last",
    kb: KbOpt = None,
    json_out: JsonOut = None,
    html_out: HtmlOut = None,
    force: Annotated[bool, typer.Option(
        "--force", help="Compare runs over different suites or corpora (the report is marked).")] = False,
    gate: Annotated[bool, typer.Option("--gate", help="Apply [gate] thresholds; exit 1 when they fail.")] = False,
    alpha: Annotated[float | None, typer.Option(
        "--alpha", min=0.0001, max=0.5, help="Significance level [default: gate.alpha, 0.05].")] = None,
) -> None:
    """Compare two runs case by case: deltas with CIs, p-values, MDE, verdicts per scenario."""
    _check_outputs(json_out, html_out)
    with _open(kb) as base:
        _compare_and_report(base, run_a, run_b, force=force, gate=gate, alpha=alpha, json_out=json_out,
                            html_out=html_out)


def _compare_and_report(base: KnowledgeBase, run_a: str, run_b: str, *, force: bool, gate: bool,
                        alpha: float | None, json_out: Path | None = None, html_out: Path | None = None) -> None:
    from .report.comparison_html import render_comparison_html

    comparison = base.compare(run_a, run_b, force=force, alpha=alpha)
    terminal.print_comparison(comparison, out)
    _write_reports(comparison.to_dict(), json_out, html_out, render_comparison_html)
    if gate and comparison.gate is not None and not comparison.gate.passed:
        raise typer.Exit(EXIT_ERROR)


def _check_outputs(*paths: Path | None) -> None:
    """Refuse report paths that cannot be written, before any work is done."""
    for path in paths:
        if path is not None and path.is_dir():
            raise typer.BadParameter(f"{path} is a folder; give a file name, e.g. {path / 'report'}",
                                     param_hint="--json/--html")


def _write_reports(data: Any, json_out: Path | None, html_out: Path | None,
                   render: Callable[[Any], str] | None = None, json_data: Any = None) -> None:
    """``--json``/``--html`` of a run or comparison (their JSON contract): ``json_data`` (default
    ``data``) as JSON, ``render(data)`` (default the run report) as a self-contained page."""
    from .report.html import write_html

    try:
        if json_out:
            payload = data if json_data is None else json_data
            json_out.write_text(json.dumps(payload, ensure_ascii=False, indent=1), encoding="utf-8")
            out.print(f"JSON: {terminal.escape(json_out)}")
        if html_out:
            out.print(f"HTML report: {terminal.escape(write_html(data, html_out, render))}")
    except OSError as exc:
        raise DomainragError(f"Could not write the report: {exc.strerror or exc} ({exc.filename}). "
                             "Choose another path; the run itself is stored (domainrag runs show).") from exc


def _settings(items: list[str] | None) -> dict[str, Any]:
    """``--set KEY=VALUE`` pairs; values are parsed as JSON when they can be (numbers, lists)."""
    overrides: dict[str, Any] = {}
    for item in items or ():
        key, sep, value = item.partition("=")
        if not sep or "." not in key:
            raise typer.BadParameter(f"{item!r} is not SECTION.KEY=VALUE", param_hint="--set")
        try:
            overrides[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            overrides[key.strip()] = value
    return overrides


# -- status and the rest -----------------------------------------------------------------------------
@app.command()
def status(
    kb: KbOpt = None,
    parse: Annotated[bool, typer.Option("--parse", help="List the files that parsed suspiciously (empty or "
                                        "sparse text, mojibake, low OCR confidence, flattened tables...).")] = False,
    every: Annotated[bool, typer.Option("--all", help="With --parse: every file with parse notes "
                                        "(pages read by OCR too).")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Show what the knowledge base holds and how it was built."""
    if parse:
        with _open(kb) as base:
            files = base.parse_report(warnings_only=not every)
        if as_json:
            _print_json({"files": files})
        else:
            terminal.print_parse_report(files, out)
        return
    with _open(kb) as base:
        info = base.status()
    if as_json:
        _print_json(info)
        return
    manifest = info.get("manifest") or {}
    out.print(f"[bold]{terminal.escape(info['path'])}[/bold]")
    out.print(f"  sources {info['sources']} · documents {info['documents']} · chunks {info['chunks']}")
    if manifest:
        e = manifest["embedder"]
        out.print(f"  embedder {terminal.escape(e['id'])} ({e['dimensions']} dims) · "
                  f"chunker {terminal.escape(manifest['chunker'])}")
    out.print(f"  config hash {info['config_hash']} · ANN {'on' if info['ann'] else 'off (exact search)'}")


@app.command()
def migrate(
    src: Annotated[str, typer.Argument(help="Knowledge-base folder or store URL to copy from.")],
    dst: Annotated[str, typer.Argument(help="Empty knowledge-base folder (created) or store URL to copy into, "
                                            "e.g. postgresql://USER@HOST/DB#collection.")],
    as_json: JsonFlag = False,
) -> None:
    """Copy a knowledge base between stores (SQLite <-> PostgreSQL) without re-embedding, then check
    that both return the same search results. Passwords come from PGPASSWORD or ?password_env=NAME."""
    from .migrate import migrate as run

    report = run(src, dst)
    if as_json:
        _print_json(report.summary())
    else:
        out.print(f"Copied {report.sources} sources, {report.documents} documents, {report.chunks} chunks and "
                  f"{report.cached_embeddings} cached embeddings from {terminal.escape(report.source)} to "
                  f"{terminal.escape(report.destination)}.")
        for problem in report.mismatches:
            err.print(f"[red]mismatch:[/red] {terminal.escape(problem)}")
        if report.verified:
            out.print(f"Verified: {report.queries} sample searches return the same results on both.")
    if not report.verified:
        raise typer.Exit(EXIT_ERROR)


@app.command("trust")
def trust_cmd(
    kb: Annotated[Path, typer.Argument(help="Knowledge-base folder whose domainrag.toml you trust.")],
    revoke: Annotated[bool, typer.Option("--revoke", help="Forget the trust instead.")] = False,
) -> None:
    """Let a knowledge base's own domainrag.toml choose where data is sent (base_url) and which
    environment variable is sent as the API key (api_key_env). Editing those settings revokes it."""
    from . import trust as trust_store

    where = terminal.escape(kb.resolve())
    if revoke:
        out.print(("No longer trusted: " if trust_store.untrust(kb) else "Was not trusted: ") + where)
        return
    shown = trust_store.trust(kb)
    listed = ", ".join(f"{k} = {v!r}" for k, v in shown.items()) or "no network settings"
    out.print(f"Trusted {where} with {terminal.escape(listed)}. Editing these settings revokes the trust.")


@app.command()
def quickstart(
    kb: Annotated[Path, typer.Option("--kb", help="Where to build the sample knowledge base.")] = Path(
        ".domainrag-quickstart"),
    embedder: Annotated[str | None, typer.Option("--embedder", help="Embedding model [default: multilingual].")] = None,
) -> None:
    """Ingest the bundled sample (medical, finance, Chinese law) and run example searches."""
    from .quickstart import run

    run(kb, embedder, out)


# -- API keys of a server home -------------------------------------------------------------------------
keys_app = typer.Typer(cls=_Commands, no_args_is_help=True, rich_markup_mode=None)
app.add_typer(keys_app, name="keys",
              help="API keys of a server home ('domainrag serve'): create, list, revoke.")
HomeOpt = Annotated[Path | None, typer.Option(
    "--home", envvar="DOMAINRAG_HOME", help="Server home [default: ./.domainrag-server].")]


@keys_app.command("create")
def keys_create(
    name: Annotated[str, typer.Option("--name", help="A unique name: who or what uses the key.")],
    collections: Annotated[str | None, typer.Option(
        "--collections", help="Collections it may use, a,b; '*' for all (not needed with --role admin).")] = None,
    role: Annotated[Literal["read", "write", "admin"], typer.Option(
        "--role", help="read: search, ask, chat; write: + upload, delete, re-ingest; admin: + collections.")] = "read",
    groups: Annotated[str | None, typer.Option(
        "--groups", help="Document groups it reads, g1,g2; '*' for every document [default: only "
        "documents without groups].")] = None,
    home: HomeOpt = None,
    as_json: JsonFlag = False,
) -> None:
    """Create an API key. The secret is printed once, on stdout; only its hash is stored."""
    from .server.keys import KEYS_FILE, KeyStore, default_home

    if collections is None and role != "admin":
        raise typer.BadParameter("name the collections the key may use (a,b), or '*' for all",
                                 param_hint="--collections")
    # without --groups, a restricted key reads only documents without groups; an admin reads all
    unset: list[str] | None = None if role == "admin" else []
    readable = _names(groups) if groups is not None else unset
    with KeyStore((home or default_home()) / KEYS_FILE) as store:
        info, secret = store.create(name, _names(collections), role, readable)
    if as_json:
        _print_json({"key": info.to_dict(), "secret": secret})
        return
    err.print(f"Created key {terminal.escape(info.name)} (id {info.id[:8]}, {info.role}, collections "
              f"{_shown(info.collections)}, groups {_shown(info.groups)}). This is the only time the "
              "secret is shown; keep it safe:", highlight=False)
    print(secret)


@keys_app.command("list")
def keys_list(home: HomeOpt = None, as_json: JsonFlag = False) -> None:
    """List the API keys (never their secrets)."""
    from rich.table import Table

    from .server.keys import ID_PREFIX, KeyStore

    path = _keys_file(home)
    listed = []
    if path.exists():
        with KeyStore(path) as store:
            listed = store.list()
    if as_json:
        _print_json([k.to_dict() for k in listed])
        return
    if not listed:
        out.print(f"No API keys in {terminal.escape(path.parent)} (the server serves loopback only). "
                  "Create one with 'domainrag keys create'.", highlight=False)
        return
    table = Table("name", "id", "role", "collections", "groups", "created", "last used")
    for k in listed:
        table.add_row(terminal.escape(k.name), k.id[:ID_PREFIX], k.role, terminal.escape(_shown(k.collections)),
                      terminal.escape(_shown(k.groups)), k.created, k.last_used or "never")
    out.print(table)


@keys_app.command("revoke")
def keys_revoke(
    key: Annotated[str, typer.Argument(metavar="NAME_OR_ID", help="The key's name or id (as 'keys list' shows it).")],
    home: HomeOpt = None,
) -> None:
    """Revoke an API key: requests with it are refused from now on, on running servers too."""
    from .server.keys import KeyStore

    path = _keys_file(home)
    found = False
    if path.exists():
        with KeyStore(path) as store:
            found = store.revoke(key)
    if not found:
        raise ConfigError(f"No API key is named {key!r} or has an id starting so in {path}; "
                          "see 'domainrag keys list'.")
    out.print(f"Revoked {terminal.escape(key)}.", highlight=False)


def _keys_file(home: Path | None) -> Path:
    """The keys file of server home ``home``; a home that is a file is a :class:`ConfigError`."""
    from .server.keys import KEYS_FILE, default_home

    folder = home or default_home()
    if folder.exists() and not folder.is_dir():
        raise ConfigError(f"The server home {folder} is a file, not a folder. Point --home (or $DOMAINRAG_HOME) at "
                          "the folder 'domainrag serve' uses.")
    return folder / KEYS_FILE


def _names(value: str | None) -> list[str] | None:
    """A comma-separated option as a list; '*' (all) as None."""
    if value is None or value.strip() == "*":
        return None
    return [part.strip() for part in value.split(",") if part.strip()]


def _shown(names: frozenset[str] | None) -> str:
    if names is None:
        return "*"
    return ",".join(sorted(names)) or "(none)"


# -- the HTTP server -------------------------------------------------------------------------------------
@app.command()
def serve(
    kb: Annotated[list[str] | None, typer.Option(
        "--kb", help="A knowledge base to serve, DIR (named after its folder) or NAME=DIR; repeatable.")] = None,
    config: Annotated[Path | None, typer.Option("--config", help="server.toml ([server], [collections.NAME]).")] = None,
    home: Annotated[Path | None, typer.Option(
        "--home", help="Server home: created collections, keys, jobs, uploads [default: $DOMAINRAG_HOME or "
        "./.domainrag-server].")] = None,
    host: Annotated[str | None, typer.Option("--host", help="Address to bind [default: 127.0.0.1].")] = None,
    port: Annotated[int | None, typer.Option("--port", help="Port [default: 8000].")] = None,
    insecure: Annotated[bool, typer.Option(
        "--insecure", help="Allow a public --host with no API key configured.")] = False,
) -> None:
    """Serve collections over HTTP: REST API (/docs), OpenAI-compatible endpoint, web UI at /.
    Needs pip install 'domainrag[server]'."""
    _one_blas_thread_per_request()
    from .server.run import collection_args
    from .server.run import serve as run_server
    from .server.settings import load_settings

    overrides = {"host": host, "port": port, "home": home, "insecure": insecure or None,
                 "collections": collection_args(kb or [])}
    run_server(load_settings(config, overrides))


@app.command("mcp")
def mcp_cmd(
    kb: Annotated[list[str] | None, typer.Option(
        "--kb", help="A knowledge base to offer: DIR (named after its folder), NAME=DIR or postgresql://…#COLLECTION; "
        "repeatable [default: $DOMAINRAG_KB or ./.domainrag, as 'default'].")] = None,
) -> None:
    """Serve knowledge bases to an agent over MCP on stdin/stdout (Claude Desktop, Cursor, VS Code start it
    as a subprocess): tools search, fetch, ask, list_collections; documents as resources; templates as
    prompts. Logs go to stderr. Needs pip install 'domainrag[mcp]'."""
    _one_blas_thread_per_request()
    from .errors import require

    require("mcp", "mcp", "mcp", "domainrag mcp")
    from .kb import DEFAULT_KB
    from .server.mcp.stdio import run_stdio
    from .server.run import check_collections, collection_args
    from .server.settings import load_settings

    chosen = collection_args(kb) if kb else {"default": {"path": os.environ.get("DOMAINRAG_KB") or DEFAULT_KB}}
    settings = load_settings(None, {"collections": chosen})
    check_collections(settings)
    run_stdio({name: spec.path for name, spec in settings.collections.items()},
              timeout_s=settings.request_timeout_s)


def _one_blas_thread_per_request() -> None:
    """A server's concurrency comes from its requests: BLAS threads per request on top of them
    oversubscribe the cores (measured at 100k chunks, 8 clients: 4.2 req/s with the default,
    11.5 with one thread; benchmarks/RESULTS.md). Set before numpy loads; a value the user
    exported wins."""
    for variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(variable, "1")


def _version(value: bool) -> None:
    if value:
        from . import __version__

        out.print(f"domainrag {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Show the version.")] = False,
) -> None:
    """Grounded answers and honest evaluation over your own domain documents."""


def main() -> None:
    """Entry point."""
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
