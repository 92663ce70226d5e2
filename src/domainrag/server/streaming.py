"""Server-sent events for a streamed answer: ``kb.ask(..., on_token=...)`` runs in a worker thread
that feeds an asyncio queue; events are ``token`` (``{"text": ...}``), then one ``answer``
(``Answer.to_dict()``) or one ``error`` (problem details).

An error found before the first token (an empty question, an unknown model) is an ordinary
problem response with its status, not a stream. When the client disconnects, forwarding stops
and the next token the model produces raises inside the worker: the model's stream is closed
(its HTTP connection with it) and nothing is stored. What cannot be cancelled: retrieval and a
model call that is not streaming yet (it ends at its own timeout, its result is dropped)."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

from fastapi.responses import JSONResponse, StreamingResponse

from ..errors import DomainragError
from ..types import Answer
from .problems import MEDIA_TYPE, debug, error_body, problem_body

log = logging.getLogger("domainrag.server")
Event = tuple[str, Any]
OnToken = Callable[[str], None]


class StreamCancelled(Exception):
    """Raised from ``on_token`` after the client went away: it unwinds the answer pipeline."""


class AnswerStream:
    def __init__(self, produce: Callable[[OnToken], Answer], on_answer: Callable[[Answer], None],
                 timeout_s: float, private_paths: Sequence[tuple[str, str]] = ()) -> None:
        self._private_paths = private_paths
        self._produce = produce
        self._on_answer = on_answer
        self._timeout = timeout_s
        self._queue: asyncio.Queue[Event] = asyncio.Queue()
        self._cancelled = threading.Event()
        self._loop = asyncio.get_running_loop()

    async def response(self) -> JSONResponse | StreamingResponse:
        threading.Thread(target=self._work, name="answer-stream", daemon=True).start()
        first = await self._next()
        if first[0] == "error":
            self._cancelled.set()
            return JSONResponse(first[1], status_code=first[1]["status"], media_type=MEDIA_TYPE)
        return StreamingResponse(self._events(first), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    async def _events(self, first: Event) -> AsyncIterator[str]:
        event = first
        try:
            while True:
                yield f"event: {event[0]}\ndata: {json.dumps(event[1], ensure_ascii=False)}\n\n"
                if event[0] != "token":
                    return
                event = await self._next()
        finally:
            self._cancelled.set()

    async def _next(self) -> Event:
        try:
            return await asyncio.wait_for(self._queue.get(), self._timeout)
        except TimeoutError:
            self._cancelled.set()
            return "error", problem_body(504, f"No answer within {self._timeout:g} s (setting request_timeout_s).")

    def _on_token(self, text: str) -> None:
        if self._cancelled.is_set():
            raise StreamCancelled
        self._put(("token", {"text": text}))

    def _work(self) -> None:
        try:
            answer = self._produce(self._on_token)
        except StreamCancelled:
            return
        except DomainragError as exc:
            self._put(("error", error_body(exc, None, self._private_paths)))
            return
        except Exception as exc:
            log.error("streamed answer failed: %s", type(exc).__name__, exc_info=debug())
            self._put(("error", error_body(exc)))
            return
        self._on_answer(answer)
        self._put(("answer", answer.to_dict()))

    def _put(self, event: Event) -> None:
        try:
            self._loop.call_soon_threadsafe(self._queue.put_nowait, event)
        except RuntimeError:  # the event loop has closed: nobody is listening any more
            self._cancelled.set()
