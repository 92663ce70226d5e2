"""Plain text (``.txt``, ``.text``, ``.log``) and reStructuredText (``.rst``).

Paragraphs are separated by blank lines. In ``.rst`` files, underlined (and over-and-underlined)
section titles become headings; their levels follow the order in which each style first appears,
as in docutils.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import ClassVar

from ...types import Document
from ..decode import read_text
from ..seams import BaseLoader, DocumentBuilder

_BLANK_LINES = re.compile(r"\n[ \t]*\n")
_ADORNMENT = re.compile(r"^([=\-`:'\"~^_*+#<>.])\1{2,}\s*$")


class TextLoader(BaseLoader):
    """Loads plain text as paragraphs; ``.rst`` section titles become headings."""

    extensions: ClassVar[tuple[str, ...]] = (".txt", ".text", ".rst", ".log")
    format: ClassVar[str] = "text"

    def load(self, path: Path, doc_id: str) -> list[Document]:
        text = read_text(path)
        builder = DocumentBuilder()
        styles: list[str] = []
        rst = path.suffix.lower() == ".rst"
        for para in split_paragraphs(text):
            if not (rst and _rst_section(builder, para, styles)):
                builder.paragraph(para)
        return [builder.build(doc_id, str(path))]


def split_paragraphs(text: str) -> list[str]:
    """The blank-line separated paragraphs of ``text`` (stripped, empty ones dropped)."""
    return [p.strip() for p in _BLANK_LINES.split(text) if p.strip()]


def _rst_section(builder: DocumentBuilder, para: str, styles: list[str]) -> bool:
    """Add ``para`` as a heading (plus any body after it) if it opens with an rst title."""
    lines = para.split("\n")
    overline = len(lines) >= 3 and _is_adornment(lines[0]) and _is_adornment(lines[2])
    if overline:
        title, style, rest = lines[1], "over" + lines[0][0], lines[3:]
    elif len(lines) >= 2 and _is_adornment(lines[1]) and not _is_adornment(lines[0]):
        title, style, rest = lines[0], lines[1][0], lines[2:]
    else:
        return False
    if style not in styles:
        styles.append(style)
    builder.heading(title, styles.index(style) + 1)
    if rest:
        builder.paragraph("\n".join(rest))
    return True


def _is_adornment(line: str) -> bool:
    return bool(_ADORNMENT.match(line))
