"""Provider faults during an evaluation: what kind a failed model call was, how a failed case is
recorded and summarised, and how many calls run at once.

A case whose model call fails (after the SDK's own retries and any ``answer.fallback`` models)
is stored as a *failed* record instead of ending the run: its retrieval scores (retrieval ran)
plus ``"status": "failed"`` and ``"error": {"kind", "stage", "message"}``. Records of cases that
succeeded carry neither key. Kinds:

================  ===============================================================
``timeout``       no answer within ``answer.timeout_s`` (each try)
``rate_limit``    HTTP 429 after the retries
``server_error``  HTTP 5xx (529 overloaded included) after the retries
``connection``    refused, reset, or a response cut off mid-body
``auth``          HTTP 401/403: the key
``not_found``     HTTP 404: the model name or base URL
``bad_request``   any other HTTP 4xx
``model_error``   any other failed generation (every fallback failed, no result...)
``not_attempted`` never sent: the calls before it failed :data:`GIVE_UP_AFTER` times in a row
================  ===============================================================

``stage`` is ``answer`` or ``judge`` (the faithfulness judge's call).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

#: Faults that say the server is overloaded: with other calls in flight, the runner lowers its
#: concurrency and retries the case alone. Server errors are not among them: a 500 is as often
#: the request's own fault, and the SDK has already retried it.
LOAD_KINDS = frozenset({"timeout", "rate_limit"})
#: After this many failed calls in a row (no success between), the rest are not attempted.
GIVE_UP_AFTER = 10
MAX_MESSAGE = 600

# The vendor SDKs (openai, anthropic) share these class names; their errors reach us as the
# ``__cause__`` of a GenerationError (models/sdk_errors.py), so they are matched by name and
# neither SDK needs importing here.
_BY_CLASS = (
    ("APITimeoutError", "timeout"), ("TimeoutError", "timeout"), ("TimeoutException", "timeout"),
    ("RateLimitError", "rate_limit"),
    ("AuthenticationError", "auth"), ("PermissionDeniedError", "auth"),
    ("NotFoundError", "not_found"),
    ("InternalServerError", "server_error"), ("OverloadedError", "server_error"),
    ("APIConnectionError", "connection"), ("ConnectionError", "connection"),
)


def failure_kind(exc: BaseException) -> str:
    """The kind of a failed model call (see the module docstring), from ``exc`` and its causes."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        names = {cls.__name__ for cls in type(current).__mro__}
        for name, kind in _BY_CLASS:
            if name in names:
                return kind
        status = getattr(current, "status_code", None)
        if "APIStatusError" in names and isinstance(status, int):
            return "server_error" if status >= 500 else "bad_request"
        current = current.__cause__ or current.__context__
    return "model_error"


def failure(exc: BaseException, stage: str) -> dict[str, str]:
    """The ``error`` field of a failed case record."""
    message = " ".join(str(exc).split()) or type(exc).__name__
    if len(message) > MAX_MESSAGE:
        message = message[: MAX_MESSAGE - 1] + "…"
    return {"kind": failure_kind(exc), "stage": stage, "message": message}


def is_failed(record: dict[str, Any]) -> bool:
    return record.get("status") == "failed"


def failure_summary(records: Sequence[dict[str, Any]]) -> tuple[dict[str, Any] | None, list[str]]:
    """``summary["failed"]`` (None when no case failed) and the warnings that explain it."""
    failed = [r for r in records if is_failed(r)]
    if not failed:
        return None, []
    kinds = Counter(r["error"]["kind"] for r in failed)
    by_kind = dict(sorted(kinds.items(), key=lambda kv: (-kv[1], kv[0])))
    counts = ", ".join(f"{n} {kind.replace('_', ' ')}" for kind, n in by_kind.items())
    warnings = [f"{len(failed)} of {len(records)} cases failed ({counts}): their answer, citation, judge and "
                "cost scores are left out of the metrics (their retrieval scores are kept); run the same "
                "evaluation again to retry only the failed cases."]
    first = failed[0]["error"]
    warnings.append(f"first failure ({failed[0]['id']}, {first['kind'].replace('_', ' ')}): {first['message']}")
    if kinds.get("timeout"):
        warnings.append("Timeouts: a slow or one-request-at-a-time model server (llama.cpp, Ollama on a CPU) needs a "
                        "longer answer.timeout_s (in domainrag.toml, or --set answer.timeout_s=SECONDS; unset, it is "
                        "600 s for a server on this machine and 60 s otherwise) and fewer concurrent calls "
                        "(--concurrency 1); a re-run with a longer timeout retries only the failed cases.")
    summary = {"count": len(failed), "by_kind": by_kind, "cases": [r["id"] for r in failed]}
    return summary, warnings


class ConcurrencyLimit:
    """How many model calls run at once: starts at ``start``; halved (down to 1) when a call
    fails from overload while others were in flight, at most once per round of calls (a call
    dispatched before the last decrease does not lower it again). It is never raised within a
    run: probing upwards costs a full timeout on a server that answers one request at a time."""

    def __init__(self, start: int) -> None:
        self.start = max(1, start)
        self.value = self.start
        self.epoch = 0

    def lower(self, epoch: int) -> bool:
        """React to an overload failure of a call dispatched in ``epoch``; True when lowered."""
        if epoch != self.epoch or self.value == 1:
            return False
        self.value = max(1, self.value // 2)
        self.epoch += 1
        return True
