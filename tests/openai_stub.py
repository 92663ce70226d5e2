"""A small deterministic OpenAI-protocol HTTP server on loopback, for tests.

It speaks the real wire protocol, so tests drive it with the real ``openai`` SDK::

    with OpenAIStub(fail_429=2) as stub:
        client = openai.OpenAI(base_url=stub.url, api_key=stub.api_key)

Routes live in ``OpenAIStub.routes`` (path -> handler taking the JSON body and returning
``(status, body)``), so more endpoints (chat completions, ...) can be added beside
``/v1/embeddings``. Failure modes: a wrong key gets 401; the first ``fail_429`` requests get 429
and the next ``fail_500`` get 500 (both with a short ``retry-after-ms``); every response waits
``delay_s`` first.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable

import numpy as np

Handler = Callable[[dict[str, Any]], tuple[int, dict[str, Any]]]


class OpenAIStub:
    """Serves ``POST /v1/embeddings`` on ``127.0.0.1`` (a free port) from a background thread."""

    def __init__(
        self,
        *,
        api_key: str | None = "stub-key",
        dimensions: int = 16,
        fail_429: int = 0,
        fail_500: int = 0,
        delay_s: float = 0.0,
        retry_after_ms: int = 10,
    ) -> None:
        self.api_key = api_key  # None: any key (or none) is accepted
        self.dimensions = dimensions
        self.fail_429 = fail_429
        self.fail_500 = fail_500
        self.delay_s = delay_s
        self.retry_after_ms = retry_after_ms
        #: Every request received, in order: {"path", "headers", "body"}.
        self.requests: list[dict[str, Any]] = []
        self.routes: dict[str, Handler] = {"/v1/embeddings": self.embeddings}
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._url = ""

    @property
    def url(self) -> str:
        """Base URL for the SDK, ending in ``/v1`` (kept after the stub stops: a closed port)."""
        if not self._url:
            raise RuntimeError("OpenAIStub has not started; use it as a context manager")
        return self._url

    def __enter__(self) -> OpenAIStub:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _make_handler(self))
        self._server.daemon_threads = True
        host, port = self._server.server_address[:2]
        self._url = f"http://{host}:{port}/v1"
        threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True).start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def respond(
        self, path: str, headers: dict[str, str], body: dict[str, Any]
    ) -> tuple[int, dict[str, Any]]:
        """Apply the failure modes, then the route's handler."""
        with self._lock:
            self.requests.append({"path": path, "headers": headers, "body": body})
            failure = self._next_failure()
        if self.delay_s:
            time.sleep(self.delay_s)
        if failure:
            return failure
        auth = headers.get("authorization", "")
        if self.api_key is not None and auth != f"Bearer {self.api_key}":
            return 401, _error("Incorrect API key provided.", "invalid_request_error", "bad_key")
        handler = self.routes.get(path)
        if handler is None:
            return 404, _error(f"Unknown path {path}", "invalid_request_error", "not_found")
        return handler(body)

    def _next_failure(self) -> tuple[int, dict[str, Any]] | None:
        if self.fail_429 > 0:
            self.fail_429 -= 1
            return 429, _error("Rate limit reached.", "requests", "rate_limit_exceeded")
        if self.fail_500 > 0:
            self.fail_500 -= 1
            return 500, _error("The server had an error.", "server_error", None)
        return None

    def embeddings(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """OpenAI's embeddings response; vectors are a hash of each input, unit length."""
        inputs = body.get("input")
        if isinstance(inputs, str):
            inputs = [inputs]
        if not inputs or not all(isinstance(text, str) and text for text in inputs):
            message = "'input' must be a non-empty string or a list of them."
            return 400, _error(message, "invalid_request_error", None)
        dims = int(body.get("dimensions") or self.dimensions)
        as_base64 = body.get("encoding_format") == "base64"
        vectors = [_encode(vector_for(text, dims), as_base64) for text in inputs]
        data = [{"object": "embedding", "index": i, "embedding": v} for i, v in enumerate(vectors)]
        tokens = sum(len(text.split()) for text in inputs)
        usage = {"prompt_tokens": tokens, "total_tokens": tokens}
        return 200, {"object": "list", "data": data, "model": body.get("model"), "usage": usage}


def vector_for(text: str, dimensions: int) -> np.ndarray:
    """The stub's deterministic unit vector for ``text``."""
    seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")
    vector = np.random.default_rng(seed).standard_normal(dimensions).astype(np.float32)
    return vector / np.linalg.norm(vector)


def _encode(vector: np.ndarray, as_base64: bool) -> str | list[float]:
    if as_base64:
        return base64.b64encode(vector.astype("<f4").tobytes()).decode()
    return [float(x) for x in vector]


def _error(message: str, kind: str, code: str | None) -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "param": None, "code": code}}


def _make_handler(stub: OpenAIStub) -> type[BaseHTTPRequestHandler]:
    class _Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            length = int(self.headers.get("content-length") or 0)
            try:
                body = json.loads(self.rfile.read(length) or b"{}")
            except json.JSONDecodeError:
                self._send(400, _error("Body is not JSON.", "invalid_request_error", None))
                return
            headers = {key.lower(): value for key, value in self.headers.items()}
            self._send(*stub.respond(self.path, headers, body))

        def _send(self, status: int, payload: dict[str, Any]) -> None:
            raw = json.dumps(payload).encode()
            try:
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(raw)))
                if status in (429, 500):
                    self.send_header("retry-after-ms", str(stub.retry_after_ms))
                self.end_headers()
                self.wfile.write(raw)
            except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout test)
                pass

        def log_message(self, format: str, *args: Any) -> None:  # silence per-request logs
            pass

    return _Handler
