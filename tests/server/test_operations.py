"""Operations: unexpected errors, logs without secrets, readiness, CORS, served knowledge bases,
the web UI at /, and the light import of the package."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import FAKE, bearer
from fastapi.testclient import TestClient
from test_api import assert_problem

from domainrag.kb import KnowledgeBase
from domainrag.server.logs import JsonFormatter


def boom(*args, **kwargs):
    raise RuntimeError("boom: internal secret detail")


def test_an_unexpected_error_is_a_500_problem_without_details(docs: TestClient, monkeypatch, caplog) -> None:
    monkeypatch.setattr(KnowledgeBase, "search", boom)
    monkeypatch.delenv("DOMAINRAG_DEBUG", raising=False)
    with caplog.at_level(logging.INFO, logger="domainrag.server"):
        response = docs.post("/v1/collections/docs/search", json={"query": "x"})
    body = assert_problem(response, 500, "request id")
    assert "boom" not in response.text and body["request_id"] == response.headers["x-request-id"]
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert errors and not any(r.exc_info for r in errors) and errors[0].error == "RuntimeError"
    monkeypatch.setenv("DOMAINRAG_DEBUG", "1")
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="domainrag.server"):
        assert docs.post("/v1/collections/docs/search", json={"query": "x"}).status_code == 500
    assert any(r.exc_info for r in caplog.records)  # the traceback goes to the log, never the body


def test_request_logs_hold_no_secrets(docs: TestClient, make_key, caplog) -> None:
    secret = make_key("logged", ["docs"])
    with caplog.at_level(logging.INFO, logger="domainrag.server"):
        docs.get("/v1/collections/docs/documents?api_key=hunter2", headers=bearer(secret))
    lines = [JsonFormatter().format(r) for r in caplog.records if r.getMessage() == "request"]
    assert lines
    entry = json.loads(lines[-1])
    assert entry["path"] == "/v1/collections/docs/documents" and entry["key"] == "logged"
    assert entry["route"] == "/v1/collections/{collection}/documents" and entry["status"] == 200
    assert entry["request_id"] and entry["ms"] >= 0
    for line in lines:
        assert secret not in line and "hunter2" not in line and "Bearer" not in line


def test_readyz_is_503_when_a_collection_does_not_open(make_client, tmp_path: Path) -> None:
    client = make_client(collections={"lost": {"path": tmp_path / "nowhere"}})
    response = client.get("/readyz")
    assert_problem(response, 503, "lost")
    assert client.get("/healthz").status_code == 200


def test_a_served_knowledge_base_is_a_collection_the_server_does_not_delete(make_client, tmp_path: Path) -> None:
    folder = tmp_path / "existing"
    (tmp_path / "a.txt").write_text("Existing knowledge base text about tariffs.")
    with KnowledgeBase.open(folder, create=True, overrides=FAKE) as kb:
        kb.ingest([tmp_path / "a.txt"])
    client = make_client(collections={"existing": {"path": folder}})
    assert [c["name"] for c in client.get("/v1/collections").json()["collections"]] == ["existing"]
    hits = client.post("/v1/collections/existing/search", json={"query": "tariffs"}).json()["hits"]
    assert hits[0]["doc_id"] == "a.txt"
    assert_problem(client.delete("/v1/collections/existing"), 409, "does not delete")
    assert folder.is_dir()


def test_cors_only_when_configured(make_client) -> None:
    preflight = {"Origin": "http://app.example", "Access-Control-Request-Method": "POST"}
    closed = make_client()
    assert "access-control-allow-origin" not in closed.options("/v1/collections", headers=preflight).headers
    opened = make_client(cors_origins=["http://app.example"])
    response = opened.options("/v1/collections", headers=preflight)
    assert response.headers["access-control-allow-origin"] == "http://app.example"


def test_the_web_ui_is_served_at_the_root(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert_problem(client.get("/no-such-page.html"), 404)
    assert_problem(client.get("/v1/no-such-route"), 404, "/docs")


@pytest.mark.parametrize("module", ["domainrag", "domainrag.cli"])
def test_importing_the_package_does_not_import_the_web_framework(module: str) -> None:
    code = f"import sys, {module}; print(any(m.split('.')[0] in ('fastapi', 'uvicorn', 'starlette') for m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


def test_a_slow_request_is_a_504_naming_the_setting(make_client, monkeypatch) -> None:
    import threading

    from conftest import add_collection

    client = make_client(request_timeout_s=0.2)
    add_collection(client)
    release = threading.Event()
    monkeypatch.setattr(KnowledgeBase, "search", lambda *a, **k: release.wait(5) and [])
    response = client.post("/v1/collections/docs/search", json={"query": "x"})
    release.set()
    assert_problem(response, 504, "request_timeout_s")


def test_model_tokens_are_counted(docs: TestClient, scripted) -> None:
    scripted.script = ["Customers may return goods within 30 days [1]."]
    docs.post("/v1/collections/docs/ask", json={"question": "How long can customers return goods?",
                                                "model": "scripted:m"})
    text = docs.get("/metrics").text
    assert 'domainrag_model_tokens_total{collection="docs",kind="prompt"} 10.0' in text
    assert 'domainrag_model_tokens_total{collection="docs",kind="completion"} 5.0' in text
