"""How much of a question the retrieved text covers: the evidence gate and the extractive scorer.

``coverage(question, text)`` is the IDF-weighted share of the question's content terms (the BM25
analyzer's tokens, minus question words such as "what"/"什么") that occur in the text. IDF is
computed over the texts being compared (``idf = ln(1 + (N + 1) / (df + 0.5))``), so a question
term that no retrieved text contains weighs most — that is what makes weak evidence visible.
Deterministic, no model.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

from ..index.analyzer import Analyzer

#: Chinese function and question words (the analyzer keeps every CJK word).
ZH_QUESTION_WORDS = frozenset([
    "什么", "怎么", "怎样", "如何", "哪些", "哪个", "哪里", "为什么", "多少", "几", "是否", "是不是", "吗", "呢",
    "吧", "的", "了", "是", "在", "和", "与", "及", "或", "有", "有没有", "可以", "能否", "能", "会", "要", "应该",
    "应当", "请问", "一下", "哪", "谁", "何", "为何", "如果", "何种", "哪种", "什么样", "情况", "下", "怎么办",
    "该", "我", "我们", "你",
])


class Coverage:
    """Scores texts by how much of one question they contain."""

    def __init__(self, question: str, analyzer: Analyzer) -> None:
        self.analyzer = analyzer
        self.terms = frozenset(t for t in analyzer.tokenize(question) if t not in ZH_QUESTION_WORDS)

    def term_sets(self, texts: Iterable[str]) -> list[frozenset[str]]:
        return [frozenset(self.analyzer.tokenize(text)) & self.terms for text in texts]

    def weights(self, term_sets: Sequence[frozenset[str]]) -> dict[str, float]:
        n = len(term_sets)
        return {t: math.log(1 + (n + 1) / (sum(t in s for s in term_sets) + 0.5)) for t in self.terms}

    def scores(self, texts: Sequence[str]) -> list[float]:
        """The coverage of each text, IDF taken over ``texts``; 0.0 each if the question has
        no content terms."""
        sets = self.term_sets(texts)
        if not self.terms:
            return [0.0] * len(sets)
        weights = self.weights(sets)
        total = sum(weights.values())
        return [sum(weights[t] for t in s) / total for s in sets]
