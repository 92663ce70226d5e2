"""BM25 lexical index over pre-analysed chunk tokens, built with ``bm25s`` and saved to disk."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from .ranked import Ranked, top_n


class LexicalIndex:
    """BM25 (Lucene variant, k1=1.2, b=0.75) over token lists; rows are list positions."""

    def __init__(self, bm25: object, size: int) -> None:
        self._bm25 = bm25
        self.size = size

    @classmethod
    def build(cls, corpus_tokens: Iterable[Sequence[str]]) -> LexicalIndex:
        import bm25s

        tokens = [list(t) for t in corpus_tokens]
        bm25 = bm25s.BM25(k1=1.2, b=0.75, method="lucene")
        if tokens:
            bm25.index(tokens, show_progress=False)
        return cls(bm25, len(tokens))

    def search(self, query_tokens: Sequence[str], n: int, allowed: np.ndarray | None = None) -> Ranked:
        if not self.size:
            return Ranked.empty()
        ids = self._bm25.get_tokens_ids(list(query_tokens))  # type: ignore[attr-defined]
        if not ids:
            return Ranked.empty()
        scores = self._bm25.get_scores_from_ids(ids)  # type: ignore[attr-defined]
        scores = np.where(scores > 0, scores, -np.inf)
        return top_n(scores, n, allowed)

    def save(self, directory: Path, generation: int) -> None:
        tmp = directory.with_name(directory.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        if self.size:
            self._bm25.save(str(tmp), show_progress=False)  # type: ignore[attr-defined]
        (tmp / "state.json").write_text(json.dumps({"generation": generation, "size": self.size}))
        shutil.rmtree(directory, ignore_errors=True)
        tmp.rename(directory)

    @classmethod
    def load(cls, directory: Path, generation: int) -> LexicalIndex | None:
        """The saved index if it was built at ``generation``, else ``None`` (stale or absent)."""
        try:
            state = json.loads((directory / "state.json").read_text())
        except (OSError, ValueError):
            return None
        if state.get("generation") != generation:
            return None
        if not state["size"]:
            return cls.build([])
        import bm25s

        bm25 = bm25s.BM25.load(str(directory), mmap=False, show_progress=False)
        return cls(bm25, state["size"])
