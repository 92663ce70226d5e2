"""The e5 SentencePiece vocabulary as a memory-mapped hash table (``e5/pieces.bin``), so a fresh
process tokenises its first query without building SentencePiece's trie of 250,000 pieces
(~0.45 s of the first hybrid search; RESULTS §37).

:meth:`PieceTable.encode` is SentencePiece's unigram encoding for this model (identity normaliser,
a ``▁`` dummy prefix, spaces escaped as ``▁``; the best-scoring segmentation, scores summed in
float32, ties going to the earliest start as in ``EncodeOptimized``). A text with a character that
has no piece of its own (SentencePiece would emit ``<unk>`` there) is not encoded (``None``): the
caller asks SentencePiece. ``tests/test_e5_pieces.py`` checks the ids equal SentencePiece's.

File layout (little-endian): ``MAGIC``; uint32 buckets, pieces, longest piece in characters,
blob bytes; the 32 bytes of the SHA-256 of the ``tokenizer.model`` it was made from; then
uint32 ``starts[buckets + 1]`` (entries of bucket b: ``starts[b]:starts[b + 1]``, bucket =
``crc32(piece UTF-8) % buckets``), uint32 ``offsets[pieces + 1]`` (into the blob), uint32
``ids[pieces]``, float32 ``scores[pieces]``, the blob of the pieces' UTF-8.
"""

from __future__ import annotations

import hashlib
import mmap
import struct
import sys
import zlib
from pathlib import Path
from typing import Any

import numpy as np

MAGIC = b"DRPIECE1"
_HEADER = struct.Struct("<8s4I32s")
_F32 = struct.Struct("<f")


def tokenizer_digest(path: Path) -> bytes:
    """The SHA-256 of a ``tokenizer.model`` file."""
    return hashlib.sha256(path.read_bytes()).digest()


def write_table(processor: Any, source: Path, out: Path, buckets: int = 1 << 19) -> None:
    """Write the table of ``processor``'s (a loaded ``SentencePieceProcessor`` of ``source``)
    normal pieces to ``out``; control, unknown and unused pieces never match text and are left out."""
    entries = [(processor.id_to_piece(i).encode("utf-8"), i, processor.get_score(i))
               for i in range(processor.get_piece_size())
               if not (processor.is_control(i) or processor.is_unknown(i) or processor.is_unused(i))]
    entries.sort(key=lambda e: (zlib.crc32(e[0]) % buckets, e[1]))
    counts = np.bincount([zlib.crc32(e[0]) % buckets for e in entries], minlength=buckets)
    starts = np.concatenate([[0], np.cumsum(counts)]).astype("<u4")
    offsets = np.concatenate([[0], np.cumsum([len(e[0]) for e in entries])]).astype("<u4")
    blob = b"".join(e[0] for e in entries)
    longest = max(len(e[0].decode("utf-8")) for e in entries)
    header = _HEADER.pack(MAGIC, buckets, len(entries), longest, len(blob), tokenizer_digest(source))
    out.write_bytes(header + starts.tobytes() + offsets.tobytes() + np.array([e[1] for e in entries], "<u4").tobytes()
                    + np.array([e[2] for e in entries], "<f4").tobytes() + blob)


class PieceTable:
    """The table in ``path``, memory-mapped; ``ValueError`` if it is damaged or was made from
    another ``tokenizer.model`` than the one whose SHA-256 is ``digest``."""

    def __init__(self, path: Path, digest: bytes) -> None:
        if sys.byteorder != "little":  # pragma: no cover - the file is little-endian
            raise ValueError("the piece table is read on little-endian machines only")
        with path.open("rb") as f:
            self._map = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        view = memoryview(self._map)
        if len(view) < _HEADER.size:
            raise ValueError(f"{path} is truncated")
        magic, buckets, count, longest, blob, source = _HEADER.unpack_from(view)
        size = _HEADER.size + 4 * (buckets + 1) + 4 * (count + 1) + 8 * count + blob
        if magic != MAGIC or len(view) != size:
            raise ValueError(f"{path} is not a piece table of this version")
        if source != digest:
            raise ValueError(f"{path} was made from another tokenizer.model")
        at = _HEADER.size
        self._starts = view[at:at + 4 * (buckets + 1)].cast("I")
        at += 4 * (buckets + 1)
        self._offsets = view[at:at + 4 * (count + 1)].cast("I")
        at += 4 * (count + 1)
        self._ids = view[at:at + 4 * count].cast("I")
        at += 4 * count
        self._scores = view[at:at + 4 * count].cast("f")
        self._blob = view[at + 4 * count:]
        self._buckets, self.longest = buckets, longest

    def lookup(self, piece: str) -> tuple[int, float] | None:
        """The id and score of ``piece``, ``None`` if it is not a normal piece."""
        key = piece.encode("utf-8")
        bucket = zlib.crc32(key) % self._buckets
        offsets, blob = self._offsets, self._blob
        for entry in range(self._starts[bucket], self._starts[bucket + 1]):
            start, end = offsets[entry], offsets[entry + 1]
            if end - start == len(key) and blob[start:end] == key:
                return self._ids[entry], self._scores[entry]
        return None

    def encode(self, text: str) -> list[int] | None:
        """SentencePiece's ids for ``text``, or ``None`` where it would need ``<unk>``."""
        if not text:
            return []
        normalized = "\u2581" + text.replace(" ", "\u2581")
        n = len(normalized)
        best = [0.0] * (n + 1)
        came_from = [-1] * (n + 1)
        piece_id = [0] * (n + 1)
        for start in range(n):
            if start and came_from[start] < 0:
                return None  # unreachable: the previous character has no piece
            here = best[start]
            single = False
            for end in range(start + 1, min(n, start + self.longest) + 1):
                hit = self.lookup(normalized[start:end])
                if hit is None:
                    continue
                single = single or end == start + 1
                # float32 addition, as SentencePiece sums its path scores
                score = _F32.unpack(_F32.pack(hit[1] + here))[0]
                if came_from[end] < 0 or score > best[end]:
                    best[end], came_from[end], piece_id[end] = score, start, hit[0]
            if not single:
                return None  # SentencePiece would emit <unk> for this character
        ids: list[int] = []
        at = n
        while at > 0:
            ids.append(piece_id[at])
            at = came_from[at]
        ids.reverse()
        return ids
