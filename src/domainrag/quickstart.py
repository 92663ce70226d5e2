"""The quickstart: ingest the bundled sample and show searches (README's first command)."""

from __future__ import annotations

import json
import time
from importlib import resources
from pathlib import Path

from rich.console import Console
from rich.table import Table

from .kb import KnowledgeBase


def sample_dir() -> Path:
    """The bundled sample documents (see ``sample/ATTRIBUTION.md`` for sources and licenses)."""
    return Path(str(resources.files("domainrag") / "data" / "sample"))


def sample_queries() -> list[dict[str, str]]:
    path = resources.files("domainrag") / "data" / "sample_queries.json"
    return json.loads(path.read_text(encoding="utf-8"))


def run(kb_dir: Path, embedder: str | None, console: Console) -> None:
    overrides = {"embedder.model": embedder} if embedder else None
    console.print(f"[bold]1. Ingesting the bundled sample[/bold] from {sample_dir()} into {kb_dir}")
    with KnowledgeBase.open(kb_dir, create=True, overrides=overrides) as kb:
        report = kb.ingest([sample_dir()], progress=console.is_terminal)
        s = report.summary()
        console.print(
            f"   {s['added']} added, {s['updated']} updated, {s['skipped']} unchanged, "
            f"{s['failed']} failed · {s['chunks']} chunks · {s['seconds']:.1f}s "
            f"(embedder {kb.config.embedder.model})"
        )
        console.print("\n[bold]2. Searching (hybrid: BM25 + dense, language-aware)[/bold]")
        _searches(kb, console)
        console.print(f"\nTry your own: domainrag search \"...\" --kb {kb_dir}")


def _searches(kb: KnowledgeBase, console: Console) -> None:
    table = Table(show_lines=False)
    for name in ("scenario", "question", "top document", "expected", "ms"):
        table.add_column(name, overflow="fold")
    found = 0
    for item in sample_queries():
        started = time.perf_counter()
        hits = kb.search(item["question"], k=3)
        ms = (time.perf_counter() - started) * 1000
        top = hits[0].doc_id if hits else "-"
        ok = any(h.doc_id.endswith(item["expected_doc"]) for h in hits)
        found += ok
        table.add_row(item["scenario"], item["question"], top, "✓ top-3" if ok else "✗", f"{ms:.0f}")
    console.print(table)
    console.print(f"   expected document in the top 3 for {found} of {len(sample_queries())} questions")
