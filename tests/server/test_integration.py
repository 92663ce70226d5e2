"""The real application under Uvicorn on 127.0.0.1, over real HTTP with httpx: upload, job
progress, search, a streamed answer."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from conftest import FAKE

from domainrag.server.app import create_app
from domainrag.server.settings import ServerSettings

pytestmark = pytest.mark.integration


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def server(tmp_path: Path) -> Iterator[str]:
    port = free_port()
    app = create_app(ServerSettings(home=tmp_path / "home", port=port))
    uv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=uv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not uv.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert uv.started, "uvicorn did not start"
    yield f"http://127.0.0.1:{port}"
    uv.should_exit = True
    thread.join(30)


def test_upload_job_search_and_streamed_ask_over_http(server: str) -> None:
    with httpx.Client(base_url=server, timeout=30) as http:
        assert http.get("/healthz").json() == {"status": "ok"}
        assert http.post("/v1/collections", json={"name": "kb", "settings": FAKE}).status_code == 201
        files = [("files", ("refunds.txt", b"Customers may return goods within 30 days for a refund.", "text/plain")),
                 ("files", ("shipping.txt", b"Orders ship within two business days.", "text/plain"))]
        accepted = http.post("/v1/collections/kb/documents", files=files, data={"acl": ""})
        assert accepted.status_code == 202, accepted.text
        job_id = accepted.json()["job"]["id"]
        deadline = time.monotonic() + 60
        while (job := http.get(f"/v1/jobs/{job_id}").json())["state"] in ("queued", "running"):
            assert time.monotonic() < deadline
            time.sleep(0.1)
        assert (job["state"], job["files_done"], job["failures"]) == ("done", 2, [])
        hits = http.post("/v1/collections/kb/search", json={"query": "return goods refund"}).json()["hits"]
        assert hits[0]["doc_id"] == "refunds.txt"
        events = []
        with http.stream("POST", "/v1/collections/kb/ask",
                         json={"question": "How long can customers return goods?", "stream": True}) as response:
            assert response.headers["content-type"].startswith("text/event-stream")
            kind = None
            for line in response.iter_lines():
                if line.startswith("event: "):
                    kind = line[7:]
                elif line.startswith("data: "):
                    events.append((kind, json.loads(line[6:])))
        assert events[-1][0] == "answer" and all(kind == "token" for kind, _ in events[:-1])
        answer = events[-1][1]
        assert not answer["abstained"] and answer["citations"][0]["doc_id"] == "refunds.txt"
        assert "30 days" in "".join(data["text"] for kind, data in events[:-1])
        assert response.headers["x-request-id"]
        metrics = http.get("/metrics").text
        assert 'route="/v1/collections/{collection}/ask"' in metrics
