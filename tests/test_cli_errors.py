"""Issue 20: the command line's remaining tracebacks and wrong exit codes become one-line errors
that name the fix (exit 1)."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from test_cli import run


def one_line_error(result, *words: str) -> None:
    assert result.returncode == 1, result.stdout + result.stderr
    message = " ".join((result.stderr or result.stdout).split())
    assert message.startswith("error: ") and "Traceback" not in message, message
    for word in words:
        assert word in message, (word, message)


@pytest.mark.parametrize("content", [b"\xff\xfe\x00binary", "[answer]\nmodel = \"caf\xe9\"\n".encode("latin-1")],
                         ids=["binary", "latin-1"])
def test_a_knowledge_base_config_that_is_not_utf8_is_one_line(tmp_path: Path, content: bytes) -> None:
    kb = tmp_path / "kb"
    kb.mkdir()
    (kb / "domainrag.toml").write_bytes(content)
    one_line_error(run("search", "q", "--kb", str(kb), cwd=tmp_path, check_code=None), "not UTF-8", "domainrag.toml")


def test_a_knowledge_base_under_a_file_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "afile").write_text("x")
    (tmp_path / "doc.txt").write_text("Customers may return goods within 30 days.")
    result = run("ingest", "doc.txt", "--kb", str(tmp_path / "afile" / "kb"), cwd=tmp_path, check_code=None)
    one_line_error(result, "afile is a file", "--kb")


@pytest.mark.parametrize("command", [["keys", "create", "--name", "x", "--role", "admin"], ["serve"], ["keys", "list"],
                                     ["keys", "revoke", "x"]])
def test_a_server_home_that_is_a_file_is_one_line(tmp_path: Path, command: list[str]) -> None:
    (tmp_path / "afile").write_text("x")
    result = run(*command, "--home", str(tmp_path / "afile"), cwd=tmp_path, check_code=None)
    one_line_error(result, "afile", "--home")


@pytest.mark.parametrize("content", [b"\xff\xfe\x00binary", b"\x89PNG\r\n\x1a\n\x00\x00"], ids=["binary", "png"])
def test_a_server_config_that_is_garbage_is_one_line(tmp_path: Path, content: bytes) -> None:
    (tmp_path / "server.toml").write_bytes(content)
    result = run("serve", "--config", str(tmp_path / "server.toml"), cwd=tmp_path, check_code=None)
    one_line_error(result, "server.toml", "--config")


def test_serve_on_a_busy_port_is_one_line_and_exit_1(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = run("serve", "--home", str(tmp_path / "home"), "--port", str(port), cwd=tmp_path, check_code=None)
    one_line_error(result, f"127.0.0.1:{port}", "--port")


def test_serve_refuses_a_missing_knowledge_base_at_start(tmp_path: Path) -> None:
    result = run("serve", "--home", str(tmp_path / "home"), "--kb", str(tmp_path / "nowhere"), cwd=tmp_path,
                 check_code=None)
    one_line_error(result, "nowhere", "domainrag ingest")
