"""Which knowledge bases the user trusts to choose where data is sent.

A knowledge base is a folder someone may hand you; its ``domainrag.toml`` is data, not code. Two
of its settings decide where your questions, documents and a secret go: ``base_url`` (the server
a model is called on) and ``api_key_env`` (the environment variable sent to it as the API key),
in ``[answer]`` (the answering model) and ``[embedder]``, and ``[store] url`` (the database that
would receive every document ingested and every query) and ``[runs] url`` (the database that
would receive every evaluation run: questions, answers, quotes), and ``[sources] urls`` (network
sources — an S3 bucket, a web site — that ``domainrag ingest`` with no paths would read with your
credentials and network access). Read from a knowledge base's own
file, they are honoured only when harmless or when the user trusted that knowledge base:

* harmless: the provider's own endpoint (``https://api.openai.com/v1`` for ``openai:``, each
  preset's official URL, ``https://api.anthropic.com``) and the provider's standard key variable
  (``OPENAI_API_KEY``, ``DEEPSEEK_API_KEY``, ``ANTHROPIC_API_KEY``...), and any setting of a model
  that makes no network call (``extractive``, the bundled embedder);
* dangerous: any other ``base_url`` (it would receive the question, the retrieved documents and
  the key), any other ``api_key_env`` (it would send that variable — any secret in your
  environment — as a bearer token). These raise :class:`~domainrag.errors.UntrustedSettingsError`
  when the model is about to be used, naming the settings and the fix.

Settings the user gives — call arguments, ``--set``/overrides, environment variables
(``OPENAI_BASE_URL``, ``DOMAINRAG_MODEL``...), the user's own ``config.toml`` (below) — are always
honoured, as is a configuration written by :func:`domainrag.config.save` on the user's behalf (it
trusts what it writes). A knowledge base's file that names the same URL or variable as the
user's ``config.toml`` needs no trust either.

The user's ``$DOMAINRAG_CONFIG_DIR/config.toml`` (default ``~/.config/domainrag/config.toml``)
holds connection settings per provider, for every knowledge base::

    [providers.openai]              # openai:MODEL and the openai embedder
    base_url = "https://llm-gateway.example.com/v1"
    api_key_env = "GATEWAY_KEY"

A provider uses, in order: the call's or knowledge base's setting, the environment
(``OPENAI_BASE_URL``, ``ANTHROPIC_BASE_URL``), this file, the provider's default.

:func:`trust` records a knowledge base as (resolved path, hash of its network settings and model
specs) in ``$DOMAINRAG_CONFIG_DIR/trusted.json`` (default ``~/.config/domainrag/trusted.json``);
editing any of those settings in the file revokes the trust.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
import time
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .errors import ConfigError, UntrustedSettingsError
from .redaction import redact_url

CONFIG_DIR_ENV = "DOMAINRAG_CONFIG_DIR"
TRUST_FILE = "trusted.json"
USER_CONFIG_FILE = "config.toml"
#: Settings that choose where data is sent and which secret goes with it (``section.key``).
NETWORK_KEYS = ("answer.base_url", "answer.api_key_env", "embedder.base_url", "embedder.api_key_env",
                "embedder.endpoints", "store.url", "runs.url", "sources.urls")
#: What a trust covers: the network settings and the models they are used with.
TRUSTED_KEYS = (*NETWORK_KEYS, "answer.model", "answer.fallback", "answer.judge", "embedder.model")


def config_dir() -> Path:
    """The user's domainrag configuration folder: ``$DOMAINRAG_CONFIG_DIR``, else
    ``$XDG_CONFIG_HOME/domainrag``, else ``~/.config/domainrag``."""
    if os.environ.get(CONFIG_DIR_ENV):
        return Path(os.environ[CONFIG_DIR_ENV]).expanduser()
    base = os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config"
    return Path(base) / "domainrag"


@dataclass(frozen=True)
class Untrusted:
    """Network settings of one section, read from the ``domainrag.toml`` of a knowledge base the
    user has not trusted (``settings``: ``{"base_url": ..., "api_key_env": ...}`` as found).
    ``kb_dir`` is ``None`` for a knowledge base with no folder (its configuration is kept in a
    database, ``source``): it cannot be trusted, only overridden."""

    kb_dir: Path | None
    section: str
    settings: Mapping[str, Any]
    source: str | None = None

    def without(self, keys: set[str]) -> Untrusted | None:
        """This record less the ``section.key`` settings in ``keys`` (given by the user instead)."""
        left = {k: v for k, v in self.settings.items() if f"{self.section}.{k}" not in keys}
        return Untrusted(self.kb_dir, self.section, left, self.source) if left else None

    def check(self, what: str, official_url: str | None, standard_key_env: str | None,
              user: UserProvider | None = None) -> None:
        """Raise :class:`UntrustedSettingsError` if these settings would send data anywhere but
        ``official_url`` (``None``: the provider has no official endpoint) or the user's own
        ``user.base_url``, or send any variable but ``standard_key_env`` or ``user.api_key_env``
        as the key. ``what`` names the model about to use them."""
        user = user or UserProvider()
        problems = []
        urls = [(key, self.settings.get(key)) for key in ("base_url", "url")]
        urls += [("endpoints", url) for url in self.settings.get("endpoints") or ()]
        for url_key, url in urls:
            if url is None or any(same_endpoint(str(url), ok) for ok in (official_url, user.base_url)):
                continue
            where = f"the provider's own is {official_url}" if official_url else "the provider has no default"
            if user.base_url:
                where += f", yours is {redact_url(user.base_url)}"
            problems.append(f"{self.section}.{url_key} = {redact_url(str(url))!r} (a server of the file's "
                            f"choosing; {where}), which would receive your questions and the documents")
        key_env = self.settings.get("api_key_env")
        if key_env is not None and key_env not in (standard_key_env, user.api_key_env):
            standard = f"the standard one is {standard_key_env}" if standard_key_env else "the provider needs none"
            if user.api_key_env:
                standard += f", yours is {user.api_key_env}"
            problems.append(f"{self.section}.api_key_env = {key_env!r} (that environment variable would be sent "
                            f"as the API key; {standard})")
        if problems:
            config = self.source if self.kb_dir is None else self.kb_dir / "domainrag.toml"
            trust_it = (f"If you know this knowledge base, trust it: 'domainrag trust {self.kb_dir}' (editing these "
                        "settings later revokes the trust). Otherwise delete them from the file"
                        if self.kb_dir else "A configuration kept in a database cannot be trusted; delete them "
                        "from it (re-create the knowledge base without them)")
            raise UntrustedSettingsError(
                f"{what} would use network settings from {config}, a knowledge base you have not trusted: "
                + "; ".join(problems)
                + f". A knowledge base's own file may not choose where your data and secrets are sent. "
                f"{trust_it} so that your own settings apply "
                f"(environment variables such as OPENAI_BASE_URL, or {config_dir() / USER_CONFIG_FILE}), or "
                f"override them yourself (--set {self.section}.KEY=VALUE, or overrides= in Python)."
            )


def check_sources(untrusted: Untrusted | None, urls: Sequence[str]) -> None:
    """Raise :class:`UntrustedSettingsError` when ``urls`` (``[sources] urls``) came from the file of
    a knowledge base the user has not trusted and one of them is a network source (any URL but
    ``file://``): the file would choose what your credentials and network reach."""
    if untrusted is None or "urls" not in untrusted.settings:
        return
    network = [u for u in urls if _NETWORK_URL.match(u) and not u.lower().startswith("file://")]
    if not network:
        return
    config = untrusted.source if untrusted.kb_dir is None else untrusted.kb_dir / "domainrag.toml"
    trust_it = (f"If you know this knowledge base, trust it: 'domainrag trust {untrusted.kb_dir}'"
                if untrusted.kb_dir else "A configuration kept in a database cannot be trusted")
    shown = ", ".join(repr(redact_url(u)) for u in network[:3]) + (" ..." if len(network) > 3 else "")
    raise UntrustedSettingsError(
        f"Ingest would read the network sources {shown} named by sources.urls in {config}, a knowledge base "
        "you have not trusted: a knowledge base's own file may not choose what your credentials and network "
        f"reach. {trust_it}, or name the sources yourself ('domainrag ingest URL')."
    )


_NETWORK_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


def check(untrusted: Untrusted | None, what: str, official_url: str | None, standard_key_env: str | None,
          user: UserProvider | None = None) -> None:
    """:meth:`Untrusted.check` when there is a record (settings from the user have none)."""
    if untrusted is not None:
        untrusted.check(what, official_url, standard_key_env, user)


# -- the user's own configuration ---------------------------------------------------------------
@dataclass(frozen=True)
class UserProvider:
    """A provider's connection settings from the user's ``config.toml`` (``None``: not set)."""

    base_url: str | None = None
    api_key_env: str | None = None


def user_provider(provider: str) -> UserProvider:
    """``[providers.PROVIDER]`` of the user's ``config.toml`` (empty when absent)."""
    path = config_dir() / USER_CONFIG_FILE
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return UserProvider()
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"Your configuration {path} cannot be read ({exc}). Fix the file or delete it.") from exc
    unknown = sorted(set(data) - {"providers"})
    providers = data.get("providers", {})
    if unknown or not isinstance(providers, dict):
        raise ConfigError(f"Your configuration {path} may hold only [providers.NAME] sections with base_url "
                          f"and api_key_env; found {unknown or ['providers = ' + repr(providers)]}.")
    section = providers.get(provider, {})
    wrong = [k for k, v in section.items() if k not in ("base_url", "api_key_env") or not isinstance(v, str)] \
        if isinstance(section, dict) else [repr(section)]
    if wrong:
        raise ConfigError(f"Your configuration {path}: [providers.{provider}] may set only base_url and "
                          f"api_key_env, as strings; fix {', '.join(wrong)}.")
    return UserProvider(section.get("base_url") or None, section.get("api_key_env") or None)


def same_endpoint(url: str, official_url: str | None) -> bool:
    """Whether ``url`` is ``official_url`` (scheme, host, port and path; user info, query and a
    trailing slash aside)."""
    if not official_url:
        return False
    return _endpoint(url) == _endpoint(official_url)


def _endpoint(url: str) -> tuple[str, str, int | None, str] | None:
    try:
        parts = urlsplit(url.strip())
        port = parts.port or {"https": 443, "http": 80}.get(parts.scheme.lower())
    except ValueError:
        return None
    return parts.scheme.lower(), (parts.hostname or "").lower(), port, parts.path.rstrip("/")


# -- what a knowledge base's file sets ---------------------------------------------------------
def network_settings(data: Mapping[str, Any]) -> dict[str, Any]:
    """The :data:`NETWORK_KEYS` set in raw ``domainrag.toml`` data, as ``{"section.key": value}``."""
    return _pick(data, NETWORK_KEYS)


def settings_hash(data: Mapping[str, Any]) -> str:
    """sha256 (16 hex) of the :data:`TRUSTED_KEYS` set in raw ``domainrag.toml`` data."""
    canonical = json.dumps(_pick(data, TRUSTED_KEYS), sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def _pick(data: Mapping[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    found = {}
    for dotted in keys:
        section, _, key = dotted.partition(".")
        values = data.get(section)
        if isinstance(values, Mapping) and values.get(key) is not None:
            found[dotted] = values[key]
    return found


def _shown(key: str, value: Any) -> Any:
    """A setting as a trust record shows it: URLs without credentials."""
    if key.endswith("endpoints") and isinstance(value, list):
        return [redact_url(v) if isinstance(v, str) else v for v in value]
    return redact_url(value) if key.endswith("base_url") and isinstance(value, str) else value


def _read_config(kb_dir: Path) -> dict[str, Any]:
    path = kb_dir / "domainrag.toml"
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path} cannot be read ({exc}). Fix the file or delete it.") from exc


# -- the trust store --------------------------------------------------------------------------
def trust(kb_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """Trust the knowledge base at ``kb_dir`` with the network settings its ``domainrag.toml``
    holds now; returns them (URLs redacted). Changing them in the file revokes the trust."""
    path = Path(kb_dir)
    if not (path / "domainrag.toml").is_file():
        raise ConfigError(f"There is no {path / 'domainrag.toml'} to trust: is {path} a knowledge base?")
    data = _read_config(path)
    shown = {k: _shown(k, v) for k, v in _pick(data, TRUSTED_KEYS).items()}
    store = _load_store()
    store[_key(path)] = {"hash": settings_hash(data), "settings": shown,
                         "trusted_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    _save_store(store)
    return shown


def untrust(kb_dir: str | os.PathLike[str]) -> bool:
    """Forget a trusted knowledge base; False when it was not trusted."""
    store = _load_store()
    if store.pop(_key(Path(kb_dir)), None) is None:
        return False
    _save_store(store)
    return True


def is_trusted(kb_dir: str | os.PathLike[str], data: Mapping[str, Any] | None = None) -> bool:
    """Whether the user trusted ``kb_dir`` with exactly the settings its file (or ``data``, the
    file's parsed contents) holds."""
    path = Path(kb_dir)
    entry = _load_store().get(_key(path))
    if not isinstance(entry, dict):
        return False
    return entry.get("hash") == settings_hash(_read_config(path) if data is None else data)


def trusted() -> dict[str, dict[str, Any]]:
    """Every trusted knowledge base: ``{path: {"hash", "settings", "trusted_at"}}``."""
    return _load_store()


def _key(kb_dir: Path) -> str:
    return str(kb_dir.expanduser().resolve())


def _store_path() -> Path:
    return config_dir() / TRUST_FILE


def _load_store() -> dict[str, Any]:
    path = _store_path()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"The trust store {path} cannot be read ({exc}). Delete it and trust your "
                          "knowledge bases again ('domainrag trust KB').") from exc
    bases = data.get("knowledge_bases") if isinstance(data, dict) else None
    if not isinstance(bases, dict):
        raise ConfigError(f"The trust store {path} is not a domainrag trust store. Delete it and trust "
                          "your knowledge bases again ('domainrag trust KB').")
    return bases


def _save_store(bases: dict[str, Any]) -> None:
    path = _store_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", encoding="utf-8", dir=path.parent, prefix=".trusted-",
                                         suffix=".json", delete=False) as handle:
            json.dump({"version": 1, "knowledge_bases": bases}, handle, indent=2, ensure_ascii=False)
        os.replace(handle.name, path)
    except OSError as exc:
        raise ConfigError(f"Cannot write the trust store {path} ({exc}). Set {CONFIG_DIR_ENV} to a "
                          "writable folder.") from exc
