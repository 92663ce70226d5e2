"""Helpers the route modules share: the caller's knowledge base, blocking library calls run off
the event loop under the request timeout, and the problem responses every route documents."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from typing import Any, TypeVar

from fastapi import Request
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
                                (404, "Unknown collection, document, run or job"), (422, "Invalid request"),
                                (429, "Rate limit reached (Retry-After)"), (503, "A model or store is unavailable"))
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
        return await asyncio.wait_for(run_in_threadpool(functools.partial(fn, *args, **kwargs)), timeout)
    except TimeoutError:
        raise Timeout(f"The request took longer than {timeout:g} s (setting request_timeout_s). Ask for less "
                      "(a smaller k), or raise the limit.") from None


def scoped(caller: Principal) -> dict[str, Any]:
    """The access scope passed to every library read (``groups=``)."""
    return {"groups": caller.groups}
