"""The SSE bridge: a client that goes away stops the answer at its next token."""

from __future__ import annotations

import asyncio
import threading

from fastapi.responses import StreamingResponse

from domainrag.server.streaming import AnswerStream, StreamCancelled
from domainrag.types import Answer


def test_a_disconnected_client_cancels_the_answer_at_its_next_token() -> None:
    produced: list[str] = []
    outcome: dict[str, object] = {}
    finished = threading.Event()

    def produce(on_token) -> Answer:
        try:
            for i in range(1000):
                on_token(f"t{i} ")
                produced.append(f"t{i}")
                threading.Event().wait(0.002)
        except StreamCancelled:
            outcome["cancelled"] = True
            raise
        finally:
            finished.set()
        raise AssertionError("the stream was never cancelled")

    async def client_reads_two_events_then_leaves() -> None:
        stream = AnswerStream(produce, lambda answer: outcome.setdefault("recorded", answer), timeout_s=10)
        response = await stream.response()
        assert isinstance(response, StreamingResponse)
        events = response.body_iterator
        first, second = await events.__anext__(), await events.__anext__()
        assert first.startswith("event: token") and second.startswith("event: token")
        await events.aclose()  # what Starlette does when the client disconnects

    asyncio.run(client_reads_two_events_then_leaves())
    assert finished.wait(10)
    assert outcome == {"cancelled": True}
    assert len(produced) < 1000


def test_no_event_within_the_timeout_is_a_504_problem() -> None:
    release = threading.Event()

    def produce(on_token) -> Answer:
        release.wait(5)
        raise StreamCancelled

    async def ask() -> object:
        return await AnswerStream(produce, lambda a: None, timeout_s=0.05).response()

    response = asyncio.run(ask())
    release.set()
    assert response.status_code == 504 and b"request_timeout_s" in response.body
