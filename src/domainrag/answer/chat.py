"""Conversations: follow-up questions rewritten into standalone ones before retrieval."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..types import Answer, Usage
from .pipeline import Turn

Ask = Callable[..., Answer]
Rewrite = Callable[[str, list[Turn]], tuple[str, Usage]]


class Conversation:
    """Keeps the history of one conversation; ``ask`` answers a (possibly follow-up) question.

    With a model configured, a follow-up ("and for children?") is first rewritten with the
    history into a standalone question, which is what gets retrieved and answered; the trace
    records the original. The offline default answers the question as asked.
    """

    def __init__(self, ask: Ask, rewrite: Rewrite, max_turns: int = 6) -> None:
        self._ask = ask
        self._rewrite = rewrite
        self.max_turns = max_turns
        self.history: list[Turn] = []

    def ask(self, question: str, **options: Any) -> Answer:
        standalone, usage = self._rewrite(question, self.history[-self.max_turns:])
        trace = {"asked": question, "rewrite_usage": usage.to_dict()} if standalone != question else None
        answer = self._ask(standalone, extra_trace=trace, **options)
        self.history.append(Turn(question, answer.text))
        return answer

    def reset(self) -> None:
        self.history.clear()
