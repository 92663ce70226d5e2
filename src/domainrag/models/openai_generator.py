"""OpenAI and every OpenAI-compatible chat server, through the official ``openai`` SDK.

``openai:MODEL`` talks to ``answer.base_url``, else ``$OPENAI_BASE_URL``, else the user's
``[providers.openai]`` (:mod:`domainrag.trust`), else OpenAI, with the key from ``answer.api_key_env``
(else the user's, else ``OPENAI_API_KEY``) — local servers (vLLM, llama.cpp,
Ollama) need none. Presets name the usual vendors so no URL needs typing: ``deepseek:``,
``qwen:`` (DashScope), ``moonshot:``, ``ollama:``. The SDK retries 408/409/429/5xx and connection
errors with exponential backoff (honouring ``Retry-After``); errors that remain are raised as
:class:`GenerationError` with the key redacted.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from typing import Any, ClassVar

from ..errors import GenerationError, require
from ..redaction import host_port, redact_url
from ..trust import user_provider
from ..types import Usage
from .generation import BaseGenerator, Generation, GenerationRequest, ProviderInfo, ProviderSettings
from .sdk_errors import api_key, explain, is_custom, redact

OPENAI_URL = "https://api.openai.com/v1"


class OpenAIGenerator(BaseGenerator):
    """OpenAI, or any OpenAI-compatible server (vLLM, llama.cpp, LM Studio...) via a base URL.

    Chat Completions (``POST {base_url}/chat/completions``), the protocol every
    OpenAI-compatible server speaks. The id is ``openai:MODEL``, or ``openai:MODEL@HOST:PORT``
    for a server other than the preset's."""

    provider: ClassVar[str] = "openai"
    default_base_url: ClassVar[str | None] = None  # None: $OPENAI_BASE_URL, else OpenAI
    official_url: ClassVar[str] = OPENAI_URL
    official_host: ClassVar[str] = "api.openai.com"
    default_key_env: ClassVar[str] = "OPENAI_API_KEY"
    key_required: ClassVar[bool] = True
    example: ClassVar[str] = "openai:gpt-4o-mini"

    def __init__(self, model_name: str, settings: ProviderSettings | None = None) -> None:
        super().__init__(model_name, settings)
        if not model_name:
            raise GenerationError(f"Name a model: {self.provider}:MODEL (e.g. {self.example}).")
        s = self.settings
        user = user_provider(self.provider)
        s.check_trust(f"The model {self.provider}:{model_name}", self.default_base_url or self.official_url,
                      self.default_key_env, user)
        sdk = require("openai", "openai", "openai", "OpenAI-compatible models")
        self.base_url = s.base_url or self._env_base_url() or user.base_url or self.default_base_url
        self.key_env = s.api_key_env or user.api_key_env or self.default_key_env
        custom = is_custom(self.base_url, self.official_host)
        self._secret = api_key(self.key_env, required=self.key_required and not custom,
                               what=f"The {self.provider} model {model_name!r}",
                               hint=", or name the variable holding your key in answer.api_key_env")
        self.timeout_s = s.timeout_for(self.base_url)
        self._client = sdk.OpenAI(api_key=self._secret, base_url=self.base_url,
                                  max_retries=s.max_retries, timeout=self.timeout_s)
        self.id = f"{self.provider}:{model_name}"
        if custom and self.base_url != self.default_base_url:  # same name, another server
            self.id += f"@{host_port(self.base_url or '')}"

    def _env_base_url(self) -> str | None:
        return os.environ.get("OPENAI_BASE_URL") if self.provider == "openai" else None

    @classmethod
    def info(cls) -> ProviderInfo:
        base = cls.default_base_url or f"$OPENAI_BASE_URL or {OPENAI_URL}"
        about = (cls.__doc__ or "").strip().split("\n")[0]
        return ProviderInfo(cls.example, about, None if not cls.key_required else cls.default_key_env,
                            base, cls.offline)

    def complete(self, request: GenerationRequest) -> Generation:
        started = time.perf_counter()
        response = self._call(request, stream=False)
        choice = response.choices[0] if response.choices else None
        text = (choice.message.content or "") if choice else ""
        return Generation(text, self.id, self._version(response), _usage(response.usage),
                          (choice.finish_reason if choice else None) or "unknown",
                          time.perf_counter() - started)

    def stream(self, request: GenerationRequest) -> Iterator[str | Generation]:
        started = time.perf_counter()
        events = self._call(request, stream=True)
        parts: list[str] = []
        finish, version, usage = "incomplete", self.model_name, Usage()
        try:
            for event in events:
                version = self._version(event) or version
                if event.usage:
                    usage = _usage(event.usage)
                for choice in event.choices:
                    if choice.delta and choice.delta.content:
                        parts.append(choice.delta.content)
                        yield choice.delta.content
                    if choice.finish_reason:
                        finish = choice.finish_reason
        except Exception as exc:  # the connection broke mid-answer
            if not parts:
                raise GenerationError(self._explain(exc)) from exc
            finish = "incomplete"  # what arrived is returned, marked as cut off
        yield Generation("".join(parts), self.id, version, usage, finish,
                         time.perf_counter() - started)

    def _call(self, request: GenerationRequest, stream: bool) -> Any:
        import openai

        kwargs: dict[str, Any] = {
            "model": self.model_name,
            "messages": [{"role": m.role, "content": m.content} for m in request.messages],
            "max_tokens": request.max_tokens,
            "temperature": request.temperature,
        }
        if request.json:
            kwargs["response_format"] = {"type": "json_object"}
        if stream:
            kwargs.update(stream=True, stream_options={"include_usage": True})
        try:
            return self._client.chat.completions.create(**kwargs)
        except openai.OpenAIError as exc:
            raise GenerationError(self._explain(exc)) from exc

    def _version(self, response: Any) -> str:
        version = getattr(response, "model", None) or ""
        fingerprint = getattr(response, "system_fingerprint", None)
        return f"{version} ({fingerprint})" if version and fingerprint else version

    def _explain(self, exc: Exception) -> str:
        import openai

        where = f"The {self.provider} API at {redact_url(self.base_url or OPENAI_URL)} (model {self.model_name!r})"
        message = explain(exc, openai, where, self.key_env, self.settings.max_retries,
                          self.timeout_s, "answer.base_url or OPENAI_BASE_URL")
        return redact(message, self._secret)


def _usage(usage: Any) -> Usage:
    if usage is None:
        return Usage()
    return Usage(usage.prompt_tokens or 0, usage.completion_tokens or 0)


class DeepSeekGenerator(OpenAIGenerator):
    """DeepSeek's models on their OpenAI-compatible API."""

    provider = "deepseek"
    default_base_url = "https://api.deepseek.com/v1"
    official_host = "api.deepseek.com"
    default_key_env = "DEEPSEEK_API_KEY"

    example = "deepseek:deepseek-chat"


class QwenGenerator(OpenAIGenerator):
    """Alibaba's Qwen models on DashScope's OpenAI-compatible endpoint."""

    provider = "qwen"
    default_base_url = "https://dashscope.aliyuncs.com/compatible-mode/v1"
    official_host = "dashscope.aliyuncs.com"
    default_key_env = "DASHSCOPE_API_KEY"

    example = "qwen:qwen-plus"


class MoonshotGenerator(OpenAIGenerator):
    """Moonshot AI's Kimi models on their OpenAI-compatible API."""

    provider = "moonshot"
    default_base_url = "https://api.moonshot.cn/v1"
    official_host = "api.moonshot.cn"
    default_key_env = "MOONSHOT_API_KEY"

    example = "moonshot:kimi-k2-0905-preview"


class OllamaGenerator(OpenAIGenerator):
    """A local Ollama server (no key)."""

    provider = "ollama"
    default_base_url = "http://127.0.0.1:11434/v1"
    official_host = "127.0.0.1"
    default_key_env = "OLLAMA_API_KEY"
    key_required = False
    offline = True

    example = "ollama:qwen2.5:7b"
