"""Server settings (server.toml + command line) and the ``serve`` command's refusals."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from domainrag.cli import app
from domainrag.errors import ConfigError
from domainrag.server.run import collection_args
from domainrag.server.settings import check_bind, is_loopback, load_settings


def test_toml_and_command_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DOMAINRAG_HOME", raising=False)
    config = tmp_path / "server.toml"
    config.write_text('[server]\nport = 9000\nmax_upload_mb = 5\ncors_origins = ["http://x"]\n'
                      '[collections.policies]\npath = "/srv/policies"\n')
    settings = load_settings(config, {"host": "127.0.0.2", "port": None,
                                      "collections": {"extra": {"path": "/srv/extra"}}})
    assert (settings.host, settings.port, settings.max_upload_bytes) == ("127.0.0.2", 9000, 5 * 1024 * 1024)
    assert set(settings.collections) == {"policies", "extra"}
    assert settings.home == Path(".domainrag-server")
    monkeypatch.setenv("DOMAINRAG_HOME", str(tmp_path / "h"))
    assert load_settings().home == tmp_path / "h"


@pytest.mark.parametrize(("text", "words"), [
    ("[server]\nmax_upload_mb = -1\n", ["server.max_upload_mb", "-1"]),
    ("[server]\nportt = 1\n", ["server.portt"]),
    ("[collections.x]\npaht = 'a'\n", ["collections.x.paht"]),
    ("[srv]\n", ["srv"]),
    ("[server\n", ["not valid TOML"]),
])
def test_bad_settings_name_the_key(tmp_path: Path, text: str, words: list[str]) -> None:
    config = tmp_path / "server.toml"
    config.write_text(text)
    with pytest.raises(ConfigError) as raised:
        load_settings(config)
    for word in words:
        assert word in str(raised.value)


def test_kb_arguments() -> None:
    assert collection_args(["/data/policies", "hr=/data/people"]) == {
        "policies": {"path": "/data/policies"}, "hr": {"path": "/data/people"}}
    url = "postgresql://rag@db/rag?password_env=RAG_PW#legal"
    assert collection_args([url, f"contracts={url}"]) == {"legal": {"path": url}, "contracts": {"path": url}}


def test_public_bind_needs_keys_or_insecure() -> None:
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("example.org")
    public = load_settings(None, {"host": "0.0.0.0"})
    with pytest.raises(ConfigError, match="--insecure"):
        check_bind(public, keys_exist=False)
    check_bind(public, keys_exist=True)
    check_bind(load_settings(None, {"host": "0.0.0.0", "insecure": True}), keys_exist=False)


def test_serve_refuses_a_public_bind_in_one_line(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["serve", "--host", "0.0.0.0", "--home", str(tmp_path / "home")])
    assert result.exit_code == 1
    assert "Refusing to listen on 0.0.0.0" in result.output and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) <= 3  # one message (Rich may wrap it)
