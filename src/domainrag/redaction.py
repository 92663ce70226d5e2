"""Credentials out of URLs: the one place that redacts what is stored or printed.

A base URL may carry a secret (``http://user:pw@host/v1``, ``...?api_key=SECRET``). Model ids
(``openai:MODEL@HOST:PORT``), manifests, the model-call cache, error messages and reports get
URLs only through :func:`redact_url` (one URL) or :func:`redact` (any text), so the secret is
sent to the server and written nowhere.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

MASK = "***"
#: Query parameters whose value is a credential (matched case-insensitively, anywhere in the name).
_SECRET_PARAM = re.compile(r"key|token|secret|passw|pwd|auth|sig|credential|session", re.IGNORECASE)
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>`]+")


def redact_url(url: str) -> str:
    """``url`` with its user info and credential-like query values replaced by ``***``:
    ``http://user:pw@host:8080/v1?api_key=k&x=1`` -> ``http://***@host:8080/v1?api_key=***&x=1``."""
    try:
        parts = urlsplit(url)
    except ValueError:  # e.g. an unbalanced IPv6 bracket: keep nothing that could be a secret
        return _strip_userinfo(url)
    netloc = parts.netloc
    if "@" in netloc:
        netloc = f"{MASK}@{netloc.rpartition('@')[2]}"
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        if any(_SECRET_PARAM.search(name) for name, _ in pairs):
            query = urlencode([(name, MASK if _SECRET_PARAM.search(name) else value) for name, value in pairs],
                              safe="*")
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def redact(text: str, *secrets: str | None) -> str:
    """``text`` with every URL in it redacted (:func:`redact_url`) and each of ``secrets``
    (API keys) replaced by ``***``."""
    text = _URL.sub(lambda m: redact_url(m.group(0)), text)
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, MASK)
    return text


def host_port(url: str) -> str:
    """``HOST:PORT`` of ``url`` (no user info): what model ids name a server by."""
    return urlsplit(url).netloc.rpartition("@")[2]


def _strip_userinfo(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    authority, slash, path = rest.partition("/")
    if "@" in authority:
        authority = f"{MASK}@{authority.rpartition('@')[2]}"
    return f"{scheme}://{authority}{slash}{path.split('?')[0]}"
