"""A small deterministic OpenAI-protocol HTTP server on loopback, for tests.

It speaks the real wire protocol, so tests drive it with the real ``openai`` SDK::

    with OpenAIStub(fail_429=2) as stub:
        client = openai.OpenAI(base_url=stub.url, api_key=stub.api_key)

Routes live in ``OpenAIStub.routes`` (path -> handler taking the JSON body and returning
``(status, body)``, where body is a JSON dict or an iterator of SSE event strings, sent with
chunked transfer encoding). Failure modes, on every route: a wrong key gets 401; the first
``fail_429`` requests get 429 and the next ``fail_500`` get 500 (both with a short
``retry-after-ms``); every response waits ``delay_s`` first.

``POST /v1/embeddings``: unit vectors hashed from each input (``vector_for``).

``POST /v1/chat/completions``: the reply text is ``stub.chat_reply(body)``, replaceable per test::

    stub.chat_reply = lambda body: '{"answer": "yes"}'

By default (``default_reply``) it is the first sentence of the first ``<source id="N" ...>``
in the last user message, followed by `` [N]`` (no source: ``"I do not know."``). The model
echoes back as ``"<model>-stub-2026"``; ``max_tokens`` / ``max_completion_tokens`` cut the reply
to that many words (``finish_reason "length"``); token counts are whitespace word counts.
``"stream": true`` sends a role chunk, one chunk per word (concatenated: the reply), a chunk
with the finish_reason, a usage chunk when ``stream_options.include_usage``, then ``[DONE]``;
``stream_delay_s`` sleeps before each chunk. ``fail_midstream=N`` drops the connection after N
word chunks, before the terminating zero-length chunk: the SDK's iteration raises
``openai.APIConnectionError`` (the HTTP client sees an incomplete chunked body), so a cut-off
stream is never mistaken for a complete one.

A slow local server (llama.cpp on a CPU): ``slots=1`` serves one chat completion at a time, the
others queue in arrival order; each holds its slot ``service_s`` seconds (prompt processing).
Like llama.cpp's server, a request whose client has gone (timed out) is cancelled, queued or
in service, and frees its slot; with ``cancel_abandoned=False`` (like llama-cpp-python's server)
it is served all the same, holding the slot for nothing. ``max_in_service`` is the most requests ever served at once,
``cancelled`` how many were cancelled.

Fault injection per request: ``stub.fault = lambda body: ...`` returns None (answer normally) or
``"500"`` (HTTP 500, which the SDK retries), ``"hang"`` (never answer: the client times out),
``"cut"`` (the response body stops halfway and the connection closes) or ``"drop"`` (the
connection closes without a response). ``last_user(body)`` is the text of the last user message.
``chat_requests`` lists the chat completion requests received (SDK retries included).
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import select
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler
from typing import Any

import numpy as np
from loopback import JSONRequestHandler, LoopbackServer

CUT = "cut"    # payload: send half of a completion's body, then hang up
DROP = "drop"  # payload: hang up without a response
Payload = dict[str, Any] | Iterator[str] | str  # a JSON body, SSE events to stream, CUT or DROP
Handler = Callable[[dict[str, Any]], tuple[int, Payload]]
ClientGone = Callable[[], bool]
FAULTS = ("500", "hang", "cut", "drop")

_SOURCE = re.compile(r'<source id="([^"]+)"[^>]*>(.*?)</source>', re.DOTALL)
_SENTENCE = re.compile(r".*?[.!?。]", re.DOTALL)
_WORD = re.compile(r"\s*\S+\s*")  # one word with the whitespace around it


class OpenAIStub(LoopbackServer):
    path = "/v1"
    """Serves the routes on ``127.0.0.1`` (a free port) from a background thread."""

    def __init__(
        self,
        *,
        api_key: str | None = "stub-key",
        dimensions: int = 16,
        fail_429: int = 0,
        fail_500: int = 0,
        delay_s: float = 0.0,
        retry_after_ms: int = 10,
        stream_delay_s: float = 0.0,
        fail_midstream: int | None = None,
        slots: int | None = None,
        service_s: float = 0.0,
        cancel_abandoned: bool = True,
    ) -> None:
        super().__init__()
        self.api_key = api_key  # None: any key (or none) is accepted
        self.dimensions = dimensions
        self.fail_429 = fail_429
        self.fail_500 = fail_500
        self.delay_s = delay_s
        self.retry_after_ms = retry_after_ms
        self.stream_delay_s = stream_delay_s
        self.fail_midstream = fail_midstream  # None: streams finish
        self.slots = slots  # None: every request is served at once
        self.service_s = service_s
        self.cancel_abandoned = cancel_abandoned
        #: The chat reply for a request body; replace it to script answers.
        self.chat_reply: Callable[[dict[str, Any]], str] = default_reply
        #: A fault to inject for a chat request body (one of FAULTS), or None.
        self.fault: Callable[[dict[str, Any]], str | None] = lambda body: None
        self.max_in_service = 0
        self.cancelled = 0
        self._queue: deque[object] = deque()
        self._turn = threading.Condition(self._lock)
        self._closing = threading.Event()
        self.routes: dict[str, Handler] = {
            "/v1/embeddings": self.embeddings,
            "/v1/chat/completions": self.chat_completions,
        }
        self._completions = 0

    def handler(self) -> type[BaseHTTPRequestHandler]:
        return _make_handler(self)

    def __exit__(self, *exc_info: object) -> None:
        self._closing.set()  # hung requests end
        super().__exit__(*exc_info)

    @property
    def chat_requests(self) -> list[dict[str, Any]]:
        """The chat completion requests received so far (each SDK retry too)."""
        with self._lock:
            return [r for r in self.requests if r["path"] == "/v1/chat/completions"]

    def respond(
        self,
        path: str,
        headers: dict[str, str],
        body: dict[str, Any],
        gone: ClientGone = lambda: False,
    ) -> tuple[int, Payload]:
        """Apply the failure modes, then the route's handler; ``gone`` says whether the client
        has hung up (slow and hung requests are cancelled then)."""
        failure = self.admit(path, headers, body)
        if failure:
            return failure
        auth = headers.get("authorization", "")
        if self.api_key is not None and auth != f"Bearer {self.api_key}":
            return 401, _error("Incorrect API key provided.", "invalid_request_error", "bad_key")
        handler = self.routes.get(path)
        if handler is None:
            return 404, _error(f"Unknown path {path}", "invalid_request_error", "not_found")
        if path == "/v1/chat/completions":
            fault = self.fault(body)
            if fault == "500":
                return 500, _error("The server had an error.", "server_error", None)
            if fault == "hang":
                while not (gone() or self._closing.wait(0.02)):
                    pass
                return 0, DROP
            if fault in (CUT, DROP):
                return 200 if fault == CUT else 0, fault
            if not self._serve(gone):
                with self._lock:
                    self.cancelled += 1
                return 0, DROP  # cancelled: the client is gone
        return handler(body)

    def _serve(self, gone: ClientGone) -> bool:
        """Hold one of ``slots`` for ``service_s`` (queued in arrival order); False when the
        client left first."""
        ticket = object()
        if not self.cancel_abandoned:
            gone = lambda: False  # noqa: E731 - the work is done whether anyone waits or not
        with self._turn:
            self._queue.append(ticket)
        try:
            with self._turn:
                while self.slots is not None and self._queue.index(ticket) >= self.slots:
                    if gone():
                        return False
                    self._turn.wait(0.02)
                served = len(self._queue) if self.slots is None else min(self.slots, len(self._queue))
                self.max_in_service = max(self.max_in_service, served)
            end = time.monotonic() + self.service_s
            while time.monotonic() < end:
                if gone():
                    return False
                time.sleep(min(0.02, max(0.0, end - time.monotonic())))
            return True
        finally:
            with self._turn:
                self._leave(ticket)

    def _leave(self, ticket: object) -> None:
        if ticket in self._queue:
            self._queue.remove(ticket)
        self._turn.notify_all()

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

    def chat_completions(self, body: dict[str, Any]) -> tuple[int, Payload]:
        """OpenAI's chat completion (or its chunk stream) for ``self.chat_reply(body)``."""
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages or not body.get("model"):
            message = "'model' and a non-empty 'messages' list are required."
            return 400, _error(message, "invalid_request_error", None)
        words = _WORD.findall(self.chat_reply(body).strip())
        limit = body.get("max_completion_tokens") or body.get("max_tokens")
        finish_reason = "stop"
        if limit is not None and len(words) > limit:
            words, finish_reason = words[:limit], "length"
            words[-1] = words[-1].rstrip()
        with self._lock:
            self._completions += 1
            number = self._completions
        prompt_tokens = sum(len(_text(m.get("content")).split()) for m in messages)
        usage = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": len(words),
            "total_tokens": prompt_tokens + len(words),
        }
        head = {
            "id": f"chatcmpl-stub{number}",
            "created": int(time.time()),
            "model": f"{body['model']}-stub-2026",
            "system_fingerprint": "fp_stub",
        }
        if body.get("stream"):
            include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
            return 200, self._chunks(head, words, finish_reason, usage if include_usage else None)
        message = {
            "role": "assistant",
            "content": "".join(words),
            "refusal": None,
            "annotations": [],
        }
        choice = {"index": 0, "message": message, "logprobs": None, "finish_reason": finish_reason}
        return 200, {**head, "object": "chat.completion", "choices": [choice], "usage": usage}

    def _chunks(
        self,
        head: dict[str, Any],
        words: list[str],
        finish_reason: str,
        usage: dict[str, int] | None,
    ) -> Iterator[str]:
        def chunk(choices: list[dict[str, Any]], **extra: Any) -> str:
            if usage is not None:  # as OpenAI does: every chunk has "usage", null but the last
                extra.setdefault("usage", None)
            payload = {**head, "object": "chat.completion.chunk", "choices": choices, **extra}
            time.sleep(self.stream_delay_s)
            return f"data: {json.dumps(payload)}\n\n"

        def choice(delta: dict[str, Any], finish: str | None = None) -> list[dict[str, Any]]:
            return [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]

        yield chunk(choice({"role": "assistant", "content": ""}))
        for sent, word in enumerate(words):
            if sent == self.fail_midstream:
                raise ConnectionAbortedError("fail_midstream")
            yield chunk(choice({"content": word}))
        yield chunk(choice({}, finish_reason))
        if usage is not None:
            yield chunk([], usage=usage)
        yield "data: [DONE]\n\n"


def default_reply(body: dict[str, Any]) -> str:
    """First sentence of the first ``<source id="N">`` in the last user message, then `` [N]``."""
    users = [m for m in body.get("messages", []) if m.get("role") == "user"]
    found = _SOURCE.search(_text(users[-1].get("content"))) if users else None
    if found is None:
        return "I do not know."
    source_id, text = found.groups()
    sentence = _SENTENCE.match(text.strip())
    return f"{' '.join((sentence.group() if sentence else text).split())} [{source_id}]"


def last_user(body: dict[str, Any]) -> str:
    """The text of the last user message of a chat request body."""
    users = [m for m in body.get("messages", []) if m.get("role") == "user"]
    return _text(users[-1].get("content")) if users else ""


def _text(content: Any) -> str:
    """A message's text: a string, or the text parts of a content list."""
    if isinstance(content, list):
        return " ".join(part.get("text", "") for part in content if isinstance(part, dict))
    return content if isinstance(content, str) else ""


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
    class _Handler(JSONRequestHandler):
        def answer(self, path: str, headers: dict[str, str], body: Any) -> None:
            status, payload = stub.respond(path, headers, body, self._client_gone)
            if payload == DROP:
                self.close_connection = True
            elif payload == CUT:
                self._cut(body)
            elif isinstance(payload, dict):
                self._send(status, payload)
            elif not isinstance(payload, str):
                self._stream(status, payload)

        def _client_gone(self) -> bool:
            """True when the client has closed the connection (it timed out and hung up)."""
            try:
                readable, _, _ = select.select([self.connection], [], [], 0)
                return bool(readable) and self.connection.recv(1, socket.MSG_PEEK) == b""
            except OSError:
                return True

        def _cut(self, body: Any) -> None:
            """A whole completion's headers, then half its body, then hang up."""
            _, completion = stub.chat_completions({**body, "stream": False})
            raw = json.dumps(completion).encode()
            try:
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw[: len(raw) // 2])
                self.wfile.flush()
            except ConnectionError:
                pass
            self.close_connection = True

        def not_json(self) -> None:
            self._send(400, _error("Body is not JSON.", "invalid_request_error", None))

        def _send(self, status: int, payload: dict[str, Any]) -> None:
            retry = {"retry-after-ms": str(stub.retry_after_ms)} if status in (429, 500) else {}
            self.send(status, "application/json", json.dumps(payload).encode(), retry)

        def _stream(self, status: int, events: Iterator[str]) -> None:
            """Send SSE events with chunked transfer encoding, one HTTP chunk per event."""
            try:
                self.send_response(status)
                self.send_header("content-type", "text/event-stream; charset=utf-8")
                self.send_header("transfer-encoding", "chunked")
                self.end_headers()
                for event in events:
                    raw = event.encode()
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(raw), raw))
                    self.wfile.flush()
                self.wfile.write(b"0\r\n\r\n")
            except ConnectionError:  # fail_midstream, or the client gave up: just hang up
                self.close_connection = True

    return _Handler
