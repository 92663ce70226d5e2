"""Search, ask and chat: the Python API's parameters and result shapes over HTTP (``/ask`` and
``/chat`` stream by server-sent events with ``stream: true``).

The hot path costs one worker-thread hop per request: the library call and the JSON encoding of
its result run together in the worker, and the response goes out as those bytes (the schemas
below are for the OpenAPI document: FastAPI does not re-validate what the library returned)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from ..answer.chat import Conversation
from ..answer.pipeline import Turn
from ..kb import KnowledgeBase
from ..types import Answer
from .access import Caller
from .common import PROBLEMS, JSONBytes, blocking, encode_json, kb_for, scoped
from .keys import Principal
from .policy import check_model, check_template
from .problems import Invalid
from .schemas import AnswerOptions, AnswerOut, AskRequest, ChatRequest, Hits, SearchRequest
from .state import server_state
from .streaming import AnswerStream, OnToken

router = APIRouter(prefix="/v1", responses=PROBLEMS)
_SSE_HELP = "With stream=true: token events, then answer or error (problem details)."
_OK = "Successful Response"
_HITS: dict[int | str, dict[str, Any]] = {200: {"model": Hits, "description": _OK}}
_ANSWER: dict[int | str, dict[str, Any]] = {200: {
    "model": AnswerOut, "description": _OK,
    # Before OpenAPI 3.2 (itemSchema), an event stream's schema describes each event.
    "content": {"text/event-stream": {"schema": {
        "type": "object", "description": _SSE_HELP, "required": ["event", "data"],
        "properties": {"event": {"type": "string", "enum": ["token", "answer", "error"]},
                       "data": {"type": "string", "description": "The event's JSON document."}}}}}}}


@router.post("/collections/{collection}/search", response_model=None, responses=_HITS,
             summary="The best chunks for a query")
async def search(request: Request, collection: str, body: SearchRequest, caller: Caller) -> Response:
    kb = kb_for(request, caller, collection, "read")
    groups = scoped(caller)

    def run() -> bytes:
        hits = kb.search(body.query, body.k, body.mode, body.filters, **groups)
        return encode_json({"hits": [h.to_dict() for h in hits]})

    return JSONBytes(await blocking(request, run))


@router.post("/collections/{collection}/ask", response_model=None, responses=_ANSWER,
             summary="A grounded answer with checked citations (SSE with stream=true)")
async def ask(request: Request, collection: str, body: AskRequest, caller: Caller) -> Response:
    kb = answering_kb(request, caller, collection, body)

    def produce(on_token: OnToken | None) -> Answer:
        return kb.ask(body.question, body.model, body.template, body.k, mode=body.mode, filters=body.filters,
                      on_token=on_token, **scoped(caller))

    return await _answer(request, collection, body, produce)


@router.post("/collections/{collection}/chat", response_model=None, responses=_ANSWER,
             summary="Answer the last user message in the context of the conversation (follow-ups rewritten)")
async def chat(request: Request, collection: str, body: ChatRequest, caller: Caller) -> Response:
    kb = answering_kb(request, caller, collection, body)
    question, history = split_conversation(body)

    def produce(on_token: OnToken | None) -> Answer:
        conversation = _conversation(kb, body, caller, history)
        return conversation.ask(question, k=body.k, mode=body.mode, filters=body.filters, on_token=on_token)

    return await _answer(request, collection, body, produce)


def answering_kb(request: Request, caller: Principal, collection: str, body: AnswerOptions) -> KnowledgeBase:
    """The collection's knowledge base, once the request's model and template are ones the
    operator offers (:mod:`.policy`)."""
    kb = kb_for(request, caller, collection, "read")
    check_model(body.model, server_state(request).settings.models, kb)
    check_template(body.template, kb)
    return kb


async def _answer(request: Request, collection: str, body: AnswerOptions,
                  produce: Callable[[OnToken | None], Answer]) -> JSONResponse | StreamingResponse | JSONBytes:
    state = server_state(request)

    def record(answer: Answer) -> None:
        state.metrics.answer(collection, answer)

    if body.stream:
        return await AnswerStream(produce, record, state.settings.request_timeout_s,
                                  state.private_paths).response()

    def run() -> bytes:
        answer = produce(None)
        record(answer)
        return encode_json(answer.to_dict())

    return JSONBytes(await blocking(request, run))


def split_conversation(body: ChatRequest) -> tuple[str, list[Turn]]:
    """The question (the last message, which must be the user's) and the earlier turns as
    (user, assistant) pairs; system messages are left out (the template sets the instructions)."""
    turns = [m for m in body.messages if m.role != "system"]
    if not turns or turns[-1].role != "user":
        raise Invalid("body.messages: the last message must be the user's question.",
                      errors=[{"field": "body.messages", "message": "the last message must have role 'user'"}])
    history: list[Turn] = []
    asked: str | None = None
    for message in turns[:-1]:
        if message.role == "user":
            asked = message.content
        elif asked is not None:
            history.append(Turn(asked, message.content))
            asked = None
    return turns[-1].content, history


def _conversation(kb: KnowledgeBase, body: ChatRequest, caller: Principal, history: list[Turn]) -> Conversation:
    conversation = kb.chat(model=body.model, template=body.template, **scoped(caller))
    conversation.history.extend(history)
    return conversation
