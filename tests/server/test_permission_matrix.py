"""Issue 20: every role × route × collection cell's status, asserted. Roles: no key, an invalid
key, read/write keys covering ``docs`` (and ``victim``), a read key covering another collection
only, a read key restricted to group ``sales`` (``hr-only.txt`` is hr's), an admin key."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from conftest import DOCS, FAKE, add_collection, bearer, wait_job
from fastapi.testclient import TestClient

ROLES = ("anonymous", "invalid", "read", "read-other", "read-sales", "write", "admin")
QUESTION = "How long can customers return goods?"
MESSAGES = [{"role": "user", "content": QUESTION}]

# (method, path, json body, expected status per role in ROLES order)
MATRIX: list[tuple[str, str, Any, tuple[int, ...]]] = [
    ("GET", "/healthz", None, (200, 200, 200, 200, 200, 200, 200)),
    ("GET", "/readyz", None, (200, 200, 200, 200, 200, 200, 200)),
    ("GET", "/metrics", None, (401, 401, 403, 403, 403, 403, 200)),
    ("GET", "/v1/collections", None, (401, 401, 200, 200, 200, 200, 200)),
    ("POST", "/v1/collections", {"name": "new-{role}", "settings": FAKE}, (401, 401, 403, 403, 403, 403, 201)),
    ("POST", "/v1/collections", {"name": "x-{role}", "settings": {"answer.base_url": "http://127.0.0.1:9"}},
     (401, 401, 403, 403, 403, 403, 422)),
    ("GET", "/v1/collections/docs", None, (401, 401, 200, 403, 200, 200, 200)),
    ("GET", "/v1/collections/absent", None, (401, 401, 403, 403, 403, 403, 404)),
    ("POST", "/v1/collections/docs/search", {"query": "refund"}, (401, 401, 200, 403, 200, 200, 200)),
    ("POST", "/v1/collections/absent/search", {"query": "refund"}, (401, 401, 403, 403, 403, 403, 404)),
    ("POST", "/v1/collections/docs/ask", {"question": QUESTION}, (401, 401, 200, 403, 200, 200, 200)),
    ("POST", "/v1/collections/docs/ask", {"question": QUESTION, "model": "scripted:other"},
     (401, 401, 422, 403, 422, 422, 422)),
    ("POST", "/v1/collections/docs/ask", {"question": QUESTION, "template": "/etc/passwd"},
     (401, 401, 422, 403, 422, 422, 422)),
    ("POST", "/v1/collections/docs/chat", {"messages": MESSAGES}, (401, 401, 200, 403, 200, 200, 200)),
    ("GET", "/v1/collections/docs/documents", None, (401, 401, 200, 403, 200, 200, 200)),
    ("GET", "/v1/collections/docs/documents/refunds.md", None, (401, 401, 200, 403, 200, 200, 200)),
    ("GET", "/v1/collections/docs/documents/hr-only.txt", None, (401, 401, 200, 403, 404, 200, 200)),
    ("POST", "/v1/collections/docs/documents", {"documents": [{"name": "{role}.txt", "text": "More text."}]},
     (401, 401, 403, 403, 403, 202, 202)),
    ("DELETE", "/v1/collections/docs/sources/none.txt", None, (401, 401, 403, 403, 403, 404, 404)),
    ("GET", "/v1/jobs/{job}", None, (401, 401, 200, 404, 200, 200, 200)),
    ("GET", "/v1/collections/docs/runs", None, (401, 401, 200, 403, 403, 200, 200)),
    ("GET", "/v1/models", None, (401, 401, 200, 200, 200, 200, 200)),
    ("POST", "/v1/chat/completions", {"model": "docs", "messages": MESSAGES}, (401, 401, 200, 404, 200, 200, 200)),
    ("POST", "/v1/chat/completions", {"model": "docs:scripted:m", "messages": MESSAGES},
     (401, 401, 200, 404, 200, 200, 200)),
    ("POST", "/v1/collections/docs/reingest", None, (401, 401, 403, 403, 403, 202, 202)),   # last: readers may see it empty meanwhile
    ("DELETE", "/v1/collections/victim", None, (401, 401, 403, 403, 403, 403, 204)),
]


def _filled(value: Any, role: str, job: str) -> Any:
    if isinstance(value, str):
        return value.replace("{role}", role).replace("{job}", job)
    if isinstance(value, dict):
        return {k: _filled(v, role, job) for k, v in value.items()}
    if isinstance(value, list):
        return [_filled(v, role, job) for v in value]
    return value


def test_every_role_gets_the_expected_status_on_every_route(make_client: Callable[..., TestClient],
                                                             make_key: Callable[..., str], scripted) -> None:
    setup = make_client(models=["scripted:m"])
    job = add_collection(setup, "docs", DOCS)["id"]
    response = setup.post("/v1/collections/docs/documents",
                          json={"documents": [{"name": "hr-only.txt", "text": "Salaries are secret."}], "acl": ["hr"]})
    assert wait_job(setup, response.json()["job"]["id"])["state"] == "done"
    add_collection(setup, "victim")
    headers = {"anonymous": {}, "invalid": bearer("not-a-key"), "read": bearer(make_key("read", ["docs", "victim"])),
               "read-other": bearer(make_key("other", ["elsewhere"])),
               "read-sales": bearer(make_key("sales", ["docs"], groups=["sales"])),
               "write": bearer(make_key("write", ["docs", "victim"], role="write")),
               "admin": bearer(make_key("admin", role="admin"))}
    client = make_client(models=["scripted:m"])
    wrong = []
    for method, path, body, expected in MATRIX:
        for role, status in zip(ROLES, expected, strict=True):
            got = client.request(method, _filled(path, role, job), json=_filled(body, role, job),
                                 headers=headers[role])
            if got.status_code != status:
                wrong.append(f"{role:10} {method} {path}: {got.status_code}, expected {status}: {got.text[:160]}")
    assert not wrong, "\n".join(wrong)
