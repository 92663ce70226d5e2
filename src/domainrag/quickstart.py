"""The quickstart: ingest the bundled sample, show searches and offline answers (README's first
command)."""

from __future__ import annotations

import time
from importlib import resources
from pathlib import Path

from rich.console import Console
from rich.table import Table

from .evaluate.suite import load_suite
from .kb import KnowledgeBase
from .report.html import write_html
from .report.terminal import escape, print_run


def sample_dir() -> Path:
    """The bundled sample documents (see ``sample/ATTRIBUTION.md`` for sources and licenses)."""
    return Path(str(resources.files("domainrag") / "data" / "sample"))


def sample_folders() -> list[Path]:
    """The sample's document folders (its attribution and license files are not documents)."""
    return sorted(p for p in sample_dir().iterdir() if p.is_dir())


#: Asked in step 3: one per scenario, and one the documents do not answer.
QUESTIONS = (
    "What medication is used to treat hypothyroidism?",
    "Why did revenues from FinTech and Business Services increase in 2019?",
    "劳动者在何种情况下享有与用人单位签订无固定期限劳动合同的权利？",
    "Who won the football world cup in 1998?",
)


def sample_suite() -> Path:
    """The bundled evaluation suite over the sample (questions, reference answers, gold)."""
    return Path(str(resources.files("domainrag") / "data" / "sample_suite.jsonl"))


def run(kb_dir: Path, embedder: str | None, console: Console) -> None:
    overrides = {"embedder.model": embedder} if embedder else None
    console.print(f"[bold]1. Ingesting the bundled sample[/bold] from {escape(sample_dir())} into {escape(kb_dir)}")
    with KnowledgeBase.open(kb_dir, create=True, overrides=overrides) as kb:
        report = kb.ingest(sample_folders(), progress=console.is_terminal)
        s = report.summary()
        console.print(
            f"   {s['added']} added, {s['updated']} updated, {s['skipped']} unchanged, "
            f"{s['failed']} failed · {s['chunks']} chunks · {s['seconds']:.1f}s "
            f"(embedder {kb.config.embedder.model})"
        )
        console.print("\n[bold]2. Searching (hybrid: BM25 + dense, language-aware)[/bold]")
        _searches(kb, console)
        console.print(f"\n[bold]3. Answering with {kb.answerer.model_spec()}[/bold] "
                      "(offline: quotes the best-supported sentences; citations checked; abstains "
                      "when the documents do not say)")
        for question in QUESTIONS:
            _answer(kb, question, console)
        console.print("\n[bold]4. Evaluating[/bold] the sample suite (retrieval, answers, citations, "
                      "abstention; per scenario with 95% CIs)")
        _evaluate(kb, kb_dir, console)
        console.print(f"\nTry your own: domainrag ask \"...\" --kb {kb_dir}   (or search, chat, "
                      f"eval SUITE --kb {kb_dir}; --model openai:gpt-4o-mini to use a model)")


def _evaluate(kb: KnowledgeBase, kb_dir: Path, console: Console) -> None:
    run = kb.evaluate(sample_suite(), metrics=("retrieval", "answer", "citation"), name="quickstart")
    print_run(run, console)
    console.print(f"   HTML report: {escape(write_html(run.to_dict(), kb_dir / 'report.html'))}")


def _answer(kb: KnowledgeBase, question: str, console: Console) -> None:
    answer = kb.ask(question)
    console.print(f"\n[bold cyan]?[/bold cyan] {escape(question)}")
    style = "yellow" if answer.abstained else ""
    console.print(f"  {answer.text}", style=style, markup=False, highlight=False)
    for c in answer.citations:
        mark = "[green]✓ supported[/green]" if c.supported else "[red]✗ unsupported[/red]"
        console.print(f"  [dim]\\[{c.number}] {escape(c.doc_id)}[/dim] {mark}")
    timing = answer.trace.total_ms
    status = f"abstained ({answer.trace.abstain_reason})" if answer.abstained else f"grounded {answer.grounded:.0%}"
    console.print(f"  [dim]{status} · {timing:.0f} ms[/dim]")


def _searches(kb: KnowledgeBase, console: Console) -> None:
    table = Table(show_lines=False)
    for name in ("scenario", "question", "top document", "expected", "dense", "ms"):
        table.add_column(name, overflow="fold")
    found = 0
    cases = [c for c in load_suite(sample_suite()).cases if c.gold]
    for case in cases:
        started = time.perf_counter()
        hits = kb.search(case.question, k=3)
        ms = (time.perf_counter() - started) * 1000
        top = hits[0].doc_id if hits else "-"
        ok = any(h.doc_id == case.gold[0].doc_id for h in hits)
        found += ok
        dense = _dense_rank(kb, case.question, case.gold[0].doc_id)
        table.add_row(case.scenario[0], case.question, top, "✓ top-3" if ok else "✗", dense, f"{ms:.0f}")
    console.print(table)
    console.print(f"   expected document in the top 3 for {found} of {len(cases)} questions; "
                  "dense: its rank in the dense ranking alone, 'off' where the embedder does not read "
                  "the question's language (BM25 answers alone)")


def _dense_rank(kb: KnowledgeBase, question: str, doc_id: str) -> str:
    """Where the expected document ranks by dense retrieval alone: what the embedder contributes."""
    if kb.retriever.candidates(question).dense is None:
        return "off"
    ranked = [hit.doc_id for hit in kb.search(question, k=10, mode="dense", one_per_doc=True)]
    return f"#{ranked.index(doc_id) + 1}" if doc_id in ranked else "> 10"
