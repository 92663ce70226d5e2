from __future__ import annotations

from pathlib import Path

import pytest

from domainrag import config as config_io
from domainrag.config import KBConfig
from domainrag.errors import ConfigError


def test_unknown_keys_and_bad_values_are_named(tmp_path: Path) -> None:
    (tmp_path / "domainrag.toml").write_text("[retrieval]\nfusion = 'magic'\n[chunking]\nsize = 3\n")
    with pytest.raises(ConfigError) as info:
        config_io.load(tmp_path)
    message = str(info.value)
    assert "retrieval.fusion" in message and "'magic'" in message and "chunking.size" in message


def test_overlap_must_be_below_target() -> None:
    with pytest.raises(ConfigError, match="overlap_tokens=64"):
        KBConfig().with_overrides({"chunking.target_tokens": 64, "chunking.overlap_tokens": 64})


def test_save_writes_index_sections_in_full_and_other_sections_when_changed(tmp_path: Path) -> None:
    config = KBConfig().with_overrides({"retrieval.k": 5, "embedder.model": "hash:64"})
    text = config_io.save(config, tmp_path).read_text()
    assert "[embedder]" in text and "[chunking]" in text and "target_tokens = 200" in text
    assert "k = 5" in text and "dense_weight" not in text and "[index]" not in text
    assert config_io.load(tmp_path) == config


def test_invalid_toml_says_how_to_fix(tmp_path: Path) -> None:
    (tmp_path / "domainrag.toml").write_text("[embedder\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        config_io.load(tmp_path)


def test_config_hash_changes_with_settings() -> None:
    assert KBConfig().hash() == KBConfig().hash()
    assert KBConfig().hash() != KBConfig().with_overrides({"retrieval.k": 3}).hash()


@pytest.mark.parametrize("group, name", [("domainrag.generators", "nope"), ("domainrag.embedders", "nope"),
                                         ("domainrag.loaders", "nope")])
def test_every_unknown_plugin_is_a_plugin_error_listing_the_known_ones(group: str, name: str) -> None:
    from domainrag import registry
    from domainrag.errors import PluginError

    with pytest.raises(PluginError, match=r"Unknown .*'nope'.*Known: "):
        registry.get(group, name)


def test_an_unknown_model_provider_is_a_plugin_error() -> None:
    from domainrag.errors import PluginError
    from domainrag.models.generation import load_generator

    with pytest.raises(PluginError, match=r"Unknown model provider 'nope' \(in 'nope:x'\)\. Known providers: .*openai"):
        load_generator("nope:x")
