"""Uploads written to disk as they arrive: a multipart body is parsed as a stream (each
``files`` part goes straight into the job's staging folder), the limits are checked before and
while reading (413 for size and count, 415 for a file type), file names are checked (a single
plain name: no ``/``, ``\\``, ``..``, NUL or control characters); JSON documents become files too."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from fastapi import Request
from python_multipart.multipart import MultipartParser, MultipartState, parse_options_header

from .problems import Invalid, PayloadTooLarge, UnsupportedType

_BAD_CHARS = re.compile(r"[\x00-\x1f\x7f/\\]")
MAX_FIELD_BYTES = 64 * 1024
MAX_NAME_BYTES = 255


@dataclass(frozen=True)
class Limits:
    max_bytes: int
    max_files: int
    suffixes: frozenset[str]  # lower-case, with the dot

    def check_length(self, content_length: str | None) -> None:
        if content_length and content_length.isdigit() and int(content_length) > self.max_bytes:
            raise PayloadTooLarge(self.too_large(int(content_length)))

    async def read(self, request: Request) -> bytes:
        """The whole body, refused (413) past ``max_bytes`` by its Content-Length or while reading."""
        self.check_length(request.headers.get("content-length"))
        body = bytearray()
        async for chunk in request.stream():
            body.extend(chunk)
            if len(body) > self.max_bytes:
                raise PayloadTooLarge(self.too_large(len(body)) + " (counted while receiving)")
        return bytes(body)

    def check_count(self, count: int) -> None:
        if count > self.max_files:
            raise PayloadTooLarge(f"Too many files: at most {self.max_files} per upload (setting max_files). "
                                  "Upload them in several requests.")

    def check_type(self, name: str) -> None:
        suffix = Path(name).suffix.lower()
        if suffix not in self.suffixes:
            allowed = " ".join(sorted(self.suffixes))
            raise UnsupportedType(f"File {name!r}: type {suffix or '(no suffix)'!r} is not accepted. Accepted: "
                                  f"{allowed} (setting allowed_types).")

    def too_large(self, size: int) -> str:
        return (f"The upload is {size / 1e6:,.1f} MB; the limit is {self.max_bytes / 1e6:,.1f} MB per request "
                "(setting max_upload_mb). Split it into several uploads.")


def safe_name(name: str) -> str:
    """``name`` if it is one plain file name; else :class:`Invalid` naming it."""
    if not name or name in (".", "..") or _BAD_CHARS.search(name) or name.startswith("."):
        raise Invalid(f"File name {name!r} is not accepted: send a plain file name (no folders, '..', leading '.', "
                      "NUL or control characters).", errors=[{"field": "files", "message": f"bad name {name!r}"}])
    if len(name.encode("utf-8", "surrogatepass")) > MAX_NAME_BYTES:
        raise Invalid(f"File name {name[:40]!r}... is longer than {MAX_NAME_BYTES} bytes; shorten it.")
    return name


class MultipartUpload:
    """Streams one ``multipart/form-data`` body into ``folder``: ``files`` parts become files,
    other fields are kept as text (``acl``)."""

    def __init__(self, folder: Path, limits: Limits) -> None:
        self.folder = folder
        self.limits = limits
        self.files: list[str] = []
        self.fields: dict[str, str] = {}
        self._received = 0
        self._header_name = b""
        self._header_value = b""
        self._disposition = b""
        self._field: tuple[str, bytearray] | None = None
        self._file: IO[bytes] | None = None

    async def read(self, request: Request) -> None:
        """Parse the body; on any error the folder is removed and the error raised."""
        _, params = parse_options_header(request.headers.get("content-type"))
        boundary = params.get(b"boundary")
        if not boundary:
            raise UnsupportedType("A multipart upload needs a boundary in its Content-Type.")
        self.limits.check_length(request.headers.get("content-length"))
        self.folder.mkdir(parents=True, exist_ok=True)
        try:
            parser = MultipartParser(boundary, self._callbacks())
            async for chunk in request.stream():
                self._received += len(chunk)
                if self._received > self.limits.max_bytes:
                    raise PayloadTooLarge(self.limits.too_large(self._received) + " (counted while receiving)")
                parser.write(chunk)
            parser.finalize()
            if parser.state != MultipartState.END:
                raise Invalid("The multipart body ends before its closing boundary: the upload is truncated (a "
                              "dropped connection, or a client that does not finish the body). Send it again.",
                              errors=[{"field": "files", "message": "no closing boundary"}])
        except BaseException:
            self._close_file()
            shutil.rmtree(self.folder, ignore_errors=True)
            raise
        if not self.files:
            shutil.rmtree(self.folder, ignore_errors=True)
            raise Invalid("The upload holds no files: send them as multipart parts named 'files'.",
                          errors=[{"field": "files", "message": "field required"}])

    def _callbacks(self) -> Any:
        return {"on_part_begin": self._part_begin, "on_part_data": self._part_data, "on_part_end": self._part_end,
                "on_header_field": self._header_field, "on_header_value": self._header_val,
                "on_header_end": self._header_end, "on_headers_finished": self._headers_done}

    def _part_begin(self) -> None:
        self._disposition = b""
        self._field = None

    def _header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_name += data[start:end]

    def _header_val(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def _header_end(self) -> None:
        if self._header_name.lower() == b"content-disposition":
            self._disposition = self._header_value
        self._header_name = self._header_value = b""

    def _headers_done(self) -> None:
        _, options = parse_options_header(self._disposition)
        field = _decode(options.get(b"name", b""), "part name")
        if b"filename" not in options:
            self._field = (field, bytearray())
            return
        name = safe_name(_decode(options[b"filename"], "file name"))
        self.limits.check_count(len(self.files) + 1)
        self.limits.check_type(name)
        if name in self.files:
            raise Invalid(f"File {name!r} appears twice in this upload; send it once.")
        self.files.append(name)
        self._file = (self.folder / name).open("xb")

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        if self._file is not None:
            self._file.write(data[start:end])
        elif self._field is not None:
            self._field[1].extend(data[start:end])
            if len(self._field[1]) > MAX_FIELD_BYTES:
                raise PayloadTooLarge(f"Form field {self._field[0]!r} is over {MAX_FIELD_BYTES // 1024} kB.")

    def _part_end(self) -> None:
        self._close_file()
        if self._field is not None:
            self.fields[self._field[0]] = _decode(bytes(self._field[1]), f"field {self._field[0]!r}")
            self._field = None

    def _close_file(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def write_documents(folder: Path, documents: Sequence[Mapping[str, Any]], limits: Limits) -> list[str]:
    """Write JSON documents (``name``, ``text``, ``metadata``) as files: the text under its name
    (``.txt`` added when the name has no accepted suffix), or, with metadata, one JSON object
    ``<name>.json`` (``title``, ``text`` and the metadata fields, which must be scalars)."""
    limits.check_count(len(documents))
    names = [_document_name(i, d, limits) for i, d in enumerate(documents)]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise Invalid(f"Documents named {', '.join(map(repr, duplicates))} appear more than once; send each once.")
    folder.mkdir(parents=True, exist_ok=True)
    for name, doc in zip(names, documents, strict=True):
        (folder / name).write_text(_document_body(doc), encoding="utf-8")
    return names


def _document_name(index: int, doc: Mapping[str, Any], limits: Limits) -> str:
    name = safe_name(doc["name"])
    if doc.get("metadata"):
        _check_metadata(index, doc["metadata"])
        name = name if name.lower().endswith(".json") else name + ".json"
    elif Path(name).suffix.lower() not in limits.suffixes:
        name += ".txt"
    limits.check_type(name)
    return name


def _check_metadata(index: int, metadata: Mapping[str, Any]) -> None:
    for key, value in metadata.items():
        if not isinstance(value, str | int | float | bool) or key in ("text", "title"):
            field = f"body.documents.{index}.metadata.{key}"
            raise Invalid(f"{field}: metadata values must be strings, numbers or booleans, and not 'text' or "
                          "'title'.", errors=[{"field": field, "message": "not a scalar metadata field"}])


def _document_body(doc: Mapping[str, Any]) -> str:
    if not doc.get("metadata"):
        return str(doc["text"])
    return json.dumps({**doc["metadata"], "title": doc["name"], "text": doc["text"]}, ensure_ascii=False)


def _decode(raw: bytes, what: str) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise Invalid(f"The {what} is not UTF-8; send names and fields in UTF-8.") from exc
