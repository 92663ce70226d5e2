"""An entailment judge: a model decides whether a source supports a cited sentence.

The judge answers with a JSON object ``{"supported": bool, "reason": str}`` (template
``judge.en.j2``). Malformed output is repaired where the verdict is still readable (the first
``{...}`` in the text, or a bare ``"supported": true``); otherwise the verdict is ``None`` —
counted as unparseable by the caller, never silently taken as a yes or a no.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from ..models.generation import Generation, GenerationRequest
from ..models.json_reply import json_objects
from ..types import Usage
from .templates import Templates, quote_data

_VERDICT = re.compile(r'"?supported"?\s*[:=]\s*"?(true|false|yes|no)"?', re.IGNORECASE)


@dataclass(frozen=True)
class Verdict:
    supported: bool | None
    reason: str
    usage: Usage
    repaired: bool = False


class LLMJudge:
    """``complete`` calls the judge model (through the caller's cache and price table)."""

    def __init__(self, model_id: str, complete: Callable[[GenerationRequest], Generation],
                 templates: Templates, max_tokens: int = 200) -> None:
        self.id = model_id
        self.complete = complete
        self.templates = templates
        self.max_tokens = max_tokens

    def judge(self, claim: str, source: str) -> Verdict:
        prompt = self.templates.render("judge", "en", claim=quote_data(claim), source=quote_data(source))
        request = GenerationRequest(prompt.messages, max_tokens=self.max_tokens, json=True)
        generation = self.complete(request)
        supported, reason, repaired = parse_verdict(generation.text)
        return Verdict(supported, reason, generation.usage, repaired)


def parse_verdict(text: str) -> tuple[bool | None, str, bool]:
    """(supported, reason, repaired) from a judge's reply; ``supported`` is None if unreadable."""
    for data, repaired in json_objects(text):
        if isinstance(data.get("supported"), bool):
            return data["supported"], str(data.get("reason", "")), repaired
    match = _VERDICT.search(text)
    if match:
        return match.group(1).lower() in ("true", "yes"), "", True
    return None, text[:200], False
