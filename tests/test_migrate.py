"""``domainrag migrate``: SQLite -> PostgreSQL -> SQLite without re-embedding, verified by equal
search results (a real PostgreSQL on loopback, see postgres_server.py)."""

from __future__ import annotations

import itertools
import os
import tomllib
from pathlib import Path

import numpy as np
import pytest
from postgres_server import postgres_server, postgres_url  # noqa: F401 - fixtures

from domainrag import KnowledgeBase, registry
from domainrag.errors import ConfigError
from domainrag.index.ranked import Ranked
from domainrag.migrate import migrate, same_ranking

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parent.parent
_names = itertools.count()
SETTINGS = {"embedder.model": "fake-en:64", "chunking.target_tokens": 48, "chunking.overlap_tokens": 8}


@pytest.fixture(autouse=True)
def postgres_plugin():
    """The ``postgres`` store as pyproject.toml declares it (the installed metadata may predate it)."""
    declared = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["entry-points"]["domainrag.stores"]
    module, _, name = declared["postgres"].partition(":")
    registry.register("domainrag.stores", "postgres", getattr(__import__(module, fromlist=[name]), name))
    yield
    registry.unregister("domainrag.stores", "postgres")


def collection(url: str) -> str:
    return f"{url}#m{os.getpid()}_{next(_names)}"


def build_sqlite_kb(folder: Path, docs: Path) -> None:
    docs.mkdir()
    for i in range(12):
        body = "\n\n".join(f"Section {j} of report {i}: revenue grew {i * j} percent in region {j % 4}; "
                           f"the {['audit', 'policy', 'risk'][j % 3]} team approved it." for j in range(8))
        (docs / f"report{i:02d}.md").write_text(f"# Report {i}\n\n{body}\n")
    (docs / "garbled.txt").write_text("Le cafÃ© de la gare sert des crÃªpes Ã  midi et le soir. " * 5)
    with KnowledgeBase.open(folder, create=True, overrides=SETTINGS) as kb:
        assert not kb.ingest([docs]).partial


QUERIES = ["revenue grew in region 2", "audit team approved", "policy report 7", "risk section 5 percent"]


def results(folder: Path, mode: str) -> list[list[tuple[str, float]]]:
    with KnowledgeBase.open(folder) as kb:
        return [[(h.chunk_id, h.score) for h in kb.search(q, k=8, mode=mode)] for q in QUERIES]


def agree(a: list[list[tuple[str, float]]], b: list[list[tuple[str, float]]]) -> bool:
    def ranked(hits: list[tuple[str, float]]) -> tuple[list[str], Ranked]:
        return [h[0] for h in hits], Ranked(np.arange(len(hits)), np.asarray([h[1] for h in hits], dtype=np.float32))

    return all(same_ranking(*ranked(x), *ranked(y)) for x, y in zip(a, b, strict=True))


@pytest.mark.slow
def test_sqlite_to_postgres_and_back_gives_the_same_search_results(tmp_path: Path, postgres_url: str) -> None:  # noqa: F811
    original, docs = tmp_path / "kb", tmp_path / "docs"
    build_sqlite_kb(original, docs)
    url = collection(postgres_url)
    report = migrate(str(original), url)
    assert report.verified and report.queries > 0 and report.sources == 13 and report.cached_embeddings > 0

    shared = tmp_path / "kb-pg"
    KnowledgeBase.open(shared, create=True, overrides={**SETTINGS, "store.url": url}).close()
    for mode in ("lexical", "dense", "hybrid"):
        assert agree(results(original, mode), results(shared, mode)), mode

    back = tmp_path / "kb-back"
    assert migrate(url, str(back)).verified
    assert tomllib.loads((back / "domainrag.toml").read_text()).get("store", {}).get("url", "") == ""
    for mode in ("lexical", "dense", "hybrid"):
        assert results(back, mode) == results(original, mode), mode
    for folder in (shared, back):   # the parse report travels with the sources
        with KnowledgeBase.open(folder) as kb:
            assert [Path(f["source"]).name for f in kb.parse_report()] == ["garbled.txt"]

    with KnowledgeBase.open(shared) as kb:  # incremental ingest: nothing re-read, nothing re-embedded
        again = kb.ingest([docs])
    assert len(again.skipped) == 13 and again.embedded == 0 and not again.added


def test_a_destination_that_holds_data_is_refused(tmp_path: Path, postgres_url: str) -> None:  # noqa: F811
    original = tmp_path / "kb"
    build_sqlite_kb(original, tmp_path / "docs")
    url = collection(postgres_url)
    assert migrate(str(original), url).verified
    with pytest.raises(ConfigError, match="already holds 13 sources"):
        migrate(str(original), url)


def test_the_cli_migrates_and_reports(tmp_path: Path, postgres_url: str) -> None:  # noqa: F811
    from typer.testing import CliRunner

    from domainrag.cli import app

    original = tmp_path / "kb"
    build_sqlite_kb(original, tmp_path / "docs")
    result = CliRunner().invoke(app, ["migrate", str(original), collection(postgres_url)])
    assert result.exit_code == 0, result.output
    assert "Copied 13 sources" in result.output and "Verified:" in result.output
    assert os.environ["DOMAINRAG_TEST_PGPASSWORD"] not in result.output


def test_same_ranking_allows_swaps_among_ties_only() -> None:
    scores = Ranked(np.arange(3), np.asarray([0.9, 0.5, 0.5], dtype=np.float32))
    assert same_ranking(["a", "b", "c"], scores, ["a", "c", "b"], scores)
    distinct = Ranked(np.arange(3), np.asarray([0.9, 0.6, 0.5], dtype=np.float32))
    assert not same_ranking(["a", "b", "c"], distinct, ["a", "c", "b"], distinct)
