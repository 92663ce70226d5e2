"""``/mcp`` of ``domainrag serve``: MCP over Streamable HTTP inside the REST API's application.

Each HTTP request is checked as a REST request is — the ``Authorization: Bearer`` key verified by
:func:`..access.principal` (the local admin only on a loopback server with no keys), its
per-minute rate limit, and the app's middleware before that (body limit, requests in flight per
key, request ids and logs) — and the principal rides in the request's scope to the tool, which
reads with its collections and groups. The transport is stateless with JSON responses: every
POST stands alone, so no session can outlive a revoked key or pass from one key to another.
On a loopback bind the SDK's DNS-rebinding protection checks ``Host`` and ``Origin``."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Message, Receive, Scope, Send

from ..access import principal
from ..keys import Principal
from ..problems import Forbidden, HTTPProblem, problem
from ..settings import ServerSettings, is_loopback
from ..state import ServerState
from .service import McpService
from .surrogates import mark_lone_surrogates

#: Where the verified principal travels in the ASGI scope's state.
CALLER = "domainrag_principal"


class McpEndpoint:
    """The ASGI application answering ``/mcp`` (its session manager runs in the app's lifespan)."""

    #: The route template the request log and metrics name (read from ``scope["route"]``).
    path = "/mcp"

    def __init__(self, state: ServerState) -> None:
        from mcp.server.streamable_http_manager import StreamableHTTPSessionManager

        from .protocol import build_server

        settings = state.settings
        service = McpService(state.collections, models=settings.models, on_answer=state.metrics.answer,
                             descriptions={n: s.description for n, s in settings.collections.items() if s.description})
        server = build_server(service, caller_of, timeout_s=settings.request_timeout_s,
                              private_paths=state.private_paths)
        self.manager = StreamableHTTPSessionManager(app=server, json_response=True, stateless=True,
                                                    security_settings=_security(settings),
                                                    max_request_body_size=settings.max_body_bytes)

    def run(self) -> AbstractAsyncContextManager[None]:
        return self.manager.run()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope["route"] = self
        request = Request(scope, receive)
        try:
            caller = await principal(request)
        except HTTPProblem as exc:
            await problem(exc.status, str(exc), request, headers=exc.headers)(scope, receive, send)
            return
        scope.setdefault("state", {})[CALLER] = caller
        if scope["method"] == "POST":
            receive = _replay(mark_lone_surrogates(await request.body()), receive)
        await self.manager.handle_request(scope, receive, send)


def _replay(body: bytes, original: Receive) -> Receive:
    """A ``receive`` that hands over ``body`` (already read, within the app's body limit), then
    waits on ``original`` (for the client's disconnect)."""
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if sent:
            return await original()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return receive


def caller_of(ctx: Any) -> Principal:
    """The principal :class:`McpEndpoint` verified for the HTTP request behind ``ctx``."""
    request = getattr(ctx, "request", None)
    caller = request.scope.get("state", {}).get(CALLER) if request is not None else None
    if not isinstance(caller, Principal):
        raise Forbidden("This request carries no verified API key.")
    return caller


def _security(settings: ServerSettings) -> Any:
    from mcp.server.transport_security import TransportSecuritySettings

    if not is_loopback(settings.host):
        return TransportSecuritySettings(enable_dns_rebinding_protection=False)
    return TransportSecuritySettings(
        enable_dns_rebinding_protection=True,
        allowed_hosts=["127.0.0.1:*", "localhost:*", "[::1]:*", "127.0.0.1", "localhost", "[::1]"],
        allowed_origins=["http://127.0.0.1:*", "http://localhost:*", "http://[::1]:*", *settings.cors_origins])


async def missing_sdk(request: Request) -> Response:
    """``/mcp`` when the SDK is not installed: a problem naming the extra."""
    return problem(503, "MCP needs the official SDK on the server: pip install \"domainrag[mcp]\", then restart it.",
                   request)
