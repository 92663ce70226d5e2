"""Request bodies are bounded before they are read and before the key is checked (issue 20): a
huge body from an anonymous client is refused without the server holding it."""

from __future__ import annotations

import select
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import uvicorn
from conftest import FAKE, bearer
from fastapi.testclient import TestClient
from test_api import assert_problem

from domainrag.server.app import create_app
from domainrag.server.keys import KEYS_FILE, KeyStore
from domainrag.server.settings import ServerSettings

ASK = "/v1/collections/docs/ask"


def test_a_declared_length_over_the_limit_is_413_before_the_key_is_checked(
        make_client: Callable[..., TestClient], make_key: Callable[..., str]) -> None:
    make_key("someone")
    client = make_client(max_body_kb=64)
    response = client.post(ASK, content=b"{" + b" " * 70_000 + b"}",
                           headers={"Content-Type": "application/json"})
    assert_problem(response, 413, "70,002 bytes", "65,536", "max_body_kb")
    small = client.post(ASK, json={"question": "q"})
    assert_problem(small, 401)


def test_a_chunked_body_is_counted_while_it_arrives(make_client: Callable[..., TestClient]) -> None:
    client = make_client(max_body_kb=64)

    def body() -> Iterator[bytes]:
        yield b'{"question": "'
        for _ in range(100):
            yield b"x" * 1024
        yield b'"}'

    response = client.post(ASK, content=body(), headers={"Content-Type": "application/json"})
    assert_problem(response, 413, "max_body_kb", "counted while receiving")


def test_uploads_keep_their_own_larger_limit(make_client: Callable[..., TestClient]) -> None:
    client = make_client(max_body_kb=64)
    assert client.post("/v1/collections", json={"name": "docs", "settings": FAKE}).status_code == 201
    text = ("Customers may return goods within 30 days. " * 5000).encode()   # 215 kB
    response = client.post("/v1/collections/docs/documents", files={"files": ("big.txt", text, "text/plain")})
    assert response.status_code == 202, response.text


def test_questions_under_the_limit_are_answered(docs: TestClient) -> None:
    assert docs.post(ASK, json={"question": "How long can customers return goods?"}).status_code == 200


# -- over real HTTP: how much of a huge body the server takes before it answers ----------------------
TOTAL = 64 * 1024 * 1024
CHUNK = 64 * 1024


@pytest.fixture
def keyed_server(tmp_path: Path) -> Iterator[int]:
    home = tmp_path / "home"
    home.mkdir()
    with KeyStore(home / KEYS_FILE) as keys:
        keys.create("someone", None, "read", None)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    server = uvicorn.Server(uvicorn.Config(create_app(ServerSettings(home=home, port=port)), host="127.0.0.1",
                                           port=port, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started and thread.is_alive():
        time.sleep(0.02)
    yield port
    server.should_exit = True
    thread.join(30)


def _send_until_answered(port: int, head: bytes, chunked: bool) -> tuple[int, bytes]:
    """Send ``head`` then up to :data:`TOTAL` bytes of body until the server answers; (bytes of
    body sent, the start of the answer)."""
    sent = 0
    with socket.create_connection(("127.0.0.1", port)) as conn:
        conn.sendall(head)
        piece = (b"%x\r\n" % CHUNK + b" " * CHUNK + b"\r\n") if chunked else b" " * CHUNK
        while sent < TOTAL:
            readable, writable, _ = select.select([conn], [conn], [], 30)
            if readable or not writable:
                break
            try:
                conn.send(piece)
            except OSError:   # the server closed the connection after its answer
                break
            sent += CHUNK
        conn.settimeout(30)
        return sent, conn.recv(200)


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_a_huge_anonymous_body_is_refused_without_being_read(keyed_server: int, chunked: bool) -> None:
    length = b"Transfer-Encoding: chunked" if chunked else b"Content-Length: %d" % (300 * 1024 * 1024)
    head = (b"POST " + ASK.encode() + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            + length + b"\r\n\r\n")
    sent, answer = _send_until_answered(keyed_server, head, chunked)
    assert answer.split(b" ")[1] in (b"401", b"413"), answer
    assert sent < TOTAL // 2, f"the server read {sent:,} bytes before answering"


def test_an_authenticated_client_gets_the_same_limit(make_client: Callable[..., TestClient],
                                                     make_key: Callable[..., str]) -> None:
    key = bearer(make_key("writer", role="admin"))
    client = make_client(max_body_kb=64)
    response = client.post(ASK, content=b"{" + b" " * 70_000 + b"}",
                           headers={"Content-Type": "application/json", **key})
    assert_problem(response, 413, "max_body_kb")


@pytest.mark.parametrize("ending", [b"", b"\r\n", b"\r\n--xyz", b"\r\n--xyz-"], ids=["none", "crlf", "boundary",
                                                                                   "half-close"])
def test_a_multipart_body_without_its_closing_boundary_is_refused(client: TestClient, home: Path,
                                                                  ending: bytes) -> None:
    assert client.post("/v1/collections", json={"name": "docs", "settings": FAKE}).status_code == 201
    body = (b'--xyz\r\nContent-Disposition: form-data; name="files"; filename="cut.txt"\r\n\r\n'
            b"Customers may return goods within 30 days." + ending)
    response = client.post("/v1/collections/docs/documents", content=body,
                           headers={"content-type": "multipart/form-data; boundary=xyz"})
    assert_problem(response, 422, "closing boundary", "truncated")
    assert not list((home / "uploads").rglob("cut.txt"))
