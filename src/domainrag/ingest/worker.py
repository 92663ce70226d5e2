"""Parsing files under a per-file time and memory budget, in a worker process.

Parsers are C code (lxml, zlib inside pypdf) or pure-Python loops over attacker-shaped input
(csv.Sniffer, deep HTML): neither can be interrupted from inside the process, and a thread
cannot be stopped at all. So files are parsed in one long-lived child process: the parent sends
a :class:`FoundFile`, waits at most ``ingest.parse_timeout_s`` for the documents and kills the
child when the time is up; the child's address space is capped at its size when it starts plus
``ingest.parse_memory_mb`` (``RLIMIT_AS``, Linux), so a file that needs more fails with
``MemoryError`` instead of taking the machine down. A loader doing slow, bounded work asks for more
time per unit of it (:mod:`.budget`: OCR, per page recognised). Either way only that file fails (with the
reason) and the next file gets a fresh child.

The child is started on the first file that needs loading (an unchanged re-ingest never starts
it) by ``fork`` where the platform has it, so it inherits the registered loaders and the imported
parsing libraries: the overhead per file is one pickled round trip of its documents through a
pipe. Where ``fork`` is unavailable the child is spawned and the loaders are pickled to it.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
from collections.abc import Mapping
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any

from ..child import close_inherited, die_with_parent, limit_memory
from ..config import IngestConfig
from ..errors import DomainragError, LoaderError
from ..types import Document
from . import budget
from .discover import FoundFile
from .loading import load_file
from .seams import Loader


class ParseWorker:
    """Loads found files in a child process (see module docstring). Use as a context manager,
    or call :meth:`close`."""

    def __init__(self, loaders: Mapping[str, Loader], config: IngestConfig) -> None:
        self.loaders = dict(loaders)
        self.timeout_s = config.parse_timeout_s
        self.memory_mb = config.parse_memory_mb
        #: The most extra seconds loaders may ask for on one file (see :mod:`.budget`).
        self.max_extension_s = config.ocr_page_timeout_s * config.ocr_max_pages
        self._process: BaseProcess | None = None
        self._conn: Connection | None = None
        self._served = 0

    def load(self, found: FoundFile) -> list[Document]:
        """The documents of ``found``; :class:`LoaderError` with the reason when it cannot be read
        within the budgets. A file that runs out of memory in a child that already parsed other
        files is tried once more in a fresh child (the old one may have been fragmented)."""
        fresh = self._served == 0 or self._process is None
        status, payload = self._ask(found)
        if status == "memory" and not fresh:
            status, payload = self._ask(found)
        if status == "ok":
            return [_thaw(fields) for fields in payload]
        if status == "memory":
            raise LoaderError(
                f"parsing needs more than ingest.parse_memory_mb={self.memory_mb} MB of memory; "
                "raise the limit to include this file"
            )
        raise LoaderError(str(payload))

    def _ask(self, found: FoundFile) -> tuple[str, Any]:
        conn = self._start()
        conn.send(found)
        deadline = time.monotonic() + self.timeout_s
        extended = 0.0
        while True:
            if not conn.poll(max(deadline - time.monotonic(), 0)):
                self._stop()
                more = f" (+{extended:g} s granted for its pages)" if extended else ""
                return "error", (
                    f"parsing took longer than ingest.parse_timeout_s={self.timeout_s:g} s{more} and was "
                    "stopped; raise the limit to include this file"
                )
            try:
                reply: tuple[str, Any] = conn.recv()
            except (EOFError, OSError):
                code = self._stop()
                return "error", f"the parser crashed ({_describe_exit(code)}); the file is damaged or hostile"
            if reply[0] != "extend":
                break
            grant = min(float(reply[1]), self.max_extension_s - extended)
            extended += grant
            deadline += grant
        self._served += 1
        if reply[0] == "memory":
            self._stop()
        return reply

    def _start(self) -> Connection:
        if self._process is not None and self._conn is not None and self._process.is_alive():
            return self._conn
        self._stop()
        forked = "fork" in multiprocessing.get_all_start_methods()
        context = multiprocessing.get_context("fork" if forked else "spawn")
        parent, child = context.Pipe()
        inherited = parent.fileno() if forked else None   # a spawned child inherits no descriptors
        process = context.Process(  # type: ignore[attr-defined]
            target=_serve, args=(child, self.loaders, self.memory_mb, os.getpid(), inherited),
            name="domainrag-parse", daemon=True
        )
        process.start()
        child.close()
        self._process, self._conn, self._served = process, parent, 0
        return parent

    def _stop(self) -> int | None:
        """Kill the child (if any); its exit code."""
        process, conn = self._process, self._conn
        self._process = self._conn = None
        if conn is not None:
            conn.close()
        if process is None:
            return None
        if process.is_alive():
            process.kill()
        process.join()
        return process.exitcode

    def close(self) -> None:
        self._stop()

    def __enter__(self) -> ParseWorker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _describe_exit(code: int | None) -> str:
    if code is not None and code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


def _serve(conn: Connection, loaders: Mapping[str, Loader], memory_mb: int, parent_pid: int,
           parent_end: int | None) -> None:
    """The child's loop: a :class:`FoundFile` in, ``(status, documents or reason)`` out. It dies
    with the process that started it (:mod:`domainrag.child`)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    if parent_end is not None:
        close_inherited(parent_end)   # else a dead parent's end stays open here: no EOF, ever
    die_with_parent(parent_pid)
    limit_memory(memory_mb)
    budget.install(lambda seconds: conn.send(("extend", seconds)))
    while True:
        try:
            found = conn.recv()
        except (EOFError, OSError):
            return
        try:
            conn.send(_load(found, loaders))
        except MemoryError:
            conn.send(("memory", ""))


def _load(found: FoundFile, loaders: Mapping[str, Loader]) -> tuple[str, Any]:
    try:
        return "ok", [_plain(d) for d in load_file(found, loaders)]
    except MemoryError:
        return "memory", ""
    except DomainragError as exc:
        return "error", str(exc)
    except Exception as exc:  # noqa: BLE001 - load_file translates loaders' errors; this is the rest
        return "error", f"{type(exc).__name__}: {exc}"


def _plain(document: Document) -> dict[str, Any]:
    """A document's fields in picklable form (its metadata is a read-only mapping proxy)."""
    fields = {name: getattr(document, name) for name in ("id", "text", "source", "title", "blocks")}
    return {**fields, "metadata": _unfrozen(document.metadata)}


def _unfrozen(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _unfrozen(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_unfrozen(v) for v in value]
    return value


def _thaw(fields: dict[str, Any]) -> Document:
    return Document(**fields)
