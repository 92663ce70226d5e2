"""BM25 lexical index over pre-analysed chunk tokens: built with ``bm25s``, searched with NumPy.

``bm25s`` builds the eager index — a term-by-document matrix of precomputed BM25 term scores in
compressed sparse column form (one column per vocabulary term) — and saves it as ``.npy`` arrays
and a JSON vocabulary. A search only sums the query terms' columns, so loading reads those files
back memory-mapped and scores them here exactly as ``bm25s.BM25.get_scores_from_ids`` does (the
same NumPy operations in the same order: the same float32 scores), without importing ``bm25s``
and SciPy — most of the start-up time of a fresh ``domainrag search`` otherwise.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np

from .ranked import Ranked, top_n

#: BM25 parameters (Lucene variant); the saved scores are only valid for these.
PARAMS = {"k1": 1.2, "b": 0.75, "method": "lucene"}
#: The files ``bm25s.BM25.save`` writes (its default names) that a search reads.
_DATA, _INDICES, _INDPTR = "data.csc.index.npy", "indices.csc.index.npy", "indptr.csc.index.npy"
_VOCAB, _PARAMS = "vocab.index.json", "params.index.json"


class LexicalIndex:
    """BM25 (Lucene variant, k1=1.2, b=0.75) over token lists; rows are list positions.

    ``vocab`` maps a term to its column; ``data``/``indices``/``indptr`` are the columns (term
    scores and the rows they belong to) as bm25s lays them out.
    """

    def __init__(self, vocab: Mapping[str, int], data: np.ndarray, indices: np.ndarray, indptr: np.ndarray,
                 size: int) -> None:
        self._vocab = vocab
        self._data = data
        self._indices = indices
        self._indptr = indptr
        self.size = size

    @classmethod
    def build(cls, corpus_tokens: Iterable[Sequence[str]]) -> LexicalIndex:
        tokens = [list(t) for t in corpus_tokens]
        if not tokens:
            return cls.empty()
        import bm25s  # imports SciPy: only building an index pays for it

        bm25 = bm25s.BM25(**PARAMS)
        bm25.index(tokens, show_progress=False)
        scores = bm25.scores
        return cls(bm25.vocab_dict, scores["data"], scores["indices"], scores["indptr"], len(tokens))

    @classmethod
    def empty(cls) -> LexicalIndex:
        return cls({}, np.zeros(0, np.float32), np.zeros(0, np.int32), np.zeros(1, np.int32), 0)

    def search(self, query_tokens: Sequence[str], n: int, allowed: np.ndarray | None = None) -> Ranked:
        ids = self._ids(query_tokens)
        if not self.size or not len(ids):
            return Ranked.empty()
        scores = self._scores(ids)
        scores = np.where(scores > 0, scores, -np.inf)
        return top_n(scores, n, allowed)

    def scores(self, query_tokens: Sequence[str]) -> np.ndarray:
        """Every row's BM25 score for the query (float32): the sum of its terms' columns, a term
        counted once per occurrence in the query, as ``bm25s.BM25.get_scores``."""
        return self._scores(self._ids(query_tokens))

    def _ids(self, query_tokens: Sequence[str]) -> np.ndarray:
        columns = len(self._indptr) - 1  # bm25s's vocabulary may hold an empty token without a column
        ids = [i for i in (self._vocab.get(t) for t in query_tokens) if i is not None and i < columns]
        return np.asarray(ids, dtype=np.int32)

    def _scores(self, ids: np.ndarray) -> np.ndarray:
        """``bm25s.BM25.get_scores_from_ids`` (numpy backend): the same operations, in order."""
        starts, ends = self._indptr[ids], self._indptr[ids + 1]
        scores = np.zeros(self.size, dtype=np.float32)
        for start, end in zip(starts, ends, strict=True):
            np.add.at(scores, self._indices[start:end], self._data[start:end])
        return scores

    def save(self, directory: Path, generation: int) -> None:
        tmp = directory.with_name(directory.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        if self.size:
            np.save(tmp / _DATA, self._data)
            np.save(tmp / _INDICES, self._indices)
            np.save(tmp / _INDPTR, self._indptr)
            (tmp / _VOCAB).write_text(json.dumps(dict(self._vocab), ensure_ascii=False), encoding="utf-8")
            (tmp / _PARAMS).write_text(json.dumps({**PARAMS, "num_docs": self.size}))
        (tmp / "state.json").write_text(json.dumps({"generation": generation, "size": self.size}))
        shutil.rmtree(directory, ignore_errors=True)
        tmp.rename(directory)

    @classmethod
    def load(cls, directory: Path, generation: int) -> LexicalIndex | None:
        """The saved index if it was built at ``generation``, else ``None`` (stale or absent).
        Its arrays are memory-mapped (read-only): pages are read as searches touch them.
        Damaged or foreign files raise (``OSError``/``ValueError``); the caller rebuilds."""
        try:
            state = json.loads((directory / "state.json").read_text())
        except (OSError, ValueError):
            return None
        if state.get("generation") != generation:
            return None
        size = state["size"]
        if not size:
            return cls.empty()
        params = json.loads((directory / _PARAMS).read_text())
        if {key: params.get(key) for key in PARAMS} != PARAMS or params.get("num_docs") != size:
            raise ValueError(f"{directory / _PARAMS} holds other BM25 parameters than {PARAMS}")
        vocab = json.loads((directory / _VOCAB).read_text(encoding="utf-8"))
        data, indices, indptr = (np.load(directory / name, mmap_mode="r") for name in (_DATA, _INDICES, _INDPTR))
        if len(data) != len(indices) or not len(indptr) or indptr[-1] != len(data):
            raise ValueError(f"{directory}: the BM25 arrays disagree in length")
        return cls(vocab, data, indices, indptr, size)
