"""Helpers the route modules share: the caller's knowledge base, blocking library calls run off
the event loop under the request timeout, JSON bodies encoded off the event loop, and the
problem responses every route documents."""

from __future__ import annotations

import asyncio
import functools
import json
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from fastapi import Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from ..kb import KnowledgeBase
from .access import Role, allow
from .keys import Principal
from .problems import MEDIA_TYPE, Timeout
from .schemas import Problem
from .state import server_state

T = TypeVar("T")

#: Problem responses listed in the OpenAPI document of every /v1 route.
PROBLEMS: dict[int | str, dict[str, Any]] = {
    status: {"model": Problem, "description": description, "content": {MEDIA_TYPE: {}}}
    for status, description in ((401, "No valid API key"), (403, "The key may not do this"),
                                (404, "Unknown collection, document, run or job"),
                                (409, "The collection holds no documents yet, or its index was built otherwise"),
                                (413, "The request body is over max_body_kb (max_upload_mb for uploads)"),
                                (422, "Invalid request"), (429, "Rate limit reached (Retry-After)"),
                                (503, "A model or store is unavailable"),
                                (504, "No answer within request_timeout_s"))
}


def kb_for(request: Request, caller: Principal, collection: str, role: Role) -> KnowledgeBase:
    """The knowledge base of ``collection`` after the access check (403 before 404, so a key
    learns nothing about collections it may not use)."""
    allow(caller, collection, role)
    return server_state(request).collections.get(collection)


async def blocking(request: Request, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """``fn(*args, **kwargs)`` in a worker thread, 504 past ``request_timeout_s`` (the thread
    finishes on its own; its result is dropped)."""
    timeout = server_state(request).settings.request_timeout_s
    try:
        async with asyncio.timeout(timeout):  # no extra task per call, unlike asyncio.wait_for
            return await run_in_threadpool(functools.partial(fn, *args, **kwargs))
    except TimeoutError:
        raise Timeout(f"The request took longer than {timeout:g} s (setting request_timeout_s). Ask for less "
                      "(a smaller k), or raise the limit.") from None


def scoped(caller: Principal) -> dict[str, Any]:
    """The access scope passed to every library read (``groups=``)."""
    return {"groups": caller.groups}


class JSONBytes(Response):
    """A JSON body already encoded (by :func:`encode_json`, in the worker thread that made it):
    the route declares its schema with ``responses={200: {"model": ...}}`` and
    ``response_model=None``, so FastAPI neither validates nor re-encodes what the library returned."""

    media_type = "application/json"


def encode_json(payload: Any) -> bytes:
    """``payload`` as compact UTF-8 JSON, as Starlette's ``JSONResponse`` writes it (NaN refused)."""
    return json.dumps(payload, ensure_ascii=False, allow_nan=False, separators=(",", ":"), default=_plain).encode()


def _plain(value: object) -> Any:
    if isinstance(value, Mapping):  # a read-only record (OpenRecord, MappingProxyType)
        return dict(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")
