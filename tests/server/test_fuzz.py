"""Issue 20: the whole HTTP API fuzzed from its own OpenAPI document (schemathesis, through the
ASGI app: no socket): no request — valid or not, with or without a key — gets a server error
or a response its OpenAPI document does not describe.

Runs with a key configured (an anonymous caller gets 401s) and as that key's admin, over a
collection holding documents. ``DOMAINRAG_FUZZ_EXAMPLES`` raises the examples per operation
(default 25: a few seconds per route on a laptop)."""

from __future__ import annotations

import os
import tempfile
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

schemathesis = pytest.importorskip("schemathesis")
from conftest import DOCS, MODELS, wait_job  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402
from hypothesis import HealthCheck, given, settings  # noqa: E402
from schemathesis.checks import (  # noqa: E402
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from domainrag.server.app import create_app  # noqa: E402
from domainrag.server.keys import KEYS_FILE, KeyStore  # noqa: E402
from domainrag.server.settings import ServerSettings  # noqa: E402

EXAMPLES = int(os.environ.get("DOMAINRAG_FUZZ_EXAMPLES", "25"))
HASH = {"embedder.model": "hash:64"}
CHECKS = (not_a_server_error, response_schema_conformance, status_code_conformance, content_type_conformance)


@pytest.fixture(scope="module")
def fuzzed_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, str]]:
    """The app over a home with an admin key and collection ``docs`` holding :data:`DOCS` (the
    built-in hash embedder: the test fakes are registered per test, after this fixture)."""
    home = tmp_path_factory.mktemp("fuzz") / "home"
    home.mkdir()
    with KeyStore(home / KEYS_FILE) as keys:
        secret = keys.create("fuzzer", None, "admin", None)[1]
    app = create_app(ServerSettings(home=home, models=MODELS, rate_limit_per_minute=1_000_000,
                                    request_timeout_s=30))
    auth = {"Authorization": f"Bearer {secret}"}
    with TestClient(app, headers=auth) as client:
        assert client.post("/v1/collections", json={"name": "docs", "settings": HASH}).status_code == 201
        job = client.post("/v1/collections/docs/documents", json={"documents": DOCS}).json()["job"]["id"]
        assert wait_job(client, job)["state"] == "done"
        yield _without_lifespan(app), secret


def _without_lifespan(app: Any) -> Any:
    """``app`` for schemathesis's client, which starts and stops the app around every call: its
    lifespan already runs once, in the fixture's client."""

    async def wrapped(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        await app(scope, receive, send)

    return wrapped


def app_spec() -> dict[str, Any]:
    """The API's OpenAPI document (as ``/openapi.json`` serves it)."""
    return dict(create_app(ServerSettings(home=Path(tempfile.mkdtemp()) / "home")).openapi())


def operations() -> list[str]:
    """The labels of the API's operations ("POST /v1/collections/{collection}/ask", ...)."""
    return [f"{method.upper()} {path}" for path, methods in app_spec()["paths"].items() for method in methods]


@pytest.mark.parametrize("label", operations())
def test_no_request_gets_a_server_error_or_an_undocumented_response(fuzzed_app: tuple[Any, str], label: str) -> None:
    app, secret = fuzzed_app
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    operation = schema.find_operation_by_label(label)
    assert operation is not None, label

    @given(case=operation.as_strategy())
    @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True,
              database=None)
    def fuzz(case: Any) -> None:
        parameters = case.path_parameters or {}
        if "collection" in parameters and zlib.crc32(repr(sorted(parameters.items())).encode()) % 4:
            parameters["collection"] = "docs"   # three cases in four reach the collection; the rest fuzz its name
        if label == "DELETE /v1/collections/{collection}":
            parameters["collection"] = "no-such-collection"   # deleting docs would end the run's reach
        case.call_and_validate(headers={"Authorization": f"Bearer {secret}"}, checks=CHECKS)

    fuzz()
