"""The evaluation judge: a pinned model scores each answer's faithfulness to its context.

The rubric is a file (``rubrics/faithfulness.md``, or ``<kb>/rubrics/faithfulness.md`` to
override it) whose hash is recorded in the run's manifest with the judge model's id. The judge
sees the retrieved passages, the question and the answer (as quoted data) and replies with JSON
``{"score": 1-5, "unsupported_claims": [...], "reason": "..."}``. The case's ``faithfulness``
is ``(score - 1) / 4`` (0..1). A reply that is not valid JSON is repaired when the score is
still readable (the first ``{...}`` object, or a bare ``"score": 4``) and counted as repaired;
otherwise the case is counted as unparseable and gets no score — never silently dropped.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..answer.templates import Templates, quote_data
from ..models.generation import Generation, GenerationRequest
from ..models.json_reply import json_objects

RUBRIC = "faithfulness.md"
_PACKAGE_RUBRICS = Path(__file__).parent / "rubrics"
_SCORE = re.compile(r'"?score"?\s*[:=]\s*"?([1-5](?:\.\d+)?)')


@dataclass(frozen=True)
class Judgement:
    """``faithfulness`` in 0..1 (None when unparseable); ``status`` is ok/repaired/unparseable."""

    faithfulness: float | None
    status: str
    unsupported_claims: tuple[str, ...]
    reason: str
    version: str


def rubric_path(kb_dir: Path | None) -> Path:
    custom = kb_dir / "rubrics" / RUBRIC if kb_dir else None
    return custom if custom and custom.is_file() else _PACKAGE_RUBRICS / RUBRIC


class FaithfulnessJudge:
    def __init__(self, model_id: str, complete: Callable[[GenerationRequest], Generation],
                 templates: Templates, rubric: Path) -> None:
        self.model_id = model_id
        self.complete = complete
        self.templates = templates
        self.rubric = rubric.read_text(encoding="utf-8")
        self.rubric_hash = hashlib.sha256(self.rubric.encode()).hexdigest()[:16]

    def judge(self, question: str, answer: str, contexts: Sequence[str]) -> Judgement:
        prompt = self.templates.render(
            "faithfulness", "en", rubric=self.rubric, question=quote_data(question),
            answer=quote_data(answer), contexts=[quote_data(c) for c in contexts])
        generation = self.complete(GenerationRequest(prompt.messages, max_tokens=300, json=True))
        return parse_judgement(generation.text, generation.version)


def parse_judgement(text: str, version: str = "") -> Judgement:
    """A :class:`Judgement` from the judge's reply (see the module docstring)."""
    for data, repaired in json_objects(text):
        score = data.get("score")
        if isinstance(score, (int, float)) and not isinstance(score, bool) and 1 <= score <= 5:
            claims = tuple(str(c) for c in data.get("unsupported_claims") or [] if c)
            status = "repaired" if repaired else "ok"
            return Judgement((score - 1) / 4, status, claims, str(data.get("reason", "")), version)
    match = _SCORE.search(text)
    if match:
        return Judgement((float(match.group(1)) - 1) / 4, "repaired", (), "", version)
    return Judgement(None, "unparseable", (), text[:200], version)
