"""Readers and writers across processes: a corpus whose every committed state is recognisable.

A writer process rewrites a folder generation after generation and ingests it into a knowledge
base with ``prune=True``; readers search it at the same time and check that each result set is
exactly one committed state. Generation ``g`` of the folder holds

- ``core-0 … core-{CORE-1}``: rewritten every generation, their text carrying the token ``gN``;
- ``extra-g``: a file that exists in generation ``g`` only (the previous one is deleted, so the
  ingest prunes it).

Every document contains the word :data:`QUERY`, so a search for it with ``k >= CORE + 2`` returns
every document of the state it ran on. An ingest commits twice: the batch write (every core
file of ``g`` plus ``extra-g``, with ``extra-{g-1}`` still present) and then the prune. So the
committed states are exactly ``after_write(g)`` and ``after_prune(g)``; :func:`state_of` names
the one a result set shows, or says why it shows none (a mixed state).

Used by ``tests/test_concurrency.py`` and ``benchmarks/concurrency.py``::

    python -m domainrag.testing.concurrency KB_DIR FOLDER GENERATIONS
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping
from pathlib import Path

from ..types import Hit

CORE = 6
QUERY = "lighthouse"
#: The knowledge-base settings of the scenario: a fast model-free embedder, so the writer commits
#: often and dense search takes part too.
OVERRIDES: Mapping[str, object] = {"embedder.model": "hash:64"}


def write_generation(folder: Path, generation: int) -> None:
    """Turn ``folder`` into generation ``generation`` of the corpus."""
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(CORE):
        _write(folder / f"core-{i}.txt", f"Core note {i}. The {QUERY} keeper logs g{generation} tonight.")
    _write(folder / f"extra-{generation}.txt", f"Extra note. The {QUERY} lamp was lit in g{generation}.")
    (folder / f"extra-{generation - 1}.txt").unlink(missing_ok=True)


def _write(path: Path, text: str) -> None:
    path.write_text(text + "\n", encoding="utf-8")


def expected(generation: int, pruned: bool) -> dict[str, int]:
    """The committed state after generation ``generation``'s write, or after its prune:
    ``{file stem: generation token}``."""
    state = {f"core-{i}": generation for i in range(CORE)}
    state[f"extra-{generation}"] = generation
    if not pruned and generation > 0:
        state[f"extra-{generation - 1}"] = generation - 1
    return state


def observed(hits: Iterable[Hit]) -> dict[str, int]:
    """``{file stem: generation token}`` of a result set."""
    state: dict[str, int] = {}
    for hit in hits:
        stem = Path(hit.source).stem
        tokens = [word for word in hit.text.replace(".", " ").split() if word[:1] == "g" and word[1:].isdigit()]
        if stem in state or len(tokens) != 1:
            raise AssertionError(f"malformed or duplicated hit {stem}: {hit.text!r}")
        state[stem] = int(tokens[0][1:])
    return state


def state_of(hits: Iterable[Hit]) -> tuple[int, bool]:
    """``(generation, pruned)`` of the committed state a result set equals; AssertionError naming
    the mixture otherwise."""
    seen = observed(hits)
    core = {seen.get(f"core-{i}") for i in range(CORE)}
    if len(core) != 1 or None in core:
        raise AssertionError(f"mixed state: core documents from generations {sorted(map(str, core))}: {seen}")
    generation = next(iter(core))
    assert generation is not None
    for pruned in (True, False):
        if seen == expected(generation, pruned):
            return generation, pruned
    raise AssertionError(f"mixed state: {seen} is neither committed state of generation {generation}")


def run_writer(kb_dir: Path, folder: Path, generations: int, start: int = 1) -> None:
    """Ingest generations ``start … generations`` one after another (with prune)."""
    from ..kb import KnowledgeBase

    with KnowledgeBase.open(kb_dir, overrides=dict(OVERRIDES)) as kb:
        for generation in range(start, generations + 1):
            write_generation(folder, generation)
            report = kb.ingest([folder], prune=True)
            if report.partial:
                raise SystemExit(f"generation {generation}: ingest failed: {report.failed}")
            print(generation, flush=True)


def main(argv: list[str]) -> None:
    kb_dir, folder, generations = Path(argv[0]), Path(argv[1]), int(argv[2])
    run_writer(kb_dir, folder, generations)


if __name__ == "__main__":
    main(sys.argv[1:])
