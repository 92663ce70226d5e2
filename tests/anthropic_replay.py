"""A loopback server that replays recorded Anthropic Messages API responses, for tests.

It speaks the real wire protocol, so tests drive it with the real ``anthropic`` SDK::

    with AnthropicReplay(fail_529=1) as replay:
        client = anthropic.Anthropic(base_url=replay.url, api_key=replay.api_key)

``POST /v1/messages`` answers a non-streaming request with ``message`` (default: the recorded
``fixtures/anthropic/message.json``) and a ``"stream": true`` request with ``stream_body``
(default: the recorded SSE body ``fixtures/anthropic/stream.txt``, sent as
``text/event-stream``); pass either to the constructor, or assign the attribute, to replay
something else. The reply does not depend on the request; requests are recorded in
``requests``. Failure modes, with Anthropic's error bodies: the key is read from ``x-api-key``
or, as the anthropic 2.x SDK sends ``api_key``, from ``authorization: Bearer``; a key other
than ``api_key`` gets 401 (``authentication_error``); a missing ``anthropic-version`` header or
a body without ``model``/``max_tokens``/``messages`` gets 400; the first ``fail_429`` requests
get 429 (``rate_limit_error``) and the next ``fail_529`` get 529 (``overloaded_error``), both
with ``retry-after: <retry_after_s>``; every response waits ``delay_s`` first.
"""

from __future__ import annotations

import json
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

from loopback import JSONRequestHandler, LoopbackServer

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "anthropic"


class AnthropicReplay(LoopbackServer):
    """Serves ``POST /v1/messages`` on ``127.0.0.1`` (a free port) from a background thread."""

    def __init__(
        self,
        *,
        api_key: str = "replay-key",
        message: dict[str, Any] | None = None,
        stream_body: str | None = None,
        fail_429: int = 0,
        fail_529: int = 0,
        delay_s: float = 0.0,
        retry_after_s: float = 0.01,
    ) -> None:
        super().__init__()
        self.api_key = api_key
        if message is None:
            message = json.loads((FIXTURES / "message.json").read_text("utf-8"))
        if stream_body is None:
            stream_body = (FIXTURES / "stream.txt").read_text("utf-8")
        self.message = message
        self.stream_body = stream_body
        self.fail_429 = fail_429
        self.fail_529 = fail_529
        self.delay_s = delay_s
        self.retry_after_s = retry_after_s

    def handler(self) -> type[BaseHTTPRequestHandler]:
        return _make_handler(self)

    def respond(
        self, path: str, headers: dict[str, str], body: dict[str, Any]
    ) -> tuple[int, str, str]:
        """``(status, content type, body text)`` for one request, failure modes first."""
        failure = self.admit(path, headers, body)
        if failure:
            return failure
        bearer = headers.get("authorization", "").removeprefix("Bearer ")
        if self.api_key not in (headers.get("x-api-key"), bearer):
            return _error(401, "authentication_error", "invalid x-api-key")
        if "anthropic-version" not in headers:
            return _error(400, "invalid_request_error", "anthropic-version: header is required")
        if path != "/v1/messages":
            return _error(404, "not_found_error", f"Not found: {path}")
        missing = [key for key in ("model", "max_tokens", "messages") if key not in body]
        if missing:
            return _error(400, "invalid_request_error", f"{missing[0]}: Field required")
        if body.get("stream"):
            return 200, "text/event-stream; charset=utf-8", self.stream_body
        return 200, "application/json", json.dumps(self.message)

    def _next_failure(self) -> tuple[int, str, str] | None:
        if self.fail_429 > 0:
            self.fail_429 -= 1
            return _error(
                429, "rate_limit_error", "Number of requests has exceeded your rate limit."
            )
        if self.fail_529 > 0:
            self.fail_529 -= 1
            return _error(529, "overloaded_error", "Overloaded")
        return None


def _error(status: int, kind: str, message: str) -> tuple[int, str, str]:
    body = {
        "type": "error",
        "error": {"type": kind, "message": message},
        "request_id": "req_replay",
    }
    return status, "application/json", json.dumps(body)


def _make_handler(replay: AnthropicReplay) -> type[BaseHTTPRequestHandler]:
    class _Handler(JSONRequestHandler):
        def answer(self, path: str, headers: dict[str, str], body: Any) -> None:
            self._send(*replay.respond(path, headers, body))

        def not_json(self) -> None:
            self._send(*_error(400, "invalid_request_error", "Body is not valid JSON."))

        def _send(self, status: int, content_type: str, text: str) -> None:
            headers = {"request-id": "req_replay"}
            if status in (429, 529):
                headers["retry-after"] = str(replay.retry_after_s)
            self.send(status, content_type, text.encode(), headers)

    return _Handler
