"""OpenAI and any OpenAI-compatible embeddings API (vLLM, Ollama, llama.cpp, ...) via ``openai``.

The base URL comes from ``embedder.base_url``, else the ``OPENAI_BASE_URL`` variable, else the
user's ``[providers.openai]`` (:mod:`domainrag.trust`); the key from the environment variable named
by ``embedder.api_key_env`` (default: the user's ``[providers.openai]`` one, else ``OPENAI_API_KEY``). Local
servers usually accept any key, so a custom base URL with no key set sends ``not-needed``. The key
is handed to the SDK only: it is never stored in the id, logged, or echoed in error messages.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import ClassVar

import numpy as np

from ..config import EmbedderConfig
from ..errors import EmbeddingError, require
from ..redaction import host_port, redact_url
from ..trust import check as check_trust
from ..trust import user_provider
from .embedding import BaseEmbedder
from .sdk_errors import api_key, explain, is_custom, redact

#: Dimensions of OpenAI's own models; other models are asked once, on first use.
KNOWN_DIMENSIONS = {
    "text-embedding-3-small": 1536,
    "text-embedding-3-large": 3072,
    "text-embedding-ada-002": 1536,
}
OPENAI_URL = "https://api.openai.com/v1"
DEFAULT_KEY_ENV = "OPENAI_API_KEY"
#: OpenAI accepts at most 2048 inputs per request; larger batches are split.
MAX_INPUTS_PER_REQUEST = 2048


class OpenAIEmbedder(BaseEmbedder):
    """Embeds through ``POST {base_url}/embeddings``; multilingual (``languages=None``) by default.

    The id is ``openai:MODEL``, or ``openai:MODEL@HOST:PORT`` for a custom base URL, because the
    same model name on two servers need not give the same vectors.
    """

    default_languages = None
    remote = True
    #: Seconds to wait for one response, and retries (with backoff) on 408/409/429/5xx and
    #: connection errors; the SDK honours ``Retry-After`` headers.
    timeout_s: ClassVar[float] = 30.0
    max_retries: ClassVar[int] = 3

    def __init__(
        self, model_name: str = "text-embedding-3-small", config: EmbedderConfig | None = None
    ) -> None:
        super().__init__(model_name, config)
        user = user_provider("openai")
        check_trust(self.config.untrusted, f"The embedder openai:{model_name}", OPENAI_URL, DEFAULT_KEY_ENV, user)
        openai = require("openai", "openai", "openai", "The OpenAI embedder")
        self.base_url = self.config.base_url or os.environ.get("OPENAI_BASE_URL") or user.base_url or None
        configured = self.config.api_key_env
        self.key_env = user.api_key_env if configured == DEFAULT_KEY_ENV and user.api_key_env else configured
        self._secret = _api_key(self.key_env, custom=_is_custom(self.base_url))
        self._client = openai.OpenAI(
            api_key=self._secret,
            base_url=self.base_url,
            max_retries=self.max_retries,
            timeout=self.timeout_s,
        )
        self._dimensions: int | None = KNOWN_DIMENSIONS.get(model_name)
        self.id = f"openai:{model_name}"
        if _is_custom(self.base_url):
            self.id += f"@{host_port(self.base_url or '')}"

    @property
    def dimensions(self) -> int:
        """Known for OpenAI's models; otherwise learnt by embedding one probe text, once."""
        if self._dimensions is None:
            self.embed_batch(["dimensions probe"])
        assert self._dimensions is not None
        return self._dimensions

    @dimensions.setter
    def dimensions(self, value: int) -> None:
        self._dimensions = value

    def embed_batch(self, texts: Sequence[str]) -> np.ndarray:
        """One row per text, in order; requests of at most 2048 inputs."""
        if not texts:
            return np.zeros((0, self.dimensions), dtype=np.float32)
        rows: list[list[float]] = []
        for start in range(0, len(texts), MAX_INPUTS_PER_REQUEST):
            rows.extend(self._request(list(texts[start : start + MAX_INPUTS_PER_REQUEST])))
        widths = {len(row) for row in rows}
        if len(widths) != 1:
            raise EmbeddingError(f"{self._where()} returned vectors of mixed lengths {sorted(widths)}")
        if self._dimensions is None:
            self._dimensions = widths.pop()
        return np.asarray(rows, dtype=np.float32)

    def _request(self, texts: list[str]) -> list[list[float]]:
        import openai

        # The API rejects empty strings; a lone space embeds "nothing" just as well.
        inputs = [text if text else " " for text in texts]
        try:
            response = self._client.embeddings.create(model=self.model_name, input=inputs)
        except openai.OpenAIError as exc:
            raise EmbeddingError(self._redact(self._explain(exc))) from exc
        except ValueError as exc:  # the SDK's parser: "No embedding data received"
            raise EmbeddingError(self._redact(f"{self._where()} returned no embeddings: {exc}")) from exc
        data = sorted(response.data, key=lambda item: item.index)
        if len(data) != len(texts):
            raise EmbeddingError(
                f"{self._where()} returned {len(data)} embeddings for {len(texts)} texts"
            )
        return [list(item.embedding) for item in data]

    def _where(self) -> str:
        return f"The embeddings API at {redact_url(self.base_url or OPENAI_URL)} (model {self.model_name!r})"

    def _explain(self, exc: Exception) -> str:
        import openai

        return explain(exc, openai, self._where(), self.key_env, self.max_retries,
                       self.timeout_s, "embedder.base_url or OPENAI_BASE_URL")

    def _redact(self, message: str) -> str:
        return redact(message, self._secret)


def _is_custom(base_url: str | None) -> bool:
    return is_custom(base_url, "api.openai.com")


def _api_key(env: str, *, custom: bool) -> str:
    return api_key(env, required=not custom, what="The OpenAI embedder",
                   hint=", or name the variable that holds your key in embedder.api_key_env; "
                   "for a local OpenAI-compatible server set embedder.base_url")
