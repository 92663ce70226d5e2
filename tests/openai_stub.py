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
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler
from typing import Any

import numpy as np
from loopback import JSONRequestHandler, LoopbackServer

Payload = dict[str, Any] | Iterator[str]  # a JSON body, or SSE events to stream
Handler = Callable[[dict[str, Any]], tuple[int, Payload]]

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
        #: The chat reply for a request body; replace it to script answers.
        self.chat_reply: Callable[[dict[str, Any]], str] = default_reply
        self.routes: dict[str, Handler] = {
            "/v1/embeddings": self.embeddings,
            "/v1/chat/completions": self.chat_completions,
        }
        self._completions = 0

    def handler(self) -> type[BaseHTTPRequestHandler]:
        return _make_handler(self)

    def respond(
        self, path: str, headers: dict[str, str], body: dict[str, Any]
    ) -> tuple[int, Payload]:
        """Apply the failure modes, then the route's handler."""
        failure = self.admit(path, headers, body)
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
            status, payload = stub.respond(path, headers, body)
            if isinstance(payload, dict):
                self._send(status, payload)
            else:
                self._stream(status, payload)

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
