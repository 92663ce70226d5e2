"""Searches from a streaming replica (``read_url``, issue 24 item 3): a real second PostgreSQL,
started by the test as a hot standby of the first (pg_basebackup), serves the views once it has
replayed the primary's latest write; a lagging replica (replay paused) or one that disappears
sends the searches to the primary, with a log line, and nothing is missed."""

from __future__ import annotations

import logging
import time

import numpy as np
import pytest
from postgres_server import PASSWORD_ENV, postgres_server, postgres_url  # noqa: F401 - fixtures

from domainrag.errors import ConfigError
from domainrag.index.postgres_connect import parse_url
from domainrag.index.postgres_store import PostgresStore
from domainrag.index.store import SnapshotExpired
from domainrag.testing.store import make_update

pytestmark = pytest.mark.integration


@pytest.fixture
def replica(postgres_server):  # noqa: F811
    started = postgres_server.start_replica()
    yield started
    started.stop()


def _superuser(url: str):
    import os

    import psycopg

    return psycopg.connect(url, password=os.environ[PASSWORD_ENV], autocommit=True)


def _wait_for_replay(store: PostgresStore, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if store.view().on_replica:
            return
        time.sleep(0.1)
    raise AssertionError("the replica did not catch up")


def test_searches_read_from_the_replica_and_fall_back_to_the_primary(postgres_url, replica, caplog):  # noqa: F811
    url = f"{postgres_url}&read_url={replica.url}#replica_test"
    store = PostgresStore(url)
    primary_only = PostgresStore(f"{postgres_url}#replica_test")
    try:
        store.write([make_update("a.txt", "a", ["apples are red", "pears are green"])])
        store.refresh()
        _wait_for_replay(store)
        view = store.view()
        assert view.on_replica and not primary_only.view().on_replica
        vector = np.ones(8, dtype=np.float32) / 8**0.5
        reference = primary_only.view()
        assert [h.chunk_id for h in view.hits(view.lexical(["apples"], 5))] == ["a::0"]
        assert view.dense(vector, 5).scores.tolist() == reference.dense(vector, 5).scores.tolist()

        with _superuser(replica.url) as conn:
            conn.execute("SELECT pg_wal_replay_pause()")
        with caplog.at_level(logging.WARNING):
            store.write([make_update("b.txt", "b", ["bananas are yellow"], seed=1)])
            lagging = store.view()
        assert not lagging.on_replica and lagging.doc_ids(lagging.lexical(["bananas"], 5).rows) == ["b"]
        assert "reading from the primary until it catches up" in caplog.text
        with _superuser(replica.url) as conn:
            conn.execute("SELECT pg_wal_replay_resume()")
        _wait_for_replay(store)
        caught_up = store.view()
        assert caught_up.doc_ids(caught_up.lexical(["bananas"], 5).rows) == ["b"]

        replica.stop()
        caplog.clear()
        with caplog.at_level(logging.WARNING), pytest.raises(SnapshotExpired):
            caught_up.lexical(["bananas"], 5)          # the replica went away mid-search
        fallback = store.view()
        assert not fallback.on_replica and fallback.doc_ids(fallback.lexical(["bananas"], 5).rows) == ["b"]
        assert "read replica" in caplog.text and "unreachable" in caplog.text
    finally:
        store.close()
        primary_only.close()


def test_read_url_may_not_name_its_own_collection(postgres_url) -> None:  # noqa: F811
    with pytest.raises(ConfigError, match="read_url names a replica"):
        parse_url(f"{postgres_url}&read_url=postgresql://postgres@127.0.0.1:1/postgres%23other#c")
    target = parse_url(f"{postgres_url}&read_url=postgresql://postgres@127.0.0.1:1/postgres#c")
    assert target.read is not None and target.read.collection == "c" and target.read.password == target.password
