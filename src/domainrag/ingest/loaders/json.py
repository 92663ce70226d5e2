"""JSON records (``.json`` array or object, ``.jsonl`` / ``.ndjson`` lines): one document each.

A record's text is the values of ``ingest.json_text_fields`` that it has, in that order, as
paragraphs; ``title`` (when listed) becomes the document title and its first heading. Other
scalar fields go to the metadata, where search filters can use them, and so does ``acl`` (the
record's access groups: a list or a comma-separated string). Record ids are
``{file doc id}#{record[json_id_field]}``, else ``#{line number}`` (JSONL, 1-based) or
``#{index}`` (array, 0-based). A single JSON object is one document with the file's id.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any, ClassVar

from ...acl import ACL_FIELD
from ...errors import LoaderError
from ...types import Document
from ..decode import read_text
from ..seams import BaseLoader, DocumentBuilder
from .text import split_paragraphs

_SCALARS = (str, int, float, bool)
Record = tuple[str, Any]  # (position, parsed value)


class JsonLoader(BaseLoader):
    """Loads JSON arrays and JSON-lines files as one document per record."""

    extensions: ClassVar[tuple[str, ...]] = (".json", ".jsonl", ".ndjson")
    format: ClassVar[str] = "json"

    def load(self, path: Path, doc_id: str) -> list[Document]:
        text = read_text(path)
        if path.suffix.lower() == ".json":
            records, single = parse_json(text)
        else:
            records, single = parse_lines(text), False
        if single:
            documents = [self._document(records[0][1], doc_id, str(path))]
        else:
            documents = self._documents(records, doc_id, str(path))
        if records and not any(d.text for d in documents):
            raise LoaderError(self._no_text_message(records))
        return documents

    def _documents(self, records: list[Record], doc_id: str, source: str) -> list[Document]:
        seen: set[str] = set()
        documents = []
        for position, record in records:
            rid = self._record_id(record, position)
            if rid in seen:
                rid = f"{rid}@{position}"
            seen.add(rid)
            documents.append(self._document(record, f"{doc_id}#{rid}", source))
        return documents

    def _record_id(self, record: Any, position: str) -> str:
        value = record.get(self.config.json_id_field) if isinstance(record, dict) else None
        return str(value) if isinstance(value, _SCALARS) and str(value) else position

    def _document(self, record: Any, doc_id: str, source: str) -> Document:
        if not isinstance(record, dict):
            record = {"text": record}
        builder = DocumentBuilder()
        title = ""
        for field in self.config.json_text_fields:
            value = record.get(field)
            if field == "title" and isinstance(value, _SCALARS):
                title = " ".join(str(value).split())
                builder.heading(title)
            else:
                for para in _paragraphs(value):
                    builder.paragraph(para)
        meta = {k: v for k, v in record.items() if k not in self.config.json_text_fields}
        meta = {k: v for k, v in meta.items() if v is None or isinstance(v, _SCALARS) or k == ACL_FIELD}
        return builder.build(doc_id, source, title=title, metadata=meta)

    def _no_text_message(self, records: list[Record]) -> str:
        fields = sorted({k for _, r in records if isinstance(r, dict) for k in r})
        return (
            f"no text in any record: none has a non-empty field of "
            f"json_text_fields={self.config.json_text_fields}; the records' fields are "
            f"{fields[:20]}; set ingest.json_text_fields to the fields that hold text"
        )


def parse_json(text: str) -> tuple[list[Record], bool]:
    """Records of a ``.json`` file, and whether it held a single object (JSONL is accepted)."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        if exc.msg == "Extra data":
            return parse_lines(text), False
        raise LoaderError(
            f"invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}; fix the file"
        ) from exc
    if isinstance(value, list):
        return [(str(i), record) for i, record in enumerate(value)], False
    return [("0", value)], True


def parse_lines(text: str) -> list[Record]:
    """Records of a JSON-lines text, positioned by 1-based line number (blank lines skipped)."""
    records: list[Record] = []
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            records.append((str(number), json.loads(line)))
        except json.JSONDecodeError as exc:
            raise LoaderError(
                f"invalid JSON on line {number}: {exc.msg} (column {exc.colno}); "
                "fix or remove that line"
            ) from exc
    return records


def _paragraphs(value: Any) -> Iterable[str]:
    """Text of a field value: a string, a number, or a list of them; nested objects as JSON."""
    if value is None:
        return []
    if isinstance(value, list):
        return [p for item in value for p in _paragraphs(item)]
    if isinstance(value, dict):
        return [json.dumps(value, ensure_ascii=False)]
    return split_paragraphs(str(value))
