from __future__ import annotations

from pathlib import Path

import pytest

from domainrag.index.sqlite_store import SQLiteStore
from domainrag.testing.store import StoreConformance, make_update


class TestSQLiteStore(StoreConformance):
    @pytest.fixture
    def store(self, tmp_path: Path):
        store = SQLiteStore(tmp_path / "kb")
        yield store
        store.close()


def test_derived_indexes_survive_reopen_and_detect_staleness(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "kb")
    store.write([make_update("a.txt", "a", ["alpha gamma"])])
    store.refresh()
    store.close()
    reopened = SQLiteStore(tmp_path / "kb")
    assert reopened.doc_ids(reopened.lexical(["gamma"], 5, None).rows) == ["a"]
    # a second writer (another process) bumps the generation: searches see its write
    other = SQLiteStore(tmp_path / "kb")
    other.write([make_update("b.txt", "b", ["gamma delta"])])
    assert sorted(reopened.doc_ids(reopened.lexical(["gamma"], 5, None).rows)) == ["a", "b"]
