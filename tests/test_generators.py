"""Model providers against real HTTP servers on loopback, driven through the real SDKs:
our deterministic OpenAI-protocol stub, and recorded Anthropic responses replayed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from anthropic_replay import AnthropicReplay
from openai_stub import OpenAIStub

from domainrag.errors import ConfigError, GenerationError
from domainrag.models.generation import (
    Generation,
    GenerationRequest,
    Message,
    ProviderSettings,
    load_generator,
    resolve_model,
)
from domainrag.types import Source

SOURCE = Source(number=1, chunk_id="c1", doc_id="d1", text="Metformin is a first-line treatment for type 2 diabetes. It is cheap.", start=0, end=70)
REQUEST = GenerationRequest(
    (Message("system", "Answer from the sources."),
     Message("user", f'<source id="1">\n{SOURCE.text}\n</source>\nQuestion: What treats diabetes?')),
    max_tokens=100, question="What treats diabetes?", sources=(SOURCE,))


def openai_model(stub: OpenAIStub, monkeypatch, model: str = "gpt-test", **settings):
    monkeypatch.setenv("OPENAI_API_KEY", stub.api_key or "x")
    monkeypatch.setenv("OPENAI_BASE_URL", stub.url)
    options = {"max_retries": 0, "timeout_s": 5.0, **settings}
    return load_generator(f"openai:{model}", ProviderSettings(**options))


# -- OpenAI and compatible servers ------------------------------------------------------------
def test_openai_completion_records_version_and_usage(monkeypatch) -> None:
    with OpenAIStub() as stub:
        model = openai_model(stub, monkeypatch)
        generation = model.complete(REQUEST)
    assert generation.text == "Metformin is a first-line treatment for type 2 diabetes. [1]"
    assert generation.version == "gpt-test-stub-2026 (fp_stub)" and generation.complete
    assert generation.usage.prompt_tokens > 0 and generation.usage.completion_tokens == 10
    assert model.id == f"openai:gpt-test@{stub.url.split('/')[2]}"
    body = stub.requests[-1]["body"]
    assert body["messages"][0] == {"role": "system", "content": "Answer from the sources."}
    assert body["max_tokens"] == 100 and body["temperature"] == 0.0


def test_openai_stream_yields_deltas_then_the_generation(monkeypatch) -> None:
    with OpenAIStub() as stub:
        items = list(openai_model(stub, monkeypatch).stream(REQUEST))
    *deltas, final = items
    assert isinstance(final, Generation) and len(deltas) > 3
    assert "".join(deltas) == final.text and final.finish_reason == "stop"
    assert final.usage.completion_tokens == 10  # stream_options.include_usage was sent


def test_broken_stream_is_returned_as_incomplete(monkeypatch) -> None:
    with OpenAIStub(fail_midstream=3) as stub:
        *deltas, final = list(openai_model(stub, monkeypatch).stream(REQUEST))
    assert len(deltas) == 3 and not final.complete and final.finish_reason == "incomplete"


def test_token_limit_is_reported(monkeypatch) -> None:
    with OpenAIStub() as stub:
        generation = openai_model(stub, monkeypatch).complete(
            GenerationRequest(REQUEST.messages, max_tokens=3))
    assert generation.finish_reason == "length" and not generation.complete


def test_rejected_key_names_the_variable_and_never_the_key(monkeypatch) -> None:
    with OpenAIStub(api_key="the-right-key") as stub:
        model = openai_model(stub, monkeypatch)
        monkeypatch.setenv("OPENAI_API_KEY", "sk-secret-123")
        model = load_generator("openai:gpt-test", ProviderSettings(max_retries=0))
        with pytest.raises(GenerationError, match="OPENAI_API_KEY") as info:
            model.complete(REQUEST)
    assert "sk-secret-123" not in str(info.value) and "401" in str(info.value)


def test_rate_limits_are_retried(monkeypatch) -> None:
    with OpenAIStub(fail_429=2) as stub:
        generation = openai_model(stub, monkeypatch, max_retries=2).complete(REQUEST)
    assert generation.text and len(stub.requests) == 3


def test_server_errors_after_retries_are_explained(monkeypatch) -> None:
    with OpenAIStub(fail_500=5) as stub, pytest.raises(GenerationError, match="HTTP 500"):
        openai_model(stub, monkeypatch, max_retries=1).complete(REQUEST)
    assert len(stub.requests) == 2


def test_slow_server_times_out_with_a_clear_message(monkeypatch) -> None:
    with OpenAIStub(delay_s=1.0) as stub, pytest.raises(GenerationError, match=r"did not answer within 0.2 s"):
        openai_model(stub, monkeypatch, timeout_s=0.2).complete(REQUEST)


def test_unreachable_server_says_so(monkeypatch) -> None:
    with OpenAIStub() as stub:
        url = stub.url
    monkeypatch.setenv("OPENAI_BASE_URL", url)  # the port is closed now
    with pytest.raises(GenerationError, match="could not be reached"):
        load_generator("openai:gpt-test", ProviderSettings(max_retries=0)).complete(REQUEST)


def test_missing_key_for_openai_names_the_variable() -> None:
    with pytest.raises(ConfigError, match=r"OPENAI_API_KEY.*not set"):
        load_generator("openai:gpt-4o-mini")


def test_local_server_needs_no_key(monkeypatch) -> None:
    with OpenAIStub(api_key=None) as stub:
        model = load_generator("openai:local", ProviderSettings(base_url=stub.url, max_retries=0))
        assert model.complete(REQUEST).text
    assert stub.requests[-1]["headers"]["authorization"] == "Bearer not-needed"


def test_presets_know_their_endpoints_and_keys(monkeypatch) -> None:
    monkeypatch.setenv("DEEPSEEK_API_KEY", "k")
    deepseek = load_generator("deepseek:deepseek-chat")
    assert deepseek.id == "deepseek:deepseek-chat" and deepseek.base_url == "https://api.deepseek.com/v1"
    with pytest.raises(ConfigError, match="DASHSCOPE_API_KEY"):
        load_generator("qwen:qwen-plus")
    ollama = load_generator("ollama:qwen2.5")
    assert ollama.base_url.startswith("http://127.0.0.1:11434") and ollama.id == "ollama:qwen2.5"


def test_model_without_a_name_is_refused() -> None:
    with pytest.raises(GenerationError, match=r"openai:MODEL"):
        load_generator("openai")


def test_model_resolution_order() -> None:
    assert resolve_model("a:x", "b:y", "c:z") == "a:x"
    assert resolve_model(None, "b:y", "c:z") == "b:y"
    assert resolve_model(None, None, "c:z") == "c:z"
    assert resolve_model(None, None, " ") == "extractive"


def test_kb_ask_through_an_openai_compatible_server(kb_factory, tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "doc.txt").write_text("Metformin is a first-line treatment for type 2 diabetes. It is cheap.")
    kb = kb_factory()
    kb.ingest([tmp_path / "doc.txt"])
    with OpenAIStub(api_key=None) as stub:
        monkeypatch.setenv("OPENAI_BASE_URL", stub.url)
        answer = kb.ask("What is a first-line treatment for type 2 diabetes?", model="openai:gpt-test")
    assert not answer.abstained and answer.citations[0].supported
    assert answer.manifest["model_version"] == "gpt-test-stub-2026 (fp_stub)"
    assert answer.usage.completion_tokens == 10 and answer.usage.cost_usd is None


# -- Anthropic (recorded responses replayed at the HTTP layer) --------------------------------
def anthropic_model(replay: AnthropicReplay, monkeypatch, **settings):
    monkeypatch.setenv("ANTHROPIC_API_KEY", replay.api_key)
    options = {"base_url": replay.url, "max_retries": 0, "timeout_s": 5.0, **settings}
    return load_generator("anthropic:claude-sonnet-4-6", ProviderSettings(**options))


def test_anthropic_completion(monkeypatch) -> None:
    with AnthropicReplay() as replay:
        generation = anthropic_model(replay, monkeypatch).complete(REQUEST)
        body = replay.requests[-1]["body"]
    assert generation.text == "Metformin is a first-line treatment for type 2 diabetes [1]."
    assert generation.version == "claude-sonnet-4-5-20250929" and generation.finish_reason == "end_turn"
    assert generation.complete and generation.usage.prompt_tokens == 412
    assert body["system"] == "Answer from the sources."  # system messages go to the system field
    assert [m["role"] for m in body["messages"]] == ["user"]


def test_anthropic_stream(monkeypatch) -> None:
    with AnthropicReplay() as replay:
        *deltas, final = list(anthropic_model(replay, monkeypatch).stream(REQUEST))
    assert "".join(deltas) == final.text == "Metformin is a first-line treatment for type 2 diabetes [1]."
    assert final.usage.completion_tokens == 17 and final.complete


def test_anthropic_errors(monkeypatch) -> None:
    with AnthropicReplay(fail_529=1) as replay:
        assert anthropic_model(replay, monkeypatch, max_retries=1).complete(REQUEST).text
        monkeypatch.setenv("ANTHROPIC_API_KEY", "wrong-secret")
        model = load_generator("anthropic:claude-sonnet-4-6", ProviderSettings(base_url=replay.url, max_retries=0))
        with pytest.raises(GenerationError, match="ANTHROPIC_API_KEY") as info:
            model.complete(REQUEST)
    assert "wrong-secret" not in str(info.value)


def test_anthropic_missing_key() -> None:
    with pytest.raises(ConfigError, match="ANTHROPIC_API_KEY"):
        load_generator("anthropic:claude-sonnet-4-6")


def test_answer_to_dict_is_json(kb_factory, tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "doc.txt").write_text("Metformin is a first-line treatment for type 2 diabetes.")
    kb = kb_factory()
    kb.ingest([tmp_path / "doc.txt"])
    with AnthropicReplay() as replay:
        monkeypatch.setenv("ANTHROPIC_API_KEY", replay.api_key)
        monkeypatch.setenv("ANTHROPIC_BASE_URL", replay.url)
        answer = kb.ask("What is a first-line treatment for type 2 diabetes?", model="anthropic:claude-sonnet-4-6")
    data = json.loads(json.dumps(answer.to_dict()))
    assert data["manifest"]["model"] == "anthropic:claude-sonnet-4-6" and data["citations"][0]["supported"]
