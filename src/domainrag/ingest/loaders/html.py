"""HTML (``.html``, ``.htm``) via BeautifulSoup with the lxml parser.

Page furniture (scripts, styles, navigation, headers, footers, asides, forms) is dropped and
``<main>`` (or the ``<article>`` elements) is preferred when present. ``h1``-``h6`` become
headings; paragraphs, list items, preformatted text and quotes become blocks; table rows become
one block each. Text that sits directly in a ``<div>`` is kept as paragraphs.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from bs4 import BeautifulSoup
from bs4.element import Comment, Doctype, NavigableString, ProcessingInstruction, Tag

from ...types import Document
from ..decode import read_text
from ..seams import BaseLoader, DocumentBuilder

JUNK_TAGS = (
    "script", "style", "nav", "header", "footer", "aside", "form", "noscript",
    "template", "iframe", "svg", "button", "select", "head",
)  # fmt: skip
HEADINGS = {f"h{level}": level for level in range(1, 7)}
BLOCK_TAGS = frozenset(
    {
        "address", "article", "aside", "blockquote", "body", "caption", "dd", "details", "dialog",
        "div", "dl", "dt", "fieldset", "figcaption", "figure", "hgroup", "hr", "html", "li",
        "main", "ol", "p", "pre", "section", "summary", "table", "ul", *HEADINGS,
    }
)  # fmt: skip
_SKIPPED_STRINGS = (Comment, Doctype, ProcessingInstruction)


class HtmlLoader(BaseLoader):
    """Loads the main content of an HTML page as headings, paragraphs, list items and rows."""

    extensions: ClassVar[tuple[str, ...]] = (".html", ".htm")
    format: ClassVar[str] = "html"

    def load(self, path: Path, doc_id: str) -> list[Document]:
        soup = BeautifulSoup(read_text(path), "lxml")
        title = page_title(soup)
        metadata = {"lang": soup.html.get("lang", "")} if soup.html else {}
        _drop_junk(soup)
        walker = _Walker()
        for root in content_roots(soup):
            walker.walk(root)
        meta = {k: v for k, v in metadata.items() if isinstance(v, str) and v}
        return [walker.builder.build(doc_id, str(path), title=title, metadata=meta)]


def page_title(soup: BeautifulSoup) -> str:
    """The text of ``<title>``, whitespace collapsed ("" when absent)."""
    tag = soup.find("title")
    return " ".join(tag.get_text().split()) if tag else ""


def content_roots(soup: BeautifulSoup) -> list[Tag]:
    """``<main>`` (or ``role="main"``) if present, else the ``<article>``s, else the body."""
    main = soup.find("main") or soup.find(True, attrs={"role": "main"})
    if isinstance(main, Tag):
        return [main]
    articles = [a for a in soup.find_all("article") if a.find_parent("article") is None]
    if articles:
        return articles
    return [soup.body or soup]


def _drop_junk(soup: BeautifulSoup) -> None:
    """Remove page furniture; an article's own ``<header>`` (its title) is kept."""
    for tag in soup.find_all(JUNK_TAGS):
        if tag.decomposed:
            continue
        if tag.name == "header" and tag.find_parent(["article", "main"]) is not None:
            continue
        tag.decompose()
    for tag in soup.find_all(True, attrs={"hidden": True}):
        tag.decompose()
    for br in soup.find_all("br"):
        br.replace_with("\n")


def _text(tag: Tag | NavigableString) -> str:
    return " ".join(tag.get_text().split())


class _Walker:
    """Walks elements in document order, emitting blocks into a :class:`DocumentBuilder`."""

    def __init__(self) -> None:
        self.builder = DocumentBuilder()

    def walk(self, element: Tag, in_item: bool = False) -> None:
        pending: list[str] = []
        for child in element.children:
            if isinstance(child, _SKIPPED_STRINGS):
                continue
            if isinstance(child, Tag) and child.name in BLOCK_TAGS:
                self._flush(pending, in_item)
                self._block(child, in_item)
            else:
                pending.append(child.get_text())
        self._flush(pending, in_item)

    def _flush(self, pending: list[str], in_item: bool) -> None:
        text = " ".join("".join(pending).split())
        pending.clear()
        if in_item:
            self.builder.list_item(text)
        else:
            self.builder.paragraph(text)

    def _block(self, tag: Tag, in_item: bool) -> None:
        if tag.name in HEADINGS:
            self.builder.heading(_text(tag), HEADINGS[tag.name])
        elif tag.name == "pre":
            self.builder.code(tag.get_text())
        elif tag.name == "table":
            self._table(tag)
        elif tag.name == "li":
            self.walk(tag, in_item=True)
        elif tag.name in ("ul", "ol", "dl"):
            self.walk(tag, in_item)
            self.builder.separate()
        else:
            self.walk(tag, in_item)

    def _table(self, table: Tag) -> None:
        caption = table.find("caption")
        if caption is not None:
            self.builder.paragraph(_text(caption))
        for row in table.find_all("tr"):
            if row.find_parent("table") is table:
                cells = row.find_all(["th", "td"], recursive=False)
                self.builder.table_row([_text(cell) for cell in cells])
        self.builder.separate()


def add_html(builder: DocumentBuilder, markup: str) -> str:
    """The main content of the HTML ``markup`` added to ``builder`` as :class:`HtmlLoader` reads a
    page (an e-mail's HTML body uses it); returns the page title ("" when none)."""
    soup = BeautifulSoup(markup, "lxml")
    title = page_title(soup)
    _drop_junk(soup)
    walker = _Walker()
    walker.builder = builder
    for root in content_roots(soup):
        walker.walk(root)
    return title
