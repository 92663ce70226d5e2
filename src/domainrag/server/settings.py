"""The server's settings: ``server.toml`` (``[server]`` and ``[collections.NAME]``) overlaid by
the command line, validated with pydantic; an invalid value is a :class:`ConfigError` naming
the key."""

from __future__ import annotations

import ipaddress
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..errors import ConfigError

DEFAULT_HOME = ".domainrag-server"
COLLECTION_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CollectionSpec(_Strict):
    """An existing knowledge base served under a name (``[collections.NAME] path = "..."``): a
    folder, or ``postgresql://HOST/DB#COLLECTION`` for one kept wholly in PostgreSQL."""

    path: str | Path
    #: What the collection holds, for agents (the MCP ``list_collections`` tool); optional.
    description: str | None = Field(None, max_length=1000)


class ServerSettings(_Strict):
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    #: Collections created over the API, API keys, ingest jobs and kept uploads live here.
    home: Path = Path(DEFAULT_HOME)
    #: Origins allowed by CORS; empty = CORS off.
    cors_origins: list[str] = Field(default_factory=list)
    #: The most one upload request may carry (all its files together), in MB.
    max_upload_mb: float = Field(100, gt=0)
    max_files: int = Field(100, ge=1)
    #: The most any other request body may carry (JSON: questions, conversations), in kB; checked
    #: before the body is read and before the API key is.
    max_body_kb: int = Field(1024, ge=1)
    #: File suffixes accepted for upload (".pdf"); empty = every suffix a loader reads.
    allowed_types: list[str] = Field(default_factory=list)
    rate_limit_per_minute: int = Field(120, ge=1)
    #: Requests one API key may have in flight at once (answers and searches run on worker threads).
    max_concurrent_per_key: int = Field(8, ge=1)
    request_timeout_s: float = Field(120, gt=0)
    #: The OpenAI-compatible answers end with a Markdown "Sources" list.
    sources_in_answer: bool = True
    #: Answer models offered per collection on the OpenAI endpoint ("collection:model" ids).
    models: list[str] = Field(default_factory=list)
    #: /metrics without an API key (they name every collection); else a key covering them all.
    metrics_public: bool = False
    #: Public binds (not loopback) without any API key need this.
    insecure: bool = False
    collections: dict[str, CollectionSpec] = Field(default_factory=dict)

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)

    @property
    def max_body_bytes(self) -> int:
        return self.max_body_kb * 1024


def load_settings(config: Path | None = None, overrides: Mapping[str, Any] | None = None) -> ServerSettings:
    """Settings from ``config`` (a ``server.toml``; none = defaults, home from
    ``$DOMAINRAG_HOME``) with ``overrides`` (the command line: None values are left out;
    ``collections`` entries are added to the file's)."""
    data = _read_toml(config) if config else {}
    server = dict(data.get("server", {}))
    server.setdefault("home", os.environ.get("DOMAINRAG_HOME") or DEFAULT_HOME)
    collections = dict(data.get("collections", {}))
    extra_keys = sorted(set(data) - {"server", "collections"})
    if extra_keys:
        raise ConfigError(f"Unknown section(s) {', '.join(extra_keys)} in {config}; "
                          "use [server] and [collections.NAME].")
    for key, value in (overrides or {}).items():
        if key == "collections":
            collections.update(value)
        elif value is not None:
            server[key] = value
    return _validate({**server, "collections": collections}, config)


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"The server config {path} is not valid TOML ({exc}). Fix that line.") from exc
    except (OSError, ValueError) as exc:   # ValueError: not UTF-8, or an unusable path
        reason = ("it is not UTF-8 text" if isinstance(exc, UnicodeDecodeError)
                  else getattr(exc, "strerror", None) or exc)
        raise ConfigError(f"Cannot read the server config {path}: {reason}. Check --config.") from exc


def _validate(data: dict[str, Any], source: Path | None) -> ServerSettings:
    try:
        return ServerSettings.model_validate(data)
    except ValidationError as exc:
        where = f" in {source}" if source else ""
        problems = "; ".join(f"{_key(e['loc'])}: {e['msg']} (got {e.get('input')!r})" for e in exc.errors())
        raise ConfigError(f"Invalid server setting{where}: {problems}.") from exc


def _key(loc: tuple[Any, ...]) -> str:
    parts = [str(part) for part in loc]
    return ".".join(parts if parts[:1] == ["collections"] else ["server", *parts])


def is_loopback(host: str) -> bool:
    """Whether ``host`` binds to this machine only."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_bind(settings: ServerSettings, keys_exist: bool) -> None:
    """Refuse a public bind without API keys unless ``insecure``."""
    if keys_exist or settings.insecure or is_loopback(settings.host):
        return
    raise ConfigError(
        f"Refusing to listen on {settings.host} with no API key configured: anyone who can reach it could "
        "read every collection. Create a key ('domainrag keys create --name NAME --role admin'), bind "
        "127.0.0.1, or pass --insecure."
    )
