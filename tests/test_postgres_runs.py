"""Evaluation runs, pinned baselines and the model-call cache in PostgreSQL (``[runs] url``), and a
knowledge base with no folder (``--kb postgresql://HOST/DB#collection``), against a real
PostgreSQL 16 on loopback (postgres_server.py: these tests fail, not skip, under CI=true when it
cannot start)."""

from __future__ import annotations

import itertools
import json
import os
import threading
from pathlib import Path

import pytest
from postgres_server import PASSWORD_ENV, postgres_server, postgres_url  # noqa: F401 - fixtures
from test_cli import run
from test_eval import CASES, DOCS

from domainrag import KnowledgeBase
from domainrag.config import KBConfig
from domainrag.errors import ConfigError, KnowledgeBaseNotFound, UntrustedSettingsError
from domainrag.evaluate.runs import open_runs
from domainrag.index.postgres_connect import StoreUnavailable

integration = pytest.mark.integration
FAKE = {"embedder.model": "fake-en:64", "chunking.target_tokens": 64, "chunking.overlap_tokens": 8}
_names = itertools.count()


def collection(url: str) -> str:
    return f"{url}#r{os.getpid()}_{next(_names)}"


@pytest.fixture
def docs(tmp_path: Path) -> Path:
    root = tmp_path / "docs"
    root.mkdir()
    for name, text in DOCS.items():
        (root / name).write_text(text, encoding="utf-8")
    return root


@pytest.fixture
def suite_file(tmp_path: Path) -> Path:
    path = tmp_path / "suite.jsonl"
    path.write_text("\n".join(json.dumps(c, ensure_ascii=False) for c in CASES) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def machines(tmp_path: Path, docs: Path, postgres_url: str):  # noqa: F811 - the fixture above
    """Two knowledge bases in two folders (two machines: each its own SQLite store of the same
    documents) whose runs and model-call cache live in one PostgreSQL collection."""
    runs_url = collection(postgres_url)
    opened = [KnowledgeBase.open(tmp_path / name, create=True, overrides={**FAKE, "runs.url": runs_url})
              for name in ("laptop", "ci")]
    for kb in opened:
        kb.ingest([docs])
    yield opened
    for kb in opened:
        kb.close()


def answer_first_sentence(request) -> str:
    return f"{request.sources[0].text.split('. ')[0].rstrip('.')}. [1]"


@integration
def test_two_machines_share_runs_pins_and_comparisons(machines, suite_file: Path) -> None:
    laptop, ci = machines
    baseline = laptop.evaluate(suite_file, metrics=["retrieval"], name="baseline")
    laptop.runs.pin(baseline.run_id, "prod")
    assert ci.runs.pins() == {"prod": baseline.run_id}  # the other machine sees the pin
    assert ci.runs.get("prod").to_dict() == baseline.to_dict()  # and the run, byte for byte as JSON
    new = ci.evaluate(suite_file, metrics=["retrieval"], name="candidate", mode="lexical")
    assert [r.run_id for r in laptop.runs.list()] == [new.run_id, baseline.run_id]
    comparison = laptop.compare("prod", "last")
    assert (comparison.a, comparison.b) == (baseline.run_id, new.run_id) and "ndcg@10" in comparison.metrics
    with pytest.raises(ConfigError, match="is the baseline 'prod'; unpin it first"):
        ci.runs.delete(["prod"])
    assert laptop.runs.unpin("prod") == baseline.run_id
    assert ci.runs.delete([baseline.run_id]) == [baseline.run_id]
    assert [r.run_id for r in laptop.runs.list()] == [new.run_id]
    assert not list(Path(laptop.path).glob("runs.sqlite3"))  # nothing written to the folder


@integration
def test_the_model_call_cache_is_shared_between_machines(machines, suite_file: Path, scripted) -> None:
    laptop, ci = machines
    scripted.script = answer_first_sentence
    first = laptop.evaluate(suite_file, metrics=["retrieval", "answer"], model="scripted:m")
    calls = len(scripted.requests)
    assert calls >= 3
    second = ci.evaluate(suite_file, metrics=["retrieval", "answer"], model="scripted:m")
    assert len(scripted.requests) == calls  # every call answered from the shared cache
    assert [c.answer for c in second.cases] == [c.answer for c in first.cases]
    assert ci.model_cache.hits >= 3 and not list(Path(ci.path).glob("model_cache.sqlite3"))


@integration
def test_concurrent_writers_resume_one_run_and_lose_no_case(postgres_url: str) -> None:  # noqa: F811
    url = collection(postgres_url)
    stores = [open_runs(url, None) for _ in range(2)]
    ids: list[str] = []
    errors: list[BaseException] = []

    def write(i: int) -> None:
        try:
            store = stores[i % 2]
            run_id, _ = store.start("shared", {"suite_hash": "s"}, key="same-key")
            ids.append(run_id)
            store.save_case(run_id, i, {"id": f"c{i}", "scores": {"x": i}})
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(i,)) for i in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors and len(set(ids)) == 1  # one run, started once, resumed by every other writer
    assert list(stores[1].records(ids[0])) == [f"c{i}" for i in range(16)]
    assert [r.judged for r in stores[0].list()] == [16]
    for store in stores:
        store.close()


@integration
def test_a_dropped_connection_fails_one_call_then_reconnects(postgres_url: str) -> None:  # noqa: F811
    import psycopg

    store = open_runs(collection(postgres_url + "&application_name=drop_me"), None)
    run_id, _ = store.start("r", {}, key="k")
    admin = psycopg.connect(postgres_url.split("?")[0], password=os.environ[PASSWORD_ENV], autocommit=True)
    (dropped,) = admin.execute("SELECT count(pg_terminate_backend(pid, 5000)) FROM pg_stat_activity "
                               "WHERE application_name = 'drop_me'").fetchone()
    assert dropped == 1
    admin.close()
    with pytest.raises(StoreUnavailable, match="nothing of it was written"):
        store.save_case(run_id, 0, {"id": "c0"})
    store.save_case(run_id, 0, {"id": "c0"})  # a new connection
    assert list(store.records(run_id)) == ["c0"]
    store.close()


# -- a knowledge base with no folder ------------------------------------------------------------------
@integration
def test_a_folderless_knowledge_base_round_trip(tmp_path: Path, docs: Path, suite_file: Path,
                                                 postgres_url: str, monkeypatch) -> None:  # noqa: F811
    url = collection(postgres_url)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(KnowledgeBaseNotFound, match=r"domainrag ingest PATH --kb postgresql://"):
        KnowledgeBase.open(url)
    with KnowledgeBase.open(url, create=True, overrides=FAKE) as kb:
        assert kb.path is None and kb.status()["path"].startswith("postgresql://")
        assert len(kb.ingest([docs]).added) == len(DOCS)
        hits = kb.search("starting dose of levothyroxine")
        first = kb.evaluate(suite_file, metrics=["retrieval"])
    before = set(tmp_path.iterdir())
    with KnowledgeBase.open(url) as again:  # another process: the configuration comes from the database
        assert again.config.embedder.model == "fake-en:64" and again.config.chunking.target_tokens == 64
        assert [h.chunk_id for h in again.search("starting dose of levothyroxine")] == [h.chunk_id for h in hits]
        second = again.evaluate(suite_file, metrics=["retrieval"], mode="lexical")
        comparison = again.compare(first.run_id, "last")
        assert (comparison.a, comparison.b) == (first.run_id, second.run_id)
        assert [r.run_id for r in again.runs.list()] == [second.run_id, first.run_id]
        assert len(again.ingest([docs], reindex=True).added) == len(DOCS)  # the stored configuration is kept
    assert set(tmp_path.iterdir()) == before  # no folder, no file


@integration
def test_a_folderless_knowledge_base_through_the_cli(tmp_path: Path, docs: Path, suite_file: Path,
                                                      postgres_url: str) -> None:  # noqa: F811
    url = collection(postgres_url)
    result = run("search", "levothyroxine", "--kb", url, cwd=tmp_path, check_code=1)
    assert f"No knowledge base in {url}" in result.stderr  # the URL as given: it can be pasted back
    run("ingest", str(docs), "--kb", url, "--embedder", "fake-en:64", cwd=tmp_path)
    found = run("search", "levothyroxine dose", "--kb", url, "--json", cwd=tmp_path)
    assert "thyroid.md" in found.stdout
    run("eval", str(suite_file), "--kb", url, "--metrics", "retrieval", cwd=tmp_path)
    run("runs", "pin", "last", "prod", "--kb", url, cwd=tmp_path)
    run("eval", str(suite_file), "--kb", url, "--metrics", "retrieval", "--mode", "lexical", cwd=tmp_path)
    compared = run("compare", "prod", "last", "--kb", url, cwd=tmp_path)
    assert "ndcg@10" in compared.stdout
    listed = run("runs", "--kb", url, "--json", cwd=tmp_path)
    assert len(json.loads(listed.stdout)) == 2
    assert not (tmp_path / "kb").exists() and not list(tmp_path.glob("postgresql*"))


@integration
def test_migrating_into_postgresql_gives_a_knowledge_base_with_no_folder(tmp_path: Path, docs: Path,
                                                                       postgres_url: str) -> None:  # noqa: F811
    from domainrag.migrate import migrate

    url = collection(postgres_url)
    with KnowledgeBase.open(tmp_path / "laptop", create=True, overrides=FAKE) as laptop:
        laptop.ingest([docs])
        hits = [h.chunk_id for h in laptop.search("billing database backups")]
    assert migrate(str(tmp_path / "laptop"), url).verified
    with KnowledgeBase.open(url) as shared:  # the configuration came along
        assert shared.config.embedder.model == "fake-en:64"
        assert [h.chunk_id for h in shared.search("billing database backups")] == hits
    assert migrate(url, str(tmp_path / "back")).verified
    with KnowledgeBase.open(tmp_path / "back") as back:
        assert back.config.chunking.target_tokens == 64 and not back.config.store.url


# -- bad input ---------------------------------------------------------------------------------------
def test_an_untrusted_runs_url_is_refused_before_connecting(tmp_path: Path) -> None:
    folder = tmp_path / "handed-over"
    folder.mkdir()
    (folder / "domainrag.toml").write_text(
        '[embedder]\nmodel = "fake-en:64"\n[runs]\nurl = "postgresql://collector@203.0.113.9/runs#stolen"\n')
    with KnowledgeBase.open(folder, create=True) as kb:
        with pytest.raises(UntrustedSettingsError, match=r"The run store of .*runs\.url = 'postgresql://\*\*\*@"
                                                         r"203\.0\.113\.9/runs#stolen'.*domainrag trust"):
            kb.runs  # noqa: B018 - opening it is the point
        with pytest.raises(UntrustedSettingsError, match="runs.url"):
            kb.model_cache  # noqa: B018
    with KnowledgeBase.open(folder, overrides={"runs.url": ""}) as kb:  # the user's own setting applies
        assert kb.runs.list() == []


def test_a_runs_url_that_is_not_postgresql_names_the_fix(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"runs\.url 'mysql://db/runs' must be empty .* or a postgresql://"):
        KnowledgeBase.open(tmp_path / "kb", create=True, overrides={**FAKE, "runs.url": "mysql://db/runs"})


@integration
def test_a_wrong_password_or_a_password_in_the_url_names_the_fix(tmp_path: Path, postgres_url: str,  # noqa: F811
                                                                 monkeypatch) -> None:
    monkeypatch.setenv("WRONG_PGPASSWORD", "not-the-password")
    wrong = collection(postgres_url.replace(PASSWORD_ENV, "WRONG_PGPASSWORD"))
    with (KnowledgeBase.open(tmp_path / "a", create=True, overrides={**FAKE, "runs.url": wrong}) as kb,
          pytest.raises(StoreUnavailable, match=r"refused the password .*Set the right password in PGPASSWORD")):
        kb.runs  # noqa: B018
    with pytest.raises(StoreUnavailable, match="refused the password"):
        KnowledgeBase.open(wrong, create=True)
    leaked = postgres_url.replace("postgres@", "postgres:hunter2@")
    with (KnowledgeBase.open(tmp_path / "b", create=True, overrides={**FAKE, "runs.url": leaked}) as kb,
          pytest.raises(ConfigError, match="carries a password; remove it from the URL and set PGPASSWORD") as err):
        kb.runs  # noqa: B018
    assert "hunter2" not in str(err.value)


@integration
def test_network_settings_kept_in_the_database_are_not_trusted(docs: Path, postgres_url: str) -> None:  # noqa: F811
    url = collection(postgres_url)
    with KnowledgeBase.open(url, create=True, overrides={**FAKE, "answer.base_url": "http://127.0.0.1:9/v1"}) as kb:
        kb.ingest([docs])
    with (KnowledgeBase.open(url) as kb,
          pytest.raises(UntrustedSettingsError, match=r"table config\).*cannot be trusted.*--set answer\.KEY")):
        kb.ask("What is the starting dose?", model="openai:gpt-4o-mini")


def test_where_runs_are_kept_changes_no_config_hash_or_manifest() -> None:
    base = KBConfig()
    moved = base.with_overrides({"runs.url": "postgresql://ci@db.example/eval#team"})
    assert moved.hash() == base.hash() and moved.flat() == base.flat() and "runs.url" not in moved.flat()
    assert base.with_overrides({"retrieval.k": 20}).hash() != base.hash()
