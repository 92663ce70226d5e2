"""Bytes to text for the text-based loaders: UTF-8 first, then charset-normalizer's best guess.

Line endings are normalised to ``\\n`` and a byte-order mark is dropped, so spans computed on
the decoded text are stable across platforms.
"""

from __future__ import annotations

import codecs
from pathlib import Path
from typing import Any

from ..errors import LoaderError

_SNIFF_BYTES = 8192
_MAX_CONTROL_RATIO = 0.1
_CP1252_CHAOS_MARGIN = 0.1
_CP1252_COHERENCE_MARGIN = 0.05
# Control bytes found in real text: tab, newline, vertical tab, form feed, return, escape.
_TEXT_CONTROLS = frozenset(b"\t\n\x0b\x0c\r\x1b")
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)


def read_text(path: Path) -> str:
    """The text of ``path``; raises :class:`LoaderError` for empty, binary or undecodable files."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise LoaderError(f"cannot read file: {exc.strerror or exc}") from exc
    return decode_bytes(data)


def decode_bytes(data: bytes) -> str:
    """Decode ``data`` (see :func:`read_text`)."""
    if not data:
        raise LoaderError("empty file (0 bytes); remove it or fill it")
    text = _decode_with_bom(data)
    if text is None:
        if looks_binary(data[:_SNIFF_BYTES]):
            raise LoaderError(
                "binary content, not text; check the file extension or exclude the file"
            )
        text = _decode_guess(data)
    return text.lstrip("\ufeff").replace("\r\n", "\n").replace("\r", "\n")


def looks_binary(sample: bytes) -> bool:
    """True when ``sample`` holds NUL bytes or too many control characters to be text."""
    if b"\x00" in sample:
        return True
    controls = sum(
        1 for byte in sample if (byte < 32 or byte == 127) and byte not in _TEXT_CONTROLS
    )
    return controls > _MAX_CONTROL_RATIO * len(sample)


def _decode_with_bom(data: bytes) -> str | None:
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            try:
                return data.decode(encoding)
            except UnicodeDecodeError as exc:
                raise LoaderError(
                    f"invalid {encoding} text after its byte-order mark: {exc}"
                ) from exc
    return None


def _decode_guess(data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    from charset_normalizer import from_bytes

    matches = list(from_bytes(data))
    if not matches:
        raise LoaderError(
            "cannot detect the text encoding; convert the file to UTF-8 "
            "(e.g. iconv -f OLD_ENCODING -t UTF-8)"
        )
    return str(_prefer_cp1252(matches))


def _prefer_cp1252(matches: list[Any]) -> Any:
    """charset-normalizer's best match, unless Windows-1252 fits about as well.

    On short Western European text the detector often ranks a rare Baltic or Central European
    code page first; Windows-1252 is far more common, so it wins a near tie.
    """
    best = matches[0]
    for match in matches:
        if match.encoding == "cp1252" and match is not best:
            near = match.chaos <= best.chaos + _CP1252_CHAOS_MARGIN
            if near and match.coherence >= best.coherence - _CP1252_COHERENCE_MARGIN:
                return match
    return best
