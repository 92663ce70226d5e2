"""Markdown (``.md``, ``.markdown``) via markdown-it-py's token stream.

Headings keep their level; paragraphs, list items, code blocks and table rows become blocks;
inline markup is reduced to its text (link text, image alt text, inline code). YAML front
matter is read for ``title`` and other ``key: value`` lines, which go to the metadata.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

from markdown_it import MarkdownIt
from markdown_it.token import Token

from ...types import Document
from ..decode import read_text
from ..seams import BaseLoader, DocumentBuilder

_FRONT_MATTER = re.compile(r"\A---[ \t]*\n(.*?)\n(?:---|\.\.\.)[ \t]*(?:\n|\Z)", re.DOTALL)
_FRONT_KEY = re.compile(r"^([A-Za-z_][\w-]*)\s*:\s*(.*?)\s*$")
_FRONT_ITEM = re.compile(r"^\s*-\s+(.+?)\s*$")
_TAG = re.compile(r"<[^>]*>|<!--.*?-->", re.DOTALL)


class MarkdownLoader(BaseLoader):
    """Loads Markdown into headings, paragraphs, list items, code blocks and table rows."""

    extensions: ClassVar[tuple[str, ...]] = (".md", ".markdown")
    format: ClassVar[str] = "markdown"

    def load(self, path: Path, doc_id: str) -> list[Document]:
        meta, body = front_matter(read_text(path))
        tokens = MarkdownIt("commonmark").enable("table").parse(body)
        builder = _TokenWalker(tokens).walk()
        title = str(meta.pop("title", ""))
        return [builder.build(doc_id, str(path), title=title, metadata=meta)]


def front_matter(text: str) -> tuple[dict[str, Any], str]:
    """Split simple YAML front matter from the Markdown body: ``key: value`` lines, and
    ``key:`` followed by ``- item`` lines (a list)."""
    match = _FRONT_MATTER.match(text)
    if not match:
        return {}, text
    meta: dict[str, Any] = {}
    listing: list[str] | None = None
    for line in match.group(1).split("\n"):
        item = _FRONT_ITEM.match(line)
        if item and listing is not None:
            listing.append(item.group(1).strip("\"'"))
            continue
        key_value = _FRONT_KEY.match(line)
        listing = None
        if key_value and key_value.group(2):
            meta[key_value.group(1)] = key_value.group(2).strip("\"'")
        elif key_value:
            listing = meta[key_value.group(1)] = []
    return {k: v for k, v in meta.items() if v != []}, text[match.end() :]


def inline_text(token: Token) -> str:
    """Plain text of an ``inline`` token: markup dropped, link text and image alt text kept."""
    parts: list[str] = []
    for child in token.children or []:
        if child.type in ("text", "code_inline"):
            parts.append(child.content)
        elif child.type in ("softbreak", "hardbreak"):
            parts.append("\n")
        elif child.type == "image":
            parts.append(inline_text(child))
    return "".join(parts)


class _TokenWalker:
    """Feeds a markdown-it token stream into a :class:`DocumentBuilder`."""

    def __init__(self, tokens: list[Token]) -> None:
        self.tokens = tokens
        self.builder = DocumentBuilder()
        self.list_depth = 0
        self.item_prefix = ""
        self.row: list[str] | None = None
        self.handlers: dict[str, Callable[[int], None]] = {
            "heading_open": self._heading,
            "paragraph_open": self._paragraph,
            "bullet_list_open": self._list_open,
            "ordered_list_open": self._list_open,
            "bullet_list_close": self._list_close,
            "ordered_list_close": self._list_close,
            "list_item_open": self._item_open,
            "fence": self._code,
            "code_block": self._code,
            "html_block": self._html,
            "tr_open": self._row_open,
            "th_open": self._cell,
            "td_open": self._cell,
            "tr_close": self._row_close,
            "table_close": lambda i: self.builder.separate(),
        }

    def walk(self) -> DocumentBuilder:
        for i, token in enumerate(self.tokens):
            handler = self.handlers.get(token.type)
            if handler:
                handler(i)
        return self.builder

    def _inline_after(self, i: int) -> str:
        nxt = self.tokens[i + 1] if i + 1 < len(self.tokens) else None
        return inline_text(nxt) if nxt is not None and nxt.type == "inline" else ""

    def _heading(self, i: int) -> None:
        self.builder.heading(self._inline_after(i), int(self.tokens[i].tag[1:]))

    def _paragraph(self, i: int) -> None:
        text = self._inline_after(i)
        if self.list_depth:
            self.builder.list_item(self.item_prefix + text)
            self.item_prefix = ""
        else:
            self.builder.paragraph(text)

    def _list_open(self, i: int) -> None:
        self.list_depth += 1

    def _list_close(self, i: int) -> None:
        self.list_depth -= 1
        if not self.list_depth:
            self.builder.separate()

    def _item_open(self, i: int) -> None:
        token = self.tokens[i]
        self.item_prefix = f"{token.info}{token.markup} " if token.info else ""

    def _code(self, i: int) -> None:
        self.builder.code(self.tokens[i].content)

    def _html(self, i: int) -> None:
        self.builder.paragraph(" ".join(_TAG.sub(" ", self.tokens[i].content).split()))

    def _row_open(self, i: int) -> None:
        self.row = []

    def _cell(self, i: int) -> None:
        if self.row is not None:
            self.row.append(self._inline_after(i))

    def _row_close(self, i: int) -> None:
        if self.row:
            self.builder.table_row(self.row)
        self.row = None
