"""Lexical analysis for BM25: English stemming and stopwords, Chinese via jieba search mode.

Text is split into runs of CJK characters and runs of other word characters. Latin-script
words are lower-cased, stopwords dropped and Snowball-stemmed (PyStemmer); CJK runs are cut by
jieba in search mode (overlapping words, good for recall) plus single characters of runs jieba
leaves unsplit. Mixed text gets both. jieba is imported only when CJK text is seen.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import cached_property
from typing import Any

from ..text import CJK_RANGES

_RUNS = re.compile(rf"([{CJK_RANGES}]+)|([^\W_{CJK_RANGES}]+)", re.UNICODE)

ANALYZER_ID = "en-snowball+zh-jieba-search:v1"
#: English stopwords: bm25s's ``STOPWORDS_EN`` (0.3.16), kept here so that a query is analysed
#: without importing bm25s (and SciPy with it) and stays analysed as the index was if bm25s
#: changes its list.
STOPWORDS_EN = frozenset((
    "a", "an", "and", "are", "as", "at", "be", "but", "by", "for", "if", "in", "into", "is", "it", "no",
    "not", "of", "on", "or", "such", "that", "the", "their", "then", "there", "these", "they", "this", "to",
    "was", "will", "with",
))


class Analyzer:
    """Turns text into BM25 tokens (see module docstring). Deterministic and thread-safe."""

    id = ANALYZER_ID

    def tokenize(self, text: str) -> list[str]:
        tokens: list[str] = []
        for cjk, word in _RUNS.findall(text):
            if cjk:
                tokens.extend(self._cjk(cjk))
            else:
                word = word.lower()
                if word not in STOPWORDS_EN:
                    tokens.append(self._stem(word))
        return tokens

    def _cjk(self, run: str) -> list[str]:
        if len(run) == 1:
            return [run]
        return [w for w in self._jieba.cut_for_search(run) if w.strip()]

    @cached_property
    def _stem(self) -> Callable[[str], str]:
        import Stemmer

        stemmer = Stemmer.Stemmer("english")
        stemmer.maxCacheSize = 100_000
        stem: Callable[[str], str] = stemmer.stemWord
        return stem


    @cached_property
    def _jieba(self) -> Any:
        import logging

        import jieba

        jieba.setLogLevel(logging.WARNING)
        jieba.initialize()
        return jieba
