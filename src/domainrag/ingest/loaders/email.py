"""E-mail (``.eml`` messages, ``.mbox`` mailboxes) via the standard library's ``email`` package.

A message becomes one document titled by its subject: a first block with the headers (From, To,
Cc, Date, Subject), then the body — the ``text/plain`` part, else the ``text/html`` part read as
the HTML loader reads a page (scripts, styles and furniture dropped) — and a last line naming
the attachments. Metadata: ``from``, ``to``, ``cc``, ``date`` (ISO 8601), ``subject``,
``message_id`` and ``attachments`` (their file names).

Attachments are documents of their own, read by the loader registered for their file type
(a PDF, a spreadsheet, a scanned image, a forwarded message...), with the ids
``{message id}#att{n}-{file name}`` and the metadata ``parent`` (the message's document id),
``parent_subject`` and ``attachment`` (the file name), so an answer citing an attachment can
name its message. An attachment of an unsupported type is listed in the message's metadata
(``skipped_attachments``); one that fails is listed with its reason (``failed_attachments``, a
warning in the parse report) and never fails the message. Forwarded messages nest at most
:data:`MAX_DEPTH` deep.

In an ``.mbox`` file every message is a document ``{file id}#{n}`` (1-based), with its
attachments as above.
"""

from __future__ import annotations

import functools
import mailbox
import mimetypes
import re
import tempfile
from collections.abc import Callable, Iterator
from email import policy
from email.message import EmailMessage, Message
from email.parser import BytesParser
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any, BinaryIO, ClassVar

from ...errors import DomainragError, LoaderError
from ...types import Document
from .. import ocr
from ..seams import BaseLoader, DocumentBuilder, Loader
from .html import add_html
from .image import NO_TEXT, ImageLoader
from .text import split_paragraphs

#: Forwarded messages inside messages are read this many levels deep.
MAX_DEPTH = 3
_HEADERS = ("From", "To", "Cc", "Date", "Subject")
_UNSAFE = re.compile(r"[^\w.\- ]+")


class EmailLoader(BaseLoader):
    """Loads ``.eml`` messages and ``.mbox`` mailboxes, attachments as documents of their own."""

    extensions: ClassVar[tuple[str, ...]] = (".eml", ".mbox")
    format: ClassVar[str] = "email"

    def load(self, path: Path, doc_id: str) -> list[Document]:
        if path.suffix.lower() == ".mbox":
            return self._mailbox(path, doc_id)
        with path.open("rb") as handle:
            message = _parse(handle)
        if not _has_headers(message):
            raise LoaderError("no e-mail headers (From, To, Subject, Date) found: not an e-mail message; "
                              "save the message as .eml from the mail program")
        return self.message_documents(message, doc_id, str(path), depth=0)

    def _mailbox(self, path: Path, doc_id: str) -> list[Document]:
        try:
            box = mailbox.mbox(str(path), factory=_parse, create=False)  # type: ignore[arg-type]
            documents = []
            for number, message in enumerate(box.itervalues(), start=1):
                if isinstance(message, Message) and _has_headers(message):
                    documents += self.message_documents(message, f"{doc_id}#{number}", str(path), depth=0)
        except (mailbox.Error, OSError, ValueError) as exc:
            raise LoaderError(f"not a readable mbox mailbox ({type(exc).__name__}: {exc})") from exc
        if not documents:
            raise LoaderError("no e-mail messages found in the mailbox (each must start with a 'From ' line)")
        return documents

    def message_documents(self, message: Message, doc_id: str, source: str, depth: int) -> list[Document]:
        """The message as a document, followed by its attachments' documents."""
        builder = DocumentBuilder()
        headers = {name: header(message, name) for name in _HEADERS}
        builder.paragraph("\n".join(f"{k}: {v}" for k, v in headers.items() if v))
        _add_body(builder, message)
        parts = list(_attachments(message))
        names = _unique([name for name, _ in parts])
        if names:
            builder.paragraph("Attachments: " + ", ".join(names))
        meta: dict[str, Any] = {k.lower(): v for k, v in headers.items() if v and k != "Date"}
        meta["date"] = _iso_date(headers["Date"])
        meta["message_id"] = header(message, "Message-ID")
        meta["attachments"] = names
        attached, skipped, failed = self._attached(parts, names, doc_id, source, headers["Subject"], depth)
        meta.update(skipped_attachments=skipped, failed_attachments=failed)
        document = builder.build(doc_id, source, title=headers["Subject"],
                                 metadata={k: v for k, v in meta.items() if v not in ("", [], None)})
        return [document, *attached]

    def _attached(self, parts: list[tuple[str, Callable[[], Any]]], names: list[str], doc_id: str,
                  source: str, subject: str, depth: int) -> tuple[list[Document], list[str], list[str]]:
        documents: list[Document] = []
        skipped: list[str] = []
        failed: list[str] = []
        for n, ((_, content), name) in enumerate(zip(parts, names, strict=True), start=1):
            child_id = f"{doc_id}#att{n}-{name}"
            try:
                loaded = self._attachment(name, content(), child_id, source, depth)
            except LoaderError as exc:
                if str(exc) == NO_TEXT:   # an image without words: a logo, a photo
                    skipped.append(name)
                else:
                    failed.append(f"{name}: {exc}")
                continue
            except DomainragError as exc:
                failed.append(f"{name}: {exc}")
                continue
            except MemoryError:
                raise
            except Exception as exc:  # noqa: BLE001 - one attachment never sinks its message
                failed.append(f"{name}: {type(exc).__name__}: {exc}")
                continue
            if loaded is None:
                skipped.append(name)
                continue
            link = {"parent": doc_id, "parent_subject": subject, "attachment": name}
            documents += [_linked(d, link) for d in loaded if d.text.strip()]
        return documents, skipped, failed

    def _attachment(self, name: str, content: Any, child_id: str, source: str, depth: int) -> list[Document] | None:
        """The documents of one attachment; ``None`` for a type no loader reads."""
        if isinstance(content, Message):   # a forwarded message/rfc822
            if depth + 1 > MAX_DEPTH:
                raise LoaderError(f"forwarded messages nested more than {MAX_DEPTH} deep")
            return self.message_documents(content, child_id, source, depth + 1)
        suffix = Path(name).suffix.lower()
        loader = self._loaders().get(suffix)
        if loader is None or not isinstance(content, bytes):
            return None
        if suffix in ImageLoader.extensions and not ocr.wanted(self.config):
            return None   # logos and photos: read only where OCR is installed

        if suffix in (".eml", ".mbox") and depth + 1 > MAX_DEPTH:
            raise LoaderError(f"attached messages nested more than {MAX_DEPTH} deep")
        with tempfile.TemporaryDirectory(prefix="domainrag-att-") as folder:
            path = Path(folder) / name   # made safe by _unique: no folders, no odd characters
            path.write_bytes(content)
            return loader.load(path, child_id)

    def _loaders(self) -> dict[str, Loader]:
        from ..loading import loaders_by_extension

        cached: dict[str, Loader] | None = getattr(self, "_by_suffix", None)
        if cached is None:
            cached = loaders_by_extension(self.config)
            self._by_suffix = cached
        return cached


def _parse(handle: BinaryIO) -> Message:
    return BytesParser(policy=policy.default).parse(handle)


def _has_headers(message: Message) -> bool:
    return any(message.get(name) is not None for name in (*_HEADERS, "Message-ID"))


def header(message: Message, name: str) -> str:
    """A header's decoded value on one line; "" when absent or unreadable."""
    try:
        value = message.get(name)
    except Exception:  # noqa: BLE001 - the header parsers raise on malformed values
        return ""
    return " ".join(str(value).split()) if value is not None else ""


def _iso_date(value: str) -> str:
    try:
        return parsedate_to_datetime(value).isoformat() if value else ""
    except (TypeError, ValueError, IndexError):
        return value


def _add_body(builder: DocumentBuilder, message: Message) -> None:
    body: Message | None = message.get_body(("plain", "html")) if isinstance(message, EmailMessage) else None
    if body is None and not message.is_multipart() and message.get_content_maintype() == "text":
        body = message
    if body is None:
        return
    text = _text(body)
    if body.get_content_subtype() == "html":
        add_html(builder, text)
        return
    for para in split_paragraphs(text):
        builder.paragraph(para)


def _text(part: Message) -> str:
    """A text part decoded by its charset (undecodable bytes replaced)."""
    try:
        content = part.get_content() if isinstance(part, EmailMessage) else None
        if isinstance(content, str):
            return content
    except (LookupError, ValueError, AssertionError, KeyError):
        pass
    payload = part.get_payload(decode=True)
    if isinstance(payload, bytes):
        charset = part.get_content_charset() or "utf-8"
        try:
            return payload.decode(charset, "replace")
        except LookupError:
            return payload.decode("utf-8", "replace")
    return str(payload or "")


def _attachments(message: Message) -> Iterator[tuple[str, Callable[[], Any]]]:
    """(file name, content loader) of each attachment: bytes, or a message for message/rfc822."""
    if not isinstance(message, EmailMessage) or not message.is_multipart():
        return
    for n, part in enumerate(message.iter_attachments(), start=1):
        name = part.get_filename() or ""
        content_type = part.get_content_type()
        if not name:
            extension = ".eml" if content_type == "message/rfc822" else (mimetypes.guess_extension(content_type) or "")
            name = f"attachment-{n}{extension}"
        if content_type == "message/rfc822":
            inner = part.get_payload()
            yield name, functools.partial(_first, inner if isinstance(inner, list) else [])
        else:
            yield name, functools.partial(part.get_payload, decode=True)


def _first(items: list[Any]) -> Any:
    return items[0] if items else None


def _unique(names: list[str]) -> list[str]:
    """File names made safe for ids (path parts and odd characters dropped) and unique."""
    out: list[str] = []
    for raw in names:
        base = _UNSAFE.sub("_", Path(raw.replace("\\", "/")).name).strip() or "attachment"
        name, n = base, 2
        while name in out:
            stem, suffix = Path(base).stem, Path(base).suffix
            name, n = f"{stem}-{n}{suffix}", n + 1
        out.append(name)
    return out


def _linked(document: Document, link: dict[str, Any]) -> Document:
    import dataclasses

    title = document.title or str(link["attachment"])
    return dataclasses.replace(document, title=title, metadata={**document.metadata, **link})
