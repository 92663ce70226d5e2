"""Requests in flight per API key (``max_concurrent_per_key``), besides the per-minute rate limit:
a key cannot hold every worker thread with slow requests (long answers, big searches).

ASGI middleware: a request carrying ``Authorization: Bearer <key>`` over the key's limit gets a
429 at once, before anything else runs; its count is released when its response has been sent
(streams included). Keys are told apart by a hash of the secret (it is not verified here: a
wrong key gets its 401 from the routes). A caller without a key (the local admin of a loopback
server with no keys) is not counted."""

from __future__ import annotations

import hashlib

from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from .problems import MEDIA_TYPE, problem_body


class ConcurrencyLimit:
    def __init__(self, app: ASGIApp, per_key: int) -> None:
        self.app = app
        self.per_key = per_key
        self.in_flight: dict[str, int] = {}   # touched only on the event loop: no lock

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        key = _key(scope) if scope["type"] == "http" else None
        if key is None:
            await self.app(scope, receive, send)
            return
        if self.in_flight.get(key, 0) >= self.per_key:
            detail = (f"This key already has {self.per_key} requests in flight (setting max_concurrent_per_key); "
                      "retry when one has finished.")
            response = JSONResponse(problem_body(429, detail, scope.get("path")), status_code=429,
                                    media_type=MEDIA_TYPE, headers={"Retry-After": "1"})
            await response(scope, receive, send)
            return
        self.in_flight[key] = self.in_flight.get(key, 0) + 1
        try:
            await self.app(scope, receive, send)
        finally:
            left = self.in_flight[key] - 1
            if left:
                self.in_flight[key] = left
            else:
                del self.in_flight[key]


def _key(scope: Scope) -> str | None:
    for name, value in scope.get("headers", []):
        if name == b"authorization":
            scheme, _, secret = value.partition(b" ")
            if scheme.lower() == b"bearer" and secret.strip():
                return hashlib.sha256(secret.strip()).hexdigest()[:32]
    return None
