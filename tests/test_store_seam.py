"""The store seam: stores load through the registry, and a search's scope (filters and access
groups) reaches the store's rankings."""

from __future__ import annotations

from pathlib import Path

import pytest

from domainrag import KnowledgeBase, registry
from domainrag.config import IndexConfig
from domainrag.errors import ConfigError, PluginError
from domainrag.index.sqlite_store import SQLiteStore
from domainrag.index.store import Scope, load_store, store_kind, visible
from domainrag.testing.store import make_update


@pytest.mark.parametrize(("url", "kind"), [("", "sqlite"), ("sqlite:///srv/kb", "sqlite"),
                                           ("postgresql://db.example/rag#finance", "postgres"),
                                           ("postgresql+psycopg://h/d", "postgres"), ("postgres://h/d", "postgres")])
def test_store_kind_follows_the_url_scheme(url: str, kind: str) -> None:
    assert store_kind(url) == kind


def test_an_unknown_store_names_the_known_ones(tmp_path: Path) -> None:
    with pytest.raises(PluginError, match="Unknown store 'mongodb'.*sqlite"):
        load_store("mongodb://h/d", tmp_path, IndexConfig())
    with pytest.raises(ConfigError, match="not a URL"):
        load_store("just-a-name", tmp_path, IndexConfig())


def test_a_sqlite_url_names_another_folder(tmp_path: Path) -> None:
    store = load_store(f"sqlite://{tmp_path / 'elsewhere'}", tmp_path / "kb", IndexConfig())
    assert isinstance(store, SQLiteStore) and store.directory == tmp_path / "elsewhere"
    store.close()


def test_a_registered_store_is_what_the_knowledge_base_uses(tmp_path: Path) -> None:
    made: list[str] = []

    def factory(url: str, directory: Path, config: IndexConfig) -> SQLiteStore:
        made.append(url)
        return SQLiteStore(directory / "inner", config)

    registry.register("domainrag.stores", "memo", factory)
    try:
        kb = KnowledgeBase.open(tmp_path / "kb", create=True, overrides={"store.url": "memo://x"})
        assert made == ["memo://x"] and isinstance(kb.store, SQLiteStore)
        kb.close()
        # The folder holds no catalog of its own, yet it is an existing knowledge base.
        assert not (tmp_path / "kb" / "catalog.sqlite3").exists()
        KnowledgeBase.open(tmp_path / "kb").close()
    finally:
        registry.unregister("domainrag.stores", "memo")


def test_store_urls_are_redacted_in_manifests(tmp_path: Path) -> None:
    kb = KnowledgeBase.open(tmp_path / "kb", create=True)
    flat = kb.config.with_overrides({"store.url": "postgresql://me:s3cret@db/rag"}).flat()
    assert "s3cret" not in flat["store.url"]
    kb.close()


def test_scope_of_nothing_is_none_and_groups_must_be_a_list() -> None:
    assert Scope.of(None, None) is None and Scope.of({}, None) is None
    assert Scope.of(None, []) == Scope(None, frozenset())
    with pytest.raises(ConfigError, match="list of names"):
        Scope.of(None, "hr")


def test_visible_is_the_store_rule() -> None:
    assert visible({}, frozenset()) and visible({"acl": []}, frozenset())
    assert not visible({"acl": ["hr"]}, frozenset()) and visible({"acl": ["hr"]}, frozenset({"hr"}))
    assert visible({"acl": ["hr"]}, None) and not visible({"acl": "hr"}, frozenset({"h"}))


@pytest.fixture
def guarded(kb_factory, tmp_path: Path) -> KnowledgeBase:
    """A knowledge base with a public document and two restricted ones."""
    kb = kb_factory()
    (tmp_path / "seed.txt").write_text("An unrelated seed document about weather.")
    kb.ingest([tmp_path / "seed.txt"])
    updates = [
        make_update("pub.txt", "pub", ["The salary policy is public: pay reviews happen in March."], dim=64),
        make_update("hr.txt", "hr", ["Salary bands: engineers earn between 80k and 120k."], dim=64, seed=1,
                    acl=["hr"]),
        make_update("board.txt", "board", ["Salary of the chief executive is 900k."], dim=64, seed=2,
                    acl=["board"]),
    ]
    for update in updates:  # the analyzer's tokens, as an ingest would store them
        update.tokens = [kb.analyzer.tokenize(chunk.text) for chunk in update.chunks]
    kb.store.write(updates)
    kb.store.refresh()
    return kb


@pytest.mark.parametrize("mode", ["lexical", "dense", "hybrid"])
def test_search_reads_only_what_the_groups_may_read(guarded: KnowledgeBase, mode: str) -> None:
    def docs(groups: list[str] | None) -> set[str]:
        return {h.doc_id for h in guarded.search("salary", k=10, mode=mode, groups=groups)}

    assert {"pub", "hr", "board"} <= docs(None)
    assert docs([]) & {"hr", "board"} == set()
    assert "hr" in docs(["hr"]) and "board" not in docs(["hr"])
    assert guarded.rank_documents("salary", 10, mode=mode, groups=["board"]).count("hr") == 0


def test_answers_chat_and_documents_respect_the_groups(guarded: KnowledgeBase) -> None:
    answer = guarded.ask("What is the salary of the chief executive?", groups=["hr"])
    assert all(c.doc_id != "board" for c in answer.citations)
    assert "900k" not in answer.text
    chat = guarded.chat(groups=[])
    for question in ("What salary bands do engineers have?", "And the chief executive?"):
        assert {c.doc_id for c in chat.ask(question).citations} <= {"pub", "seed.txt"}
    assert guarded.document("board", groups=["hr"]) is None
    assert guarded.document("board", groups=["board"]) is not None
    assert guarded.document("board")["id"] == "board"
    assert guarded.document("missing") is None


def test_a_store_url_from_an_untrusted_file_is_refused(tmp_path: Path) -> None:
    from domainrag.errors import UntrustedSettingsError

    folder = tmp_path / "handed-over"
    folder.mkdir()
    (folder / "domainrag.toml").write_text('[store]\nurl = "memo://attacker.example/loot"\n')
    opened: list[str] = []
    registry.register("domainrag.stores", "memo", lambda url, d, c: opened.append(url) or SQLiteStore(d, c))
    try:
        with pytest.raises(UntrustedSettingsError, match=r"store\.url = 'memo://attacker\.example/loot'"):
            KnowledgeBase.open(folder)
        assert opened == []
        # Given by the user, the same setting is honoured.
        KnowledgeBase.open(folder, overrides={"store.url": "memo://attacker.example/loot"}).close()
        assert opened == ["memo://attacker.example/loot"]
    finally:
        registry.unregister("domainrag.stores", "memo")


def test_generated_suites_use_only_readable_documents(guarded: KnowledgeBase) -> None:
    def used(groups: list[str] | None) -> set[str]:
        return {gold["doc_id"] for case in guarded.generate_suite(30, groups=groups).records for gold in case["gold"]}

    assert "hr" in used(None) and "hr" in used(["hr"])
    assert "hr" not in used([]) and "hr" not in used(["board"])
