"""The readable text content of each tool's result (the structured content holds the same)."""

from __future__ import annotations

from .schemas import AskResult, CollectionsResult, Fetched, SearchResult


def search(result: SearchResult) -> str:
    if not result.results:
        return f"No passage of collection {result.collection!r} matches {result.query!r}."
    lines = [f"{len(result.results)} passages from collection {result.collection!r}, best first:"]
    for n, p in enumerate(result.results, 1):
        section = " > ".join(h for h in p.section if h != p.title)
        where = ", ".join(x for x in (p.title or p.doc_id, f"p. {p.page}" if p.page else "", section) if x)
        lines += ["", f"[{n}] {where} (score {p.score:.3f})", f"id: {p.id}", p.text]
    return "\n".join(lines)


def fetch(result: Fetched) -> str:
    name = result.title or result.doc_id
    head = f"{name} ({result.source}), characters {result.start}-{result.end} of {result.length}"
    tail = f"\n\n[truncated: fetch {result.next} for the rest]" if result.truncated else ""
    return f"{head}\n\n{result.text}{tail}"


def ask(result: AskResult) -> str:
    if result.abstained:
        return f"{result.answer}\n\n(The documents do not answer this: abstained, {result.abstain_reason}.)"
    lines = [result.answer]
    if result.citations:
        lines += ["", f"Sources (grounded {result.grounded:.0%}):"]
        for c in result.citations:
            page = f", p. {c.page}" if c.page else ""
            verdict = "supported" if c.supported else "NOT supported"
            lines.append(f"[{c.number}] {c.title or c.doc_id}{page} ({verdict}): \"{c.quote}\" — {c.document}")
    if not result.complete:
        lines += ["", "(The model stopped early: this answer is incomplete.)"]
    return "\n".join(lines)


def collections(result: CollectionsResult) -> str:
    if not result.collections:
        return "No collection is available to you."
    return "\n".join(f"- {c.name}: {c.description} ({c.documents} documents; {c.status})"
                     for c in result.collections)
