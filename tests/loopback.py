"""The part every loopback test server shares: a threaded HTTP server on 127.0.0.1 (a free
port), started and stopped as a context manager, recording the requests it receives."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self


class LoopbackServer:
    """Subclasses give ``path`` (appended to the base URL) and ``handler()`` (the request
    handler class, which reaches the server object through a closure)."""

    path = ""

    def __init__(self) -> None:
        #: Every request received, in order: {"path", "headers", "body"}.
        self.requests: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._url = ""

    def handler(self) -> type[BaseHTTPRequestHandler]:
        raise NotImplementedError

    @property
    def url(self) -> str:
        """Base URL for an SDK (kept after the server stops: a closed port)."""
        if not self._url:
            raise RuntimeError(f"{type(self).__name__} has not started; use it as a context manager")
        return self._url

    def __enter__(self) -> Self:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self.handler())
        self._server.daemon_threads = True
        host, port = self._server.server_address[:2]
        self._url = f"http://{host}:{port}{self.path}"
        threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True).start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def admit(self, path: str, headers: dict[str, str], body: Any) -> Any:
        """Record the request; return its scripted failure response (``_next_failure()``), if
        any, after waiting ``delay_s``."""
        with self._lock:
            self.requests.append({"path": path, "headers": headers, "body": body})
            failure = self._next_failure()
        if getattr(self, "delay_s", 0):
            time.sleep(self.delay_s)
        return failure

    def _next_failure(self) -> Any:
        return None


class JSONRequestHandler(BaseHTTPRequestHandler):
    """Parses a POST's JSON body and hands it to ``answer(path, headers, body)``; a body that
    is not JSON goes to ``not_json()``. ``send(...)`` writes a whole response, quietly giving up
    when the client has gone (timeout tests)."""

    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        length = int(self.headers.get("content-length") or 0)
        try:
            body = json.loads(self.rfile.read(length) or b"{}")
        except json.JSONDecodeError:
            self.not_json()
            return
        self.answer(self.path, {key.lower(): value for key, value in self.headers.items()}, body)

    def answer(self, path: str, headers: dict[str, str], body: Any) -> None:
        raise NotImplementedError

    def not_json(self) -> None:
        raise NotImplementedError

    def send(self, status: int, content_type: str, raw: bytes, headers: dict[str, str] | None = None) -> None:
        try:
            self.send_response(status)
            self.send_header("content-type", content_type)
            self.send_header("content-length", str(len(raw)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(raw)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def log_message(self, format: str, *args: Any) -> None:  # silence per-request logs
        pass
