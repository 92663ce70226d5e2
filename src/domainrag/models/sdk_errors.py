"""The one seam where errors of the vendor SDKs (``openai``, ``anthropic``) become ours.

Both SDKs share one error hierarchy (``AuthenticationError``, ``RateLimitError``,
``APITimeoutError``...), so one function explains either, given the SDK module. Keys are never
echoed: :func:`redact` removes the secret from any message before it is raised.
"""

from __future__ import annotations

import os
from types import ModuleType
from urllib.parse import urlparse

from ..errors import ConfigError
from ..redaction import redact as redact_text

#: Sent to servers that need no key (a custom base URL and no key in the environment).
NO_KEY = "not-needed"


def explain(exc: Exception, sdk: ModuleType, where: str, key_env: str, retries: int,
            timeout_s: float, setting: str) -> str:
    """A message for an SDK error that says what went wrong and what to do.

    ``where`` names the API and model; ``setting`` names where the base URL is configured.
    """
    if isinstance(exc, sdk.AuthenticationError):
        return (f"{where} rejected the API key (HTTP 401: {exc.message}). Check that the "
                f"environment variable {key_env} holds a valid key for this server.")
    if isinstance(exc, sdk.PermissionDeniedError):
        return f"{where} denied access (HTTP 403: {exc.message}). Check the key's permissions."
    if isinstance(exc, sdk.NotFoundError):
        return (f"{where} answered 404 ({exc.message}). Check the model name and the base URL "
                f"({setting}).")
    if isinstance(exc, sdk.RateLimitError):
        return (f"{where} is rate-limiting (HTTP 429: {exc.message}) even after {retries} "
                "retries. Wait and try again, or configure a fallback model.")
    if isinstance(exc, sdk.APITimeoutError):
        return (f"{where} did not answer within {timeout_s:g} s ({retries} retries). Is the "
                "server overloaded? Raise the timeout or configure a fallback model.")
    if isinstance(exc, sdk.APIConnectionError):
        return (f"{where} could not be reached ({exc.__cause__ or exc}). Is the server running, "
                f"and is the URL right ({setting})?")
    if isinstance(exc, sdk.APIStatusError):
        return f"{where} failed with HTTP {exc.status_code}: {exc.message}"
    return f"{where} failed: {exc}"


def redact(message: str, secret: str | None) -> str:
    """``message`` with the key ``secret`` and every credential in a URL replaced by ``***``."""
    return redact_text(message, secret if secret != NO_KEY else None)


def is_custom(base_url: str | None, official_host: str) -> bool:
    """True for any server but the vendor's own."""
    return bool(base_url) and urlparse(base_url or "").hostname != official_host


def api_key(env: str, *, required: bool, what: str, hint: str) -> str:
    """The key in variable ``env``; ``NO_KEY`` when absent and not ``required``."""
    key = os.environ.get(env, "").strip()
    if key:
        return key
    if not required:
        return NO_KEY
    raise ConfigError(
        f"{what} needs an API key in the environment variable {env}, which is not set. "
        f"Set it (export {env}=...){hint}."
    )
