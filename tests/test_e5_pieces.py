"""The default embedder tokenises queries from its memory-mapped piece table (``e5/pieces.bin``)
instead of loading SentencePiece (cold start, issue 24): the same ids as SentencePiece, so the
same query vectors, and SentencePiece is still what reads passages and the rare query the table
cannot."""

from __future__ import annotations

import random
import shutil
from pathlib import Path

import numpy as np
import pytest

from domainrag.models import e5_onnx
from domainrag.models.e5_onnx import E5_DIR, E5OnnxEmbedder
from domainrag.models.e5_pieces import PieceTable, tokenizer_digest, write_table
from domainrag.models.embedding import normalize
from domainrag.text import sentence_spans

pytest.importorskip("onnxruntime")
spm = pytest.importorskip("sentencepiece")

SAMPLE = Path(e5_onnx.__file__).resolve().parent.parent / "data" / "sample"
QUERIES = [
    "metformin dose for kidney disease", "What medication is used to treat hypothyroidism?",
    "无固定期限劳动合同", "劳动者在用人单位连续工作满十年的", "revenue increase 2019 (FinTech & Business Services)",
    "Müller's café: naïve résumé", "emoji 😀 and symbols ©®™ ½ → ≥", "  leading and trailing  ", "a", "",
    "e-mail: someone@example.com, URL https://example.org/a?b=c#d", "東京都の人口は？", "서울의 인구",
    "ПРИВЕТ мир", "مرحبا بالعالم", "tab\tand\nnewline", "DNA 🧬 helix", "rare 𪛖 character",
]
#: A character with no piece of its own (SentencePiece reads it as <unk>): the table declines.
NO_PIECE = "🧬"


@pytest.fixture(scope="module")
def processor() -> object:
    return spm.SentencePieceProcessor(model_file=str(E5_DIR / "tokenizer.model"))


@pytest.fixture(scope="module")
def e5() -> E5OnnxEmbedder:
    return E5OnnxEmbedder()


def _texts() -> list[str]:
    """Queries, the bundled sample's sentences, and random strings of pieces and characters."""
    texts = list(QUERIES)
    for path in sorted(SAMPLE.rglob("*")):
        if path.suffix in {".md", ".txt"}:
            text = path.read_text(encoding="utf-8")
            texts += [text[s:e][:300] for s, e in sentence_spans(text)][:40]
    rng = random.Random(5)
    alphabet = "abcdefghijklmnopqrstuvwxyz ABC0123456789.,;:!?-'\"()[]/中文字符测试的了在是"
    texts += ["".join(rng.choice(alphabet) for _ in range(rng.randint(1, 60))) for _ in range(300)]
    return texts


def test_the_table_gives_sentencepieces_ids(e5: E5OnnxEmbedder, processor: object) -> None:
    table = PieceTable(E5_DIR / "pieces.bin", tokenizer_digest(E5_DIR / "tokenizer.model"))
    encoded = 0
    for text in _texts():
        for prefix in ("query: ", "passage: "):
            prepared = e5_onnx._SPACES.sub(" ", (prefix + text).translate(e5._chars))
            ids = table.encode(prepared)
            if ids is not None:
                encoded += 1
                assert ids == processor.encode(prepared), prepared  # type: ignore[attr-defined]
    assert encoded >= 0.95 * 2 * len(_texts())  # nearly every text is the table's, not SentencePiece's
    assert table.encode(f"x{NO_PIECE}y") is None


def test_a_query_embeds_to_sentencepieces_vector_without_loading_it(processor: object) -> None:
    cold = E5OnnxEmbedder()
    vectors = cold.embed_query_batch(QUERIES[:6])
    assert cold._tokenizer is None  # SentencePiece not loaded
    bos, eos = cold._specials
    for query, vector in zip(QUERIES[:6], vectors, strict=True):
        prepared = e5_onnx._SPACES.sub(" ", ("query: " + query).translate(cold._chars))
        ids = [bos, *processor.encode(prepared)[: cold.max_length - 2], eos]  # type: ignore[attr-defined]
        expected = normalize(np.vstack(cold.sessions.run_each([ids], cold._pooled)))[0]
        assert np.array_equal(vector, expected)
    cold.embed_query(f"DNA {NO_PIECE}")  # a query the table cannot read loads SentencePiece
    assert cold._tokenizer is not None


def test_a_table_of_another_tokenizer_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                 processor: object) -> None:
    from domainrag.errors import EmbeddingError

    other = tmp_path / "other.model"
    other.write_bytes((E5_DIR / "tokenizer.model").read_bytes() + b"\0")
    write_table(processor, other, tmp_path / "pieces.bin")
    with pytest.raises(ValueError, match="another tokenizer.model"):
        PieceTable(tmp_path / "pieces.bin", tokenizer_digest(E5_DIR / "tokenizer.model"))
    damaged = tmp_path / "e5"
    shutil.copytree(E5_DIR, damaged)
    shutil.copy(tmp_path / "pieces.bin", damaged / "pieces.bin")
    monkeypatch.setattr(e5_onnx, "E5_DIR", damaged)
    with pytest.raises(EmbeddingError, match="reinstall domainrag"):
        E5OnnxEmbedder()


def test_the_shipped_table_is_what_the_tool_writes(tmp_path: Path, processor: object) -> None:
    write_table(processor, E5_DIR / "tokenizer.model", tmp_path / "pieces.bin")
    assert (tmp_path / "pieces.bin").read_bytes() == (E5_DIR / "pieces.bin").read_bytes()
