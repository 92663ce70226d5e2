"""The OpenAI-compatible edge: request parsing, model ids, conversations, Answer -> completion
conversions, and the router on a small FastAPI app in-process (the real app's integration test
with the official SDK is test_openai_sdk.py)."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("fastapi")

from fastapi import FastAPI, HTTPException  # noqa: E402
from fastapi.responses import JSONResponse  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402
from pydantic import ValidationError  # noqa: E402

from domainrag.server import openai_compat as oc  # noqa: E402

THYROID = """# Hypothyroidism

## Treatment

Hypothyroidism is treated with levothyroxine, a synthetic thyroid hormone taken once a day.
The usual starting dose for adults is 50 micrograms daily.

## Symptoms

Fatigue, weight gain and feeling cold are common symptoms of hypothyroidism.
"""
DOSE = "What is the starting dose of levothyroxine for adults?"


@pytest.fixture
def kb(kb_factory, tmp_path: Path):
    root = tmp_path / "docs"
    root.mkdir()
    (root / "thyroid.md").write_text(THYROID)
    (root / "revenue.txt").write_text("Revenue of the Fintech segment grew 39% year on year in 2019.")
    base = kb_factory()
    base.ingest([root])
    return base


def cite_first(request: Any) -> str:
    first = request.sources[0].text.split(". ")[0].rstrip(".")
    return f"{first}. [1]"


def request(**fields: Any) -> oc.ChatCompletionRequest:
    body = {"model": "docs", "messages": [{"role": "user", "content": DOSE}], **fields}
    return oc.ChatCompletionRequest.model_validate(body)


# -- requests ---------------------------------------------------------------------------------
def test_unknown_openai_parameters_are_accepted_and_ignored() -> None:
    parsed = request(temperature=0.2, top_p=0.9, user="u1", n=1, seed=3, stream_options={"include_usage": True})
    assert parsed.model == "docs" and parsed.n == 1 and not parsed.stream


@pytest.mark.parametrize(("fields", "param", "words"), [
    ({"n": 2}, "n", "n=2 is not supported"),
    ({"tools": [{"type": "function", "function": {"name": "f"}}]}, "tools", "tool and function calling"),
    ({"functions": [{"name": "f"}]}, "functions", "tool and function calling"),
    ({"k": 0}, "k", "greater than or equal to 1"),
    ({"mode": "fuzzy"}, "mode", "hybrid"),
])
def test_unsupported_parameters_are_refused_naming_them(fields: dict[str, Any], param: str, words: str) -> None:
    with pytest.raises(ValidationError) as info:
        request(**fields)
    error = oc.validation_error(info.value.errors())
    assert error.status == 422 and error.param == param and words in error.message


def test_conversation_is_the_last_user_message_and_earlier_turns() -> None:
    messages = request(messages=[
        {"role": "system", "content": "You are a pirate."},
        {"role": "user", "content": "How is hypothyroidism treated?"},
        {"role": "assistant", "content": "With levothyroxine [1].\n\n**Sources**\n- [1] thyroid — \"...\""},
        {"role": "user", "content": [{"type": "text", "text": "And the dose?"}]},
    ]).messages
    question, history = oc.conversation(messages)
    assert question == "And the dose?"
    assert [(t.question, t.answer) for t in history] == [("How is hypothyroidism treated?", "With levothyroxine [1].")]


@pytest.mark.parametrize(("messages", "param", "words"), [
    ([{"role": "user", "content": "Q?"}, {"role": "assistant", "content": "A."}], "messages.1.role",
     "must be the user's question"),
    ([{"role": "user", "content": "   "}], "messages.0.content", "empty"),
    ([{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}], "messages", "image_url"),
    ([{"role": "tool", "content": "42"}, {"role": "user", "content": "Q?"}], "messages.0.role", "tool calling"),
])
def test_bad_conversations_are_refused_naming_the_message(messages: list[dict[str, Any]], param: str,
                                                          words: str) -> None:
    with pytest.raises(oc.OpenAIError) as info:
        oc.conversation(request(messages=messages).messages)
    assert info.value.param == param and words in info.value.message


# -- model ids --------------------------------------------------------------------------------
def test_model_ids_name_collections_and_allowed_models() -> None:
    ids = oc.model_ids(["docs", "law"], ["openai:gpt-4o-mini"])
    assert ids == ["docs", "docs:openai:gpt-4o-mini", "law", "law:openai:gpt-4o-mini"]
    listed = oc.models_list(["docs"])
    assert listed == {"object": "list", "data": [{"id": "docs", "object": "model", "created": 0,
                                                   "owned_by": "domainrag"}]}
    assert oc.resolve_model_id("docs", ["docs"]) == ("docs", None)
    assert oc.resolve_model_id("docs:openai:gpt-4o-mini", ["docs"], ["openai:gpt-4o-mini"]) == (
        "docs", "openai:gpt-4o-mini")


@pytest.mark.parametrize("model_id", ["nope", "secret", "docs:openai:gpt-5", ""])
def test_unknown_or_hidden_models_are_the_same_404(model_id: str) -> None:
    # "secret" exists on the server but is not among the caller's collections
    with pytest.raises(oc.OpenAIError) as info:
        oc.resolve_model_id(model_id, ["docs"], ["openai:gpt-4o-mini"])
    assert info.value.status == 404 and info.value.code == "model_not_found" and info.value.param == "model"
    assert info.value.message == (f"The model {model_id!r} does not exist or you do not have access to it. "
                                  "GET /v1/models lists the ids you can use ('<collection>' or "
                                  "'<collection>:<provider:model>').")


# -- answers ----------------------------------------------------------------------------------
def test_completion_keeps_markers_and_ends_with_a_sources_list(kb) -> None:
    answer = kb.ask(DOSE)
    body = oc.completion(answer, "docs", "docs", completion_id="chatcmpl-1", created=7)
    content = body["choices"][0]["message"]["content"]
    assert content.startswith(answer.text) and answer.text.endswith("[1]")
    block = content[len(answer.text):]
    assert block.startswith("\n\n**Sources**\n\n- [1] Hypothyroidism (thyroid.md) — \"")
    assert "thyroid" in block and '"' + answer.citations[0].quote[:40] in block
    assert body["choices"][0]["finish_reason"] == "stop"
    assert body["citations"] == [c.to_dict() for c in answer.citations]
    assert body["usage"] == {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}
    assert body["domainrag"] == {"grounded": 1.0, "abstained": False, "complete": True, "collection": "docs"}
    assert (body["id"], body["object"], body["created"], body["model"]) == ("chatcmpl-1", "chat.completion", 7, "docs")
    off = oc.completion(answer, "docs", "docs", sources_in_answer=False)
    assert off["choices"][0]["message"]["content"] == answer.text and off["citations"] == body["citations"]


def test_sources_block_cuts_long_quotes_and_flags_unconfirmed_sources(kb) -> None:
    answer = kb.ask(DOSE)
    c = answer.citations[0]
    long = type(c)(number=2, doc_id="d", chunk_id="d#0", span=type(c.span)("d", 0, 400, 3), quote="word " * 80,
                   sentence="s", support=0.1, supported=False, title="Annual report")
    block = oc.sources_block([c, long, c])
    lines = block.strip().splitlines()
    assert lines[:2] == ["**Sources**", ""] and len(lines) == 4
    assert lines[3].startswith('- [2] Annual report (d), p. 3 — "word word') and lines[3].endswith(
        '…" (not confirmed by the source)')
    assert oc.sources_block([]) == ""


def test_abstention_is_a_normal_message_without_sources(kb) -> None:
    answer = kb.ask("Who won the 1998 football world cup?")
    assert answer.abstained
    body = oc.completion(answer, "docs", "docs")
    assert body["choices"][0]["message"] == {"role": "assistant", "content": answer.text}
    assert body["choices"][0]["finish_reason"] == "stop" and body["citations"] == []
    assert body["domainrag"]["abstained"] is True


@pytest.mark.parametrize("text", ["", "one", "  lead and trail  ", "a\n\nb [1]. " * 30, "词" * 100])
def test_text_pieces_rejoin_to_the_text(text: str) -> None:
    pieces = oc.text_pieces(text, size=20)
    assert "".join(pieces) == text and all(pieces)


def test_stream_chunks_add_up_to_the_completion(kb) -> None:
    answer = kb.ask(DOSE)
    chunks = oc.answer_chunks(answer, "chatcmpl-1", 7, "docs", "docs")
    content = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks)
    assert content == oc.completion(answer, "docs", "docs")["choices"][0]["message"]["content"]
    assert all(c["choices"][0]["finish_reason"] is None and "citations" not in c for c in chunks[:-1])
    last = chunks[-1]
    assert last["choices"][0] == {"index": 0, "delta": {}, "finish_reason": "stop", "logprobs": None}
    assert last["citations"] == [c.to_dict() for c in answer.citations] and last["usage"]["total_tokens"] == 0


def test_a_set_cancel_event_stops_the_model_call(kb, scripted) -> None:
    scripted.script = cite_first
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(oc.StreamCancelled):
        oc.answer_request(kb, request(), "scripted:m", None, cancel)
    assert oc.answer_request(kb, request(), "scripted:m", None, threading.Event()).citations


# -- the router, in-process -------------------------------------------------------------------
class Problem(Exception):
    def __init__(self, status: int, detail: str) -> None:
        self.status, self.detail = status, detail


def app_for(kb, *, models: tuple[str, ...] = ("scripted:m",), sources: bool = True,
            deny: Exception | None = None, timeout_s: float | None = None,
            answers: list[tuple[str, Any]] | None = None) -> TestClient:
    """A small app around the router: an access dependency and a problem-details handler like
    the real app's."""
    app = FastAPI()

    def access() -> oc.Access:
        if deny is not None:
            raise deny
        return oc.Access(["docs"], None, lambda name: kb, models, sources, timeout_s,
                         None if answers is None else lambda c, a: answers.append((c, a)))

    @app.exception_handler(Problem)
    async def problem(_request: Any, exc: Problem) -> JSONResponse:
        return JSONResponse({"type": "about:blank", "title": "Problem", "status": exc.status, "detail": exc.detail},
                            status_code=exc.status, headers={"Retry-After": "3"} if exc.status == 429 else None)

    app.include_router(oc.build_router(access))
    return TestClient(app)


def sse_events(text: str) -> list[Any]:
    events = []
    for block in text.split("\n\n"):
        data = [line[6:] for line in block.splitlines() if line.startswith("data: ")]
        if data:
            events.append("[DONE]" if data[0] == "[DONE]" else json.loads(data[0]))
    return events


def chat(client: TestClient, **fields: Any) -> Any:
    body = {"model": "docs", "messages": [{"role": "user", "content": DOSE}], **fields}
    return client.post("/v1/chat/completions", json=body)


def test_router_lists_models_and_answers(kb) -> None:
    client = app_for(kb)
    assert [m["id"] for m in client.get("/v1/models").json()["data"]] == ["docs", "docs:scripted:m"]
    response = chat(client, temperature=0)
    assert response.status_code == 200
    body = response.json()
    assert body["object"] == "chat.completion" and "[1]" in body["choices"][0]["message"]["content"]
    assert "**Sources**" in body["choices"][0]["message"]["content"] and body["citations"][0]["supported"]


def test_router_streams_the_checked_answer(kb, scripted) -> None:
    # the model fabricates [7]: the stream carries the checked text, without it
    scripted.script = lambda r: cite_first(r)[:-4] + " [1][7]."
    client = app_for(kb)
    plain = chat(client, model="docs:scripted:m").json()
    response = chat(client, model="docs:scripted:m", stream=True)
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/event-stream")
    events = sse_events(response.text)
    assert events[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""} and events[-1] == "[DONE]"
    content = "".join(e["choices"][0]["delta"].get("content", "") for e in events[:-1])
    assert content == plain["choices"][0]["message"]["content"] and "[7]" not in content
    final = events[-2]
    assert final["choices"][0]["finish_reason"] == "stop" and final["citations"] == plain["citations"]
    assert final["usage"]["prompt_tokens"] == 10


def test_router_rewrites_follow_ups_with_the_history(kb, scripted) -> None:
    def reply(request: Any) -> str:
        if "Last question:" in request.messages[-1].content:
            return DOSE
        return cite_first(request)

    scripted.script = reply
    messages = [{"role": "user", "content": "How is hypothyroidism treated?"},
                {"role": "assistant", "content": "With levothyroxine [1]."},
                {"role": "user", "content": "And the dose for adults?"}]
    body = chat(app_for(kb), model="docs:scripted:m", messages=messages).json()
    rewrite_prompt = scripted.requests[0].messages[-1].content
    assert "How is hypothyroidism treated?" in rewrite_prompt and "And the dose for adults?" in rewrite_prompt
    assert scripted.requests[1].question == DOSE
    assert "50 micrograms" in body["choices"][0]["message"]["content"]


def test_sources_in_answer_off_leaves_the_text_alone(kb) -> None:
    body = chat(app_for(kb, sources=False)).json()
    assert "**Sources**" not in body["choices"][0]["message"]["content"] and body["citations"]


@pytest.mark.parametrize(("fields", "status", "param", "words"), [
    ({"model": "nope"}, 404, "model", "does not exist or you do not have access"),
    ({"model": "docs:openai:gpt-5"}, 404, "model", "does not exist"),
    ({"n": 3}, 422, "n", "n=3 is not supported"),
    ({"messages": []}, 422, "messages", "at least 1 item"),
    ({"messages": [{"role": "wizard", "content": "hi"}]}, 422, "messages.0.role", "'user'"),
    ({"messages": [{"role": "user", "content": "Q"}, {"role": "assistant", "content": "A"}]}, 422,
     "messages.1.role", "must be the user's question"),
])
def test_router_errors_use_the_openai_shape(kb, fields: dict[str, Any], status: int, param: str,
                                            words: str) -> None:
    response = chat(app_for(kb), **fields)
    assert response.status_code == status
    error = response.json()["error"]
    assert error["param"] == param and words in error["message"]
    assert error["type"] == "invalid_request_error"


def test_router_malformed_json_is_a_422(kb) -> None:
    response = app_for(kb).post("/v1/chat/completions", content=b"{not json",
                                headers={"content-type": "application/json"})
    assert response.status_code == 422 and "JSON" in response.json()["error"]["message"]


@pytest.mark.parametrize(("deny", "status", "kind"), [
    (Problem(401, "Send Authorization: Bearer <key>."), 401, "authentication_error"),
    (Problem(429, "Too many requests: wait 3 s."), 429, "rate_limit_error"),
    (HTTPException(403, "This key may not read that collection."), 403, "permission_error"),
])
def test_errors_of_the_apps_dependencies_are_reshaped(kb, deny: Problem | HTTPException, status: int, kind: str) -> None:
    client = app_for(kb, deny=deny)
    for response in (chat(client), client.get("/v1/models")):
        assert response.status_code == status
        error = response.json()["error"]
        assert error["type"] == kind and error["message"] == deny.detail
    if status == 429:
        assert response.headers["retry-after"] == "3"


def test_a_failure_after_the_stream_started_is_an_error_event(kb) -> None:
    response = chat(app_for(kb, models=("scripted:fail",)), model="docs:scripted:fail", stream=True)
    events = sse_events(response.text)
    assert events[0]["choices"][0]["delta"]["role"] == "assistant"
    assert events[-1]["error"]["message"] == "scripted failure (HTTP 500)" and "[DONE]" not in events


def test_answers_are_recorded_for_the_metrics(kb) -> None:
    answers: list[tuple[str, Any]] = []
    client = app_for(kb, answers=answers)
    chat(client)
    chat(client, stream=True)
    assert [(c, a.abstained) for c, a in answers] == [("docs", False), ("docs", False)]


def test_an_answer_past_the_timeout_is_a_504(kb, scripted) -> None:
    def slow(request: Any) -> str:
        time.sleep(0.6)
        return cite_first(request)

    scripted.script = slow
    client = app_for(kb, timeout_s=0.2)
    response = chat(client, model="docs:scripted:m")
    assert response.status_code == 504 and response.json()["error"]["code"] == "timeout"
    assert "request_timeout_s" in response.json()["error"]["message"]
    events = sse_events(chat(client, model="docs:scripted:m", stream=True).text)
    assert events[-1]["error"]["code"] == "timeout" and "[DONE]" not in events
