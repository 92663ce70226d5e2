"""A language model as the verifier (``answer.verify = "model"``).

All the (claim, evidence) pairs of one answer go to the model in **one** call (template
``verify.en.j2``, JSON mode); the reply ``{"verdicts": [{"pair": i, "supported": bool,
"confidence": p}]}`` is read leniently (the first JSON object, repaired where possible). A pair
the reply leaves out or garbles is *unparseable*: it is scored by the fallback verifier (the
offline one) and counted, never silently taken as a yes or a no; a failed call falls back
whole. Calls go through the answer pipeline's ``complete`` (cache, prices, usage).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from ..errors import ConfigError, GenerationError
from ..models.generation import Generation, GenerationRequest
from ..models.json_reply import json_objects
from ..models.verification import Verifier
from ..types import Usage
from .templates import Templates, quote_data


@dataclass
class ModelVerifierStats:
    """What the model verifier did over its calls (goes into the answer's trace)."""

    calls: int = 0
    pairs: int = 0
    unparseable: int = 0
    repaired: int = 0
    failed_calls: int = 0
    usage: Usage = field(default_factory=lambda: Usage(0, 0, 0.0))

    def to_dict(self) -> dict[str, int]:
        return {"calls": self.calls, "pairs": self.pairs, "unparseable": self.unparseable,
                "repaired": self.repaired, "failed_calls": self.failed_calls}


class ModelVerifier:
    """``complete`` makes the model call; ``fallback`` scores what the model does not answer."""

    languages = None  # a strong model reads every language

    def __init__(self, model_id: str, complete: Callable[[GenerationRequest], Generation], templates: Templates,
                 fallback: Verifier, max_tokens: int = 1500) -> None:
        self.id = f"model:{model_id}+{fallback.id}"
        self.model_id = model_id
        self.complete = complete
        self.templates = templates
        self.fallback = fallback
        self.max_tokens = max_tokens
        self.stats = ModelVerifierStats()

    def score(self, pairs: Sequence[tuple[str, str]]) -> list[float]:
        if not pairs:
            return []
        self.stats.calls += 1
        self.stats.pairs += len(pairs)
        prompt = self.templates.render(
            "verify", "en", pairs=[{"claim": quote_data(c), "evidence": quote_data(e)} for c, e in pairs])
        request = GenerationRequest(prompt.messages, max_tokens=self.max_tokens, json=True)
        try:
            generation = self.complete(request)
        except (GenerationError, ConfigError):
            self.stats.failed_calls += 1
            self.stats.unparseable += len(pairs)
            return self.fallback.score(pairs)
        self.stats.usage += generation.usage
        found, repaired = parse_verdicts(generation.text, len(pairs))
        self.stats.repaired += repaired
        missing = [i for i, p in enumerate(found) if p is None]
        self.stats.unparseable += len(missing)
        backup = dict(zip(missing, self.fallback.score([pairs[i] for i in missing]), strict=True)) if missing else {}
        return [p if p is not None else backup[i] for i, p in enumerate(found)]


def parse_verdicts(text: str, count: int) -> tuple[list[float | None], bool]:
    """(probability or None per pair, repaired) from the model's reply. ``confidence`` is the
    probability when it is a number in [0, 1]; else ``supported`` gives 1.0 or 0.0."""
    out: list[float | None] = [None] * count
    for data, repaired in json_objects(text):
        verdicts = data.get("verdicts")
        if not isinstance(verdicts, list):
            continue
        for i, item in enumerate(verdicts):
            if not isinstance(item, dict):
                continue
            index = item.get("pair", i + 1)
            if not isinstance(index, int) or not 1 <= index <= count:
                continue
            out[index - 1] = _probability(item)
        return out, repaired
    return out, False


def _probability(item: dict[str, object]) -> float | None:
    supported = item.get("supported")
    confidence = item.get("confidence")
    if isinstance(confidence, int | float) and not isinstance(confidence, bool) and 0 <= confidence <= 1:
        if isinstance(supported, bool) and supported != (confidence >= 0.5):
            return 1.0 if supported else 0.0  # the verdict wins over a contradicting number
        return float(confidence)
    if isinstance(supported, bool):
        return 1.0 if supported else 0.0
    return None
