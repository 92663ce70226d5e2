"""Who is calling and what they may do: the ``Authorization: Bearer`` key verified through the
:class:`~.keys.KeyStore`, its rate limit, its role and collections. With no key configured (a
loopback-only server) every caller is the local admin.

A public (non-loopback) server never falls back to the local admin, even when every key has
been revoked. A key that may not use a collection gets the same 403 whether the collection exists or not.

The check runs on the event loop (no worker-thread hop per request): a key verified before is
answered from the key store's memory (:meth:`~.keys.KeyStore.peek`); only a key not seen since
the key file last changed, or one whose ``last_used`` is due a write, is looked up in a worker
thread."""

from __future__ import annotations

import math
from typing import Annotated, Literal

from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool

from .keys import LOCAL_ADMIN, Principal
from .problems import Forbidden, TooManyRequests, Unauthorized
from .settings import ServerSettings, is_loopback
from .state import server_state

Role = Literal["read", "write", "admin"]
_VERB = {"read": "read", "write": "write to", "admin": "administer"}


async def principal(request: Request) -> Principal:
    """The caller (a FastAPI dependency): 401 without a valid key, 429 over its rate limit."""
    state = server_state(request)
    keys = state.keys
    if _local(state.settings):
        any_keys = keys.peek_any()
        if any_keys is None:
            any_keys = await run_in_threadpool(keys.any_keys)
        if not any_keys:
            return LOCAL_ADMIN
    secret = _bearer(request.headers.get("authorization"))
    found = keys.peek(secret) or await run_in_threadpool(keys.verify, secret)
    if found is None:
        raise Unauthorized("The API key is not valid (unknown or revoked). Ask an admin for one "
                           "('domainrag keys create') and send it as 'Authorization: Bearer <key>'.")
    request.state.principal = found.name
    wait = state.limiter.check(found.name)
    if wait is not None:
        per_minute = state.settings.rate_limit_per_minute
        raise TooManyRequests(f"Key {found.name!r} is over its limit of {per_minute} requests per minute "
                              f"(setting rate_limit_per_minute); retry in {wait:.1f} s.", math.ceil(wait))
    return found


def _local(settings: ServerSettings) -> bool:
    """Whether a caller without a key is the local admin: only while no key exists on a
    loopback (or --insecure) server — a public server whose keys were all revoked stays closed."""
    return is_loopback(settings.host) or settings.insecure


def _bearer(header: str | None) -> str:
    scheme, _, secret = (header or "").partition(" ")
    if scheme.lower() != "bearer" or not secret.strip():
        raise Unauthorized("This server needs an API key: send 'Authorization: Bearer <key>'.")
    return secret.strip()


Caller = Annotated[Principal, Depends(principal)]


def allow(caller: Principal, collection: str, role: Role) -> None:
    """403 unless ``caller`` may ``role`` on ``collection`` (the same body whether it exists or not)."""
    if not caller.may_use(collection):
        raise Forbidden(f"Key {caller.name!r} may not {_VERB[role]} collection {collection!r}. "
                        "Ask an admin for a key that covers it.")
    require(caller, role, f"{_VERB[role]} collection {collection!r}")


def require(caller: Principal, role: Role, action: str) -> None:
    if not caller.allows(role):
        raise Forbidden(f"Key {caller.name!r} (role {caller.role}) may not {action}: that needs role {role}. "
                        "Ask an admin for a key with that role.")


def unrestricted(caller: Principal, what: str) -> None:
    """403 unless the caller reads every document (admin, or groups '*')."""
    if caller.groups is not None:
        raise Forbidden(f"Key {caller.name!r} may not read {what}: they can quote documents outside its groups, "
                        "so they are shown only to keys without a group restriction (role admin, or --groups '*').")
