"""The OpenAI-compatible edge: ``GET /v1/models`` and ``POST /v1/chat/completions``.

Unmodified OpenAI clients (SDKs, chat UIs) ask a collection as if it were a model:

- **Model ids.** ``"<collection>"`` answers with the collection's configured answer model;
  ``"<collection>:<provider:model>"`` with one of the server's allowed ``models`` (setting
  ``[server] models``). A collection the caller may not read is an unknown model: the same
  404 ``model_not_found`` as a collection that does not exist.
- **Messages.** The last message must be the user's question; earlier user/assistant turns are
  the history that follow-ups are rewritten with (as ``kb.chat()``: with a model configured,
  "and for children?" becomes a standalone question; the offline default answers as asked).
  ``system``/``developer`` messages are ignored: the collection's answer template is the
  prompt, and chat UIs send their own system prompts that would otherwise override the
  grounding instructions. Our own Sources block is cut from earlier assistant turns.
- **Answers.** The text keeps its ``[n]`` markers and, unless ``sources_in_answer`` is off, ends
  with a Markdown "Sources" list (``[n] Title, p. X — "quote"``) so clients that ignore unknown
  fields still show the sources; the checked citations travel as top-level ``citations``
  (``Citation.to_dict()``), with ``domainrag`` (grounded, abstained, complete, collection). An
  abstention is a normal assistant message. ``finish_reason`` is ``"stop"``, or ``"length"``
  when the model stopped early (``Answer.complete`` false).
- **Streaming is checked first.** A client cannot take back a delta, and the checked answer can
  differ from the model's raw tokens (fabricated markers removed, or an abstention after a whole
  draft). So the stream sends the role delta at once, SSE comments as keep-alives while the
  answer is written and checked, then the *checked* text as content deltas, the Sources block,
  and a final chunk with ``finish_reason``, ``usage`` and ``citations``; then ``data: [DONE]``.
  Every client ends with exactly the checked answer. Live tokens are on
  ``POST /v1/collections/{c}/ask`` with ``stream: true`` (its final event carries the checked
  answer). A client that disconnects cancels the model call.
- **Errors** use OpenAI's shape ``{"error": {"message", "type", "param", "code"}}`` (what SDKs
  and chat UIs display), with the status and message the rest of the API gives as problem
  details; a failure after a stream started is one ``data: {"error": ...}`` event (the SDK
  raises it).
- **Parameters.** Unknown OpenAI parameters (temperature, top_p, user, seed, ...) are accepted
  and ignored — the answer model's settings come from the collection; ``n > 1``, ``tools`` and
  ``functions`` are refused with a 422 naming the parameter. Extension parameters (the SDK's
  ``extra_body``): ``k``, ``mode``, ``filters``, ``template``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import threading
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from fastapi import APIRouter, Depends, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response, StreamingResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel, ConfigDict, Field, field_validator
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from ..answer.pipeline import Turn
from ..errors import DomainragError
from ..types import Answer, Citation
from .access import Caller
from .policy import check_template
from .state import server_state

if TYPE_CHECKING:
    from ..kb import KnowledgeBase

_log = logging.getLogger(__name__)
SOURCES_HEADER = "**Sources**"
KEEPALIVE_S = 5.0
QUOTE_CHARS = 160
Mode = Literal["hybrid", "lexical", "dense"]


# -- request --------------------------------------------------------------------------------
class OpenAIError(DomainragError):
    """A request this endpoint refuses or cannot finish, as OpenAI's error object: ``status``,
    ``code`` and ``param`` (the field at fault)."""

    def __init__(self, message: str, param: str | None = None, status: int = 422,
                 code: str = "invalid_request") -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.status = status
        self.code = code


class StreamCancelled(DomainragError):
    """The client of a stream went away; the model call stops at its next token."""


class ContentPart(BaseModel):
    """One part of a message's content; only text parts are read."""

    model_config = ConfigDict(extra="allow")
    type: str
    text: str | None = None


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")
    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[ContentPart] | None = None

    def text(self) -> str:
        if self.content is None or isinstance(self.content, str):
            return self.content or ""
        kinds = sorted({p.type for p in self.content if p.type != "text"})
        if kinds:
            raise OpenAIError(
                f"Message content of type {', '.join(kinds)} is not supported: this endpoint answers text "
                "questions from documents. Send the question as text.", "messages")
        return "".join(p.text or "" for p in self.content)


class ChatCompletionRequest(BaseModel):
    """The OpenAI chat-completion request; unknown parameters are accepted and ignored."""

    model_config = ConfigDict(extra="allow")
    model: str = Field(min_length=1)
    messages: list[ChatMessage] = Field(min_length=1)
    stream: bool = False
    n: int | None = None
    tools: list[Any] | None = None
    functions: list[Any] | None = None
    # domainrag extensions (the SDK's extra_body)
    k: int | None = Field(default=None, ge=1, le=200)
    mode: Mode | None = None
    filters: dict[str, Any] | None = None
    template: str | None = None

    @field_validator("n")
    @classmethod
    def _one_choice(cls, value: int | None) -> int | None:
        if value is not None and value != 1:
            raise ValueError(f"n={value} is not supported: each request gets one checked answer; send n=1 "
                             "or leave it out")
        return value

    @field_validator("tools", "functions")
    @classmethod
    def _no_tools(cls, value: list[Any] | None) -> list[Any] | None:
        if value:
            raise ValueError("tool and function calling are not supported: this endpoint answers from the "
                             "collection's documents; leave tools/functions out")
        return value


class ErrorDetail(BaseModel):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class ErrorOut(BaseModel):
    """OpenAI's error object (what SDKs and chat UIs display)."""

    error: ErrorDetail


class ModelOut(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int = 0
    owned_by: str = "domainrag"


class ModelsOut(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelOut]


class ChatCompletionOut(BaseModel):
    """A ``chat.completion`` with the ``citations`` (``Citation.to_dict()``) and ``domainrag``
    (grounded, abstained, complete, collection) extensions; streamed, ``chat.completion.chunk``
    events whose final one carries them."""

    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[dict[str, Any]]
    usage: dict[str, int]
    citations: list[dict[str, Any]]
    domainrag: dict[str, Any]


_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorOut, "description": description}
    for status, description in ((401, "No valid API key"), (404, "Unknown model, or a collection the key may not read"),
                                (409, "The collection holds no documents yet, or its index was built otherwise"),
                                (413, "The request body is over max_body_kb"),
                                (422, "Invalid request (the field is error.param)"),
                                (429, "Rate limit reached (Retry-After)"), (503, "A model or store is unavailable"),
                                (504, "No answer within request_timeout_s"))
}


def validation_error(errors: Sequence[Mapping[str, Any]]) -> OpenAIError:
    """The first of pydantic's ``errors`` as an :class:`OpenAIError` naming the field."""
    first = errors[0]
    loc = [str(part) for part in first.get("loc", ()) if part != "body"]
    param = ".".join(loc) or None
    message = str(first.get("msg", "invalid value")).removeprefix("Value error, ")
    return OpenAIError(f"Invalid request: {param or 'body'}: {message}.", param)


def conversation(messages: Sequence[ChatMessage]) -> tuple[str, list[Turn]]:
    """(question, history): the last message is the user's question; earlier user/assistant
    messages pair up into turns; system and developer messages are ignored."""
    last = messages[-1]
    if last.role != "user":
        raise OpenAIError(f"The last message is the {last.role}'s; it must be the user's question.",
                                 f"messages.{len(messages) - 1}.role")
    question = last.text().strip()
    if not question:
        raise OpenAIError("The last user message is empty: send a question.",
                                 f"messages.{len(messages) - 1}.content")
    history: list[Turn] = []
    pending: list[str] = []
    for i, message in enumerate(messages[:-1]):
        if message.role in ("tool", "function"):
            raise OpenAIError(f"messages[{i}] has role {message.role!r}; tool calling is not supported.",
                                     f"messages.{i}.role")
        if message.role == "user":
            pending.append(message.text().strip())
        elif message.role == "assistant":
            history.append(Turn("\n".join(p for p in pending if p), strip_sources(message.text())))
            pending = []
    return question, history


def strip_sources(text: str) -> str:
    """An earlier answer of ours without its Sources block."""
    head, found, _ = text.partition("\n\n" + SOURCES_HEADER)
    return (head if found else text).strip()


# -- model ids ------------------------------------------------------------------------------
def model_ids(collections: Iterable[str], models: Sequence[str] = ()) -> list[str]:
    """One id per collection, and one per collection and allowed answer model."""
    return [i for name in collections for i in (name, *(f"{name}:{m}" for m in models))]


def resolve_model_id(model_id: str, collections: Iterable[str], models: Sequence[str] = ()) -> tuple[str, str | None]:
    """``"<collection>"`` -> (collection, None: its configured model); ``"<collection>:<model>"``
    -> (collection, model) when ``model`` is an allowed one. Anything else — including a
    collection the caller may not read — is the same 404 ``model_not_found``."""
    name, _, model = model_id.strip().partition(":")
    if name in set(collections) and (not model or model in models):
        return name, model or None
    raise OpenAIError(
        f"The model {model_id!r} does not exist or you do not have access to it. "
        "GET /v1/models lists the ids you can use ('<collection>' or '<collection>:<provider:model>').",
        "model", 404, "model_not_found")


def models_list(collections: Iterable[str], models: Sequence[str] = (), created: int = 0) -> dict[str, Any]:
    return {"object": "list",
            "data": [{"id": i, "object": "model", "created": created, "owned_by": "domainrag"}
                     for i in model_ids(collections, models)]}


# -- answer -> completion -------------------------------------------------------------------
def sources_block(citations: Sequence[Citation]) -> str:
    """The Markdown list of cited sources: one line per number, the best supported quote."""
    best: dict[int, Citation] = {}
    for c in citations:
        held = best.get(c.number)
        if held is None or (c.supported, c.support) > (held.supported, held.support):
            best[c.number] = c
    if not best:
        return ""
    lines = [f"\n\n{SOURCES_HEADER}\n"]
    for number in sorted(best):
        c = best[number]
        where = _document_name(c)
        page = f", p. {c.span.page}" if c.span.page else ""
        quote = " ".join(c.quote.split())
        quote = quote[:QUOTE_CHARS].rstrip() + "…" if len(quote) > QUOTE_CHARS else quote
        flag = "" if c.supported else " (not confirmed by the source)"
        lines.append(f"- [{number}] {where}{page} — \"{quote}\"{flag}")
    return "\n".join(lines)


def _document_name(c: Citation) -> str:
    """The cited document as a reader knows it: its title, with its file name when they differ."""
    file = re.split(r"[\\/]", (c.source or c.doc_id).rstrip("/\\"))[-1]
    if c.title and file and file != c.title:
        return f"{c.title} ({file})"
    return c.title or file or c.doc_id


def answer_content(answer: Answer, sources_in_answer: bool = True) -> str:
    """The message content: the checked text with its markers, then the Sources block."""
    block = sources_block(answer.citations) if sources_in_answer and not answer.abstained else ""
    return answer.text + block


def usage_dict(answer: Answer) -> dict[str, int]:
    u = answer.usage
    return {"prompt_tokens": u.prompt_tokens, "completion_tokens": u.completion_tokens,
            "total_tokens": u.prompt_tokens + u.completion_tokens}


def finish_reason(answer: Answer) -> str:
    return "stop" if answer.complete else "length"


def extension(answer: Answer, collection: str) -> dict[str, Any]:
    return {"grounded": round(answer.grounded, 4), "abstained": answer.abstained, "complete": answer.complete,
            "collection": collection}


def completion(answer: Answer, model_id: str, collection: str, *, sources_in_answer: bool = True,
               completion_id: str | None = None, created: int | None = None) -> dict[str, Any]:
    """``Answer`` -> an OpenAI ``chat.completion`` with ``citations`` and ``domainrag`` extensions."""
    return {
        "id": completion_id or new_id(), "object": "chat.completion", "created": created or int(time.time()),
        "model": model_id,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": answer_content(answer, sources_in_answer)},
                     "finish_reason": finish_reason(answer), "logprobs": None}],
        "usage": usage_dict(answer),
        "citations": [c.to_dict() for c in answer.citations],
        "domainrag": extension(answer, collection),
    }


def new_id() -> str:
    return f"chatcmpl-{uuid.uuid4().hex}"


def text_pieces(text: str, size: int = 48) -> list[str]:
    """``text`` cut at word boundaries into pieces of about ``size`` characters (stream deltas);
    joined they are ``text`` exactly."""
    pieces: list[str] = []
    current = ""
    for word in re.findall(r"\s*\S+\s*|\s+", text):
        if current and len(current) + len(word) > size:
            pieces.append(current)
            current = ""
        current += word
    if current:
        pieces.append(current)
    return pieces


def chunk(completion_id: str, created: int, model_id: str, delta: Mapping[str, Any],
          finish: str | None = None, **extra: Any) -> dict[str, Any]:
    return {"id": completion_id, "object": "chat.completion.chunk", "created": created, "model": model_id,
            "choices": [{"index": 0, "delta": dict(delta), "finish_reason": finish, "logprobs": None}], **extra}


def answer_chunks(answer: Answer, completion_id: str, created: int, model_id: str, collection: str, *,
                  sources_in_answer: bool = True) -> list[dict[str, Any]]:
    """The chunks after the role delta: the checked text, the Sources block, the final chunk."""
    out = [chunk(completion_id, created, model_id, {"content": piece}) for piece in text_pieces(answer.text)]
    block = sources_block(answer.citations) if sources_in_answer and not answer.abstained else ""
    if block:
        out.append(chunk(completion_id, created, model_id, {"content": block}))
    out.append(chunk(completion_id, created, model_id, {}, finish_reason(answer), usage=usage_dict(answer),
                     citations=[c.to_dict() for c in answer.citations],
                     domainrag=extension(answer, collection)))
    return out


def timeout_error(timeout_s: float | None) -> OpenAIError:
    return OpenAIError(f"No answer within {timeout_s:g} s (setting request_timeout_s). Ask for less (a smaller k), "
                       "or raise the limit.", None, 504, "timeout")


def sse(data: Mapping[str, Any] | str) -> str:
    return f"data: {data if isinstance(data, str) else json.dumps(data, ensure_ascii=False)}\n\n"


def error_body(message: str, status: int, code: str | None = None, param: str | None = None) -> dict[str, Any]:
    kind = ("invalid_request_error" if status in (400, 404, 409, 413, 415, 422)
            else {401: "authentication_error", 403: "permission_error", 429: "rate_limit_error"}.get(status,
                                                                                                        "server_error"))
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


# -- the router -----------------------------------------------------------------------------
@dataclass(frozen=True)
class Access:
    """What one caller may reach: the collections they may read (names), their document groups
    (``None`` = every document) and how to open a collection's knowledge base."""

    collections: Sequence[str]
    groups: frozenset[str] | None
    open: Callable[[str], KnowledgeBase]
    models: Sequence[str] = ()
    sources_in_answer: bool = True
    #: An answer taking longer is a 504 (the worker finishes on its own; its result is dropped).
    timeout_s: float | None = None
    #: Called with (collection, answer) for every answer given (the server's metrics).
    on_answer: Callable[[str, Answer], None] | None = None

    def record(self, collection: str, answer: Answer) -> Answer:
        if self.on_answer is not None:
            self.on_answer(collection, answer)
        return answer


def answer_request(kb: KnowledgeBase, request: ChatCompletionRequest, model: str | None, groups: frozenset[str] | None,
        cancel: threading.Event | None = None) -> Answer:
    """Answer the request's conversation from ``kb`` (follow-ups rewritten as ``kb.chat()``)."""
    question, history = conversation(request.messages)
    chat = kb.chat(model=model, template=request.template, groups=groups)
    chat.history = history

    def on_token(_text: str) -> None:
        if cancel is not None and cancel.is_set():
            raise StreamCancelled("The client disconnected; the answer was abandoned.")

    return chat.ask(question, k=request.k, mode=request.mode, filters=request.filters,
                    on_token=on_token if cancel is not None else None)


class OpenAIRoute(APIRoute):
    """A route whose errors — from the handler or the app's dependencies (keys, rate limits) —
    reach the client in OpenAI's ``{"error": {...}}`` shape, with the status and message the
    app's own exception handlers give."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def openai_errors(request: Request) -> Response:
            try:
                return await handler(request)
            except Exception as exc:  # noqa: BLE001 — every error is answered in OpenAI's shape
                return await openai_error_response(request, exc)

        return openai_errors


async def openai_error_response(request: Request, exc: Exception) -> JSONResponse:
    status, message, code, param, headers = await describe_error(request, exc)
    return JSONResponse(error_body(message, status, code, param), status_code=status, headers=headers)


async def describe_error(request: Request, exc: Exception
                         ) -> tuple[int, str, str | None, str | None, dict[str, str]]:
    """(status, message, code, param, headers) of ``exc``: ours directly, anything else through
    the app's exception handler for it (problem details), else a generic 500."""
    if isinstance(exc, OpenAIError):
        return exc.status, exc.message, exc.code, exc.param, {}
    if isinstance(exc, RequestValidationError):
        err = validation_error(exc.errors())
        return err.status, err.message, err.code, err.param, {}
    handler = _app_handler(request, exc)
    if handler is not None:
        response = handler(request, exc)
        if isinstance(response, Awaitable):
            response = await response
        return _from_response(response)
    if isinstance(exc, HTTPException):
        return exc.status_code, str(exc.detail), None, None, dict(exc.headers or {})
    if isinstance(exc, DomainragError):
        return 500, str(exc), None, None, {}
    _log.error("unhandled error in the OpenAI endpoint", exc_info=exc)
    return 500, "Internal server error: the failure is in the server log.", None, None, {}


def _app_handler(request: Request, exc: Exception) -> Callable[..., Any] | None:
    handlers: Mapping[Any, Callable[..., Any]] = getattr(request.app, "exception_handlers", {}) or {}
    for cls in type(exc).__mro__:
        if cls in handlers:
            return handlers[cls]
    return None


def _from_response(response: Response) -> tuple[int, str, str | None, str | None, dict[str, str]]:
    try:
        body = json.loads(bytes(response.body))
    except ValueError:
        body = {}
    body = body if isinstance(body, dict) else {}
    message = str(body.get("detail") or body.get("title") or f"HTTP {response.status_code}")
    errors = body.get("errors") or []
    first = errors[0] if errors and isinstance(errors[0], dict) else {}
    param = first.get("field") or first.get("loc")
    code = body.get("type") if isinstance(body.get("type"), str) and body.get("type") != "about:blank" else None
    headers = {k: v for k, v in response.headers.items() if k.lower() in ("retry-after", "www-authenticate")}
    return response.status_code, message, code, None if param is None else str(param), headers


def build_router(access: Callable[..., Any]) -> APIRouter:
    """The OpenAI routes; ``access`` is a FastAPI dependency returning the caller's
    :class:`Access` (the app's key check, rate limit and collection registry behind it)."""
    router = APIRouter(route_class=OpenAIRoute, tags=["openai"])

    @router.get("/v1/models", summary="OpenAI: the collections (and collection:model pairs) to ask",
                response_model=ModelsOut, responses={k: v for k, v in _ERRORS.items() if k in (401, 429)})
    def list_models(caller: Access = Depends(access)) -> dict[str, Any]:  # noqa: B008
        return models_list(caller.collections, caller.models)

    @router.post("/v1/chat/completions", summary="OpenAI: answer from a collection with checked citations",
                 responses={200: {"model": ChatCompletionOut, "content": {"text/event-stream": {}},
                                  "description": "The answer; with stream=true, chat.completion.chunk events."},
                            **_ERRORS})
    async def chat_completions(request: Request, body: ChatCompletionRequest,
                               caller: Access = Depends(access)) -> Response:  # noqa: B008
        collection, model = resolve_model_id(body.model, caller.collections, caller.models)
        conversation(body.messages)  # a bad conversation is a 422 before any stream starts
        kb = await run_in_threadpool(caller.open, collection)
        check_template(body.template, kb)
        if not body.stream:
            work = run_in_threadpool(answer_request, kb, body, model, caller.groups)
            try:
                answer = await asyncio.wait_for(work, caller.timeout_s)
            except TimeoutError:
                raise timeout_error(caller.timeout_s) from None
            return JSONResponse(completion(caller.record(collection, answer), body.model, collection,
                                           sources_in_answer=caller.sources_in_answer))
        events = stream_events(request, kb, body, collection, model, caller)
        return StreamingResponse(events, media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    return router


async def stream_events(request: Request, kb: KnowledgeBase, parsed: ChatCompletionRequest, collection: str,
                        model: str | None, caller: Access) -> AsyncIterator[str]:
    """The SSE stream: role delta, keep-alives while the answer is written and checked, the
    checked answer's chunks, ``[DONE]``; a failure is one ``{"error": ...}`` event."""
    completion_id, created = new_id(), int(time.time())
    cancel = threading.Event()
    task = asyncio.ensure_future(run_in_threadpool(answer_request, kb, parsed, model, caller.groups, cancel))
    deadline = None if caller.timeout_s is None else time.monotonic() + caller.timeout_s
    try:
        yield sse(chunk(completion_id, created, parsed.model, {"role": "assistant", "content": ""}))
        while not task.done():
            left = KEEPALIVE_S if deadline is None else max(0.0, min(KEEPALIVE_S, deadline - time.monotonic()))
            await asyncio.wait({task}, timeout=left)
            if task.done():
                break
            if deadline is not None and time.monotonic() >= deadline:
                cancel.set()
                yield sse(error_body(str(timeout_error(caller.timeout_s)), 504, "timeout"))
                return
            yield ": keep-alive\n\n"
        try:
            answer = caller.record(collection, task.result())
        except Exception as exc:  # noqa: BLE001 — reported to the client as an error event
            status, message, code, param, _ = await describe_error(request, exc)
            yield sse(error_body(message, status, code, param))
            return
        for item in answer_chunks(answer, completion_id, created, parsed.model, collection,
                                  sources_in_answer=caller.sources_in_answer):
            yield sse(item)
        yield sse("[DONE]")
    finally:
        cancel.set()


async def app_access(request: Request, caller: Caller) -> Access:
    """The :class:`Access` of a ``domainrag serve`` caller: the collections their key covers
    (every role may read), their groups, and the server's settings and metrics. Async: listing
    the collections is a few stat calls, cheaper than a worker-thread hop per request."""
    state = server_state(request)
    names = [n for n in state.collections.names() if caller.collections is None or n in caller.collections]
    settings = state.settings
    return Access(names, caller.groups, state.collections.get, tuple(settings.models), settings.sources_in_answer,
                  settings.request_timeout_s, state.metrics.answer)


#: The routes ``domainrag serve`` mounts.
router = build_router(app_access)
