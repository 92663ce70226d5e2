"""The loopback provider servers themselves, driven by the real ``openai`` and ``anthropic``
SDKs: what later LLM tests rely on (reply scripting, usage, streaming, failure modes)."""

from __future__ import annotations

import json
from typing import Any

import anthropic
import openai
import pytest
from anthropic_replay import FIXTURES, AnthropicReplay
from openai_stub import OpenAIStub, default_reply

pytestmark = pytest.mark.integration  # real SDKs against servers on loopback

ANSWER = "Metformin is a first-line treatment for type 2 diabetes [1]."
PROMPT = (
    'Answer from the sources.\n<source id="4" title="Diabetes care">\n'
    "Metformin lowers blood glucose.\nIt is cheap.\n</source>\n"
    '<source id="5">Insulin is a hormone.</source>\nQuestion: what lowers glucose?'
)


def _openai(stub: OpenAIStub, **options: Any) -> openai.OpenAI:
    return openai.OpenAI(base_url=stub.url, api_key=stub.api_key, **options)


def _ask(client: openai.OpenAI, content: str = PROMPT, **options: Any) -> Any:
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": content}]
    return client.chat.completions.create(model="gpt-test", messages=messages, **options)


def test_chat_completion_has_reply_usage_and_versioned_model() -> None:
    with OpenAIStub() as stub:
        stub.chat_reply = lambda body: "Three word reply."
        completion = _ask(_openai(stub), content="What is it?")
    choice = completion.choices[0]
    assert choice.message.role == "assistant"
    assert choice.message.content == "Three word reply."
    assert choice.finish_reason == "stop"
    assert completion.model == "gpt-test-stub-2026"
    assert completion.object == "chat.completion"
    assert completion.system_fingerprint == "fp_stub"
    assert completion.id.startswith("chatcmpl-")
    usage = completion.usage
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (5, 3, 8)
    request = stub.requests[0]
    assert request["path"] == "/v1/chat/completions"
    assert request["headers"]["authorization"] == "Bearer stub-key"
    assert request["body"]["messages"][1]["content"] == "What is it?"


def test_default_reply_is_first_sentence_of_first_source() -> None:
    with OpenAIStub() as stub:
        completion = _ask(_openai(stub))
    assert completion.choices[0].message.content == "Metformin lowers blood glucose. [4]"


@pytest.mark.parametrize(
    ("content", "reply"),
    [
        ('<source id="7" page="3">Is it safe? Mostly.</source>', "Is it safe? [7]"),
        ('<source id="1">二甲双胍是一线药物。它很便宜。</source>', "二甲双胍是一线药物。 [1]"),
        ('<source id="2">No full stop here</source>', "No full stop here [2]"),
        ("No sources at all.", "I do not know."),
    ],
)
def test_default_reply_cases(content: str, reply: str) -> None:
    body = {"messages": [{"role": "user", "content": [{"type": "text", "text": content}]}]}
    assert default_reply(body) == reply


def test_default_reply_reads_the_last_user_message() -> None:
    messages = [
        {"role": "user", "content": '<source id="1">Old turn.</source>'},
        {"role": "assistant", "content": "Old turn. [1]"},
        {"role": "user", "content": '<source id="9">New turn.</source>'},
    ]
    assert default_reply({"messages": messages}) == "New turn. [9]"


@pytest.mark.parametrize("limit", ["max_tokens", "max_completion_tokens"])
def test_max_tokens_cuts_the_reply(limit: str) -> None:
    with OpenAIStub() as stub:
        stub.chat_reply = lambda body: "one two  three four five"
        completion = _ask(_openai(stub), **{limit: 3})
    assert completion.choices[0].message.content == "one two  three"
    assert completion.choices[0].finish_reason == "length"
    assert completion.usage.completion_tokens == 3


def test_stream_with_usage_reassembles_the_reply() -> None:
    with OpenAIStub() as stub:
        stub.chat_reply = lambda body: "Stream  me,\nword by word."
        stream = _ask(_openai(stub), stream=True, stream_options={"include_usage": True})
        chunks = list(stream)
    assert [c.object for c in chunks] == ["chat.completion.chunk"] * len(chunks)
    assert {c.model for c in chunks} == {"gpt-test-stub-2026"}
    assert chunks[0].choices[0].delta.role == "assistant"
    with_choices = [c for c in chunks if c.choices]
    text = "".join(c.choices[0].delta.content or "" for c in with_choices)
    assert text == "Stream  me,\nword by word."
    assert len(with_choices) == 1 + 5 + 1  # role, one per word, finish
    assert [c.choices[0].finish_reason for c in with_choices][-2:] == [None, "stop"]
    assert chunks[-1].choices == []
    assert chunks[-1].usage.completion_tokens == 5
    assert all(c.usage is None for c in chunks[:-1])


def test_stream_without_usage_and_cut_by_max_tokens() -> None:
    with OpenAIStub() as stub:
        chunks = list(_ask(_openai(stub), stream=True, max_tokens=2))
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == "Metformin lowers"
    assert chunks[-1].choices[0].finish_reason == "length"
    assert all(c.usage is None for c in chunks)


def test_wrong_key_is_an_authentication_error() -> None:
    with OpenAIStub(api_key="right") as stub, pytest.raises(openai.AuthenticationError):
        _ask(openai.OpenAI(base_url=stub.url, api_key="wrong", max_retries=0))


def test_rate_limit_is_retried_by_the_sdk() -> None:
    with OpenAIStub(fail_429=2) as stub:
        completion = _ask(_openai(stub, max_retries=2))
        assert len(stub.requests) == 3
    assert completion.choices[0].message.content == "Metformin lowers blood glucose. [4]"


def test_slow_answer_times_out() -> None:
    with OpenAIStub(delay_s=1.0) as stub, pytest.raises(openai.APITimeoutError):
        _ask(_openai(stub, timeout=0.2, max_retries=0))


def test_slow_stream_times_out_while_iterating() -> None:
    with OpenAIStub(stream_delay_s=0.5) as stub:
        stream = _ask(_openai(stub, timeout=0.2, max_retries=0), stream=True)
        with pytest.raises(openai.APITimeoutError):
            list(stream)


def test_cut_off_stream_raises_a_connection_error() -> None:
    with OpenAIStub(fail_midstream=2) as stub:
        stream = _ask(_openai(stub, max_retries=0), stream=True)
        received = []
        with pytest.raises(openai.APIConnectionError):
            for chunk in stream:
                received.append(chunk)  # noqa: PERF402 - keeps the chunks before the error
    assert "".join(c.choices[0].delta.content for c in received) == "Metformin lowers "
    assert all(c.choices[0].finish_reason is None for c in received)


def test_embeddings_route_still_served_beside_chat() -> None:
    with OpenAIStub(dimensions=8) as stub:
        response = _openai(stub).embeddings.create(model="e", input=["a b"])
    assert len(response.data[0].embedding) == 8


def _anthropic(replay: AnthropicReplay, **options: Any) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=replay.url, api_key="replay-key", **options)


def _messages(**options: Any) -> dict[str, Any]:
    messages = [{"role": "user", "content": "What is metformin?"}]
    return {"model": "claude-sonnet-4-6", "max_tokens": 256, "messages": messages, **options}


def test_anthropic_message_is_parsed_by_the_sdk() -> None:
    with AnthropicReplay() as replay:
        message = _anthropic(replay).messages.create(**_messages())
    assert message.type == "message"
    assert message.role == "assistant"
    assert message.id.startswith("msg_")
    assert message.content[0].type == "text"
    assert message.content[0].text == ANSWER
    assert message.model == "claude-sonnet-4-5-20250929"
    assert message.stop_reason == "end_turn"
    assert message.stop_sequence is None
    assert (message.usage.input_tokens, message.usage.output_tokens) == (412, 17)
    request = replay.requests[0]
    assert request["path"] == "/v1/messages"
    assert (
        request["headers"]["authorization"] == "Bearer replay-key"
    )  # anthropic 2.x: not x-api-key
    assert "anthropic-version" in request["headers"]
    assert request["body"]["max_tokens"] == 256


def test_anthropic_raw_stream_events_reassemble_the_text() -> None:
    with AnthropicReplay() as replay:
        events = list(_anthropic(replay).messages.create(**_messages(), stream=True))
    assert [e.type for e in events] == [
        "message_start",
        "content_block_start",
        *["content_block_delta"] * 5,
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]  # the recorded ping is skipped by the SDK
    assert events[0].message.model == "claude-sonnet-4-5-20250929"
    text = "".join(e.delta.text for e in events if e.type == "content_block_delta")
    assert text == ANSWER
    assert events[-2].delta.stop_reason == "end_turn"
    assert events[-2].usage.output_tokens == 17


def test_anthropic_stream_helper_builds_the_final_message() -> None:
    with AnthropicReplay() as replay, _anthropic(replay).messages.stream(**_messages()) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == ANSWER
    assert final.content[0].text == ANSWER
    assert final.stop_reason == "end_turn"
    assert (final.usage.input_tokens, final.usage.output_tokens) == (412, 17)
    assert replay.requests[0]["body"]["stream"] is True


def test_anthropic_fixtures_can_be_replaced_per_instance() -> None:
    message = json.loads((FIXTURES / "message.json").read_text("utf-8"))
    message["content"][0]["text"] = "Other."
    stream_body = (FIXTURES / "stream.txt").read_text("utf-8").replace(" [1].", " [2].")
    with AnthropicReplay(message=message, stream_body=stream_body) as replay:
        client = _anthropic(replay)
        assert client.messages.create(**_messages()).content[0].text == "Other."
        with client.messages.stream(**_messages()) as stream:
            assert stream.get_final_text() == ANSWER.replace("[1]", "[2]")


def test_anthropic_wrong_key_is_an_authentication_error() -> None:
    with AnthropicReplay() as replay, pytest.raises(anthropic.AuthenticationError) as info:
        anthropic.Anthropic(base_url=replay.url, api_key="wrong").messages.create(**_messages())
    assert info.value.status_code == 401
    assert info.value.body["error"] == {
        "type": "authentication_error",
        "message": "invalid x-api-key",
    }
    assert len(replay.requests) == 1  # 401 is not retried


@pytest.mark.parametrize("failure", ["fail_429", "fail_529"])
def test_anthropic_transient_failure_is_retried(failure: str) -> None:
    with AnthropicReplay(**{failure: 1}) as replay:
        message = _anthropic(replay, max_retries=1).messages.create(**_messages())
        assert len(replay.requests) == 2
    assert message.content[0].text == ANSWER


def test_anthropic_overload_beyond_the_retries_raises() -> None:
    with AnthropicReplay(fail_529=2) as replay, pytest.raises(anthropic.OverloadedError):
        _anthropic(replay, max_retries=1).messages.create(**_messages())
