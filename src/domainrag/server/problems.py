"""Every error the server returns is an RFC 9457 problem document (``application/problem+json``):
``{type, title, status, detail, instance, errors?}``. Library errors map to a status here, in
one place; an unexpected exception is a 500 naming the request id, never a traceback (the log
has the traceback only with ``DOMAINRAG_DEBUG=1``)."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..errors import (
    ConfigError,
    CorruptKnowledgeBase,
    DomainragError,
    EmbeddingError,
    EmptyKnowledgeBase,
    GenerationError,
    IndexMismatchError,
    KnowledgeBaseNotFound,
    LoaderError,
    MissingDependencyError,
)

MEDIA_TYPE = "application/problem+json"
log = logging.getLogger("domainrag.server")


class HTTPProblem(DomainragError):
    """An error of the server itself, with its HTTP status."""

    status = 400

    def __init__(self, detail: str, *, headers: Mapping[str, str] | None = None,
                 errors: Sequence[Mapping[str, Any]] | None = None) -> None:
        super().__init__(detail)
        self.headers = dict(headers or {})
        self.errors = list(errors or [])


class Unauthorized(HTTPProblem):
    status = 401

    def __init__(self, detail: str) -> None:
        super().__init__(detail, headers={"WWW-Authenticate": "Bearer"})


class Forbidden(HTTPProblem):
    status = 403


class NotFound(HTTPProblem):
    status = 404


class Conflict(HTTPProblem):
    status = 409


class PayloadTooLarge(HTTPProblem):
    status = 413


class UnsupportedType(HTTPProblem):
    status = 415


class Invalid(HTTPProblem):
    status = 422


class TooManyRequests(HTTPProblem):
    status = 429

    def __init__(self, detail: str, retry_after: int) -> None:
        super().__init__(detail, headers={"Retry-After": str(retry_after)})


class Unavailable(HTTPProblem):
    status = 503


class Timeout(HTTPProblem):
    status = 504


#: Library errors by status; the first class that matches wins (subclasses first).
LIBRARY_STATUS: tuple[tuple[type[DomainragError], int], ...] = (
    (KnowledgeBaseNotFound, 404),
    (IndexMismatchError, 409),
    (EmptyKnowledgeBase, 409),
    (MissingDependencyError, 503),
    (CorruptKnowledgeBase, 503),
    (EmbeddingError, 503),
    (GenerationError, 503),
    (LoaderError, 422),
    (ConfigError, 422),
)


def status_of(exc: DomainragError) -> int:
    if isinstance(exc, HTTPProblem):
        return exc.status
    return next((status for cls, status in LIBRARY_STATUS if isinstance(exc, cls)), 400)


def problem(status: int, detail: str, request: Request | None = None, *,
            errors: Sequence[Mapping[str, Any]] | None = None,
            headers: Mapping[str, str] | None = None) -> JSONResponse:
    body = problem_body(status, detail, request.url.path if request else None, errors)
    return JSONResponse(body, status_code=status, media_type=MEDIA_TYPE, headers=dict(headers or {}))


def problem_body(status: int, detail: str, instance: str | None = None,
                 errors: Sequence[Mapping[str, Any]] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"type": "about:blank", "title": HTTPStatus(status).phrase, "status": status,
                            "detail": detail}
    if instance:
        body["instance"] = instance
    if errors:
        body["errors"] = list(errors)
    return body


def error_body(exc: BaseException, instance: str | None = None,
               private_paths: Sequence[tuple[str, str]] = ()) -> dict[str, Any]:
    """The problem document for ``exc`` (an unexpected one says only that it happened), the
    server's ``private_paths`` replaced in its message (:func:`for_client`)."""
    if isinstance(exc, DomainragError):
        errors = exc.errors if isinstance(exc, HTTPProblem) else None
        return problem_body(status_of(exc), for_client(str(exc), private_paths), instance, errors)
    return problem_body(500, "The server failed on this request; the log has the details under its request id.",
                        instance)


def for_client(detail: str, private_paths: Sequence[tuple[str, str]]) -> str:
    """``detail`` with the server's folders (its home, the knowledge bases it serves) named as
    ``<server home>``/``<collection NAME>``: a caller learns nothing of the server's files."""
    for path, shown in private_paths:
        detail = detail.replace(path, shown)
    return detail


def validation_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    """Each invalid field as ``{"field": "body.k", "message": ...}``."""
    return [{"field": ".".join(str(p) for p in e.get("loc", ())), "message": e.get("msg", "invalid")}
            for e in exc.errors()]


def install(app: FastAPI) -> None:
    """Register the handlers that turn every error into a problem document."""

    async def on_domainrag(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, DomainragError)
        headers = exc.headers if isinstance(exc, HTTPProblem) else None
        server = getattr(request.app.state, "server", None)
        body = error_body(exc, request.url.path, getattr(server, "private_paths", ()))
        return JSONResponse(body, status_code=body["status"], media_type=MEDIA_TYPE, headers=headers)

    async def on_validation(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        errors = validation_errors(exc)
        fields = ", ".join(f"{e['field']} ({e['message']})" for e in errors)
        return problem(422, f"Invalid request: {fields}. See /docs for the expected body.", request, errors=errors)

    async def on_http(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        return problem(exc.status_code, _http_detail(request, exc), request, headers=exc.headers)

    app.add_exception_handler(DomainragError, on_domainrag)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)


def _http_detail(request: Request, exc: StarletteHTTPException) -> str:
    if exc.status_code == 404:
        return f"No such route: {request.method} {request.url.path}. The routes are listed at /docs."
    if exc.status_code == 405:
        return f"{request.method} is not allowed on {request.url.path}. The routes are listed at /docs."
    return str(exc.detail)


def debug() -> bool:
    """``DOMAINRAG_DEBUG=1``: tracebacks of unexpected errors go to the log."""
    return bool(os.environ.get("DOMAINRAG_DEBUG"))
