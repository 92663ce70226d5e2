"""Lone UTF-16 surrogates (``"\\ud800"`` in JSON) are not text: the SDK's strict JSON parser
drops such a message without an answer (the client would wait forever) and no UTF-8 transport
can carry one back. Before the SDK parses a message, each lone surrogate becomes
:data:`SENTINEL` (U+FFFE, a Unicode noncharacter that no text holds), which the tools' argument
validation refuses by name (:mod:`.schemas`): the caller gets an error naming the argument."""

from __future__ import annotations

import json
import re
from typing import Any

SENTINEL = "\ufffe"
_LONE = re.compile("[\ud800-\udfff]")
_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


def mark_lone_surrogates(raw: bytes) -> bytes:
    """``raw`` (a JSON-RPC message) with every lone surrogate in its strings replaced by
    :data:`SENTINEL`; unchanged when it holds none or is not JSON."""
    if not _ESCAPE.search(raw):
        return raw
    try:
        message = json.loads(raw)
    except ValueError:
        return raw
    marked = _mark(message)
    if marked == message:
        return raw
    return json.dumps(marked, ensure_ascii=False).encode("utf-8")


def _mark(value: Any) -> Any:
    if isinstance(value, str):
        return _LONE.sub(SENTINEL, value)
    if isinstance(value, dict):
        return {_mark(k): _mark(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_mark(v) for v in value]
    return value
