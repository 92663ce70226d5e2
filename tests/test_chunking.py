from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from domainrag.config import ChunkingConfig
from domainrag.ingest.chunking import StructureChunker
from domainrag.ingest.seams import DocumentBuilder
from domainrag.text import count_tokens, sentence_spans
from domainrag.types import Document

WORDS = st.sampled_from(["alpha", "beta", "gamma", "dose", "risk", "法律", "合同", "3.5", "Dr.", "e.g."])
SENTENCE = st.lists(WORDS, min_size=1, max_size=30).map(lambda ws: " ".join(ws) + st_end(ws))


def st_end(words: list[str]) -> str:
    return "。" if any("\u4e00" <= w[0] <= "\u9fff" for w in words) else "."


BLOCK = st.one_of(
    st.tuples(st.just("heading"), st.lists(WORDS, min_size=1, max_size=4).map(" ".join), st.integers(1, 3)),
    st.tuples(st.just("paragraph"), st.lists(SENTENCE, min_size=1, max_size=12).map(" ".join), st.just(0)),
    st.tuples(st.just("row"), st.lists(WORDS, min_size=1, max_size=5).map(" | ".join), st.just(0)),
)


def build(blocks: list[tuple[str, str, int]]) -> Document:
    b = DocumentBuilder()
    for kind, text, level in blocks:
        if kind == "heading":
            b.heading(text, level)
        elif kind == "row":
            b.table_row(text.split(" | "))
        else:
            b.paragraph(text)
    return b.build("doc", "mem")


@settings(max_examples=150, deadline=None)
@given(st.lists(BLOCK, min_size=1, max_size=25), st.integers(16, 120), st.integers(0, 15))
def test_chunk_spans_slice_the_document(blocks, target, overlap) -> None:
    doc = build(blocks)
    chunks = StructureChunker(ChunkingConfig(target_tokens=target, overlap_tokens=overlap)).split(doc)
    for chunk in chunks:
        assert doc.text[chunk.span.start : chunk.span.end] == chunk.text
        assert chunk.text.strip() == chunk.text and chunk.text
    # every non-heading block is covered by some chunk
    for block in doc.blocks:
        assert any(c.span.start <= block.start and block.end <= c.span.end for c in chunks) or (
            count_tokens(doc.text[block.start : block.end]) > target
        )
    starts = [c.span.start for c in chunks]
    assert starts == sorted(starts) and len(set(c.id for c in chunks)) == len(chunks)


def test_table_rows_are_never_cut() -> None:
    b = DocumentBuilder()
    b.heading("Revenue", 1)
    rows = [[f"item {i}", f"{i * 1.5:.1f}", f"{i * 2}"] for i in range(60)]
    for row in rows:
        b.table_row(row)
    doc = b.build("t", "mem")
    chunks = StructureChunker(ChunkingConfig(target_tokens=40, overlap_tokens=0)).split(doc)
    assert len(chunks) > 3
    for chunk in chunks:
        for line in chunk.text.split("\n"):
            if "|" in line:
                assert line.count("|") == 2, line  # whole rows only


def test_sentences_are_not_cut_and_heading_path_is_kept() -> None:
    b = DocumentBuilder()
    b.heading("Guide", 1)
    b.heading("Dosage", 2)
    text = " ".join(f"Sentence number {i} says something about the dose." for i in range(40))
    b.paragraph(text)
    doc = b.build("g", "mem")
    chunks = StructureChunker(ChunkingConfig(target_tokens=50, overlap_tokens=10)).split(doc)
    for chunk in chunks:
        assert chunk.heading_path[:2] == ("Guide", "Dosage")
        assert chunk.text.endswith(".")
        assert chunk.text.startswith(("Sentence", "Guide"))
    # consecutive chunks overlap
    assert any(a.span.end > b.span.start for a, b in zip(chunks, chunks[1:], strict=False))


def test_chinese_sentences_split_without_spaces() -> None:
    text = "第一条规定了合同的效力。第二条规定了违约责任！第三条呢？"
    pieces = [text[s:e] for s, e in sentence_spans(text)]
    assert pieces == ["第一条规定了合同的效力。", "第二条规定了违约责任！", "第三条呢？"]


def test_over_long_sentence_is_cut_at_token_boundaries() -> None:
    doc = build([("paragraph", " ".join(["word"] * 500), 0)])
    chunks = StructureChunker(ChunkingConfig(target_tokens=100, overlap_tokens=0)).split(doc)
    assert all(count_tokens(c.text) <= 100 for c in chunks)
    assert sum(count_tokens(c.text) for c in chunks) == 500


LONG_RUNS = st.lists(
    st.one_of(WORDS, st.integers(1, 3000).map(lambda n: "x" * n), st.sampled_from([" ", "\n\n", ". ", "   "])),
    min_size=1, max_size=40,
).map("".join)


@settings(max_examples=100, deadline=None)
@given(LONG_RUNS, st.integers(16, 64), st.integers(64, 600))
def test_no_chunk_exceeds_max_chars_even_for_giant_tokens(text, target, max_chars) -> None:
    b = DocumentBuilder()
    for para in text.split("\n\n"):
        b.paragraph(para)
    doc = b.build("doc", "mem")
    chunker = StructureChunker(ChunkingConfig(target_tokens=target, overlap_tokens=4), max_chars=max_chars)
    chunks = chunker.split(doc)
    for chunk in chunks:
        assert doc.text[chunk.span.start : chunk.span.end] == chunk.text
        assert chunk.text.strip() == chunk.text and chunk.text
        assert len(chunk.text) <= max_chars
    covered = {i for c in chunks for i in range(c.span.start, c.span.end)}
    assert all(i in covered for i, ch in enumerate(doc.text) if not ch.isspace())
