"""Fixtures of the server tests: an app over a fresh server home (fake embedder, offline
answers), a TestClient, a collection with a few documents, and API keys."""

from __future__ import annotations

import importlib.util
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("fastapi")
#: The MCP tests need the SDK (the mcp extra): skipped without it, except under CI=true (they fail).
if importlib.util.find_spec("mcp") is None and os.environ.get("CI") != "true":
    collect_ignore_glob = ["test_mcp*.py"]
from fastapi.testclient import TestClient  # noqa: E402

from domainrag.server.app import create_app  # noqa: E402
from domainrag.server.keys import KEYS_FILE, KeyStore  # noqa: E402
from domainrag.server.settings import ServerSettings  # noqa: E402

FAKE = {"embedder.model": "fake-en:64"}
DOCS = [
    {"name": "refunds.md", "text": "# Refunds\n\nCustomers may return goods within 30 days for a full refund."},
    {"name": "shipping.txt", "text": "Orders ship within two business days. Express shipping costs 12 euros."},
    {"name": "warranty.txt", "text": "The warranty covers manufacturing defects for two years after purchase."},
]


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


@pytest.fixture
def make_client(home: Path) -> Iterator[Callable[..., TestClient]]:
    """``make_client(**settings)``: a started TestClient over ``home``."""
    opened: list[TestClient] = []

    def make(**settings: Any) -> TestClient:
        client = TestClient(create_app(ServerSettings(home=home, **settings)))
        client.__enter__()
        opened.append(client)
        return client

    yield make
    for client in opened:
        client.__exit__(None, None, None)


#: The answer models the default test server offers (setting ``models``): a request may choose no other.
MODELS = ["scripted:m", "scripted:fail"]


@pytest.fixture
def client(make_client: Callable[..., TestClient]) -> TestClient:
    return make_client(models=MODELS)


def wait_job(client: TestClient, job_id: str, headers: dict[str, str] | None = None) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        job = client.get(f"/v1/jobs/{job_id}", headers=headers).json()
        if job["state"] not in ("queued", "running"):
            return job
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} did not finish: {job}")


def add_collection(client: TestClient, name: str = "docs", docs: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """Create collection ``name`` and ingest ``docs``; returns the finished job."""
    assert client.post("/v1/collections", json={"name": name, "settings": FAKE}).status_code == 201
    response = client.post(f"/v1/collections/{name}/documents", json={"documents": docs or DOCS})
    assert response.status_code == 202, response.text
    job = wait_job(client, response.json()["job"]["id"])
    assert job["state"] == "done", (job["error"], job["failures"])
    return job


@pytest.fixture
def docs(client: TestClient) -> TestClient:
    """The client, with collection ``docs`` holding :data:`DOCS`."""
    add_collection(client)
    return client


@pytest.fixture
def make_key(home: Path) -> Callable[..., str]:
    """``make_key(name, collections, role, groups)`` -> the secret of a new API key in ``home``."""

    def make(name: str, collections: list[str] | None = None, role: str = "read",
             groups: list[str] | None = None) -> str:
        home.mkdir(parents=True, exist_ok=True)
        with KeyStore(home / KEYS_FILE) as store:
            return store.create(name, collections, role, groups)[1]

    return make


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}
