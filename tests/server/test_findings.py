"""The smaller findings of issue 20 at the HTTP edge: bad filters are 422s, /metrics needs a key
covering every collection (unless configured open)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from conftest import add_collection, bearer
from fastapi.testclient import TestClient
from test_api import assert_problem

BAD_FILTERS = [({"path": {"$ne": 1}}, "'path'"), ({"format": {"$in": ["pdf"]}}, "'format'"),
               ({"format": []}, "empty list"), ({"format": None}, "'format'"), ({"path": 3}, "'path'"),
               ({"format": [["pdf"]]}, "'format'"), ({"bad key": "x"}, "'bad key'")]


@pytest.mark.parametrize(("filters", "named"), BAD_FILTERS)
@pytest.mark.parametrize("route", ["search", "ask"])
def test_a_filter_no_store_can_apply_is_422_naming_it(docs: TestClient, filters: dict, named: str,
                                                       route: str) -> None:
    body = {"query": "refund"} if route == "search" else {"question": "How long can customers return goods?"}
    assert_problem(docs.post(f"/v1/collections/docs/{route}", json={**body, "filters": filters}), 422, named)


def test_good_filters_still_filter(docs: TestClient) -> None:
    hits = docs.post("/v1/collections/docs/search", json={"query": "refund", "filters": {"path": "refunds*"}}).json()
    assert {h["doc_id"] for h in hits["hits"]} == {"refunds.md"}
    lists = docs.post("/v1/collections/docs/search",
                      json={"query": "refund", "filters": {"path": ["refunds*", "warranty*"]}}).json()
    assert {h["doc_id"] for h in lists["hits"]} <= {"refunds.md", "warranty.txt"}


def test_metrics_need_a_key_that_covers_every_collection(make_client: Callable[..., TestClient],
                                                         make_key: Callable[..., str]) -> None:
    add_collection(make_client(), "secret-project")
    narrow, wide = bearer(make_key("narrow", ["other"])), bearer(make_key("wide"))
    client = make_client()
    assert_problem(client.get("/metrics"), 401)
    assert_problem(client.get("/metrics", headers=narrow), 403, "metrics_public")
    assert "secret-project" not in client.get("/metrics", headers=narrow).text
    assert client.get("/metrics", headers=wide).status_code == 200


def test_metrics_can_be_configured_open(make_client: Callable[..., TestClient], make_key: Callable[..., str]) -> None:
    make_key("someone")
    assert make_client(metrics_public=True).get("/metrics").status_code == 200


def test_readyz_names_failing_collections_only_to_a_key_that_covers_them_all(
        make_client: Callable[..., TestClient], make_key: Callable[..., str], tmp_path) -> None:
    narrow, wide = bearer(make_key("narrow", ["other"])), bearer(make_key("wide"))
    client = make_client(collections={"secret-project": {"path": tmp_path / "nowhere"}})
    for headers in (None, narrow):
        body = assert_problem(client.get("/readyz", headers=headers), 503, "1 collection(s) do not open")
        assert "secret-project" not in body["detail"] and "nowhere" not in body["detail"]
    assert_problem(client.get("/readyz", headers=wide), 503, "secret-project")


def test_a_key_may_have_only_so_many_requests_in_flight(make_client: Callable[..., TestClient],
                                                         make_key: Callable[..., str], monkeypatch) -> None:
    import threading

    from domainrag import KnowledgeBase

    add_collection(make_client())
    busy, other = bearer(make_key("busy")), bearer(make_key("other"))
    client = make_client(max_concurrent_per_key=2)
    entered, release = threading.Semaphore(0), threading.Event()

    def held(*args, **kwargs):
        entered.release()
        release.wait(60)
        return []

    monkeypatch.setattr(KnowledgeBase, "search", held)
    results: list[int] = []
    threads = [threading.Thread(target=lambda: results.append(
        client.post("/v1/collections/docs/search", json={"query": "x"}, headers=busy).status_code)) for _ in range(2)]
    for thread in threads:
        thread.start()
    assert entered.acquire(timeout=60) and entered.acquire(timeout=60)
    try:
        refused = client.get("/v1/collections", headers=busy)
        assert_problem(refused, 429, "max_concurrent_per_key")
        assert refused.headers["Retry-After"] == "1"
        assert client.get("/v1/collections", headers=other).status_code == 200
    finally:
        release.set()
        for thread in threads:
            thread.join(60)
    assert results == [200, 200]
    assert client.get("/v1/collections", headers=busy).status_code == 200


def test_errors_sent_to_clients_do_not_name_the_servers_folders(make_client: Callable[..., TestClient],
                                                                home, tmp_path) -> None:
    client = make_client(collections={"lost": {"path": tmp_path / "nowhere"}})
    assert client.post("/v1/collections", json={"name": "empty", "settings": {"embedder.model": "fake-en:64"}}
                       ).status_code == 201
    responses = [client.post("/v1/collections/empty/ask", json={"question": "Anything?"}),
                 client.post("/v1/collections/empty/ask", json={"question": "Anything?", "stream": True}),
                 client.post("/v1/chat/completions", json={"model": "empty",
                                                           "messages": [{"role": "user", "content": "Anything?"}]}),
                 client.get("/readyz"), client.get("/v1/collections"), client.get("/v1/collections/lost")]
    assert_problem(responses[0], 409, "<server home>", "no documents")
    for response in responses:
        assert str(home) not in response.text and str(tmp_path) not in response.text, response.text
