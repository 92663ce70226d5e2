"""Shared fixtures: the network is blocked, and a deterministic fake embedder is registered
through the real plug-in registry (``fake:<dims>``)."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from domainrag import registry
from domainrag.models.hash_embedder import HashEmbedder

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


registry.register("domainrag.embedders", "fake-en", FakeEnglishEmbedder)


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
