"""The ``domainrag`` command line (an edge: errors become short messages here).

Exit codes: 0 success, 1 error, 2 usage error, 3 partial ingest (some files failed).
Set ``DOMAINRAG_TRACEBACK=1`` to see full tracebacks instead of short messages.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

import typer
from rich.console import Console

from .errors import DomainragError

if TYPE_CHECKING:  # pragma: no cover
    from .index.builder import IngestReport
    from .kb import KnowledgeBase
    from .types import Hit

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


def _open(kb: Optional[Path], create: bool = False, overrides: dict[str, Any] | None = None) -> "KnowledgeBase":
    from .kb import KnowledgeBase

    return KnowledgeBase.open(kb, create=create, overrides=overrides)


@app.command()
def ingest(
    paths: list[Path] = typer.Argument(..., help="Files or folders (or BEIR folders with --format beir)."),
    kb: Optional[Path] = KbOption,
    prune: bool = typer.Option(False, "--prune", help="Remove documents whose files are gone."),
    format: str = typer.Option("files", "--format", help="files | beir"),
    reindex: bool = typer.Option(False, "--reindex", help="Empty the index first (after changing embedder or chunker)."),
    embedder: Optional[str] = typer.Option(None, "--embedder", help="Embedding model for a new knowledge base, e.g. minilm, hash:384."),
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


def _print_report(report: "IngestReport") -> None:
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
    kb: Optional[Path] = KbOption,
    k: int = typer.Option(10, "-k", "--k", min=1, help="Number of results."),
    mode: Optional[str] = typer.Option(None, "--mode", help="hybrid | lexical | dense [default: from config]"),
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


def _print_hits(hits: list["Hit"]) -> None:
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


@app.command()
def status(kb: Optional[Path] = KbOption, as_json: bool = typer.Option(False, "--json")) -> None:
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
    embedder: Optional[str] = typer.Option(None, "--embedder", help="Embedding model [default: minilm]."),
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
