"""Credentials in a URL are sent to the server and stored or shown nowhere: model ids,
manifests, the run store, the model-call cache, error messages and reports."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from openai_stub import OpenAIStub

from domainrag.compare.compare import compare_runs
from domainrag.errors import GenerationError
from domainrag.evaluate.runner import EvalOptions, run_suite
from domainrag.evaluate.runs import RunStore
from domainrag.evaluate.suite import load_suite
from domainrag.models.cache import ModelCache
from domainrag.redaction import host_port, redact, redact_url
from domainrag.report.comparison_html import render_comparison_html
from domainrag.report.html import render_html

SECRET = "TOPSECRET42"


@pytest.mark.parametrize(("url", "shown"), [
    ("http://user:pw@host:8080/v1", "http://***@host:8080/v1"),
    ("https://token@host/v1", "https://***@host/v1"),
    ("https://a:b@c@host/v1", "https://***@host/v1"),
    ("https://host/v1?api_key=k1&model=x", "https://host/v1?api_key=***&model=x"),
    ("https://host/v1?access_token=k1&X-Amz-Signature=s&Key=k", "https://host/v1?access_token=***&X-Amz-Signature=***&Key=***"),
    ("https://host/v1?page=2", "https://host/v1?page=2"),
    ("https://host/v1", "https://host/v1"),
    ("http://u:p@[::1", "http://***@[::1"),
])
def test_redact_url(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def test_redact_finds_urls_in_text_and_removes_keys() -> None:
    text = "The API at http://u:pw@10.0.0.1:8000/v1?token=abc failed: 'sk-live-123' rejected (see https://x.y/z)"
    assert redact(text, "sk-live-123", None) == (
        "The API at http://***@10.0.0.1:8000/v1?token=*** failed: '***' rejected (see https://x.y/z)")
    assert host_port("http://u:pw@10.0.0.1:8000/v1") == "10.0.0.1:8000"


def _grep(root: Path) -> list[str]:
    return [str(p) for p in root.rglob("*") if p.is_file() and SECRET.encode() in p.read_bytes()]


def test_credentials_in_a_base_url_reach_the_server_and_nothing_else(kb_factory, tmp_path: Path,
                                                                     _user_config_dir: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "metformin.txt").write_text("Metformin is a first-line treatment for type 2 diabetes. It is cheap.")
    (docs / "backup.txt").write_text("Backups of the billing database run nightly and are kept for 35 days.")
    suite = tmp_path / "suite.jsonl"
    suite.write_text(
        json.dumps({"id": "m1", "question": "What is a first-line treatment for type 2 diabetes?",
                    "answers": ["Metformin"], "gold": ["docs/metformin.txt"]}) + "\n"
        + json.dumps({"id": "b1", "question": "How long are billing database backups kept?",
                      "answers": ["35 days"], "gold": ["docs/backup.txt"]}) + "\n")
    with OpenAIStub(api_key=None) as stub:
        url = stub.url.replace("http://", f"http://user:{SECRET}@")
        kb = kb_factory(**{"embedder.model": "openai:stub-embed", "embedder.base_url": url,
                           "answer.model": "openai:gpt-test", "answer.base_url": url, "answer.max_retries": 0})
        kb.ingest([docs])
        answer = kb.ask("What is a first-line treatment for type 2 diabetes?")
        assert not answer.abstained
        sent = stub.requests[-1]["headers"]["authorization"]
        assert sent == "Basic " + base64.b64encode(f"user:{SECRET}".encode()).decode()  # the server got it
        kb.answerer.cache = ModelCache(kb.path / "model_cache.sqlite3")
        store = RunStore(kb.path)
        answers = frozenset({"retrieval", "answer"})
        first = run_suite(kb, load_suite(suite), EvalOptions(metrics=answers, name="a"), store)
        second = run_suite(kb, load_suite(suite), EvalOptions(metrics=answers, name="b"), store)
        hits = kb.search("first-line treatment for type 2 diabetes")
        stub.fail_500 = 100
        with pytest.raises(GenerationError) as err:
            kb.answerer.answer("What is a first-line treatment for type 2 diabetes?", hits, model="openai:other")
    host = url.split("@")[1].split("/")[0]
    assert answer.manifest["model"] == f"openai:gpt-test@{host}"
    runs = [store.get(first.run_id).to_dict(), store.get(second.run_id).to_dict()]
    assert runs[0]["manifest"]["model_ids"] == [f"openai:gpt-test@{host}"]
    assert runs[0]["manifest"]["settings"]["answer.base_url"] == url.replace(f"user:{SECRET}", "***")
    shown = [json.dumps(answer.to_dict()), str(err.value), *(json.dumps(r) for r in runs),
             render_html(runs[0]), render_comparison_html(compare_runs(first, second, force=True).to_dict())]
    assert "HTTP 500" in str(err.value) and "***@" in str(err.value)
    assert [i for i, text in enumerate(shown) if SECRET in text] == []
    store.close()
    kb.answerer.cache.close()
    kb.close()
    # Only the configuration holds what the user configured; no store, cache or index does.
    assert _grep(kb.path) == [str(kb.path / "domainrag.toml")] and _grep(_user_config_dir) == []
