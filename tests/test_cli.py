"""The CLI end to end, as users run it: in-process through Typer's ``CliRunner`` (fast), and
through a real process where only a process will do (``kill -9``, the installed entry point)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from domainrag import registry
from domainrag.models.hash_embedder import HashEmbedder

PLUGIN_BOOT = (
    "import sys, time; from domainrag import registry; "
    "from domainrag.models.hash_embedder import HashEmbedder\n"
    "class Slow(HashEmbedder):\n"
    "    def embed_batch(self, texts):\n"
    "        time.sleep(0.05); return super().embed_batch(texts)\n"
    "registry.register('domainrag.embedders', 'slow', Slow)\n"
    "from domainrag.cli import main; sys.argv = ['domainrag', *sys.argv[1:]]; main()\n"
)


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str


def run(*args: str, cwd: Path, check_code: int | None = 0, input: str | None = None,
        env: dict[str, str] | None = None) -> Result:
    """``domainrag ARGS`` in this process, in folder ``cwd`` with ``$DOMAINRAG_KB=cwd/kb``."""
    from typer.testing import CliRunner

    from domainrag.cli import app

    environment = {"DOMAINRAG_KB": str(cwd / "kb"), "COLUMNS": "200", "DOMAINRAG_TRACEBACK": None, **(env or {})}
    previous = Path.cwd()
    os.chdir(cwd)
    try:
        result = CliRunner().invoke(app, list(args), input=input, env=environment, catch_exceptions=True)
    finally:
        os.chdir(previous)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception  # a traceback the user would have seen
    done = Result(result.exit_code, result.stdout, result.stderr)
    if check_code is not None:
        assert done.returncode == check_code, done.stdout + done.stderr
    return done


@pytest.fixture
def slow_embedder() -> Iterator[None]:
    """A hash embedder that takes 50 ms per batch (for interrupting an ingest)."""
    registry.register("domainrag.embedders", "slow", SlowEmbedder)
    yield
    registry.unregister("domainrag.embedders", "slow")


class SlowEmbedder(HashEmbedder):
    def embed_batch(self, texts: list[str]) -> Any:
        time.sleep(0.05)
        return super().embed_batch(texts)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.md").write_text("# Retention\n\nCustomer records are kept for seven years.")
    (docs / "b.txt").write_text("Passwords must be rotated every ninety days.")
    return docs


def test_ingest_search_status(folder: Path, tmp_path: Path) -> None:
    done = run("ingest", str(folder), "--embedder", "hash:64", "--json", cwd=tmp_path)
    report = json.loads(done.stdout)
    assert report["added"] == 2 and report["failed"] == 0
    hits = json.loads(run("search", "how long are records kept", "--json", "-k", "1", cwd=tmp_path).stdout)
    assert hits[0]["doc_id"] == "docs/a.md" and hits[0]["span"]["end"] > 0
    table = run("search", "password rotation", "--mode", "lexical", cwd=tmp_path).stdout
    assert "docs/b.txt" in table
    filtered = json.loads(run("search", "records", "--json", "--filter", "path=docs/b*", cwd=tmp_path).stdout)
    assert {h["doc_id"] for h in filtered} <= {"docs/b.txt"}
    status = json.loads(run("status", "--json", cwd=tmp_path).stdout)
    assert status["documents"] == 2 and status["manifest"]["embedder"]["id"].startswith("hash:64")


def test_partial_ingest_exit_code_and_reasons(folder: Path, tmp_path: Path) -> None:
    (folder / "broken.pdf").write_bytes(b"%PDF-1.4 not really a pdf")
    proc = run("ingest", str(folder), "--embedder", "hash:64", cwd=tmp_path, check_code=3)
    assert "broken.pdf" in proc.stderr and "2 added" in proc.stdout


def test_errors_are_one_line_messages(tmp_path: Path) -> None:
    proc = run("search", "x", "--kb", str(tmp_path / "missing"), cwd=tmp_path, check_code=1)
    assert proc.stderr.startswith("error: No knowledge base") and "Traceback" not in proc.stderr
    proc = run("ingest", str(tmp_path / "nope"), cwd=tmp_path, check_code=1)
    assert "nope" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.slow
def test_kill_9_mid_ingest_leaves_a_consistent_kb(tmp_path: Path, slow_embedder: None) -> None:
    docs = tmp_path / "many"
    docs.mkdir()
    for i in range(300):
        (docs / f"f{i:03}.txt").write_text(f"Document {i} discusses subject {i % 17}. " * 60)
    env = {**os.environ, "DOMAINRAG_KB": str(tmp_path / "kb")}
    proc = subprocess.Popen([sys.executable, "-c", PLUGIN_BOOT, "ingest", str(docs), "--embedder", "slow:64"],
                            cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    catalog = tmp_path / "kb" / "catalog.sqlite3"
    deadline = time.time() + 60
    while time.time() < deadline and not _has_documents(catalog):
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    status = json.loads(run("status", "--json", cwd=tmp_path).stdout)
    assert 0 < status["documents"] < 300, "kill landed mid-ingest"
    run("search", "subject 3", "--json", cwd=tmp_path)  # derived indexes rebuilt
    run("ingest", str(docs), cwd=tmp_path)
    status = json.loads(run("status", "--json", cwd=tmp_path).stdout)
    assert status["documents"] == 300 and status["sources"] == 300
    run("ingest", str(docs), "--kb", str(tmp_path / "clean"), "--embedder", "slow:64", cwd=tmp_path)
    clean = json.loads(run("status", "--json", "--kb", str(tmp_path / "clean"), cwd=tmp_path).stdout)
    assert clean["chunks"] == status["chunks"]


def _has_documents(catalog: Path) -> bool:
    import sqlite3

    if not catalog.exists():
        return False
    try:
        with sqlite3.connect(catalog, timeout=0.1) as db:
            return db.execute("SELECT COUNT(*) FROM documents").fetchone()[0] > 0
    except sqlite3.Error:
        return False


def test_ask_offline_json_and_table(folder: Path, tmp_path: Path) -> None:
    run("ingest", str(folder), "--embedder", "hash:64", cwd=tmp_path)
    data = json.loads(run("ask", "How long are customer records kept?", "--json", cwd=tmp_path).stdout)
    assert not data["abstained"] and "seven years" in data["text"]
    assert data["citations"][0]["doc_id"] == "docs/a.md" and data["citations"][0]["supported"]
    assert data["manifest"]["model"] == "extractive" and data["trace"]["timings_ms"]["total_ms"] > 0
    table = run("ask", "How long are customer records kept?", cwd=tmp_path).stdout
    assert "seven years" in table and "docs/a.md" in table and "✓" in table
    no = run("ask", "Which football team won in 1998?", cwd=tmp_path).stdout
    assert "do not contain an answer" in no and "abstained" in no


def test_ask_bad_input_is_a_one_line_error(folder: Path, tmp_path: Path) -> None:
    run("ingest", str(folder), "--embedder", "hash:64", cwd=tmp_path)
    proc = run("ask", "  ", cwd=tmp_path, check_code=1)
    assert "question is empty" in proc.stderr and "Traceback" not in proc.stderr
    proc = run("ask", "records?", "--model", "openai:gpt-4o-mini", cwd=tmp_path, check_code=1,
               env={"OPENAI_API_KEY": "", "OPENAI_BASE_URL": ""})
    assert "OPENAI_API_KEY" in proc.stderr


def test_ask_streams_from_an_openai_compatible_server(folder: Path, tmp_path: Path) -> None:
    from openai_stub import OpenAIStub

    run("ingest", str(folder), "--embedder", "hash:64", cwd=tmp_path)
    with OpenAIStub(api_key=None) as stub:
        proc = run("ask", "How long are customer records kept?", "--stream", "--model", "openai:gpt-x",
                   cwd=tmp_path, env={"OPENAI_BASE_URL": stub.url})
        failing = run("ask", "How long are customer records kept?", "--model", "openai:gpt-x",
                      cwd=tmp_path, check_code=1, env={"OPENAI_BASE_URL": stub.url.replace("/v1", "/nope")})
    assert "Customer records are kept for seven years. [1]" in proc.stdout
    assert stub.requests[0]["body"]["stream"] is True
    assert "404" in failing.stderr


def test_chat_session_over_stdin(folder: Path, tmp_path: Path) -> None:
    run("ingest", str(folder), "--embedder", "hash:64", cwd=tmp_path)
    proc = run("chat", cwd=tmp_path, input="How long are customer records kept?\n \n/reset\nHow often must passwords be rotated?\n/exit\n")
    assert "seven years" in proc.stdout and "ninety days" in proc.stdout and "History cleared" in proc.stdout


def test_models_lists_providers_and_the_default(tmp_path: Path) -> None:
    proc = run("models", cwd=tmp_path, env={"DOMAINRAG_MODEL": "anthropic:claude-sonnet-4-5"})
    for name in ("openai", "anthropic", "extractive", "ollama", "OPENAI_API_KEY", "ANTHROPIC_API_KEY"):
        assert name in proc.stdout
    assert "Default model: anthropic:claude-sonnet-4-5 (from $DOMAINRAG_MODEL)" in proc.stdout


def test_eval_a_beir_folder_then_list_runs(tmp_path: Path) -> None:
    from test_eval import make_beir

    beir = make_beir(tmp_path / "tiny")
    env = {"DOMAINRAG_CACHE": str(tmp_path / "cache"), "DOMAINRAG_KB": ""}
    proc = run("eval", str(beir), "--set", "embedder.model=hash:64", "--json", "run.json", "--html", "run.html",
               "--name", "first", cwd=tmp_path, env=env)
    assert "Ingesting the BEIR corpus" in proc.stderr and "ndcg@10" in proc.stdout
    data = json.loads((tmp_path / "run.json").read_text())
    assert {"run_id", "manifest", "metrics", "scenarios", "cases"} <= set(data)
    assert data["metrics"]["retrieval"]["recall@10"] == 1.0 and data["manifest"]["overrides"] == {"embedder.model": "hash:64"}
    assert data["cases"][0]["retrieved"][0] == "d0"
    assert (tmp_path / "run.html").read_text().startswith("<!doctype html>")
    kb_dir = next((tmp_path / "cache" / "eval").iterdir())
    again = run("eval", str(beir), "--set", "embedder.model=hash:64", "--metrics", "retrieval", cwd=tmp_path, env=env)
    assert "Ingesting" not in again.stderr  # the cached knowledge base is reused
    listed = run("runs", "--kb", str(kb_dir), cwd=tmp_path, env=env).stdout
    assert "first" in listed and "tiny:test" in listed


def test_eval_reports_a_malformed_suite(tmp_path: Path) -> None:
    (tmp_path / "bad.jsonl").write_text('{"id": 1}\n')
    proc = run("eval", str(tmp_path / "bad.jsonl"), cwd=tmp_path, check_code=1)
    assert "line 1: missing or empty 'question'" in proc.stderr


def test_suite_generate_cli(tmp_path: Path) -> None:
    docs = tmp_path / "policies"
    docs.mkdir()
    (docs / "retention.md").write_text("# Retention\n\nCustomer records are kept for 7 years after the account closes.\n"
                                       "Backups of the billing database are deleted after 90 days by the Storage team.\n")
    (docs / "rates.csv").write_text("year,region,revenue\n2022,Europe,3.1 million\n2023,Asia,4.2 million\n")
    run("ingest", str(docs), "--embedder", "hash:64", cwd=tmp_path)
    proc = run("suite", "generate", "--n", "4", "--seed", "2", "--out", "gen.jsonl", cwd=tmp_path)
    assert "Wrote 4 case(s) to gen.jsonl: heuristic cloze questions (no model)" in proc.stdout
    assert "csv 2" in proc.stdout and "markdown 2" in proc.stdout and "policies 4" in proc.stdout
    records = [json.loads(line) for line in (tmp_path / "gen.jsonl").read_text().splitlines()]
    assert len(records) == 4 and all(r["generated"] and "generator:heuristic" in r["scenario"] for r in records)
    again = run("suite", "generate", "--n", "4", "--seed", "2", "--out", "again.jsonl", cwd=tmp_path)
    assert (tmp_path / "again.jsonl").read_text() == (tmp_path / "gen.jsonl").read_text() and again.returncode == 0
    assert "ndcg@10" in run("eval", "gen.jsonl", "--metrics", "retrieval", cwd=tmp_path).stdout
    empty = run("suite", "generate", "--kb", str(tmp_path / "nokb"), "--out", "x.jsonl", cwd=tmp_path, check_code=1)
    assert "No knowledge base" in empty.stderr

@pytest.mark.slow
def test_help_and_version() -> None:
    proc = subprocess.run([sys.executable, "-m", "domainrag.cli", "--help"], capture_output=True, text=True)
    assert proc.returncode == 0 and "ingest" in proc.stdout and "search" in proc.stdout
    proc = subprocess.run([sys.executable, "-m", "domainrag.cli", "--version"], capture_output=True, text=True)
    assert "domainrag 0.1.0" in proc.stdout
    proc = subprocess.run([sys.executable, "-m", "domainrag.cli", "search", "x", "--kb", "/nonexistent/kb"],
                          capture_output=True, text=True)
    assert proc.returncode == 1 and proc.stderr.startswith("error: No knowledge base") and "Traceback" not in proc.stderr


def test_ask_flags_uncited_claims_and_reprints_a_changed_stream(folder: Path, tmp_path: Path) -> None:
    from openai_stub import OpenAIStub

    run("ingest", str(folder), "--embedder", "hash:64", cwd=tmp_path)
    with OpenAIStub(api_key=None) as stub:
        stub.chat_reply = lambda body: ("Customer records are kept for seven years [1]. "
                                        "Auditors from the regional tax office inspect them every March.")
        proc = run("ask", "How long are customer records kept?", "--stream", "--model", "openai:gpt-x",
                   cwd=tmp_path, env={"OPENAI_BASE_URL": stub.url})
        assert "every March. [unsupported]" in proc.stdout  # the invented, uncited sentence is marked
        assert "1 sentence(s) that no source supports were marked [unsupported]" in proc.stdout
        stub.chat_reply = lambda body: "Customer records are kept for seven years [1] [7]."
        proc = run("ask", "How long are customer records kept?", "--stream", "--model", "openai:gpt-x",
                   cwd=tmp_path, env={"OPENAI_BASE_URL": stub.url})
    assert "Checked answer:" in proc.stdout and "fabricated citation(s) removed" in proc.stdout


def test_help_shows_defaults_in_brackets(tmp_path: Path) -> None:
    """Help text is plain text: "[default: …]" is not swallowed as markup."""
    text = run("eval", "--help", cwd=tmp_path).stdout
    assert "[default: 1 for a model" in " ".join(text.split()) and "[default: from config]" in text
