"""Vector index: exact inner-product search with NumPy; HNSW (faiss) past a size threshold.

Vectors are L2-normalised float32, so inner product is cosine similarity. Filtered searches
always run exactly over the allowed rows, which is both correct and fast for small subsets.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

from ..config import IndexConfig
from .ranked import Ranked, top_n

log = logging.getLogger(__name__)


class VectorIndex:
    def __init__(self, matrix: np.ndarray, config: IndexConfig | None = None) -> None:
        self.matrix = np.ascontiguousarray(matrix, dtype=np.float32)
        self.config = config or IndexConfig()
        self._hnsw: Any = None

    @property
    def size(self) -> int:
        return int(self.matrix.shape[0])

    @property
    def uses_ann(self) -> bool:
        return self._hnsw is not None

    def search(self, query: np.ndarray, n: int, allowed: np.ndarray | None = None) -> Ranked:
        if not self.size:
            return Ranked.empty()
        query = np.asarray(query, dtype=np.float32).reshape(-1)
        if allowed is not None:
            return self._search_subset(query, n, allowed)
        if self._hnsw is not None:
            return self._search_hnsw(query, n)
        return top_n(self.matrix @ query, n)

    def _search_subset(self, query: np.ndarray, n: int, allowed: np.ndarray) -> Ranked:
        rows = np.flatnonzero(allowed)
        if not len(rows):
            return Ranked.empty()
        local = top_n(self.matrix[rows] @ query, n)
        return Ranked(rows[local.rows], local.scores)

    def _search_hnsw(self, query: np.ndarray, n: int) -> Ranked:
        scores, rows = self._hnsw.search(query[None, :], min(n, self.size))
        keep = rows[0] >= 0
        return Ranked(rows[0][keep].astype(np.int64), scores[0][keep].astype(np.float32))

    # -- ANN -------------------------------------------------------------------------------
    def ensure_ann(self, path: Path | None = None, generation: int | None = None) -> None:
        """Build (or load from ``path``) an HNSW index when the index is past the threshold and
        faiss is installed; otherwise stay exact (and say so once in the log)."""
        if self.size < self.config.ann_threshold or self._hnsw is not None:
            return
        try:
            import faiss
        except ImportError:
            log.warning(
                "%d vectors: exact search may be slow; pip install 'domainrag[ann]' for HNSW",
                self.size,
            )
            return
        hnsw = _read_hnsw(faiss, path) if path is not None and _state(path) == generation else None
        if hnsw is None:
            hnsw = self._build_hnsw(faiss)
            if path is not None:
                _write_hnsw(faiss, hnsw, path, generation)
        hnsw.hnsw.efSearch = self.config.hnsw_ef_search
        self._hnsw = hnsw

    def _build_hnsw(self, faiss: Any) -> Any:
        index = faiss.IndexHNSWFlat(self.matrix.shape[1], self.config.hnsw_m, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = 80
        index.add(self.matrix)
        return index


def _read_hnsw(faiss: Any, path: Path) -> Any:
    """The saved graph, or ``None`` when it is damaged (it is derived: rebuilt by the caller)."""
    try:
        return faiss.read_index(str(path))
    except Exception as exc:  # faiss raises RuntimeError on a truncated or foreign file
        log.info("HNSW index %s unreadable (%s); rebuilding it", path, exc)
        return None


def _write_hnsw(faiss: Any, hnsw: Any, path: Path, generation: int | None) -> None:
    """Save the graph by rename, so a concurrent reader never loads half a file (best effort)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        faiss.write_index(hnsw, str(tmp))
        os.replace(tmp, path)
        _write_state(path, generation)
    except (OSError, RuntimeError) as exc:
        log.warning("could not save the HNSW index to %s: %s", path, exc)
    finally:
        tmp.unlink(missing_ok=True)


def _state(path: Path) -> int | None:
    try:
        return int(json.loads(path.with_suffix(".json").read_text())["generation"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _write_state(path: Path, generation: int | None) -> None:
    state = path.with_suffix(".json")
    tmp = state.with_name(f".{state.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps({"generation": generation}))
    os.replace(tmp, state)
