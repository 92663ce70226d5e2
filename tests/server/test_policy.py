"""What a request may choose and what only the operator may (issue 20): settings that decide
where data and secrets go, the answer model, the prompt template."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import FAKE, add_collection, bearer
from fastapi.testclient import TestClient
from test_api import assert_problem

from domainrag import KnowledgeBase
from domainrag.server.policy import OPERATOR_ONLY

QUESTION = {"question": "How long can customers return goods?"}
EXFILTRATE = {"answer.base_url": "http://127.0.0.1:9/v1", "answer.api_key_env": "SERVER_SECRET",
              "answer.model": "openai:gpt-4o-mini"}
VALUES = {"answer.base_url": "http://127.0.0.1:9/v1", "answer.api_key_env": "SERVER_SECRET",
          "embedder.base_url": "http://127.0.0.1:9/v1", "embedder.api_key_env": "SERVER_SECRET",
          "embedder.endpoints": ["http://127.0.0.1:9/v1"],
          "store.url": "postgresql://127.0.0.1:9/db#c", "runs.url": "postgresql://127.0.0.1:9/db#c",
          "answer.model": "openai:gpt-4o", "answer.fallback": ["openai:gpt-4o"], "answer.judge": "openai:gpt-4o",
          "sources.urls": ["s3://bucket/prefix", "https://intranet.example/"]}


@pytest.mark.parametrize("setting", OPERATOR_ONLY)
def test_an_admin_key_cannot_choose_where_data_and_secrets_go(client: TestClient, setting: str) -> None:
    body = {"name": "c", "settings": {**FAKE, setting: VALUES[setting]}}
    assert_problem(client.post("/v1/collections", json=body), 422, setting, "operator")
    assert client.get("/v1/collections").json() == {"collections": []}


@pytest.mark.parametrize("spec", ["openai:text-embedding-3-small", "sentence-transformers:/etc",
                                  "sentence-transformers:../../models/x", "onnx:~/model",
                                  "pair:multilingual+openai:text-embedding-3-small",
                                  "pair:sentence-transformers:/etc+minilm"])
def test_a_request_cannot_choose_a_remote_embedder_or_one_read_from_a_path(client: TestClient, spec: str) -> None:
    body = {"name": "c", "settings": {"embedder.model": spec}}
    assert_problem(client.post("/v1/collections", json=body), 422, "embedder.model", "operator")


@pytest.mark.parametrize("template", ["/etc/passwd", "../../etc/passwd", "general.en.j2", "x/y"])
def test_a_collections_template_setting_is_a_name_never_a_path(client: TestClient, template: str) -> None:
    body = {"name": "c", "settings": {**FAKE, "answer.template": template}}
    assert_problem(client.post("/v1/collections", json=body), 422, "answer.template", "by name")


def test_a_stored_template_path_of_a_collection_created_over_the_api_is_refused(
        make_client: Callable[..., TestClient], home: Path) -> None:
    with KnowledgeBase.open(home / "collections" / "old", create=True,
                            overrides={**FAKE, "answer.template": "/etc/passwd"}):
        pass
    assert_problem(make_client().post("/v1/collections/old/ask", json=QUESTION), 422, "answer.template")


@pytest.mark.parametrize(("setting", "value"), [("ingest.parse_memory_mb", 0), ("ingest.parse_memory_mb", 100_000),
                                              ("ingest.parse_timeout_s", 10_000), ("ingest.max_file_mb", 10_000),
                                              ("ingest.max_unpacked_mb", 100_000),
                                              ("ingest.max_compression_ratio", 1e9), ("answer.max_tokens", 1_000_000),
                                              ("answer.max_retries", 10), ("answer.timeout_s", 3600),
                                              ("ingest.follow_external_symlinks", True)])
def test_a_request_may_tighten_the_servers_budgets_never_loosen_them(client: TestClient, setting: str,
                                                                      value: object) -> None:
    body = {"name": "c", "settings": {**FAKE, setting: value}}
    assert_problem(client.post("/v1/collections", json=body), 422, setting)
    tighter = {"ingest.parse_memory_mb": 256, "ingest.parse_timeout_s": 10, "answer.max_tokens": 256}
    assert client.post("/v1/collections", json={"name": "d", "settings": {**FAKE, **tighter}}).status_code == 201


def test_a_local_embedder_and_ordinary_settings_are_still_accepted(client: TestClient) -> None:
    body = {"name": "c", "settings": {**FAKE, "retrieval.k": 5, "answer.template": "medical"}}
    assert client.post("/v1/collections", json=body).status_code == 201


def test_stored_settings_of_a_collection_created_over_the_api_are_not_the_operators(
        make_client: Callable[..., TestClient], home: Path) -> None:
    """A collection written before the check (its settings then trusted as the user's): refused."""
    with KnowledgeBase.open(home / "collections" / "old", create=True, overrides={**FAKE, **EXFILTRATE}):
        pass
    client = make_client()
    for response in (client.post("/v1/collections/old/ask", json=QUESTION), client.get("/v1/collections/old")):
        assert_problem(response, 422, "answer.base_url", "answer.api_key_env", "operator")


def test_the_operators_own_knowledge_base_keeps_its_settings(make_client: Callable[..., TestClient],
                                                              tmp_path: Path) -> None:
    with KnowledgeBase.open(tmp_path / "kb", create=True, overrides={**FAKE, "answer.model": "extractive"}):
        pass
    client = make_client(collections={"mine": {"path": tmp_path / "kb"}})
    assert client.get("/v1/collections/mine").status_code == 200


# -- the answer model ------------------------------------------------------------------------------
ANSWERING = [("ask", QUESTION), ("ask", {**QUESTION, "stream": True}),
             ("chat", {"messages": [{"role": "user", "content": QUESTION["question"]}]}),
             ("chat", {"messages": [{"role": "user", "content": QUESTION["question"]}], "stream": True})]


@pytest.mark.parametrize(("route", "body"), ANSWERING)
def test_every_answering_route_takes_only_the_servers_models(make_client: Callable[..., TestClient],
                                                             make_key: Callable[..., str], scripted,
                                                             route: str, body: dict) -> None:
    add_collection(make_client())
    reader = bearer(make_key("reader"))
    client = make_client(models=["scripted:allowed"])
    refused = client.post(f"/v1/collections/docs/{route}", json={**body, "model": "scripted:other"}, headers=reader)
    assert_problem(refused, 422, "scripted:other", "scripted:allowed", "[server] models")
    assert scripted.requests == []
    scripted.script = ["Customers may return goods within 30 days [1]."]
    allowed = client.post(f"/v1/collections/docs/{route}", json={**body, "model": "scripted:allowed"}, headers=reader)
    assert allowed.status_code == 200, allowed.text
    assert scripted.requests


def test_the_openai_endpoint_takes_only_the_servers_models(make_client: Callable[..., TestClient], scripted) -> None:
    client = make_client(models=["scripted:allowed"])
    add_collection(client)
    message = [{"role": "user", "content": QUESTION["question"]}]
    refused = client.post("/v1/chat/completions", json={"model": "docs:scripted:other", "messages": message})
    assert refused.status_code == 404 and refused.json()["error"]["code"] == "model_not_found"
    assert client.post("/v1/chat/completions", json={"model": "docs:scripted:allowed", "messages": message}
                       ).status_code == 200


# -- templates by name only --------------------------------------------------------------------------
PATHS = ["/etc/passwd", "/etc/hostname", "../../../../etc/passwd", "general.en.j2", "/no/such/file.j2",
         "templates/x", "C:\\\\Windows\\\\win.ini"]


def _detail_without_name(response, name: str) -> str:
    return str(response.json()["detail"]).replace(repr(name[:64]), "NAME")


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize(("route", "body"), ANSWERING)
def test_a_template_is_a_name_never_a_path(docs: TestClient, route: str, body: dict, path: str) -> None:
    unknown = docs.post(f"/v1/collections/docs/{route}", json={**body, "template": "no-such-template"})
    response = docs.post(f"/v1/collections/docs/{route}", json={**body, "template": path})
    assert (response.status_code, unknown.status_code) == (422, 422)
    assert _detail_without_name(response, path) == _detail_without_name(unknown, "no-such-template")
    assert "root" not in response.text and "exist" not in response.text


def test_an_uploaded_file_cannot_be_used_as_a_template(docs: TestClient, home: Path) -> None:
    uploaded = next((home / "uploads").rglob("refunds.md"))
    for name in (str(uploaded), str(uploaded.with_suffix(".j2"))):
        assert_problem(docs.post("/v1/collections/docs/ask", json={**QUESTION, "template": name}), 422,
                       "Unknown prompt template")


def test_the_openai_endpoint_takes_template_names_only(docs: TestClient) -> None:
    message = [{"role": "user", "content": QUESTION["question"]}]
    response = docs.post("/v1/chat/completions", json={"model": "docs", "messages": message, "template": "/etc/passwd"})
    assert response.status_code == 422 and "Unknown prompt template" in response.json()["error"]["message"]
    named = docs.post("/v1/chat/completions", json={"model": "docs", "messages": message, "template": "medical"})
    assert named.status_code == 200


def test_named_templates_still_answer(docs: TestClient) -> None:
    assert docs.post("/v1/collections/docs/ask", json={**QUESTION, "template": "legal"}).status_code == 200
