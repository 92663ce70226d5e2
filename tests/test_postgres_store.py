"""The PostgreSQL store against a real PostgreSQL 16 + pgvector on loopback (see postgres_server.py):
the shipped conformance suite, BM25 equal to the embedded store's, scopes before top-k, views,
the ingest lock, kill -9 mid-ingest, and the bad inputs (unreachable server, wrong password,
no pgvector privilege, a newer schema, other dimensions, a dropped connection, a timeout)."""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from postgres_server import PASSWORD_ENV, postgres_server, postgres_url  # noqa: F401 - fixtures

from domainrag.config import IndexConfig
from domainrag.errors import ConfigError, DomainragError, IndexMismatchError
from domainrag.index.lexical import LexicalIndex
from domainrag.index.postgres_connect import StoreUnavailable
from domainrag.index.postgres_schema import SCHEMA_VERSION
from domainrag.index.postgres_store import PostgresStore
from domainrag.index.store import Scope as StoreScope
from domainrag.index.store import SnapshotExpired, SourceUpdate
from domainrag.testing.store import StoreConformance, make_update
from domainrag.types import Chunk, Document, Span

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parent.parent
_names = itertools.count()


def collection(url: str) -> str:
    return f"{url}#t{os.getpid()}_{next(_names)}"


@pytest.fixture
def open_store(postgres_url: str):  # noqa: F811 - the fixture above
    opened: list[PostgresStore] = []

    def make(config: IndexConfig | None = None, url: str | None = None) -> PostgresStore:
        store = PostgresStore(url or collection(postgres_url), config)
        opened.append(store)
        return store

    yield make
    for store in opened:
        store.close()


class TestPostgresConformance(StoreConformance):
    @pytest.fixture
    def store(self, open_store):
        return open_store()


def admin(url: str):
    """A superuser connection to the test server (for setting up faults)."""
    import psycopg

    base = url.split("?")[0]
    return psycopg.connect(base, password=os.environ[PASSWORD_ENV], autocommit=True)


def corpus_update(source: str, doc_id: str, texts: list[str], metadata: dict | None = None,
                  vectors: np.ndarray | None = None) -> SourceUpdate:
    body = "\n\n".join(texts)
    chunks, pos = [], 0
    for i, piece in enumerate(texts):
        chunks.append(Chunk(f"{doc_id}::{i}", doc_id, piece, Span(doc_id, pos, pos + len(piece)), (), i))
        pos += len(piece) + 2
    doc = Document(doc_id, body, source, title=doc_id, metadata=metadata or {})
    return SourceUpdate(source, f"h-{source}", len(body), 1, [doc], chunks, [t.lower().split() for t in texts], vectors)


WORDS = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa", "lambda", "mu",
         "nu", "xi", "omicron", "pi", "rho", "sigma"]


def random_texts(n: int, seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    return [" ".join(rng.choice(WORDS, size=int(rng.integers(1, 30)), p=None)) for _ in range(n)]


def test_bm25_scores_equal_the_embedded_index(open_store) -> None:
    store = open_store()
    texts = random_texts(300, 1)
    store.write([corpus_update(f"d{i}.txt", f"d{i}", texts[i * 10:(i + 1) * 10]) for i in range(30)])
    reference = LexicalIndex.build([t.lower().split() for t in texts])  # rows = chunk order d0::0, d0::1...
    ids = [f"d{i // 10}::{i % 10}" for i in range(300)]
    for query in (["alpha"], ["beta", "gamma"], ["pi", "pi", "rho"], ["zeta", "nothing"]):
        expected = reference.search(query, 20)
        got = store.view().hits(store.lexical(query, 20))
        assert [h.chunk_id for h in got] == [ids[r] for r in expected.rows] or np.allclose(
            sorted(h.score for h in got), sorted(expected.scores), rtol=1e-5)
        assert np.allclose([h.score for h in got], expected.scores, rtol=1e-5)


def test_sqlite_and_postgres_rank_alike_hybrid_included(open_store, tmp_path) -> None:
    """The same sources in both stores, written in different orders, with duplicated chunks (exact
    ties in both rankings): identical lexical, dense and fused rankings (every fusion method)."""
    from domainrag.index.sqlite_store import SQLiteStore
    from domainrag.retrieve.fusion import fuse

    rng = np.random.default_rng(5)
    texts = random_texts(240, 2)
    vectors = rng.normal(size=(240, 16)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    for copy in range(0, 240, 7):   # every seventh chunk repeats chunk 3, text and vector
        texts[copy], vectors[copy] = texts[3], vectors[3]
    updates = [corpus_update(f"s{i:02d}.txt", f"doc{i:02d}", texts[i * 8:(i + 1) * 8], vectors=vectors[i * 8:(i + 1) * 8])
               for i in range(30)]
    pg = open_store()
    lite = SQLiteStore(tmp_path / "kb", IndexConfig())
    order = rng.permutation(30)
    pg.write([updates[i] for i in order[:15]])
    pg.write([updates[i] for i in order[15:]])
    lite.write(updates[::-1])

    def rankings(store, tokens: list[str], vector: np.ndarray) -> list[list[str]]:
        view = store.view()
        lexical, dense = view.lexical(tokens, 40), view.dense(vector, 40)
        fused = [fuse(lexical, dense, method, 0.6) for method in ("convex", "adaptive", "rrf")]
        return [[h.chunk_id for h in view.hits(r.head(10))] for r in (lexical, dense, *fused)]

    queries = [(texts[3].split()[:2], vectors[3])] + [
        (list(rng.choice(WORDS, size=3)), vectors[int(rng.integers(240))]) for _ in range(40)]
    for tokens, vector in queries:
        assert rankings(lite, tokens, vector) == rankings(pg, tokens, vector), tokens
    lite.close()


def test_an_old_view_keeps_its_bm25_statistics(open_store) -> None:
    store = open_store()
    store.write([corpus_update("a.txt", "a", ["alpha beta", "beta gamma"])])
    view = store.view()
    before = view.lexical(["beta"], 5)
    store.write([corpus_update("b.txt", "b", ["beta beta beta", "delta"])])  # df and N change
    after = view.lexical(["beta"], 5)
    assert after.rows.tolist() == before.rows.tolist() and np.allclose(after.scores, before.scores)
    assert len(store.view().lexical(["beta"], 5)) == 3


def Scope(filters=None, groups=None) -> StoreScope:  # noqa: N802 - reads like the class
    return StoreScope(filters, None if groups is None else frozenset(groups))


def test_acl_groups_and_filters_apply_before_top_k(open_store) -> None:
    store = open_store()
    updates = [corpus_update(f"secret{i}.txt", f"secret{i}", ["alpha alpha alpha"], {"acl": ["board"], "year": 2024})
               for i in range(20)]
    updates.append(corpus_update("public.txt", "public", ["alpha and many other words here"], {"year": 2023}))
    updates.append(corpus_update("hr.txt", "hr", ["alpha words"], {"acl": ["hr", "board"], "year": 2023}))
    store.write(updates)
    view = store.view()
    assert view.doc_ids(view.lexical(["alpha"], 1, Scope(groups=["staff"])).rows) == ["public"]
    assert sorted(view.doc_ids(view.lexical(["alpha"], 5, Scope(groups=["hr"])).rows)) == ["hr", "public"]
    assert len(view.lexical(["alpha"], 50, Scope(groups=None))) == 22
    assert view.doc_ids(view.lexical(["alpha"], 5, Scope({"year": 2023}, ["staff"])).rows) == ["public"]
    assert view.doc_ids(view.lexical(["alpha"], 5, Scope({"path": "pub*"})).rows) == ["public"]
    assert store.document("secret3", groups=frozenset({"staff"})) is None
    assert store.document("secret3", groups=frozenset({"board"}))["metadata"]["year"] == 2024
    with pytest.raises(ConfigError):
        view.lexical(["alpha"], 5, Scope({"bad key;": 1}))


def test_scoped_dense_search_through_hnsw_returns_n(open_store) -> None:
    store = open_store(IndexConfig(ann_threshold=50))
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(400, 16)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    store.write([corpus_update(f"d{i}.txt", f"d{i}", [f"text {j}" for j in range(10)],
                               {"acl": ["rare"]} if i == 7 else {"acl": ["all"]}, vectors[i * 10:(i + 1) * 10])
                 for i in range(40)])
    store.refresh()  # the ingest ends: the HNSW index is built (400 vectors > ann_threshold)
    with admin(store.target.conninfo) as conn:
        assert conn.execute("SELECT to_regclass(%s)", (f"{store.schema}.chunks_vector_hnsw",)).fetchone()[0]
    view = store.view()
    ranked = view.dense(vectors[3], 5, Scope(groups=["rare"]))
    assert view.doc_ids(ranked.rows) == ["d7"] * 5
    exact = np.argsort(-(vectors[70:80] @ vectors[3]))[:5]
    assert [h.chunk_id for h in view.hits(ranked)] == [f"d7::{j}" for j in exact]
    assert view.hits(view.dense(vectors[123], 1))[0].chunk_id == "d12::3"


def test_vectors_written_after_the_graph_wait_outside_it_and_are_found(open_store, monkeypatch) -> None:
    """An incremental write into a collection with its HNSW graph puts the new vectors in
    ``pending`` (no per-vector graph insertion); searches find them exactly; a refresh folds them
    into the graph past PENDING_FOLD_AT, and rankings stay the same."""
    import domainrag.index.postgres_store as pg_store

    store = open_store(IndexConfig(ann_threshold=50))
    rng = np.random.default_rng(1)
    vectors = rng.normal(size=(450, 16)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    updates = [corpus_update(f"d{i:02d}.txt", f"d{i:02d}", [f"text {i} {j}" for j in range(10)], None,
                             vectors[i * 10:(i + 1) * 10]) for i in range(45)]
    store.write(updates[:40])
    store.refresh()                                  # the graph is built over 400 vectors
    store.write(updates[40:42])
    store.write(updates[42:])
    store.refresh()                                  # 50 pending < PENDING_FOLD_AT: left pending
    assert store.pending_vectors() == 50
    ids = [f"d{i // 10:02d}::{i % 10}" for i in range(450)]

    def rankings() -> list[list[str]]:
        view = store.view()
        return [[h.chunk_id for h in view.hits(view.dense(vectors[q], 5))] for q in (3, 404, 449, 120)]

    exact = [[ids[r] for r in np.argsort(-(vectors @ vectors[q]), kind="stable")[:5]] for q in (3, 404, 449, 120)]
    before = rankings()
    assert before == exact and before[2][0] == "d44::9"
    old_view = store.view()
    monkeypatch.setattr(pg_store, "PENDING_FOLD_AT", 10)
    monkeypatch.setattr(pg_store, "FOLD_STEP", 16)   # several transactions
    store.write(updates[44:])                        # a rewrite of d44: still pending, then folded
    store.refresh()
    assert store.pending_vectors() == 0 and rankings() == before
    with pytest.raises(SnapshotExpired):             # the rewrite of d44 expired the old view
        old_view.hits(old_view.dense(vectors[449], 1))


def test_a_version_1_collection_is_migrated(open_store, postgres_url: str) -> None:  # noqa: F811
    url = collection(postgres_url)
    store = open_store(url=url)
    store.write([make_update("a.txt", "a", ["alpha"], dim=8)])
    store.close()
    schema = f"domainrag_{url.rsplit('#', 1)[1]}"
    with admin(postgres_url) as conn:
        conn.execute(f"DROP TABLE {schema}.pending")
        conn.execute(f"DROP TABLE {schema}.parse_notes")
        conn.execute(f"UPDATE {schema}.schema_version SET version = 1")
    migrated = open_store(url=url)
    assert migrated.pending_vectors() == 0
    assert migrated.view().doc_ids(migrated.view().lexical(["alpha"], 3).rows) == ["a"]
    with admin(postgres_url) as conn:
        assert conn.execute(f"SELECT version FROM {schema}.schema_version").fetchone()[0] == SCHEMA_VERSION == 3


def test_other_dimensions_raise_index_mismatch(open_store) -> None:
    store = open_store()
    store.write([make_update("a.txt", "a", ["alpha"], dim=8)])
    with pytest.raises(IndexMismatchError, match="8-dimensional"):
        store.write([make_update("b.txt", "b", ["beta"], dim=16)])
    with pytest.raises(ConfigError, match="16 dimensions"):
        store.dense(np.ones(16, dtype=np.float32), 3)
    assert set(store.source_states()) == {"a.txt"}


def test_a_collection_of_a_newer_schema_is_refused(open_store, postgres_url: str) -> None:  # noqa: F811
    url = collection(postgres_url)
    open_store(url=url).close()
    with admin(postgres_url) as conn:
        conn.execute(f"UPDATE domainrag_{url.rsplit('#', 1)[1]}.schema_version SET version = 99")
    with pytest.raises(DomainragError, match="newer domainrag.*version 99.*pip install -U"):
        PostgresStore(url)


def test_a_version_2_collection_is_migrated_to_keep_parse_notes(open_store, postgres_url: str) -> None:  # noqa: F811
    url = collection(postgres_url)
    store = open_store(url=url)
    store.write([make_update("a.txt", "a", ["alpha"])])
    store.close()
    schema = f"domainrag_{url.rsplit('#', 1)[1]}"
    with admin(postgres_url) as conn:   # as version 2 left it: no parse_notes table
        conn.execute(f"DROP TABLE {schema}.parse_notes")
        conn.execute(f"UPDATE {schema}.schema_version SET version = 2")
    store = open_store(url=url)
    update = make_update("b.pdf", "b", ["beta"])
    update.notes = [{"code": "sparse", "message": "12 characters per page", "warning": True}]
    store.write([update])
    assert store.parse_notes() == {"b.pdf": update.notes}
    assert set(store.source_states()) == {"a.txt", "b.pdf"}
    with admin(postgres_url) as conn:
        assert conn.execute(f"SELECT version FROM {schema}.schema_version").fetchone()[0] == SCHEMA_VERSION == 3


def _has_postings_index(postgres_url: str, url: str) -> bool:  # noqa: F811
    with admin(postgres_url) as conn:
        row = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (f"domainrag_{url.rsplit('#', 1)[1]}.postings_pkey",))
        return bool(row.fetchone()[0])


def test_a_bulk_load_builds_the_postings_index_at_its_end(open_store, postgres_url: str) -> None:  # noqa: F811
    url = collection(postgres_url)
    store = open_store(url=url)
    store.write([make_update("a.txt", "a", ["alpha beta", "beta beta gamma"])])
    assert not _has_postings_index(postgres_url, url)
    store.write([make_update("b.txt", "b", ["beta delta"])])
    searched = store.view().lexical(["beta"], 5)        # exact meanwhile, by a scan
    store.refresh()
    assert _has_postings_index(postgres_url, url)
    indexed = store.view().lexical(["beta"], 5)
    assert indexed.rows.tolist() == searched.rows.tolist() and indexed.scores.tolist() == searched.scores.tolist()
    store.write([make_update("c.txt", "c", ["beta epsilon"])])   # not empty: no bulk load
    assert _has_postings_index(postgres_url, url)


def test_an_ingest_that_ended_early_leaves_the_postings_index_to_the_next_refresh(
        open_store, postgres_url: str) -> None:  # noqa: F811
    url = collection(postgres_url)
    first = open_store(url=url)
    first.write([make_update("a.txt", "a", ["alpha beta"])])
    first.end_ingest()
    other = open_store(url=url)
    other.refresh()
    assert _has_postings_index(postgres_url, url)
    assert other.view().doc_ids(other.view().lexical(["beta"], 5).rows) == ["a"]


def test_unreachable_server_names_the_url_and_fix(postgres_server) -> None:  # noqa: F811
    closed = f"postgresql://postgres@127.0.0.1:{postgres_server.port + 1}/postgres?connect_timeout=2"
    with pytest.raises(StoreUnavailable, match=r"Cannot connect to PostgreSQL at postgresql://\*\*\*@127.0.0.1"):
        PostgresStore(closed)


def test_wrong_password_says_which_variable(postgres_url: str, monkeypatch) -> None:  # noqa: F811
    monkeypatch.setenv("WRONG_PW", "not-the-password")
    url = postgres_url.replace(f"password_env={PASSWORD_ENV}", "password_env=WRONG_PW")
    with pytest.raises(StoreUnavailable, match="refused the password") as info:
        PostgresStore(url)
    assert "not-the-password" not in str(info.value)


def test_a_password_in_the_url_is_refused(postgres_server) -> None:  # noqa: F811
    with pytest.raises(ConfigError, match="PGPASSWORD") as info:
        PostgresStore(f"postgresql://postgres:hunter22@127.0.0.1:{postgres_server.port}/postgres")
    assert "hunter22" not in str(info.value)


def test_no_privilege_for_pgvector_names_create_extension(postgres_url: str, monkeypatch) -> None:  # noqa: F811
    with admin(postgres_url) as conn:
        conn.execute("DROP DATABASE IF EXISTS novector")
        conn.execute("DROP ROLE IF EXISTS plain")
        conn.execute("CREATE ROLE plain LOGIN PASSWORD 'plainpw'")
        conn.execute("CREATE DATABASE novector OWNER plain")
    monkeypatch.setenv("PLAIN_PW", "plainpw")
    port = postgres_url.split("@127.0.0.1:")[1].split("/")[0]
    with pytest.raises(StoreUnavailable, match="CREATE EXTENSION vector"):
        PostgresStore(f"postgresql://plain@127.0.0.1:{port}/novector?password_env=PLAIN_PW")


def test_a_statement_timeout_is_a_clear_error(open_store, postgres_url: str) -> None:  # noqa: F811
    url = collection(postgres_url)
    store = open_store(url=url.replace("#", "&statement_timeout_ms=300#"))
    store.write([make_update("a.txt", "a", ["alpha"])])
    with admin(postgres_url) as conn, conn.transaction():
        conn.execute(f"LOCK TABLE domainrag_{url.rsplit('#', 1)[1]}.state IN ACCESS EXCLUSIVE MODE")
        with pytest.raises(StoreUnavailable, match="statement_timeout_ms"):
            store.view()
    assert store.doc_ids(store.lexical(["alpha"], 3).rows) == ["a"]


def test_a_connection_dropped_mid_batch_rolls_the_batch_back(open_store, postgres_url: str) -> None:  # noqa: F811
    url = collection(postgres_url)
    store = open_store(url=url)
    store.write([make_update("a.txt", "a", ["alpha"])])
    schema = "domainrag_" + url.rsplit("#", 1)[1]
    with admin(postgres_url) as conn:  # the server ends the session while the batch is half written
        conn.execute("CREATE FUNCTION public.drop_me() RETURNS trigger LANGUAGE plpgsql AS "
                     "$$ BEGIN PERFORM pg_terminate_backend(pg_backend_pid()); RETURN NEW; END $$")
        conn.execute(f"CREATE TRIGGER drop_me BEFORE INSERT ON {schema}.chunks FOR EACH ROW "
                     "WHEN (NEW.id = 'b::1') EXECUTE FUNCTION public.drop_me()")
    try:
        with pytest.raises(StoreUnavailable, match="rolled back"):
            store.write([make_update("b.txt", "b", ["beta", "beta two"]), make_update("c.txt", "c", ["gamma"])])
        assert set(store.source_states()) == {"a.txt"}
        assert store.stats()["chunks"] == 1 and not len(store.lexical(["beta"], 5))
    finally:
        with admin(postgres_url) as conn:
            conn.execute(f"DROP TRIGGER drop_me ON {schema}.chunks")
            conn.execute("DROP FUNCTION public.drop_me()")
    store.write([make_update("b.txt", "b", ["beta", "beta two"]), make_update("c.txt", "c", ["gamma"])])
    assert store.doc_ids(store.lexical(["beta"], 5).rows) == ["b", "b"]


def test_a_second_ingest_waits_for_the_first(open_store, postgres_url: str, caplog) -> None:  # noqa: F811
    url = collection(postgres_url)
    first, second = open_store(url=url), open_store(url=url.replace("#", "&lock_timeout_s=1#"))
    first.write([make_update("a.txt", "a", ["alpha"])])  # the first ingest holds the lock until refresh
    with pytest.raises(StoreUnavailable, match="Another ingest .* lock_timeout_s"):
        second.write([make_update("b.txt", "b", ["beta"])])
    assert "another ingest is writing" in caplog.text
    assert first.doc_ids(second.lexical(["alpha"], 3).rows) == ["a"]  # searches go on meanwhile
    done = threading.Event()
    third = open_store(url=url)

    def later() -> None:
        third.write([make_update("c.txt", "c", ["gamma"])])
        done.set()

    thread = threading.Thread(target=later)
    thread.start()
    time.sleep(0.5)
    assert not done.is_set()
    first.refresh()  # the first ingest ends
    thread.join(10)
    assert done.is_set() and set(first.source_states()) == {"a.txt", "c.txt"}


CRASH_INGEST = textwrap.dedent("""
    import sys
    from pathlib import Path
    from domainrag.config import IngestConfig
    from domainrag.index.builder import IndexBuilder
    from domainrag.index.postgres_store import PostgresStore
    from domainrag.ingest.chunking import StructureChunker
    from domainrag.ingest.files import collect
    from domainrag.models.hash_embedder import HashEmbedder

    store = PostgresStore(sys.argv[1])
    embedder = HashEmbedder("32")
    with collect([Path(sys.argv[2])], "files", IngestConfig()) as found:
        def tick(label):
            print("done", label, flush=True)
        IndexBuilder(store, StructureChunker(), lambda: embedder, batch_chunks=8).run(found.items, progress=tick)
    store.refresh()
    print("finished", flush=True)
""")


def _ingest(url: str, folder: Path, kill_after: int | None = None) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    process = subprocess.Popen([sys.executable, "-c", CRASH_INGEST, url, str(folder)], stdout=subprocess.PIPE,
                               text=True, env=env)
    assert process.stdout is not None
    seen = 0
    for line in process.stdout:
        seen += line.startswith("done")
        if kill_after is not None and seen >= kill_after:
            os.kill(process.pid, signal.SIGKILL)
            break
    process.wait(60)
    assert process.returncode == (-signal.SIGKILL if kill_after is not None else 0)


def _contents(store: PostgresStore) -> tuple:
    view = store.view()
    docs = [(d["id"], d["text"]) for d in store.iter_documents()]
    terms = ["paragraph", "number", "file"]
    lexical = [(h.chunk_id, round(h.score, 4)) for h in view.hits(view.lexical(terms, 30))]
    stats = store.stats()
    return docs, stats["chunks"], stats["sources"], lexical


@pytest.mark.slow
def test_kill_9_mid_ingest_then_rerun_equals_a_clean_ingest(open_store, postgres_url: str, tmp_path) -> None:  # noqa: F811
    folder = tmp_path / "docs"
    folder.mkdir()
    for i in range(60):
        paragraphs = [f"File {i} paragraph {j} says number {i * j} about topic {j % 7}." for j in range(12)]
        (folder / f"f{i:02d}.md").write_text(f"# File {i}\n\n" + "\n\n".join(paragraphs))
    crashed, clean = collection(postgres_url), collection(postgres_url)
    _ingest(crashed, folder, kill_after=25)
    partial = open_store(url=crashed).stats()["sources"]
    assert 0 < partial < 60
    _ingest(crashed, folder)
    _ingest(clean, folder)
    assert _contents(open_store(url=crashed)) == _contents(open_store(url=clean))


def test_a_failed_ingest_releases_the_lock(open_store, postgres_url: str, tmp_path) -> None:  # noqa: F811
    """An ingest that raises (here: its progress callback) keeps its committed batches and lets
    the next ingest in at once — a long-lived server must not keep the lock."""
    from domainrag import KnowledgeBase

    url = collection(postgres_url)
    folder = tmp_path / "docs"
    folder.mkdir()
    for i in range(6):
        (folder / f"f{i}.txt").write_text(f"Document {i} talks about topic {i}.")
    kb = KnowledgeBase.open(tmp_path / "kb", create=True, overrides={
        "store.url": url, "embedder.model": "fake-en:64", "ingest.batch_chunks": 1})

    def fail(label: str) -> None:
        raise RuntimeError("progress display broke")

    with pytest.raises(RuntimeError):
        kb.ingest([folder], progress=fail)
    other = open_store(url=url.replace("#", "&lock_timeout_s=1#"))
    other.write([make_update("z.txt", "z", ["zeta"])])   # not StoreUnavailable: the lock is free
    assert "z.txt" in other.source_states()
    kb.close()
