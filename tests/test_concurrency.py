"""Readers and writers in different processes: a long-lived KnowledgeBase searches while a writer
process ingests new generations with prune; every result set is one committed state."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import domainrag
from domainrag.kb import KnowledgeBase
from domainrag.testing.concurrency import CORE, OVERRIDES, QUERY, state_of, write_generation

GENERATIONS = 25
MODES = ("lexical", "hybrid", "dense")


def _writer(kb_dir: Path, folder: Path, generations: int) -> subprocess.Popen[str]:
    env = dict(os.environ, PYTHONPATH=str(Path(domainrag.__file__).parents[1]))
    command = [sys.executable, "-m", "domainrag.testing.concurrency", str(kb_dir), str(folder), str(generations)]
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.mark.slow
def test_searches_during_update_ingests_see_one_committed_state_each(tmp_path: Path) -> None:
    kb_dir, folder = tmp_path / "kb", tmp_path / "docs"
    write_generation(folder, 0)
    with KnowledgeBase.open(kb_dir, create=True, overrides=dict(OVERRIDES)) as kb:
        kb.ingest([folder], prune=True)
        writer = _writer(kb_dir, folder, GENERATIONS)
        states: list[tuple[int, bool]] = []
        errors: list[str] = []
        while writer.poll() is None:
            mode = MODES[len(states) % len(MODES)]
            try:
                states.append(state_of(kb.search(QUERY, k=CORE + 3, mode=mode)))  # type: ignore[arg-type]
            except Exception as exc:  # noqa: BLE001 - counted: the test is that none happens
                errors.append(f"{type(exc).__name__}: {exc}")
        out, err = writer.communicate()
        assert writer.returncode == 0, err
        assert errors == []
        assert len({generation for generation, _ in states}) >= 3, states  # it did see updates
        assert states == sorted(states)  # a long-lived object never goes back in time
        assert state_of(kb.search(QUERY, k=CORE + 3)) == (GENERATIONS, True)
        assert out.split()[-1] == str(GENERATIONS)
