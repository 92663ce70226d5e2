"""The ``Generator`` seam: language models that complete a chat, and how a spec picks one.

A generator is chosen by a ``provider:model`` string (``openai:gpt-4o-mini``,
``anthropic:claude-sonnet-4-5``, ``ollama:qwen2.5``, ``extractive``). Providers are plug-ins of
the ``domainrag.generators`` entry-point group — the built-in ones too — so adding a vendor is
one small module with a class that implements :meth:`Generator.complete`.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Literal, Protocol, runtime_checkable
from urllib.parse import urlparse

from .. import registry
from ..errors import ConfigError, PluginError
from ..trust import Untrusted, UserProvider
from ..types import Source, Usage

GROUP = "domainrag.generators"
#: The model used when neither the call, the configuration nor ``$DOMAINRAG_MODEL`` names one.
OFFLINE_DEFAULT = "extractive"

Role = Literal["system", "user", "assistant"]


@dataclass(frozen=True, slots=True)
class Message:
    role: Role
    content: str


@dataclass(frozen=True, slots=True)
class GenerationRequest:
    """What a generator is asked: the rendered chat ``messages``.

    ``question``, ``sources`` and ``language`` are the data the prompt was rendered from, for
    generators that work on data rather than on prompts (the extractive one). ``json`` asks for
    a JSON object (judges).
    """

    messages: tuple[Message, ...]
    max_tokens: int = 1024
    temperature: float = 0.0
    question: str = ""
    sources: tuple[Source, ...] = ()
    language: str = "en"
    json: bool = False
    #: Which sample of a repeated evaluation this call is: part of the cache key (so repeats
    #: sample a nondeterministic model anew), never sent to the model.
    sample: int = 0


@dataclass(frozen=True, slots=True)
class Generation:
    """A completed generation. ``model`` is the spec asked for; ``version`` the model string
    the provider reports (e.g. ``gpt-4o-mini-2024-07-18``); ``finish_reason`` is ``stop`` for a
    complete answer, ``length`` when cut by the token limit."""

    text: str
    model: str
    version: str
    usage: Usage = field(default_factory=Usage)
    finish_reason: str = "stop"
    seconds: float = 0.0

    @property
    def complete(self) -> bool:
        return self.finish_reason in ("stop", "end_turn", "stop_sequence", "no_evidence")

    @property
    def finished(self) -> bool:
        """The provider finished the request: a complete answer, or one cut by the token limit
        (the same request is cut the same way, so it may be cached); False for a stream that
        broke off in transit."""
        return self.complete or self.finish_reason in ("length", "max_tokens")


#: Seconds a try of a model call may take when ``answer.timeout_s`` is unset.
DEFAULT_TIMEOUT_S = 60.0
LOCAL_TIMEOUT_S = 600.0


def is_loopback(url: str | None) -> bool:
    """True when ``url`` points at this machine (``localhost``, 127.0.0.0/8, ``::1``)."""
    host = urlparse(url).hostname if url else None
    if not host:
        return False
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True, slots=True)
class ProviderSettings:
    """Connection settings handed to a provider: ``base_url`` and the *name* of the variable
    holding the key (``None``: the provider's own defaults), timeout (``None``: see
    :meth:`timeout_for`) and SDK retries.

    ``untrusted`` is set when ``base_url``/``api_key_env`` came from the file of a knowledge base
    the user has not trusted: a provider that honours them calls :meth:`check_trust` first."""

    base_url: str | None = None
    api_key_env: str | None = None
    timeout_s: float | None = None
    max_retries: int = 2
    untrusted: Untrusted | None = None

    def timeout_for(self, base_url: str | None) -> float:
        """Seconds each try of a call may take: ``timeout_s``, else :data:`LOCAL_TIMEOUT_S` for a
        server on this machine (llama.cpp or Ollama on a CPU: one long prompt at a time, a
        queue behind it) and :data:`DEFAULT_TIMEOUT_S` for any other."""
        if self.timeout_s is not None:
            return self.timeout_s
        return LOCAL_TIMEOUT_S if is_loopback(base_url) else DEFAULT_TIMEOUT_S

    def check_trust(self, what: str, official_url: str | None, standard_key_env: str | None,
                    user: UserProvider | None = None) -> None:
        """Raise :class:`~domainrag.errors.UntrustedSettingsError` when untrusted settings would
        send data anywhere but ``official_url`` (or the ``user``'s own URL) or a key other than
        ``standard_key_env`` (or the user's own variable)."""
        if self.untrusted is not None:
            self.untrusted.check(what, official_url, standard_key_env, user)


@dataclass(frozen=True, slots=True)
class ProviderInfo:
    example: str
    about: str = ""
    key_env: str | None = None
    base_url: str | None = None
    offline: bool = False


@runtime_checkable
class Generator(Protocol):
    """A language model. ``complete`` is the one method to implement (see :class:`BaseGenerator`).

    ``stream`` yields text deltas as they arrive and, last, the :class:`Generation`.
    """

    id: str

    def complete(self, request: GenerationRequest) -> Generation: ...

    def stream(self, request: GenerationRequest) -> Iterator[str | Generation]: ...


class BaseGenerator:
    """Base for generators: ``stream`` defaults to one delta holding the whole completion.

    ``offline`` is true for generators that need no network and no key.
    """

    offline = False
    #: False for generators whose calls cost nothing and need no caching (extractive).
    cacheable = True

    def __init__(self, model_name: str, settings: ProviderSettings | None = None) -> None:
        self.model_name = model_name
        self.settings = settings or ProviderSettings()
        self.id = model_name

    def complete(self, request: GenerationRequest) -> Generation:
        raise NotImplementedError

    def stream(self, request: GenerationRequest) -> Iterator[str | Generation]:
        generation = self.complete(request)
        if generation.text:
            yield generation.text
        yield generation

    @classmethod
    def info(cls) -> ProviderInfo:
        """What ``domainrag models`` shows: an example spec and what the provider needs."""
        return ProviderInfo(example="", about=(cls.__doc__ or "").strip().split("\n")[0],
                            offline=cls.offline)


def resolve_model(spec: str | None, configured: str | None, env: str | None) -> str:
    """The model spec to use: the call's, else the configuration's, else ``$DOMAINRAG_MODEL``,
    else the offline default."""
    for candidate in (spec, configured, env):
        if candidate and candidate.strip():
            return candidate.strip()
    return OFFLINE_DEFAULT


def parse_model(spec: str) -> tuple[str, str]:
    """``"openai:gpt-4o-mini"`` -> ``("openai", "gpt-4o-mini")``; ``"extractive"`` -> ``("extractive", "")``."""
    provider, _, model = spec.strip().partition(":")
    if not provider:
        raise ConfigError(f"Model {spec!r} is not of the form provider:model. {known_providers()}")
    return provider, model


def known_providers() -> str:
    return f"Known providers: {', '.join(registry.names(GROUP))}."


def load_generator(spec: str, settings: ProviderSettings | None = None) -> BaseGenerator:
    """Instantiate the generator ``spec`` names, through the plug-in registry."""
    provider, model = parse_model(spec)
    if provider not in registry.names(GROUP):
        raise PluginError(f"Unknown model provider {provider!r} (in {spec!r}). {known_providers()} "
                          "'domainrag models' shows what each needs.")
    factory = registry.get(GROUP, provider)
    generator: BaseGenerator = factory(model, settings)
    return generator


def with_usage_cost(generation: Generation, price: tuple[float, float] | None) -> Generation:
    """``generation`` with ``usage.cost_usd`` set from ``(input, output)`` USD per million tokens."""
    if price is None:
        return generation
    u = generation.usage
    cost = (u.prompt_tokens * price[0] + u.completion_tokens * price[1]) / 1_000_000
    return replace(generation, usage=Usage(u.prompt_tokens, u.completion_tokens, cost))
