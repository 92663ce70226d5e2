"""Anthropic's Claude models through the official ``anthropic`` SDK (``anthropic:MODEL``).

The key comes from ``answer.api_key_env`` (else the user's ``[providers.anthropic]``, else
``ANTHROPIC_API_KEY``); ``answer.base_url`` (else ``$ANTHROPIC_BASE_URL``, else the user's
``[providers.anthropic]``, see :mod:`domainrag.trust`) points at a proxy or gateway. System messages become the
Messages API's ``system`` field. The SDK retries 408/409/429/5xx (and 529 overloaded) with
backoff; remaining errors are raised as :class:`GenerationError` with the key redacted.
"""

from __future__ import annotations

import inspect
import os
import time
from collections.abc import Iterator
from functools import cached_property
from typing import Any

from ..errors import GenerationError, require
from ..redaction import redact_url
from ..trust import user_provider
from ..types import Usage
from .generation import BaseGenerator, Generation, GenerationRequest, ProviderInfo, ProviderSettings
from .sdk_errors import api_key, explain, redact

API_URL = "https://api.anthropic.com"
KEY_ENV = "ANTHROPIC_API_KEY"


class AnthropicGenerator(BaseGenerator):
    """Anthropic's Claude models."""

    def __init__(self, model_name: str, settings: ProviderSettings | None = None) -> None:
        super().__init__(model_name, settings)
        if not model_name:
            raise GenerationError("Name a model: anthropic:MODEL (e.g. anthropic:claude-sonnet-4-5).")
        s = self.settings
        user = user_provider("anthropic")
        s.check_trust(f"The model anthropic:{model_name}", API_URL, KEY_ENV, user)
        anthropic = require("anthropic", "anthropic", "anthropic", "Anthropic models")
        self.base_url = s.base_url or os.environ.get("ANTHROPIC_BASE_URL") or user.base_url or None
        self.key_env = s.api_key_env or user.api_key_env or KEY_ENV
        self._secret = api_key(self.key_env, required=True, what=f"The Anthropic model {model_name!r}",
                               hint=", or name the variable holding your key in answer.api_key_env")
        self.timeout_s = s.timeout_for(self.base_url)
        self._client = anthropic.Anthropic(api_key=self._secret, base_url=self.base_url,
                                           max_retries=s.max_retries, timeout=self.timeout_s)
        self.id = f"anthropic:{model_name}"

    @classmethod
    def info(cls) -> ProviderInfo:
        return ProviderInfo("anthropic:claude-sonnet-4-5", "Anthropic's Claude models.",
                            KEY_ENV, f"$ANTHROPIC_BASE_URL or {API_URL}")

    def complete(self, request: GenerationRequest) -> Generation:
        started = time.perf_counter()
        message = self._call(request, stream=False)
        text = "".join(block.text for block in message.content if block.type == "text")
        return Generation(text, self.id, message.model, _usage(message.usage),
                          message.stop_reason or "unknown", time.perf_counter() - started)

    def stream(self, request: GenerationRequest) -> Iterator[str | Generation]:
        started = time.perf_counter()
        events = self._call(request, stream=True)
        parts: list[str] = []
        version, finish, prompt_tokens, completion_tokens = self.model_name, "incomplete", 0, 0
        try:
            for event in events:
                if event.type == "message_start":
                    version = event.message.model
                    prompt_tokens = event.message.usage.input_tokens
                elif event.type == "content_block_delta" and event.delta.type == "text_delta":
                    parts.append(event.delta.text)
                    yield event.delta.text
                elif event.type == "message_delta":
                    finish = event.delta.stop_reason or finish
                    completion_tokens = event.usage.output_tokens
        except Exception as exc:  # the connection broke mid-answer
            if not parts:
                raise GenerationError(self._explain(exc)) from exc
            finish = "incomplete"
        yield Generation("".join(parts), self.id, version, Usage(prompt_tokens, completion_tokens),
                         finish, time.perf_counter() - started)

    def _call(self, request: GenerationRequest, stream: bool) -> Any:
        import anthropic

        system = "\n\n".join(m.content for m in request.messages if m.role == "system")
        kwargs: dict[str, Any] = {
            "model": self.model_name,
            "max_tokens": request.max_tokens,
            "messages": [{"role": m.role, "content": m.content}
                         for m in request.messages if m.role != "system"],
        }
        if system:
            kwargs["system"] = system
        if self._takes_temperature:
            kwargs["temperature"] = request.temperature
        try:
            return self._client.messages.create(**kwargs, stream=stream)
        except anthropic.AnthropicError as exc:
            raise GenerationError(self._explain(exc)) from exc

    @cached_property
    def _takes_temperature(self) -> bool:
        """SDK releases for models without sampling controls dropped ``temperature``."""
        return "temperature" in inspect.signature(self._client.messages.create).parameters

    def _explain(self, exc: Exception) -> str:
        import anthropic

        where = f"The Anthropic API at {redact_url(self.base_url or API_URL)} (model {self.model_name!r})"
        message = explain(exc, anthropic, where, self.key_env, self.settings.max_retries,
                          self.timeout_s, "answer.base_url or ANTHROPIC_BASE_URL")
        return redact(message, self._secret)


def _usage(usage: Any) -> Usage:
    return Usage(usage.input_tokens or 0, usage.output_tokens or 0)
