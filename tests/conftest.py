"""Shared fixtures: the network is blocked; a deterministic fake embedder (``fake-en:<dims>``)
and a scripted language model (``scripted:<name>``) are registered through the real plug-in
registry for each test, and unregistered after it."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from domainrag import registry
from domainrag.errors import GenerationError
from domainrag.models.generation import BaseGenerator, Generation, GenerationRequest
from domainrag.models.hash_embedder import HashEmbedder
from domainrag.types import Usage

REPO = Path(__file__).resolve().parent.parent


class FakeEnglishEmbedder(HashEmbedder):
    """The hash embedder, declared English-only like the bundled MiniLM (for routing tests)."""

    default_languages = frozenset({"en"})

    def __init__(self, model_name: str = "64", config=None) -> None:
        super().__init__(model_name, config)
        self.id = f"fake-en:{self.dimensions}"
        self.calls = 0

    def embed_batch(self, texts):
        self.calls += 1
        return super().embed_batch(texts)




class ScriptedGenerator(BaseGenerator):
    """A language model that replies from a script, recording every request.

    ``script`` is a list of replies consumed in order (the last one repeats) or a function of
    the request; a reply is a string, or a ``(text, finish_reason)`` pair. The model name
    ``fail`` raises :class:`GenerationError` on every call. Usage is 10 prompt + 5 completion
    tokens per call; the stream yields the reply word by word.
    """

    script: list | object = ["No answer scripted."]
    requests: list[GenerationRequest] = []

    def __init__(self, model_name: str = "model", settings=None) -> None:
        super().__init__(model_name, settings)
        self.id = f"scripted:{model_name}"

    def complete(self, request: GenerationRequest) -> Generation:
        ScriptedGenerator.requests.append(request)
        if self.model_name == "fail":
            raise GenerationError("scripted failure (HTTP 500)")
        script = ScriptedGenerator.script
        if callable(script):
            reply = script(request)
        else:
            reply = script[min(len(ScriptedGenerator.requests) - 1, len(script) - 1)]
        text, finish = reply if isinstance(reply, tuple) else (reply, "stop")
        return Generation(text, self.id, f"{self.model_name}-v1", Usage(10, 5), finish)

    def stream(self, request: GenerationRequest):
        generation = self.complete(request)
        words = generation.text.split(" ")
        for i, word in enumerate(words):
            piece = word if i == len(words) - 1 else word + " "
            if piece:
                yield piece
        yield generation


FAKES = (("domainrag.embedders", "fake-en", FakeEnglishEmbedder),
         ("domainrag.generators", "scripted", ScriptedGenerator))


@pytest.fixture(autouse=True)
def fakes() -> Iterator[None]:
    """The fake embedder and the scripted model, registered like any plug-in for this test."""
    for group, name, obj in FAKES:
        registry.register(group, name, obj)
    yield
    for group, name, _ in FAKES:
        registry.unregister(group, name)


@pytest.fixture
def scripted() -> type[ScriptedGenerator]:
    """The scripted model's class, with a fresh script and request log for this test."""
    ScriptedGenerator.script = ["No answer scripted."]
    ScriptedGenerator.requests = []
    return ScriptedGenerator


@pytest.fixture(autouse=True)
def _block_network(monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> None:
    """Unit tests may only talk to loopback; integration tests opt out with a marker."""
    if request.node.get_closest_marker("integration"):
        return
    real_connect = socket.socket.connect

    def guarded(self: socket.socket, address: object) -> object:
        host = address[0] if isinstance(address, tuple) else str(address)
        if isinstance(host, str) and host not in ("127.0.0.1", "::1", "localhost") and not host.startswith("/"):
            raise RuntimeError(f"network access blocked in unit tests: {address!r}")
        return real_connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", guarded)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    for name in ("DOMAINRAG_MODEL", "OPENAI_API_KEY", "OPENAI_BASE_URL", "ANTHROPIC_API_KEY",
                 "ANTHROPIC_BASE_URL"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(autouse=True)
def _user_config_dir(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The user's domainrag configuration (the trust store) and cache in a fresh folder per test."""
    path = tmp_path_factory.mktemp("user-config")
    monkeypatch.setenv("DOMAINRAG_CONFIG_DIR", str(path))
    monkeypatch.setenv("DOMAINRAG_CACHE_DIR", str(path / "cache"))   # the shared embedding cache too
    return path


@pytest.fixture
def kb_factory(tmp_path: Path):
    """Open knowledge bases under tmp_path with the fake English embedder by default."""
    from domainrag import KnowledgeBase

    opened = []

    def make(name: str = "kb", **overrides: object) -> KnowledgeBase:
        settings = {"embedder.model": "fake-en:64", "chunking.target_tokens": 64,
                    "chunking.overlap_tokens": 8, **overrides}
        kb = KnowledgeBase.open(tmp_path / name, create=True, overrides=settings)
        opened.append(kb)
        return kb

    yield make
    for kb in opened:
        kb.close()


@pytest.fixture
def shared_data() -> Path:
    """``../shared/data`` (or ``$DOMAINRAG_SHARED_DATA``); the test is skipped when absent."""
    env = os.environ.get("DOMAINRAG_SHARED_DATA")
    path = Path(env) if env else REPO.parent / "shared" / "data"
    if not path.is_dir():
        pytest.skip(f"shared datasets not present at {path}")
    return path
