"""Issue 20: a canary secret in the server's environment never reaches a capture server on
loopback, whatever an admin's requests, a collection's stored settings or a knowledge base
handed to the operator ask for — while the operator's own model and key do reach it (the
control that shows the capture would have seen a leak)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from pathlib import Path

from conftest import FAKE, add_collection
from fastapi.testclient import TestClient
from openai_stub import OpenAIStub

from domainrag import KnowledgeBase

QUESTION = "How long can customers return goods?"
MESSAGES = [{"role": "user", "content": QUESTION}]


def test_no_request_sends_a_secret_of_the_servers_environment(make_client: Callable[..., TestClient], home: Path,
                                                                tmp_path: Path, monkeypatch) -> None:
    canary = f"canary-{uuid.uuid4().hex}"
    monkeypatch.setenv("SERVER_SECRET", canary)
    monkeypatch.setenv("OPENAI_API_KEY", "operator-key")
    with OpenAIStub(api_key=None) as capture:
        monkeypatch.setenv("OPENAI_BASE_URL", capture.url)   # the operator's own endpoint
        exfiltrate = {"answer.base_url": capture.url, "answer.api_key_env": "SERVER_SECRET",
                      "answer.model": "openai:gpt-4o-mini"}
        (tmp_path / "docs").mkdir()
        (tmp_path / "docs" / "refunds.txt").write_text("Customers may return goods within 30 days for a refund.")
        with KnowledgeBase.open(home / "collections" / "old", create=True,
                                overrides={**FAKE, **exfiltrate, "answer.min_evidence": 0.0}) as kb:
            kb.ingest([tmp_path / "docs"])   # created over the API before the check: its settings were then trusted
        handed = tmp_path / "handed"
        with KnowledgeBase.open(handed, create=True, overrides=FAKE) as kb:
            kb.ingest([tmp_path / "docs"])
        with (handed / "domainrag.toml").open("a") as toml:   # what the author of a handed knowledge base writes
            toml.write(f'\n[answer]\nmodel = "openai:gpt-4o-mini"\nbase_url = "{capture.url}"\n'
                       'api_key_env = "SERVER_SECRET"\nmin_evidence = 0.0\n')
        client = make_client(models=["openai:gpt-4o-mini"], collections={"handed": {"path": handed}})
        add_collection(client)
        attempts = [
            ("POST", "/v1/collections", {"name": "a", "settings": {**FAKE, **exfiltrate}}),
            ("POST", "/v1/collections", {"name": "b", "settings": {"embedder.model": "openai:text-embedding-3-small",
                                                                    "embedder.base_url": capture.url,
                                                                    "embedder.api_key_env": "SERVER_SECRET"}}),
            ("POST", "/v1/collections", {"name": "c", "settings": {"embedder.model": "openai:text-embedding-3-small"}}),
            ("POST", "/v1/collections", {"name": "d", "settings": {**FAKE, "answer.judge": "openai:gpt-4o-mini",
                                                                    "answer.fallback": ["openai:gpt-4o-mini"]}}),
            ("POST", "/v1/collections/docs/ask", {"question": QUESTION, "model": "openai:gpt-4o"}),
            ("POST", "/v1/collections/docs/ask", {"question": QUESTION, "template": "/proc/self/environ"}),
            ("POST", "/v1/collections/old/ask", {"question": QUESTION}),
            ("POST", "/v1/collections/old/ask", {"question": QUESTION, "stream": True}),
            ("POST", "/v1/collections/handed/ask", {"question": QUESTION}),
            ("POST", "/v1/collections/handed/ask", {"question": QUESTION, "stream": True}),
            ("POST", "/v1/collections/handed/chat", {"messages": MESSAGES}),
            ("POST", "/v1/chat/completions", {"model": "handed", "messages": MESSAGES}),
            ("POST", "/v1/chat/completions", {"model": "old", "messages": MESSAGES, "stream": True}),
            ("POST", "/v1/chat/completions", {"model": "docs:openai:gpt-4o", "messages": MESSAGES}),
        ]
        for method, path, body in attempts:
            response = client.request(method, path, json=body)
            assert response.status_code >= 400 or "event: error" in response.text, (path, body, response.text[:300])
            assert canary not in response.text
        assert canary not in json.dumps(capture.requests)
        assert capture.requests == []
        control = client.post("/v1/collections/docs/ask", json={"question": QUESTION, "model": "openai:gpt-4o-mini"})
    assert control.status_code == 200, control.text
    seen = json.dumps(capture.requests)
    assert capture.chat_requests and "operator-key" in seen and canary not in seen
