"""Request bodies bounded before anything reads them — before parsing and before the key check.

FastAPI reads and parses a JSON body before it resolves a route's dependencies (the API key
among them), so without this an anonymous client could make the server hold any body it sends.
:class:`BodyLimit` (ASGI middleware, outside the routes) answers 413 at once when the declared
``Content-Length`` is over the limit, and counts the bytes of a body sent without one (chunked),
refusing it the moment it passes the limit. The limit is ``max_body_kb`` for every request but an
upload (``POST /v1/collections/{c}/documents``), whose limit is ``max_upload_mb`` — uploads are
streamed to disk after the key check (:mod:`.uploads`)."""

from __future__ import annotations

import re

from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .problems import MEDIA_TYPE, problem_body

_UPLOAD = re.compile(r"^/v1/collections/[^/]+/documents/?$")


class BodyLimit:
    def __init__(self, app: ASGIApp, max_body_bytes: int, max_upload_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.max_upload_bytes = max_upload_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        upload = scope["method"] == "POST" and bool(_UPLOAD.match(scope.get("path", "")))
        limit = self.max_upload_bytes if upload else self.max_body_bytes
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            await _too_large(scope, receive, send, _message(declared, limit, upload))
            return
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise HTTPException(413, _message(received, limit, upload) + " (counted while receiving)")
            return message

        await self.app(scope, counted, send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            text = value.decode("latin-1").strip()
            return int(text) if text.isdigit() else None
    return None


def _message(size: int, limit: int, upload: bool) -> str:
    setting = "max_upload_mb" if upload else "max_body_kb"
    return (f"The request body is {size:,} bytes; the limit is {limit:,} bytes (setting {setting}). "
            + ("Split the upload into several requests." if upload else "Send less."))


async def _too_large(scope: Scope, receive: Receive, send: Send, detail: str) -> None:
    body = problem_body(413, detail, scope.get("path"))
    response = JSONResponse(body, status_code=413, media_type=MEDIA_TYPE, headers={"Connection": "close"})
    await response(scope, receive, send)
