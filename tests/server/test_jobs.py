"""Ingest jobs: persisted, resumed after a restart, stopped safely on shutdown."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from conftest import FAKE, wait_job

from domainrag.kb import KnowledgeBase
from domainrag.server.collections import Collections
from domainrag.server.jobs import Job, JobRunner, JobStore
from domainrag.server.problems import Conflict


def runner(home: Path) -> JobRunner:
    return JobRunner(JobStore(home / "jobs.sqlite3"), Collections(home, {}), home / "uploads")


def stage(jobs: JobRunner, collection: str, job_id: str, files: dict[str, str]) -> None:
    folder = jobs.incoming(collection, job_id)
    folder.mkdir(parents=True)
    for name, text in files.items():
        (folder / name).write_text(text)


def test_a_job_left_queued_by_a_dead_server_resumes_at_start(home: Path, make_client) -> None:
    KnowledgeBase.open(home / "collections" / "kb", create=True, overrides=FAKE).close()
    jobs = runner(home)
    stage(jobs, "kb", "j1", {"a.txt": "Alpha text.", "b.txt": "Beta text."})
    jobs.store.add(_running("j1", ["a.txt", "b.txt"]))  # a server killed while it ran the job
    jobs.store.close()
    client = make_client()  # the lifespan resumes it
    job = wait_job(client, "j1")
    assert (job["state"], job["files_done"]) == ("done", 2)
    assert {d["id"] for d in client.get("/v1/collections/kb/documents").json()["documents"]} == {"a.txt", "b.txt"}
    assert not (home / "uploads" / "kb" / "incoming" / "j1").exists()


def _running(job_id: str, files: list[str]) -> Job:
    return Job(id=job_id, collection="kb", kind="ingest", state="running", files=tuple(files),
               files_total=len(files))


def test_shutdown_stops_after_the_current_file_and_the_job_resumes(home: Path) -> None:
    KnowledgeBase.open(home / "collections" / "kb", create=True,
                       overrides={**FAKE, "ingest.batch_chunks": 1}).close()
    jobs = runner(home)
    files = {f"f{i}.txt": f"Document number {i} about topic {i}." for i in range(6)}
    stage(jobs, "kb", "j2", files)
    entered, release = threading.Event(), threading.Event()
    original = jobs.store.save

    def slow_save(job):  # hold the worker inside the first file's progress tick
        saved = original(job)
        if job.files_done == 1 and not entered.is_set():
            entered.set()
            release.wait(10)
        return saved

    jobs.store.save = slow_save  # type: ignore[method-assign]
    jobs.submit("kb", "ingest", sorted(files), job_id="j2")
    assert entered.wait(30)
    stopper = threading.Thread(target=jobs.stop, args=(10,))
    stopper.start()
    release.set()
    stopper.join(30)
    job = jobs.store.get("j2")
    assert job is not None and job.state == "interrupted" and job.finished_at is None
    with KnowledgeBase.open(home / "collections" / "kb") as kb:
        kept = {d["id"] for d in kb.store.iter_documents()}
    assert len(kept) < 6  # stopped early, and what is stored is whole documents
    again = runner(home)
    assert [j.id for j in again.resume()] == ["j2"]
    assert _wait(again, "j2").state == "done"
    with KnowledgeBase.open(home / "collections" / "kb") as kb:
        assert {d["id"] for d in kb.store.iter_documents()} == set(files)


def _wait(jobs: JobRunner, job_id: str) -> Job:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        job = jobs.store.get(job_id)
        if job and job.state not in ("queued", "running"):
            return job
        time.sleep(0.05)
    raise AssertionError(job_id)


def test_a_job_for_a_deleted_collection_fails_with_the_reason(home: Path) -> None:
    jobs = runner(home)
    stage(jobs, "gone", "j3", {"a.txt": "text"})
    jobs.submit("gone", "ingest", ["a.txt"], job_id="j3")
    job = _wait(jobs, "j3")
    assert job.state == "failed" and "No collection named 'gone'" in (job.error or "")


def test_the_server_refuses_jobs_while_stopping(home: Path) -> None:
    jobs = runner(home)
    jobs.stop(1)
    with pytest.raises(Conflict, match="shutting down"):
        jobs.submit("kb", "ingest", ["a.txt"])
