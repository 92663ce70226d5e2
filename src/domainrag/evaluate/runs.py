"""Stored evaluation runs: SQLite (``runs.sqlite3`` in the knowledge base) or, with ``[runs] url``,
tables in a PostgreSQL database that a team's CI and its people share.

Each run keeps its manifest, its per-case records (written as each case finishes, so an
interrupted run loses nothing and resumes where it stopped) and, once finished, its summary
(metrics, confidence intervals, scenarios). A run is found by id, by name (the newest of that
name), or as ``last`` / ``last~N`` (N runs before the newest).

A finished run whose records include failed cases (``"status": "failed"``: a model call failed)
is reopened by :meth:`RunStore.start` for the same key, so that re-running the evaluation retries
only those cases in the same run.

:class:`RunStore` is written once over the :class:`~domainrag.tables.Tables` seam; :func:`open_runs`
chooses the database. Several processes (machines, with PostgreSQL) may write one store at once:
starting a run and deleting runs are serialised transactions, case records are upserts.
"""

from __future__ import annotations

import builtins
import json
import re
import secrets
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..tables import SQLiteTables, Tables
from .run_records import Run, RunInfo, RunManifest

RUNS_FILE = "runs.sqlite3"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY, name TEXT NOT NULL, created TEXT NOT NULL, key TEXT NOT NULL,
    status TEXT NOT NULL, manifest TEXT NOT NULL, summary TEXT);
CREATE TABLE IF NOT EXISTS pins (name TEXT PRIMARY KEY, run_id TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS results (
    run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE, case_id TEXT NOT NULL,
    position INTEGER NOT NULL, record TEXT NOT NULL, PRIMARY KEY (run_id, case_id));
"""
#: The same tables in PostgreSQL (``seq``: the order of insertion, SQLite's ``rowid``).
POSTGRES_DDL = (
    """CREATE TABLE IF NOT EXISTS runs (
        seq bigserial, id text PRIMARY KEY, name text NOT NULL, created text NOT NULL, key text NOT NULL,
        status text NOT NULL, manifest text NOT NULL, summary text)""",
    "CREATE TABLE IF NOT EXISTS pins (name text PRIMARY KEY, run_id text NOT NULL)",
    """CREATE TABLE IF NOT EXISTS results (
        run_id text NOT NULL REFERENCES runs(id) ON DELETE CASCADE, case_id text NOT NULL,
        position integer NOT NULL, record text NOT NULL, PRIMARY KEY (run_id, case_id))""",
)
_LAST = re.compile(r"last(?:~(\d+))?")


def open_runs(url: str, kb_dir: Path | None) -> RunStore:
    """The run store ``[runs] url`` names: empty, ``runs.sqlite3`` in ``kb_dir``; else PostgreSQL."""
    if not url:
        if kb_dir is None:
            raise ConfigError("Runs need a knowledge-base folder or a [runs] url; this knowledge base has neither.")
        return RunStore(kb_dir)
    from ..index.postgres_tables import PostgresTables

    return RunStore(PostgresTables(url, POSTGRES_DDL, what="run store"))


class RunStore:
    """The runs of one knowledge base: ``list()``, ``get(ref)``, ``pin``/``unpin`` baseline
    names, ``delete``. ``where``: a knowledge-base folder (``runs.sqlite3`` in it) or
    :class:`~domainrag.tables.Tables`. A context manager; thread-safe."""

    def __init__(self, where: str | Path | Tables) -> None:
        if isinstance(where, (str, Path)):
            # WAL + NORMAL: a killed process loses nothing committed; only a power cut may lose the
            # last cases, which a resumed run then recomputes. FULL made each case ~3 ms under load.
            where = SQLiteTables(Path(where) / RUNS_FILE, _SCHEMA, what="run store",
                                 fix="Move it aside to start a new one (the knowledge base itself is unaffected), "
                                     "or restore it from a backup.")
        self._db = where
        self.label = where.label
        #: A stored case record of a case whose model call failed (evaluate/faults.py).
        self._failed_sql = f"{where.json_field('record', 'status')} = 'failed'"
        self._newest = f"created DESC, {where.inserted} DESC"

    def start(self, name: str, manifest: dict[str, Any], key: str) -> tuple[str, str | None]:
        """``(run_id, resumed)`` for the newest run with this ``key`` (same suite, settings,
        corpus, model...): unfinished, it is resumed (``resumed`` is ``"running"``); finished
        with failed cases, it is reopened to retry them (``"done"``; its status is ``running``
        until it finishes again). Otherwise a new run starts (``resumed`` is None)."""
        with self._db.transaction("start"):
            rows = self._db.execute(f"SELECT id, status FROM runs WHERE key=? ORDER BY {self._newest} LIMIT 1",
                                    (key,))
            row = rows[0] if rows else None
            if row and row[1] == "running":
                return row[0], "running"
            if row and row[1] == "done" and self._failed(row[0]):
                self._db.execute("UPDATE runs SET status='running' WHERE id=?", (row[0],))
                return row[0], "done"
            created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
            run_id = f"r-{created[:10].replace('-', '')}-{created[11:19].replace(':', '')}-{secrets.token_hex(2)}"
            self._db.execute("INSERT INTO runs (id, name, created, key, status, manifest, summary) "
                             "VALUES (?, ?, ?, ?, 'running', ?, NULL)",
                             (run_id, name, created, key, json.dumps(manifest, ensure_ascii=False)))
            return run_id, None

    def save_case(self, run_id: str, position: int, record: dict[str, Any]) -> None:
        self._db.execute("INSERT INTO results (run_id, case_id, position, record) VALUES (?, ?, ?, ?) "
                         "ON CONFLICT (run_id, case_id) DO UPDATE SET position = excluded.position, "
                         "record = excluded.record",
                         (run_id, record["id"], position, json.dumps(record, ensure_ascii=False)))

    def records(self, run_id: str) -> dict[str, dict[str, Any]]:
        """The case records saved so far, by case id, in suite order."""
        rows = self._db.execute("SELECT case_id, record FROM results WHERE run_id=? ORDER BY position", (run_id,))
        return {case_id: json.loads(record) for case_id, record in rows}

    def _failed(self, run_id: str) -> int:
        return int(self._db.execute(f"SELECT COUNT(*) FROM results WHERE run_id=? AND {self._failed_sql}",
                                    (run_id,))[0][0])

    def finish(self, run_id: str, manifest: dict[str, Any], summary: dict[str, Any]) -> None:
        self._db.execute("UPDATE runs SET status='done', manifest=?, summary=? WHERE id=?",
                         (json.dumps(manifest, ensure_ascii=False), json.dumps(summary, ensure_ascii=False), run_id))

    def list(self) -> list[RunInfo]:
        """Every run, newest first: id, name, created, status, cases judged (``judged``; fewer
        than ``manifest.cases`` when interrupted or stopped early), how many of those failed
        (``failed``: a model call failed; re-running the evaluation retries them), the metrics."""
        rows = self._db.execute(
            "SELECT id, name, created, status, manifest, summary, "
            "(SELECT COUNT(*) FROM results WHERE results.run_id = runs.id), "
            f"(SELECT COUNT(*) FROM results WHERE results.run_id = runs.id AND {self._failed_sql}) FROM runs "
            f"ORDER BY {self._newest}")
        return [RunInfo(run_id=r[0], name=r[1], created=r[2], status=r[3], judged=int(r[6]), failed=int(r[7]),
                        manifest=RunManifest(json.loads(r[4])),
                        metrics=json.loads(r[5])["metrics"] if r[5] else {})
                for r in rows]

    def pin(self, ref: str, name: str) -> str:
        """Name run ``ref`` as the baseline ``name`` (replacing an earlier pin); its id."""
        with self._db.transaction("write"):
            run_id = self.resolve(ref)
            self._db.execute("INSERT INTO pins (name, run_id) VALUES (?, ?) "
                             "ON CONFLICT (name) DO UPDATE SET run_id = excluded.run_id", (name, run_id))
        return run_id

    def unpin(self, name: str) -> str:
        """Remove the baseline name ``name``; the id of the run it named."""
        with self._db.transaction("write"):
            rows = self._db.execute("DELETE FROM pins WHERE name=? RETURNING run_id", (name,))
        if rows:
            return str(rows[0][0])
        names = ", ".join(self.pins()) or "none"
        raise ConfigError(f"No baseline named {name!r} in {self.label}; pinned: {names}.")

    def delete(self, refs: Sequence[str]) -> builtins.list[str]:
        """Delete the runs ``refs`` name, with their case records, in one transaction; their
        ids. Nothing is deleted when a name is unknown or a run is pinned as a baseline (unpin
        it first)."""
        with self._db.transaction("write"):
            ids = list(dict.fromkeys(self.resolve(ref) for ref in refs))
            pins = self.pins()
            for run_id in ids:
                pinned = sorted(name for name, target in pins.items() if target == run_id)
                if pinned:
                    raise ConfigError(f"Run {run_id} is the baseline {', '.join(map(repr, pinned))}; unpin "
                                      f"it first: domainrag runs unpin {pinned[0]}")
            for run_id in ids:
                self._db.execute("DELETE FROM results WHERE run_id=?", (run_id,))
                self._db.execute("DELETE FROM runs WHERE id=?", (run_id,))
        return ids

    def pins(self) -> dict[str, str]:
        return dict(self._db.execute("SELECT name, run_id FROM pins ORDER BY name"))

    def resolve(self, ref: str) -> str:
        """The id of the run ``ref`` names: a pinned baseline name, an id, a run name (its newest
        run), ``last`` or ``last~N`` (finished runs)."""
        pinned = self.pins().get(ref)
        if pinned:
            return pinned
        listed = self.list()
        runs = [r for r in listed if r.status == "done"]
        match = _LAST.fullmatch(ref)
        if match:
            back = int(match.group(1) or 0)
            if back >= len(runs):
                raise ConfigError(f"No run {ref!r}: {len(runs)} finished run(s) stored in {self.label}.")
            return runs[back].run_id
        for run in listed:
            if ref in (run.run_id, run.name):
                return run.run_id
        recent = ", ".join(f"{r.run_id} ({r.name})" for r in listed[:5]) or "none"
        raise ConfigError(f"No run {ref!r} in {self.label}. Recent runs: {recent}. "
                          "'domainrag runs' lists them all.")

    def get(self, ref: str | Run) -> Run:
        """The run ``ref`` names (see :meth:`resolve`; a :class:`Run` is returned as it is)."""
        if isinstance(ref, Run):
            return ref
        run_id = self.resolve(ref)
        (row,) = self._db.execute("SELECT name, created, manifest, summary FROM runs WHERE id=?", (run_id,))
        summary = json.loads(row[3]) if row[3] else {}
        return Run.from_dict({"run_id": run_id, "name": row[0], "created": row[1], "manifest": json.loads(row[2]),
                              **summary, "cases": list(self.records(run_id).values())})

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> RunStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
