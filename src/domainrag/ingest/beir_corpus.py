"""BEIR corpus import: ``DIR/corpus.jsonl``, one document per entry.

The entry's ``_id`` is the document id; its content is the ``title`` (as a heading) followed by
the ``text``. Paragraphs are blank-line separated; a paragraph whose lines all contain `` | ``
is a table, one row per line. Other scalar fields become document metadata, and so does ``acl``
(the entry's access groups: a list or a comma-separated string).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..acl import ACL_FIELD
from ..errors import ConfigError, LoaderError
from ..types import Document
from .discover import display_path
from .seams import DocumentBuilder, clean_document, clean_text
from .sources import SourceItem, sha256_bytes


def corpus_path(directory: Path) -> Path:
    path = directory / "corpus.jsonl" if directory.is_dir() else directory
    if not path.is_file():
        raise ConfigError(
            f"{directory} is not a BEIR folder: expected {directory / 'corpus.jsonl'} "
            "(with queries.jsonl and qrels/<split>.tsv beside it)"
        )
    return path


def beir_sources(directory: Path) -> Iterator[SourceItem]:
    """One lazily loaded source per corpus line; the source key is ``<corpus path>#<_id>``."""
    path = corpus_path(directory).resolve()
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            if raw.strip():
                yield _item(path, number, raw)


def _item(path: Path, number: int, raw: bytes) -> SourceItem:
    try:
        record = json.loads(raw)
        doc_id = clean_text(str(record["_id"]))
    except (ValueError, KeyError, TypeError) as exc:
        return _broken(path, number, raw, f"line {number} is not a JSON object with an '_id': {exc}")
    return SourceItem(
        source=f"{display_path(str(path))}#{doc_id}",
        label=doc_id,
        size=len(raw),
        mtime_ns=0,
        fingerprint=lambda: sha256_bytes(raw),
        load=lambda: [beir_document(record, display_path(str(path)))],
    )


def _broken(path: Path, number: int, raw: bytes, reason: str) -> SourceItem:
    def fail() -> list[Document]:
        raise LoaderError(f"{path}: {reason}")

    source = f"{display_path(str(path))}#line{number}"
    return SourceItem(source, f"line {number}", len(raw), 0, lambda: sha256_bytes(raw), fail)


def beir_document(record: dict[str, Any], source: str) -> Document:
    builder = DocumentBuilder()
    title = str(record.get("title") or "").strip()
    if title:
        builder.heading(title, 1)
    for paragraph in str(record.get("text") or "").split("\n\n"):
        lines = [line for line in paragraph.split("\n") if line.strip()]
        if len(lines) > 1 and all(" | " in line for line in lines):
            for line in lines:
                builder.table_row([cell.strip() for cell in line.split(" | ")])
        else:
            builder.paragraph(paragraph)
    if builder.empty:
        raise LoaderError(f"corpus entry {record.get('_id')!r} has no title or text")
    metadata = {k: v for k, v in record.items() if k not in ("_id", "text") and (_scalar(v) or k == ACL_FIELD)}
    return clean_document(builder.build(str(record["_id"]), source, title=title, metadata=metadata))


def _scalar(value: Any) -> bool:
    return isinstance(value, (str, int, float, bool))
