"""The real ``domainrag serve`` app under Uvicorn on 127.0.0.1, driven by the official ``openai``
Python SDK, plain and streaming: what an unmodified client gets from the OpenAI endpoint."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("fastapi")
uvicorn = pytest.importorskip("uvicorn")
openai = pytest.importorskip("openai")

from domainrag.server.app import create_app  # noqa: E402
from domainrag.server.keys import KeyStore  # noqa: E402
from domainrag.server.settings import load_settings  # noqa: E402

pytestmark = pytest.mark.integration

THYROID = """# Hypothyroidism

## Treatment

Hypothyroidism is treated with levothyroxine, a synthetic thyroid hormone taken once a day.
The usual starting dose for adults is 50 micrograms daily.

## Symptoms

Fatigue, weight gain and feeling cold are common symptoms of hypothyroidism.
"""
DOSE = "What is the starting dose of levothyroxine for adults?"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class Served:
    """The app under Uvicorn in a thread, for the duration of a ``with`` block."""

    def __init__(self, app: Any) -> None:
        self.port = free_port()
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def __enter__(self) -> Served:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)


@pytest.fixture
def home(kb_factory: Any, tmp_path: Path) -> tuple[Path, dict[str, Path]]:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "thyroid.md").write_text(THYROID)
    other = tmp_path / "other-docs"
    other.mkdir()
    (other / "notes.txt").write_text("The secret project ships in March.")
    paths = {}
    for name, folder in (("docs", docs), ("secret", other)):
        kb = kb_factory(name)
        kb.ingest([folder])
        paths[name] = kb.path
        kb.close()
    return tmp_path / "home", paths


@pytest.fixture
def server(home: tuple[Path, dict[str, Path]]) -> Iterator[Served]:
    root, paths = home
    settings = load_settings(overrides={"home": root, "models": ["scripted:m", "scripted:fail"],
                                        "collections": {n: {"path": p} for n, p in paths.items()}})
    with Served(create_app(settings)) as served:
        yield served


@pytest.fixture
def client(server: Served) -> Any:
    return openai.OpenAI(base_url=server.url, api_key="unused-on-loopback", max_retries=0)


def test_models_lists_collections_and_collection_model_pairs(client: Any) -> None:
    ids = [m.id for m in client.models.list()]
    assert ids == ["docs", "docs:scripted:m", "docs:scripted:fail", "secret", "secret:scripted:m",
                   "secret:scripted:fail"]


def test_plain_answer_has_markers_a_sources_list_and_citations(client: Any) -> None:
    response = client.chat.completions.create(model="docs", messages=[{"role": "user", "content": DOSE}],
                                              temperature=0.3, user="someone")
    choice = response.choices[0]
    text = choice.message.content
    assert choice.finish_reason == "stop" and choice.message.role == "assistant"
    answer, _, sources = text.partition("\n\n**Sources**\n\n")
    assert "50 micrograms" in answer and answer.endswith("[1]")
    assert sources.startswith("- [1] Hypothyroidism (thyroid.md) — \"The usual starting dose")
    citations = response.model_extra["citations"]
    assert citations[0]["number"] == 1 and citations[0]["supported"] is True
    assert citations[0]["doc_id"].endswith("thyroid.md") and "50 micrograms" in citations[0]["quote"]
    assert response.model_extra["domainrag"]["abstained"] is False
    assert response.usage is not None and response.usage.total_tokens == 0


def test_streamed_answer_ends_as_the_plain_one(client: Any) -> None:
    plain = client.chat.completions.create(model="docs", messages=[{"role": "user", "content": DOSE}])
    chunks = list(client.chat.completions.create(model="docs", messages=[{"role": "user", "content": DOSE}],
                                                 stream=True))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == plain.choices[0].message.content
    assert chunks[0].choices[0].delta.role == "assistant"
    final = chunks[-1]
    assert final.choices[0].finish_reason == "stop"
    assert final.model_extra["citations"] == plain.model_extra["citations"]


def test_streamed_answer_from_a_model_is_the_checked_text(client: Any, scripted: Any) -> None:
    # the model cites a source [7] it was never given: no client ever sees that marker
    scripted.script = lambda r: r.sources[0].text.split(". ")[0].rstrip(".") + ". [1][7]"
    stream = client.chat.completions.create(model="docs:scripted:m", stream=True,
                                            messages=[{"role": "user", "content": DOSE}])
    text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert "[1]" in text and "[7]" not in text and "**Sources**" in text


def test_keep_alives_while_a_slow_answer_is_checked_are_invisible_to_the_sdk(client: Any, scripted: Any,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    from domainrag.server import openai_compat

    monkeypatch.setattr(openai_compat, "KEEPALIVE_S", 0.05)

    def slow(request: Any) -> str:
        time.sleep(0.5)
        return str(request.sources[0].text).split(". ")[0].rstrip(".") + ". [1]"

    scripted.script = slow
    stream = client.chat.completions.create(model="docs:scripted:m", stream=True,
                                            messages=[{"role": "user", "content": DOSE}])
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert "levothyroxine" in text and "[1]\n\n**Sources**\n\n- [1] Hypothyroidism" in text
    assert chunks[-1].choices[0].finish_reason == "stop"


def test_a_model_failure_mid_stream_raises_in_the_sdk(client: Any) -> None:
    stream = client.chat.completions.create(model="docs:scripted:fail", stream=True,
                                            messages=[{"role": "user", "content": DOSE}])
    with pytest.raises(openai.APIError) as info:
        list(stream)
    assert "scripted failure" in info.value.message


def test_follow_ups_are_rewritten_with_the_history(client: Any, scripted: Any) -> None:
    def reply(request: Any) -> str:
        if "Last question:" in request.messages[-1].content:
            return DOSE
        return str(request.sources[0].text).split(". ")[0].rstrip(".") + ". [1]"

    scripted.script = reply
    response = client.chat.completions.create(model="docs:scripted:m", messages=[
        {"role": "system", "content": "Answer like a pirate."},
        {"role": "user", "content": "How is hypothyroidism treated?"},
        {"role": "assistant", "content": "With levothyroxine [1].\n\n**Sources**\n\n- [1] Hypothyroidism"},
        {"role": "user", "content": "And the dose for adults?"}])
    assert scripted.requests[1].question == DOSE
    assert "pirate" not in " ".join(m.content for m in scripted.requests[1].messages)
    assert response.model_extra["citations"][0]["supported"]


def test_abstention_is_a_normal_message(client: Any) -> None:
    response = client.chat.completions.create(model="docs", messages=[
        {"role": "user", "content": "Who won the 1998 football world cup?"}])
    assert response.choices[0].finish_reason == "stop"
    assert "**Sources**" not in response.choices[0].message.content
    assert response.model_extra["citations"] == [] and response.model_extra["domainrag"]["abstained"] is True


def test_errors_reach_the_sdk_with_their_message(client: Any) -> None:
    with pytest.raises(openai.NotFoundError) as missing:
        client.chat.completions.create(model="nope", messages=[{"role": "user", "content": DOSE}])
    assert missing.value.code == "model_not_found" and "GET /v1/models" in missing.value.message
    with pytest.raises(openai.UnprocessableEntityError) as many:
        client.chat.completions.create(model="docs", n=2, messages=[{"role": "user", "content": DOSE}])
    assert many.value.param == "n" and "n=2 is not supported" in many.value.message
    with pytest.raises(openai.UnprocessableEntityError) as huge:
        client.chat.completions.create(model="docs", messages=[{"role": "user", "content": "why " * 25_000}])
    assert "answer.max_question_chars" in huge.value.message
    with pytest.raises(openai.UnprocessableEntityError) as tools:
        client.chat.completions.create(model="docs", messages=[{"role": "user", "content": DOSE}], tools=[
            {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}])
    assert "tool and function calling are not supported" in tools.value.message


def test_a_key_sees_only_its_collections_and_hidden_ones_look_unknown(home: tuple[Path, dict[str, Path]],
                                                                    server: Served) -> None:
    root, _ = home
    with KeyStore(root / "keys.sqlite3") as keys:
        _, secret = keys.create("reader", collections=["docs"], role="read")
    client = openai.OpenAI(base_url=server.url, api_key=secret, max_retries=0)
    assert [m.id for m in client.models.list()] == ["docs", "docs:scripted:m", "docs:scripted:fail"]
    errors = []
    for model in ("secret", "does-not-exist"):
        with pytest.raises(openai.NotFoundError) as info:
            client.chat.completions.create(model=model, messages=[{"role": "user", "content": DOSE}])
        errors.append(info.value.body["message"].replace(repr(model), "M"))
    assert errors[0] == errors[1]
    anonymous = openai.OpenAI(base_url=server.url, api_key="dr_wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as denied:
        anonymous.chat.completions.create(model="docs", messages=[{"role": "user", "content": DOSE}])
    assert "API key is not valid" in denied.value.message
