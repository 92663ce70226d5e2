"""Ingest jobs: persisted in ``<home>/jobs.sqlite3``, run by one worker thread per collection
(one writer per knowledge base), resumed after a restart.

An upload is streamed into ``<home>/uploads/<collection>/incoming/<job>/`` before its job is
queued. The worker moves each file to ``<home>/uploads/<collection>/files/<name>`` (so the same
name uploaded twice is one document, replaced, not two) and ingests it; ingest is incremental
and writes whole files per transaction, so a job interrupted at any point is simply run again.
On shutdown the worker stops after the file it is on: the unwritten batch is dropped (never
half-written) and the job is marked ``interrupted``; it is queued again at the next start.
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from ..errors import DomainragError
from ..kb import KnowledgeBase
from ..sqlite_files import open_database
from .collections import Collections
from .problems import Conflict

State = Literal["queued", "running", "done", "failed", "interrupted"]
Kind = Literal["ingest", "reingest"]
UNFINISHED = ("queued", "running", "interrupted")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY, collection TEXT NOT NULL, kind TEXT NOT NULL, state TEXT NOT NULL,
    files TEXT NOT NULL, acl TEXT, files_total INTEGER NOT NULL, files_done INTEGER NOT NULL DEFAULT 0,
    chunks INTEGER NOT NULL DEFAULT 0, failures TEXT NOT NULL DEFAULT '[]', error TEXT,
    created_at REAL NOT NULL, finished_at REAL
);
"""
_COLUMNS = ("id", "collection", "kind", "state", "files", "acl", "files_total", "files_done", "chunks",
            "failures", "error", "created_at", "finished_at")


@dataclass(frozen=True, kw_only=True)
class Job:
    id: str
    collection: str
    kind: Kind
    state: State
    files: tuple[str, ...]
    acl: tuple[str, ...] | None = None
    files_total: int = 0
    files_done: int = 0
    chunks: int = 0
    failures: tuple[tuple[str, str], ...] = ()
    error: str | None = None
    created_at: float = field(default_factory=time.time)
    finished_at: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "collection": self.collection, "kind": self.kind, "state": self.state,
                "files_total": self.files_total, "files_done": self.files_done, "chunks": self.chunks,
                "failures": [{"file": f, "reason": r} for f, r in self.failures], "error": self.error,
                "acl": list(self.acl) if self.acl is not None else None,
                "created_at": _iso(self.created_at), "finished_at": _iso(self.finished_at)}


def new_job_id() -> str:
    return uuid.uuid4().hex[:16]


class JobStore:
    """The jobs table; every method is one statement under a lock (safe from any thread)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = open_database(path, _SCHEMA, what="job store", fix="Move it away; jobs start afresh.")
        self._lock = threading.Lock()

    def add(self, job: Job) -> Job:
        row = _row(job)
        with self._lock:
            self._db.execute(f"INSERT INTO jobs ({','.join(_COLUMNS)}) VALUES ({','.join('?' * len(row))})", row)
        return job

    def save(self, job: Job) -> Job:
        row = _row(job)
        sets = ",".join(f"{c}=?" for c in _COLUMNS[1:])
        with self._lock:
            self._db.execute(f"UPDATE jobs SET {sets} WHERE id=?", (*row[1:], job.id))
        return job

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            row = self._db.execute(f"SELECT {','.join(_COLUMNS)} FROM jobs WHERE id=?", (job_id,)).fetchone()
        return _job(row) if row else None

    def unfinished(self) -> list[Job]:
        marks = ",".join("?" * len(UNFINISHED))
        with self._lock:
            rows = self._db.execute(f"SELECT {','.join(_COLUMNS)} FROM jobs WHERE state IN ({marks}) "
                                    "ORDER BY created_at", UNFINISHED).fetchall()
        return [_job(r) for r in rows]

    def close(self) -> None:
        with self._lock:
            self._db.close()


class _Stop(KeyboardInterrupt):
    """Raised from the ingest progress callback on shutdown: ``IndexBuilder`` stops after the
    current file and drops the unwritten batch (its interruption protocol)."""


class JobRunner:
    """Runs jobs one at a time per collection, each collection on its own thread."""

    def __init__(self, store: JobStore, collections: Collections, uploads: Path,
                 on_finish: Callable[[Job], None] | None = None) -> None:
        self.store = store
        self.collections = collections
        self.uploads = uploads
        self._on_finish = on_finish
        self._queues: dict[str, queue.Queue[Job | None]] = {}
        self._threads: dict[str, threading.Thread] = {}
        self._running: dict[str, str] = {}  # collection -> id of the job it runs
        self._stopping = threading.Event()
        self._lock = threading.Lock()

    # -- paths -----------------------------------------------------------------------------
    def incoming(self, collection: str, job_id: str) -> Path:
        return self.uploads / collection / "incoming" / job_id

    def files_dir(self, collection: str) -> Path:
        return self.uploads / collection / "files"

    # -- submitting --------------------------------------------------------------------------
    def resume(self) -> list[Job]:
        """Queue again every job a previous server left queued, running or interrupted."""
        jobs = [self.store.save(replace(job, state="queued")) for job in self.store.unfinished()]
        for job in jobs:
            self._enqueue(job)
        return jobs

    def submit(self, collection: str, kind: Kind, files: Sequence[str] = (), acl: Sequence[str] | None = None,
               job_id: str | None = None) -> Job:
        if self._stopping.is_set():
            raise Conflict("The server is shutting down and takes no new jobs; retry after it restarts.")
        job = Job(id=job_id or new_job_id(), collection=collection, kind=kind, state="queued", files=tuple(files),
                  acl=tuple(acl) if acl is not None else None, files_total=len(files))
        self.store.add(job)
        self._enqueue(job)
        return job

    def _enqueue(self, job: Job) -> None:
        with self._lock:
            q = self._queues.setdefault(job.collection, queue.Queue())
            q.put(job)
            thread = self._threads.get(job.collection)
            if thread is None or not thread.is_alive():
                thread = threading.Thread(target=self._work, args=(q,), name=f"ingest-{job.collection}", daemon=True)
                self._threads[job.collection] = thread
                thread.start()

    def busy(self, collection: str) -> bool:
        """Whether a job of ``collection`` is running or waiting."""
        q = self._queues.get(collection)
        return collection in self._running or (q is not None and not q.empty())

    # -- working ---------------------------------------------------------------------------
    def _work(self, q: queue.Queue[Job | None]) -> None:
        while not self._stopping.is_set():
            job = q.get()
            if job is None or self._stopping.is_set():
                return
            self._running[job.collection] = job.id
            try:
                finished = self._run(job)
            finally:
                self._running.pop(job.collection, None)
            if self._on_finish:
                self._on_finish(finished)

    def _run(self, job: Job) -> Job:
        job = self.store.save(replace(job, state="running"))
        try:
            with self.collections.writer(job.collection):
                kb = self.collections.get(job.collection)
                paths = self._place_uploads(job) if job.kind == "ingest" else reingest_paths(kb)
                job = self.store.save(replace(job, files_total=len(paths)))
                return self._ingest(kb, job, paths)
        except DomainragError as exc:
            return self.store.save(replace(job, state="failed", error=str(exc), finished_at=time.time()))
        except Exception as exc:  # a job never takes the worker down; the reason is kept
            return self.store.save(replace(job, state="failed", error=f"{type(exc).__name__}: {exc}",
                                           finished_at=time.time()))

    def _place_uploads(self, job: Job) -> list[Path]:
        """Move the job's staged files to their place (already moved when the job is resumed)."""
        incoming = self.incoming(job.collection, job.id)
        target = self.files_dir(job.collection)
        target.mkdir(parents=True, exist_ok=True)
        for name in job.files:
            if (incoming / name).exists():
                os.replace(incoming / name, target / name)
        shutil.rmtree(incoming, ignore_errors=True)
        return [target / name for name in job.files if (target / name).exists()]

    def _ingest(self, kb: KnowledgeBase, job: Job, paths: list[Path]) -> Job:
        done = 0

        def tick(label: str) -> None:
            nonlocal done
            done += 1
            self.store.save(replace(job, files_done=done))
            if self._stopping.is_set():
                raise _Stop

        groups = job.acl if job.kind == "ingest" else None  # a re-ingest keeps each source's groups
        report = kb.ingest(paths, reindex=job.kind == "reingest", progress=tick, acl=groups) if paths else None
        failures = tuple(report.failed) if report else ()
        state: State = "interrupted" if report and report.interrupted else "done"
        if paths and len(failures) == len(paths):
            state = "failed"
        missing = len(job.files) - len(paths) if job.kind == "ingest" else 0
        error = f"{missing} staged file(s) were gone when the job ran" if missing else None
        return self.store.save(replace(job, state=state, files_done=done, chunks=report.chunks if report else 0,
                                       failures=failures, error=error,
                                       finished_at=None if state == "interrupted" else time.time()))

    # -- stopping --------------------------------------------------------------------------
    def stop(self, grace_s: float = 10.0) -> None:
        """Take no new jobs; let each worker finish the file it is on (at most ``grace_s``);
        a job cut short is ``interrupted`` and resumes at the next start."""
        self._stopping.set()
        with self._lock:
            queues, threads = list(self._queues.values()), list(self._threads.values())
        for q in queues:
            q.put(None)
        deadline = time.monotonic() + grace_s
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        for job_id in list(self._running.values()):
            current = self.store.get(job_id)
            if current is not None and current.state == "running":
                self.store.save(replace(current, state="interrupted"))


def reingest_paths(kb: KnowledgeBase) -> list[Path]:
    """The files of every source of ``kb``, to ingest again with the current settings; refused
    (before anything is cleared) when a source is not a file that still exists."""
    sources = sorted(kb.store.source_states())
    missing = [s for s in sources if not Path(s).is_file()]
    if missing:
        shown = ", ".join(repr(s) for s in missing[:5]) + (" ..." if len(missing) > 5 else "")
        raise Conflict(f"Cannot re-ingest: {len(missing)} source(s) are no longer files on the server ({shown}). "
                       "Delete them first (DELETE /v1/collections/{c}/sources/{source}), then re-ingest.")
    return [Path(s) for s in sources]


def _iso(ts: float | None) -> str | None:
    return None if ts is None else time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def _row(job: Job) -> tuple[Any, ...]:
    return (job.id, job.collection, job.kind, job.state, json.dumps(list(job.files)),
            json.dumps(list(job.acl)) if job.acl is not None else None, job.files_total, job.files_done,
            job.chunks, json.dumps([list(f) for f in job.failures]), job.error, job.created_at, job.finished_at)


def _job(row: tuple[Any, ...]) -> Job:
    values = dict(zip(_COLUMNS, row, strict=True))
    values["files"] = tuple(json.loads(values["files"]))
    values["acl"] = tuple(json.loads(values["acl"])) if values["acl"] is not None else None
    values["failures"] = tuple((f, r) for f, r in json.loads(values["failures"]))
    return Job(**values)
