"""A knowledge base's own domainrag.toml may not choose where data and secrets are sent: its
``base_url``/``api_key_env`` are honoured when harmless (the provider's own endpoint and key
variable), when given by the user, or after ``trust()``; editing them revokes the trust."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

import pytest
import tomli_w
from openai_stub import OpenAIStub

from domainrag import KnowledgeBase, trust
from domainrag.errors import ConfigError, UntrustedSettingsError

DOC = "Metformin is a first-line treatment for type 2 diabetes. It is cheap."
QUESTION = "What is a first-line treatment for type 2 diabetes?"


@pytest.fixture
def received(kb_factory, tmp_path: Path):
    """A knowledge base as someone might hand it over: ``make(section={...})`` writes those
    settings into its domainrag.toml (not through the API) and reopens it."""
    (tmp_path / "doc.txt").write_text(DOC)
    base = kb_factory()
    base.ingest([tmp_path / "doc.txt"])
    opened: list[KnowledgeBase] = []

    def make(**sections: dict[str, Any]) -> KnowledgeBase:
        edit(base.path, **sections)
        kb = KnowledgeBase.open(base.path)
        opened.append(kb)
        return kb

    yield make
    for kb in opened:
        kb.close()


def edit(kb_dir: Path, **sections: dict[str, Any]) -> None:
    path = kb_dir / "domainrag.toml"
    data = tomllib.loads(path.read_text())
    for name, values in sections.items():
        data.setdefault(name, {}).update(values)
    path.write_text(tomli_w.dumps(data))


def test_a_kb_file_cannot_send_questions_to_a_server_of_its_choosing(received, monkeypatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-user-secret")
    with OpenAIStub(api_key=None) as stub:
        evil = stub.url.replace("http://", "http://kb-author:pw@")
        kb = received(answer={"model": "openai:gpt-test", "base_url": evil})
        with pytest.raises(UntrustedSettingsError) as err:
            kb.ask(QUESTION)
        assert stub.requests == []  # nothing was sent
    message = str(err.value)
    assert "The model openai:gpt-test" in message and str(kb.path / "domainrag.toml") in message
    assert f"answer.base_url = '{evil.replace('kb-author:pw', '***')}'" in message
    assert "the provider's own is https://api.openai.com/v1" in message
    assert f"domainrag trust {kb.path}" in message and "--set answer.KEY=VALUE" in message
    assert "pw@" not in message and "sk-user-secret" not in message


def test_a_kb_file_cannot_send_any_variable_as_the_key(received, monkeypatch) -> None:
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "aws-secret-value")
    kb = received(answer={"model": "openai:gpt-test", "api_key_env": "AWS_SECRET_ACCESS_KEY"})
    with pytest.raises(UntrustedSettingsError, match=r"answer\.api_key_env = 'AWS_SECRET_ACCESS_KEY' \(that "
                                                     r"environment variable would be sent as the API key; the "
                                                     r"standard one is OPENAI_API_KEY\)") as err:
        kb.ask(QUESTION)
    assert "aws-secret-value" not in str(err.value)


def test_trusting_a_kb_lets_it_choose_and_editing_the_file_revokes_the_trust(received, monkeypatch) -> None:
    with OpenAIStub(api_key=None) as stub:
        kb = received(answer={"model": "openai:gpt-test", "base_url": stub.url})
        assert not trust.is_trusted(kb.path)
        shown = trust.trust(kb.path)
        assert shown["answer.base_url"] == stub.url and trust.is_trusted(kb.path)
        answer = KnowledgeBase.open(kb.path).ask(QUESTION)
        assert not answer.abstained and len(stub.requests) == 1
        edit(kb.path, answer={"base_url": stub.url + "/"})  # any edit of the network settings
        assert not trust.is_trusted(kb.path)
        with pytest.raises(UntrustedSettingsError):
            KnowledgeBase.open(kb.path).ask(QUESTION)
        edit(kb.path, answer={"base_url": stub.url})  # back to what was trusted
        assert trust.is_trusted(kb.path)
        edit(kb.path, answer={"model": "openai:other"})  # the models are covered too
        assert not trust.is_trusted(kb.path)
        assert len(stub.requests) == 1
    trust.trust(kb.path)
    assert trust.untrust(kb.path) and not trust.untrust(kb.path) and not trust.is_trusted(kb.path)


def test_trust_is_stored_by_resolved_path_in_the_user_config_dir(received, _user_config_dir: Path) -> None:
    kb = received(answer={"base_url": "http://user:secret@10.0.0.1:8000/v1?api_key=k2"})
    trust.trust(Path(kb.path) / ".." / kb.path.name)
    stored = json.loads((_user_config_dir / "trusted.json").read_text())
    (entry,) = stored["knowledge_bases"].values()
    assert list(stored["knowledge_bases"]) == [str(kb.path.resolve())]
    assert entry["settings"]["answer.base_url"] == "http://***@10.0.0.1:8000/v1?api_key=***"
    assert "secret" not in json.dumps(stored) and "k2" not in json.dumps(stored)
    assert trust.trusted() == stored["knowledge_bases"]


def test_the_official_endpoint_and_standard_key_need_no_trust(received, monkeypatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    monkeypatch.setenv("DEEPSEEK_API_KEY", "ds-test")
    kb = received(answer={"model": "openai:gpt-4o-mini", "base_url": "https://API.openai.com:443/v1/",
                          "api_key_env": "OPENAI_API_KEY"})
    assert kb.answerer.generator("openai:gpt-4o-mini").id == "openai:gpt-4o-mini"  # no call made
    with pytest.raises(UntrustedSettingsError, match="the provider's own is https://api.deepseek.com/v1"):
        kb.answerer.generator("deepseek:deepseek-chat")  # OpenAI's URL and key are not DeepSeek's
    kb = received(answer={"base_url": "https://api.deepseek.com/v1", "api_key_env": "DEEPSEEK_API_KEY"})
    assert kb.answerer.generator("deepseek:deepseek-chat").base_url == "https://api.deepseek.com/v1"


def test_settings_a_kb_file_sets_for_no_network_model_are_harmless(received) -> None:
    kb = received(answer={"base_url": "http://evil.example/v1", "api_key_env": "AWS_SECRET_ACCESS_KEY"},
                  embedder={"base_url": "http://evil.example/v1", "api_key_env": "AWS_SECRET_ACCESS_KEY"})
    answer = kb.ask(QUESTION)  # extractive answer, fake-en embedder: nothing leaves the machine
    assert not answer.abstained and answer.manifest["model"] == "extractive"
    assert kb.search("metformin")


def test_settings_the_user_gives_are_honoured(received, monkeypatch) -> None:
    with OpenAIStub(api_key=None) as stub:
        kb = received(answer={"model": "openai:gpt-test", "base_url": "http://evil.example/v1"})
        mine = KnowledgeBase.open(kb.path, overrides={"answer.base_url": stub.url})  # --set / the Python API
        assert not mine.ask(QUESTION).abstained and len(stub.requests) == 1
        mine.close()
        raw = tomllib.loads((kb.path / "domainrag.toml").read_text())
        raw["answer"].pop("base_url")
        (kb.path / "domainrag.toml").write_text(tomli_w.dumps(raw))
        monkeypatch.setenv("OPENAI_BASE_URL", stub.url)  # the user's environment
        env = KnowledgeBase.open(kb.path)
        assert not env.ask(QUESTION).abstained and len(stub.requests) == 2
        env.close()


def test_a_kb_created_with_network_settings_is_trusted_with_them(kb_factory, tmp_path: Path) -> None:
    (tmp_path / "doc.txt").write_text(DOC)
    with OpenAIStub(api_key=None) as stub:
        base = kb_factory(**{"answer.model": "openai:gpt-test", "answer.base_url": stub.url})
        base.ingest([tmp_path / "doc.txt"])
        assert trust.is_trusted(base.path)
        reopened = KnowledgeBase.open(base.path)
        assert not reopened.ask(QUESTION).abstained and len(stub.requests) == 1
        reopened.close()
        copy = tmp_path / "copy"  # the same folder handed to someone else is not trusted
        copy.mkdir()
        for item in base.path.iterdir():
            if item.is_file():
                (copy / item.name).write_bytes(item.read_bytes())
        with pytest.raises(UntrustedSettingsError):
            KnowledgeBase.open(copy).answerer.generator("openai:gpt-test")


def _built_kb_with(tmp_path: Path, toml: str) -> tuple[Path, Path]:
    """(a document, a knowledge base folder with an index and this ``domainrag.toml`` of its own)."""
    doc = tmp_path / "doc.txt"
    doc.write_text(DOC)
    kb_dir = tmp_path / "kb"
    kb_dir.mkdir()
    (kb_dir / "catalog.sqlite3").touch()
    (kb_dir / "domainrag.toml").write_text(toml)
    return doc, kb_dir


def test_an_untrusted_embedder_endpoint_is_refused_before_any_document_is_sent(tmp_path: Path) -> None:
    doc, kb_dir = _built_kb_with(
        tmp_path, '[embedder]\nmodel = "openai:text-embedding-3-small"\nbase_url = "http://u:p@evil.example:9/v1"\n')
    with pytest.raises(UntrustedSettingsError, match=r"The embedder openai:text-embedding-3-small would use .*"
                                                     r"embedder\.base_url = 'http://\*\*\*@evil\.example:9/v1'"):
        KnowledgeBase.open(kb_dir).ingest([doc])


def test_untrusted_extra_embedding_endpoints_are_refused_too(tmp_path: Path, monkeypatch) -> None:
    """``embedder.endpoints`` receive the documents like ``base_url``: a file's own are refused."""
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")   # the user's own first server
    doc, kb_dir = _built_kb_with(tmp_path, '[embedder]\nmodel = "openai:m"\nendpoints = ["http://u:p@evil.example:9/v1"]\n')
    with pytest.raises(UntrustedSettingsError, match=r"embedder\.endpoints = 'http://\*\*\*@evil\.example:9/v1'"):
        KnowledgeBase.open(kb_dir).ingest([doc])


def test_a_corrupt_trust_store_is_a_config_error(received, _user_config_dir: Path) -> None:
    (_user_config_dir / "trusted.json").write_text("{not json")
    with pytest.raises(ConfigError, match=r"trust store .*trusted\.json cannot be read .*Delete it"):
        received(answer={"base_url": "http://evil.example/v1"})
    (_user_config_dir / "trusted.json").write_text('["a list"]')
    with pytest.raises(ConfigError, match="is not a domainrag trust store"):
        trust.trusted()


def test_trusting_a_folder_without_a_configuration_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"There is no .*domainrag\.toml to trust"):
        trust.trust(tmp_path)


@pytest.mark.parametrize(("url", "official", "same"), [
    ("https://api.openai.com/v1", "https://api.openai.com/v1", True),
    ("HTTPS://api.OpenAI.com:443/v1/", "https://api.openai.com/v1", True),
    ("https://user:pw@api.openai.com/v1?x=1", "https://api.openai.com/v1", True),
    ("http://api.openai.com/v1", "https://api.openai.com/v1", False),
    ("https://api.openai.com.evil.example/v1", "https://api.openai.com/v1", False),
    ("https://api.openai.com:8443/v1", "https://api.openai.com/v1", False),
    ("https://api.openai.com/proxy/v1", "https://api.openai.com/v1", False),
    ("https://api.openai.com/v1", None, False),
    ("http://[::1", "https://api.openai.com/v1", False),
])
def test_same_endpoint(url: str, official: str | None, same: bool) -> None:
    assert trust.same_endpoint(url, official) is same


def test_the_users_own_config_sets_a_provider_and_vouches_for_the_same_settings(
        received, _user_config_dir: Path, monkeypatch) -> None:
    with OpenAIStub(api_key="gateway-key") as stub:
        (_user_config_dir / "config.toml").write_text(
            f'[providers.openai]\nbase_url = "{stub.url}"\napi_key_env = "GATEWAY_KEY"\n')
        monkeypatch.setenv("GATEWAY_KEY", "gateway-key")
        kb = received(answer={"model": "openai:gpt-test"})
        assert not kb.ask(QUESTION).abstained and len(stub.requests) == 1  # the user's gateway and key
        kb = received(answer={"base_url": stub.url + "/", "api_key_env": "GATEWAY_KEY"})  # what the user chose
        assert not kb.ask(QUESTION).abstained and len(stub.requests) == 2
        kb = received(answer={"base_url": "http://elsewhere.example/v1"})
        with pytest.raises(UntrustedSettingsError, match=f"yours is {stub.url}.*config.toml"):
            kb.ask(QUESTION)
        assert len(stub.requests) == 2


@pytest.mark.parametrize("text", ['[answer]\nbase_url = "x"\n', '[providers.openai]\ntimeout = 3\n',
                                  '[providers.openai]\nbase_url = 3\n', "providers = 3\n", "not toml ["])
def test_a_malformed_user_config_is_a_config_error(_user_config_dir: Path, text: str) -> None:
    (_user_config_dir / "config.toml").write_text(text)
    with pytest.raises(ConfigError, match=r"Your configuration .*config\.toml"):
        trust.user_provider("openai")


def test_the_trust_command(received, tmp_path: Path) -> None:
    from test_cli import run

    with OpenAIStub(api_key=None) as stub:
        kb = received(answer={"model": "openai:gpt-test", "base_url": stub.url})
        refused = run("ask", QUESTION, "--kb", str(kb.path), cwd=tmp_path, check_code=1)
        assert refused.stderr.startswith("error: ") and "domainrag trust" in refused.stderr
        assert stub.requests == []
        done = run("trust", str(kb.path), cwd=tmp_path)
        assert "Trusted" in done.stdout and stub.url in done.stdout.replace("\n", "")
        run("ask", QUESTION, "--kb", str(kb.path), cwd=tmp_path)
        assert len(stub.requests) == 1
        assert "No longer trusted" in run("trust", str(kb.path), "--revoke", cwd=tmp_path).stdout
        run("ask", QUESTION, "--kb", str(kb.path), cwd=tmp_path, check_code=1)
        assert len(stub.requests) == 1
