"""``create_app(settings)``: the ASGI application of ``domainrag serve`` — routes, access
control, problem details, request ids and JSON logs, metrics, CORS (only when configured), the
offline ``/docs`` page and the web UI at ``/``."""

from __future__ import annotations

import importlib
import importlib.util
import logging
import re
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import MutableHeaders
from starlette.routing import Match, Mount, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .. import __version__
from ..config import KBConfig
from ..errors import DomainragError, make_folder
from ..index.postgres_connect import is_postgres_url
from ..ingest.loading import loaders_by_extension
from . import api_answers, api_collections, api_runs, api_verify, problems
from .access import principal
from .bodies import BodyLimit
from .collections import Collections
from .concurrency import ConcurrencyLimit
from .docs_page import DOCS_HTML
from .jobs import JobRunner, JobStore
from .keys import KEYS_FILE, KeyStore
from .mcp.http import McpEndpoint, missing_sdk
from .metrics import CONTENT_TYPE, Metrics
from .problems import Forbidden
from .ratelimit import RateLimiter
from .schemas import DocumentsUpload, Health, Problem
from .settings import ServerSettings
from .state import ServerState, server_state
from .uploads import Limits

log = logging.getLogger("domainrag.server")
STATIC = Path(__file__).parent / "static"
#: Paths the web UI never answers (so an API path gets its 404 or 405, not a missing file).
API_PATHS = ("/v1", "/mcp", "/healthz", "/readyz", "/metrics", "/docs", "/openapi.json")
SHUTDOWN_GRACE_S = 10.0
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


def create_app(settings: ServerSettings) -> FastAPI:
    """The application serving ``settings``' collections from ``settings.home``."""
    state = build_state(settings)

    mcp = _mcp_endpoint(state)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        resumed = state.jobs.resume()
        if resumed:
            log.info("resumed %d unfinished ingest job(s)", len(resumed))
        async with AsyncExitStack() as stack:
            if mcp is not None:
                await stack.enter_async_context(mcp.run())
            yield
        state.jobs.stop(SHUTDOWN_GRACE_S)
        state.collections.close()
        state.jobs.store.close()

    app = FastAPI(title="domainrag", version=__version__, lifespan=lifespan, docs_url=None, redoc_url=None,
                  description="Grounded answers with checked citations over your own documents.")
    app.state.server = state
    problems.install(app)
    _routes(app)
    app.router.routes.append(Route(McpEndpoint.path, endpoint=mcp or missing_sdk, include_in_schema=False))
    _document_models(app, DocumentsUpload)
    if settings.cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=settings.cors_origins, allow_methods=["*"],
                           allow_headers=["Authorization", "Content-Type"], expose_headers=["X-Request-ID"])
    app.add_middleware(ConcurrencyLimit, per_key=settings.max_concurrent_per_key)
    app.add_middleware(BodyLimit, max_body_bytes=settings.max_body_bytes, max_upload_bytes=settings.max_upload_bytes)
    app.add_middleware(RequestContext, metrics=state.metrics)
    if STATIC.is_dir():
        app.router.routes.append(_UI("/", app=StaticFiles(directory=STATIC, html=True), name="ui"))
    return app


def _mcp_endpoint(state: ServerState) -> McpEndpoint | None:
    """``/mcp`` (MCP over Streamable HTTP), when the SDK is installed (the ``mcp`` extra)."""
    if importlib.util.find_spec("mcp") is None:
        return None
    return McpEndpoint(state)


def build_state(settings: ServerSettings) -> ServerState:
    home = make_folder(settings.home, "server home", "Point --home (or $DOMAINRAG_HOME, or home in server.toml) "
                       "at a folder, or at a path where one can be created.")
    metrics = Metrics()
    collections = Collections(home, {name: spec.path for name, spec in settings.collections.items()})
    jobs = JobRunner(JobStore(home / "jobs.sqlite3"), collections, home / "uploads", on_finish=metrics.job)
    return ServerState(settings=settings, collections=collections, jobs=jobs, keys=KeyStore(home / KEYS_FILE),
                       limiter=RateLimiter(settings.rate_limit_per_minute), metrics=metrics,
                       limits=Limits(settings.max_upload_bytes, settings.max_files, _suffixes(settings)),
                       private_paths=_private_paths(settings))


def _private_paths(settings: ServerSettings) -> tuple[tuple[str, str], ...]:
    """The server's folders as messages to clients name them instead (longest first)."""
    shown = {str(settings.home): "<server home>", str(settings.home.resolve()): "<server home>"}
    for name, spec in settings.collections.items():
        if not (isinstance(spec.path, str) and is_postgres_url(spec.path)):
            path = Path(spec.path)
            shown |= {str(path): f"<collection {name}>", str(path.resolve()): f"<collection {name}>"}
    return tuple(sorted(shown.items(), key=lambda item: -len(item[0])))


def _suffixes(settings: ServerSettings) -> frozenset[str]:
    if settings.allowed_types:
        return frozenset("." + t.lower().lstrip(".") for t in settings.allowed_types)
    return frozenset(loaders_by_extension(KBConfig().ingest))


def _routes(app: FastAPI) -> None:
    app.include_router(api_collections.router)
    app.include_router(api_answers.router)
    app.include_router(api_runs.router)
    app.include_router(api_verify.router)
    if importlib.util.find_spec(f"{__package__}.openai_compat") is not None:  # the OpenAI endpoint's module
        app.include_router(importlib.import_module(f"{__package__}.openai_compat").router)
    app.add_api_route("/healthz", healthz, methods=["GET"], response_model=Health, summary="The process is up")
    app.add_api_route("/readyz", readyz, methods=["GET"], response_model=Health,
                      responses={503: {"model": Problem, "description": "A collection does not open"}},
                      summary="Every collection opens")
    app.add_api_route("/metrics", metrics, methods=["GET"], response_class=Response,
                      responses={200: {"content": {CONTENT_TYPE: {}}}, 401: {"model": Problem},
                                 403: {"model": Problem}},
                      summary="Prometheus metrics (a key covering every collection, unless metrics_public)")
    app.add_api_route("/docs", docs, methods=["GET"], response_class=HTMLResponse, include_in_schema=False)


def _document_models(app: FastAPI, *models: type[BaseModel]) -> None:
    """Add to the OpenAPI components the models that bodies reference by hand (the upload's
    JSON form: that route reads multipart or JSON itself)."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        spec = generate()
        schemas = spec.setdefault("components", {}).setdefault("schemas", {})
        for model in models:
            schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
            schemas.update(schema.pop("$defs", {}))
            schemas[model.__name__] = schema
        return spec

    app.openapi = openapi  # type: ignore[method-assign]


async def healthz() -> dict[str, str]:
    return {"status": "ok"}


async def readyz(request: Request) -> Any:
    """503 while a collection does not open. Which ones, and why, only for a key covering every
    collection (the log always has them): a probe's anonymous caller learns no collection names."""
    state = server_state(request)
    failing = [problems.for_client(failure, state.private_paths)
               for failure in await run_in_threadpool(_failing, state.collections)]
    if not failing:
        return {"status": "ok"}
    log.warning("not ready", extra={"error": "; ".join(failing)})
    if await _sees_every_collection(request):
        return problems.problem(503, "Not ready: " + "; ".join(failing), request)
    return problems.problem(503, f"Not ready: {len(failing)} collection(s) do not open. The server log names them, "
                                 "as does /readyz with a key covering every collection.", request)


def _failing(collections: Collections) -> list[str]:
    failing: list[str] = []
    for name in collections.names():
        try:
            collections.get(name)
        except DomainragError as exc:
            failing.append(f"{name}: {exc}")
    return failing


async def _sees_every_collection(request: Request) -> bool:
    try:
        return (await principal(request)).collections is None
    except problems.HTTPProblem:
        return False


async def metrics(request: Request) -> Response:
    """Prometheus metrics: they name every collection, so they need a key that covers them all
    (as ``GET /v1/collections`` would list them), unless ``metrics_public`` is set."""
    state = server_state(request)
    if not state.settings.metrics_public:
        caller = await principal(request)
        if caller.collections is not None:
            raise Forbidden(f"Key {caller.name!r} may not read /metrics: they name every collection, so they need a "
                            "key not restricted to some collections (or metrics_public = true in server.toml).")
    body = await run_in_threadpool(state.metrics.render)
    return Response(body, media_type=CONTENT_TYPE)


def docs() -> HTMLResponse:
    return HTMLResponse(DOCS_HTML)


class _UI(Mount):
    """The web UI's static files at ``/``, except under the API's paths."""

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        path: str = scope.get("path", "")
        if path.startswith(API_PATHS):
            return Match.NONE, {}
        return super().matches(scope)


class RequestContext:
    """Per request: an id (``X-Request-ID``, taken from the client when well-formed), a JSON log
    line (method, path without query string, route template, status, ms, key name), the latency
    histogram, and a 500 problem (never a traceback) for an unexpected exception."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _request_id(scope)
        scope.setdefault("state", {})["request_id"] = request_id
        status, started = [500, False], time.perf_counter()

        async def tagged(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0], status[1] = message["status"], True
                MutableHeaders(scope=message).append("X-Request-ID", request_id)
            await send(message)

        try:
            await self.app(scope, receive, tagged)
        except Exception as exc:
            log.error("unexpected error", extra={"request_id": request_id, "error": type(exc).__name__},
                      exc_info=problems.debug())
            if not status[1]:
                await _internal_error(scope, receive, tagged, request_id)
            status[0] = 500
        finally:
            self._record(scope, request_id, status[0], time.perf_counter() - started)

    def _record(self, scope: Scope, request_id: str, status: int, seconds: float) -> None:
        route = scope.get("route")
        template = getattr(route, "path", None) or ("(static)" if route else "(unmatched)")
        self.metrics.request(scope["method"], template, status, seconds)
        log.info("request", extra={"request_id": request_id, "method": scope["method"], "path": scope["path"],
                                   "route": template, "status": status, "ms": round(seconds * 1000, 2),
                                   "key": scope.get("state", {}).get("principal")})


def _request_id(scope: Scope) -> str:
    for name, value in scope.get("headers", []):
        if name == b"x-request-id":
            candidate: str = value.decode("latin-1")
            if _REQUEST_ID.match(candidate):
                return candidate
    return uuid.uuid4().hex[:16]


async def _internal_error(scope: Scope, receive: Receive, send: Send, request_id: str) -> None:
    body = problems.error_body(RuntimeError(), scope.get("path"))
    body["request_id"] = request_id
    await JSONResponse(body, status_code=500, media_type=problems.MEDIA_TYPE)(scope, receive, send)
