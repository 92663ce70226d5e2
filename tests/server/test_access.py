"""Access control over HTTP: API keys (401 missing/revoked), roles and collections (403, the
same for a collection that exists and one that does not), rate limits (429 + Retry-After) and
document groups passed into every read."""

from __future__ import annotations

import pytest
from conftest import FAKE, add_collection, bearer
from fastapi.testclient import TestClient
from test_api import assert_problem

from domainrag.server.keys import KEYS_FILE, KeyStore
from domainrag.testing.store import make_update


@pytest.fixture
def guarded(docs: TestClient) -> TestClient:
    """Collection ``docs`` plus a public, an 'hr' and a 'board' document about salaries."""
    kb = docs.app.state.server.collections.get("docs")
    updates = [
        make_update("pub.txt", "pub", ["The salary policy is public: pay reviews happen in March."], dim=64),
        make_update("hr.txt", "hr", ["Salary bands: engineers earn between 80k and 120k."], dim=64, seed=1,
                    acl=["hr"]),
        make_update("board.txt", "board", ["Salary of the chief executive is 900k."], dim=64, seed=2,
                    acl=["board"]),
    ]
    for update in updates:
        update.tokens = [kb.analyzer.tokenize(chunk.text) for chunk in update.chunks]
    kb.store.write(updates)
    kb.store.refresh()
    return docs


def test_without_keys_the_local_caller_is_admin(docs: TestClient) -> None:
    assert docs.get("/v1/collections").status_code == 200


def test_a_public_bind_never_falls_back_to_the_local_admin(make_client, make_key, home) -> None:
    client = make_client(host="0.0.0.0")  # started with a key; every key revoked since
    make_key("only", role="admin")
    with KeyStore(home / KEYS_FILE) as store:
        store.revoke("only")
    assert_problem(client.get("/v1/collections"), 401)


def test_with_keys_every_v1_route_needs_one(docs: TestClient, make_key) -> None:
    make_key("admin", role="admin")
    assert_problem(docs.get("/v1/collections"), 401, "Authorization: Bearer")
    response = docs.get("/v1/collections", headers={"Authorization": "Basic abc"})
    assert_problem(response, 401) and response.headers["www-authenticate"] == "Bearer"
    assert_problem(docs.get("/v1/collections", headers=bearer("dr_wrong")), 401, "not valid")
    assert docs.get("/healthz").status_code == 200


def test_a_revoked_key_is_401(docs: TestClient, make_key, home) -> None:
    make_key("admin", role="admin")
    secret = make_key("temp", ["docs"])
    assert docs.get("/v1/collections/docs", headers=bearer(secret)).status_code == 200
    with KeyStore(home / KEYS_FILE) as store:
        assert store.revoke("temp")
    assert_problem(docs.get("/v1/collections/docs", headers=bearer(secret)), 401, "revoked")


def test_a_key_for_another_collection_learns_nothing(docs: TestClient, make_key) -> None:
    admin = bearer(make_key("admin", role="admin"))
    docs.post("/v1/collections", json={"name": "secret", "settings": FAKE}, headers=admin)
    key = bearer(make_key("reader", ["docs"]))
    for method, tail in (("GET", ""), ("GET", "/documents"), ("POST", "/search"), ("GET", "/documents/x.txt")):
        body = {"query": "x"} if method == "POST" else None
        exists = docs.request(method, f"/v1/collections/secret{tail}", json=body, headers=key)
        missing = docs.request(method, f"/v1/collections/absent{tail}", json=body, headers=key)
        assert_problem(exists, 403, "may not read collection")
        assert exists.json() == {k: v.replace("absent", "secret") if isinstance(v, str) else v
                                 for k, v in missing.json().items()}
    names = [c["name"] for c in docs.get("/v1/collections", headers=key).json()["collections"]]
    assert names == ["docs"]


def test_roles(docs: TestClient, make_key) -> None:
    reader, writer = bearer(make_key("r", ["docs"])), bearer(make_key("w", ["docs"], role="write"))
    upload = {"documents": [{"name": "n.txt", "text": "new text"}]}
    assert_problem(docs.post("/v1/collections/docs/documents", json=upload, headers=reader), 403, "role write")
    assert docs.post("/v1/collections/docs/documents", json=upload, headers=writer).status_code == 202
    assert_problem(docs.post("/v1/collections", json={"name": "x"}, headers=writer), 403, "role admin")
    assert_problem(docs.delete("/v1/collections/docs", headers=writer), 403, "role admin")


def test_a_flood_from_one_key_gets_429_with_retry_after(make_client, make_key) -> None:
    client = make_client(rate_limit_per_minute=3)
    add_collection(client)
    key, other = bearer(make_key("busy", ["docs"])), bearer(make_key("calm", ["docs"]))
    statuses = [client.get("/v1/collections/docs", headers=key).status_code for _ in range(10)]
    assert statuses.count(200) >= 3 and statuses[-1] == 429
    response = client.get("/v1/collections/docs", headers=key)
    assert_problem(response, 429, "rate_limit_per_minute")
    assert int(response.headers["retry-after"]) >= 1
    assert client.get("/v1/collections/docs", headers=other).status_code == 200


def test_groups_reach_search_ask_chat_and_documents(guarded: TestClient, make_key) -> None:
    hr = bearer(make_key("hr", ["docs"], groups=["hr"]))
    public = bearer(make_key("public", ["docs"], groups=[]))
    everything = bearer(make_key("all", ["docs"], groups=None))  # --groups '*'


    def found(headers: dict[str, str]) -> set[str]:
        hits = guarded.post("/v1/collections/docs/search", json={"query": "salary", "k": 10}, headers=headers)
        return {h["doc_id"] for h in hits.json()["hits"]} & {"pub", "hr", "board"}

    assert found(hr) == {"pub", "hr"} and found(public) == {"pub"} and found(everything) == {"pub", "hr", "board"}
    answer = guarded.post("/v1/collections/docs/ask", json={"question": "What is the salary of the chief executive?"},
                          headers=hr).json()
    assert "board" not in {c["doc_id"] for c in answer["citations"]} and "900k" not in answer["text"]
    chat = guarded.post("/v1/collections/docs/chat", headers=public,
                        json={"messages": [{"role": "user", "content": "Salary bands for engineers?"}]}).json()
    assert {c["doc_id"] for c in chat["citations"]} <= {"pub"}
    listed = {d["id"] for d in guarded.get("/v1/collections/docs/documents", headers=hr).json()["documents"]}
    assert "hr" in listed and "board" not in listed
    hidden = guarded.get("/v1/collections/docs/documents/board", headers=hr)
    absent = guarded.get("/v1/collections/docs/documents/nowhere", headers=hr)
    assert_problem(hidden, 404) and assert_problem(absent, 404)
    assert hidden.json()["detail"].replace("board", "X") == absent.json()["detail"].replace("nowhere", "X")


def test_a_writer_cannot_delete_a_source_it_cannot_read(guarded: TestClient, make_key) -> None:
    writer = bearer(make_key("w", ["docs"], role="write", groups=["hr"]))
    assert_problem(guarded.delete("/v1/collections/docs/sources/board.txt", headers=writer), 404, "No source")
    assert guarded.delete("/v1/collections/docs/sources/hr.txt", headers=writer).status_code == 204


def test_runs_only_for_keys_without_a_group_restriction(docs: TestClient, make_key) -> None:
    restricted = bearer(make_key("r", ["docs"], groups=["hr"]))
    assert_problem(docs.get("/v1/collections/docs/runs", headers=restricted), 403, "--groups '*'")
    unrestricted = bearer(make_key("all", ["docs"], groups=None))  # --groups '*'

    assert docs.get("/v1/collections/docs/runs", headers=unrestricted).json() == {"runs": []}


def test_jobs_of_other_collections_are_not_found(docs: TestClient, make_key) -> None:
    admin = bearer(make_key("admin", role="admin"))
    job = docs.post("/v1/collections/docs/documents", headers=admin,
                    json={"documents": [{"name": "j.txt", "text": "job text"}]}).json()["job"]
    docs.post("/v1/collections", json={"name": "other", "settings": FAKE}, headers=admin)
    outsider = bearer(make_key("o", ["other"]))
    assert_problem(docs.get(f"/v1/jobs/{job['id']}", headers=outsider), 404)
    assert docs.get(f"/v1/jobs/{job['id']}", headers=admin).status_code == 200
