"""What the bundled ONNX embedders share: CPU sessions, and texts run one at a time, several
concurrently, so a text's vector never depends on the rest of its batch."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from ..errors import EmbeddingError
from .bundled import usable_cpus

if TYPE_CHECKING:  # pragma: no cover
    from onnxruntime import InferenceSession

T = TypeVar("T")
R = TypeVar("R")


def open_session(ort: Any, path: Path, shipped: bool, threads: int | None = None) -> InferenceSession:
    """An onnxruntime CPU session over ``threads`` (default: all usable CPUs) whose idle threads sleep.

    ``shipped``: the file came inside this package (a failure means a damaged install) rather
    than from a cache the user can delete.
    """
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = threads or usable_cpus()
    options.inter_op_num_threads = 1
    # Idle threads sleep instead of spinning: queries embed one at a time between NumPy/BLAS
    # searches, and spinning threads starve those of the cores (benchmarks/RESULTS.md §9).
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 3  # errors only
    try:
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # a corrupt or foreign file
        raise EmbeddingError(
            f"onnxruntime cannot load {path}: {exc}. "
            + ("Reinstall domainrag: the file shipped with it is damaged." if shipped else
               "Delete the file (and the .json beside it) to export it again.")
        ) from exc


class Sessions:
    """Two sessions over one model file: ``single`` (all CPUs) for a text alone — a query — and
    ``batch`` (one thread each, opened on first use) for texts run concurrently. onnxruntime
    releases the GIL while it runs, and one text's small matrices leave a session's other intra-op
    threads mostly waiting: one text at a time kept ~1.3 of 2 cores busy, two at a time on
    all-CPU sessions oversubscribed them; two at a time on one-thread sessions embedded 1.22x as
    many passages per second (RESULTS §30). The vectors are the same bits either way (tests)."""

    def __init__(self, ort: Any, path: Path, shipped: bool) -> None:
        self._ort, self._path, self._shipped = ort, path, shipped
        self.single = open_session(ort, path, shipped)
        self._batch: InferenceSession | None = None
        self._lock = threading.Lock()

    @property
    def batch(self) -> InferenceSession:
        with self._lock:
            if self._batch is None:
                self._batch = open_session(self._ort, self._path, self._shipped, threads=1)
            return self._batch

    def run_each(self, items: Sequence[T], run: Callable[[InferenceSession, T], R]) -> list[R]:
        """``[run(session, item) for item in items]``, as many at a time as there are usable CPUs."""
        workers = usable_cpus()
        if len(items) < 2 or workers < 2:
            return [run(self.single, item) for item in items]
        session = self.batch
        with ThreadPoolExecutor(min(workers, len(items)), thread_name_prefix="onnx-embed") as pool:
            return list(pool.map(lambda item: run(session, item), items))
