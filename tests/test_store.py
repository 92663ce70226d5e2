from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from domainrag.config import IndexConfig
from domainrag.errors import CorruptKnowledgeBase
from domainrag.index.sqlite_store import SQLiteStore
from domainrag.index.store import Scope, load_store
from domainrag.testing.store import StoreConformance, make_update


class TestSQLiteStore(StoreConformance):
    @pytest.fixture
    def store(self, tmp_path: Path):
        store = load_store("", tmp_path / "kb", IndexConfig())  # through the registry, as a KB does
        yield store
        store.close()


def test_derived_indexes_survive_reopen_and_detect_staleness(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "kb")
    store.write([make_update("a.txt", "a", ["alpha gamma"])])
    store.refresh()
    store.close()
    reopened = SQLiteStore(tmp_path / "kb")
    assert reopened.view().doc_ids(reopened.view().lexical(["gamma"], 5).rows) == ["a"]
    # a second writer (another process) bumps the generation: searches see its write
    other = SQLiteStore(tmp_path / "kb")
    other.write([make_update("b.txt", "b", ["gamma delta"])])
    assert sorted(reopened.view().doc_ids(reopened.view().lexical(["gamma"], 5).rows)) == ["a", "b"]


def _filled(directory: Path) -> Path:
    store = SQLiteStore(directory)
    store.write([make_update(f"{i}.txt", f"d{i}", [f"alpha gamma {i} " * 50] * 4) for i in range(40)])
    store.refresh()
    store.close()
    return directory / "catalog.sqlite3"


@pytest.mark.parametrize("damage", ["garbage", "empty-header", "truncated"])
def test_a_damaged_catalog_names_the_file_and_the_fix(tmp_path: Path, damage: str) -> None:
    catalog = _filled(tmp_path / "kb")
    data = catalog.read_bytes()
    if damage == "garbage":
        catalog.write_bytes(b"this is not a database " * 200)
    elif damage == "empty-header":
        catalog.write_bytes(b"\0" * len(data))
    else:
        catalog.write_bytes(data[: len(data) // 3])
    with pytest.raises(CorruptKnowledgeBase, match="catalog.sqlite3.*--kb NEW_FOLDER") as caught:
        store = SQLiteStore(tmp_path / "kb")
        store.view().lexical(["gamma"], 5)
        store.stats()
    assert str(catalog) in str(caught.value)


DERIVED = ["rows.npz", "vectors.npy", "doc_ids.json", "lexical/state.json", "lexical/params.index.json"]


@pytest.mark.parametrize("name", DERIVED)
def test_damaged_derived_files_are_rebuilt_from_the_catalog(tmp_path: Path, name: str) -> None:
    _filled(tmp_path / "kb")
    [folder] = (tmp_path / "kb" / "index").glob("gen-*")
    damaged = folder / name
    assert damaged.exists()
    damaged.write_bytes(b"\x93NUMPY garbage {")
    store = SQLiteStore(tmp_path / "kb")
    assert len(set(store.view().doc_ids(store.view().lexical(["gamma"], 500).rows))) == 40
    assert store.view().dense(np.ones(8, dtype=np.float32) / 8**0.5, 3).rows.size == 3
    [rebuilt] = (tmp_path / "kb" / "index").glob("gen-*")
    assert SQLiteStore(tmp_path / "kb").view().generation == int(rebuilt.name[4:])


def test_a_view_survives_another_process_replacing_the_index(tmp_path: Path) -> None:
    """The in-memory snapshot is immutable: a writer's rebuild never changes a running search."""
    reader = SQLiteStore(tmp_path / "kb")
    reader.write([make_update("a.txt", "a", ["alpha gamma"])])
    view = reader.view()
    writer = SQLiteStore(tmp_path / "kb")
    writer.write([make_update("b.txt", "b", ["gamma delta"] * 3)])
    writer.refresh()
    ranked = view.lexical(["gamma"], 5, None)
    assert view.doc_ids(ranked.rows) == ["a"] and [h.doc_id for h in view.hits(ranked)] == ["a"]
    assert sorted(reader.view().doc_ids(reader.view().lexical(["gamma"], 5).rows)) == ["a", "b", "b", "b"]


def test_readers_in_other_threads_never_see_an_uncommitted_write(tmp_path: Path) -> None:
    """The server reads (documents, stats, hits) in request threads while an ingest job writes
    in its own: a reader sees the last committed state and does not wait for the writer."""
    import threading

    store = SQLiteStore(tmp_path / "kb")
    store.write([make_update("a.txt", "a", ["alpha"])])
    inside, release = threading.Event(), threading.Event()

    class Held(list):  # the writer holds its transaction open after writing "b"
        def __iter__(self):
            yield from super().__iter__()
            inside.set()
            release.wait(10)

    writer = threading.Thread(target=store.write, args=(Held([make_update("b.txt", "b", ["beta"])]),))
    writer.start()
    try:
        assert inside.wait(10)
        assert store.document("b") is None and store.stats()["documents"] == 1
        assert set(store.source_states()) == {"a.txt"}
        view = store.view()  # a search, filtered too, answers from the committed state meanwhile
        assert view.doc_ids(view.lexical(["beta", "alpha"], 5, Scope(filters={"kind": "txt"})).rows) == ["a"]
        assert writer.is_alive()
    finally:
        release.set()
        writer.join(10)
    assert store.document("b") is not None and store.stats()["documents"] == 2
    store.close()
