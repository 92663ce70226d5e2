"""Readers for BEIR dataset folders: ``queries.jsonl`` and ``qrels/<split>.tsv``.

A BEIR folder holds ``corpus.jsonl`` (documents), ``queries.jsonl`` (one JSON object a line
with ``_id`` and ``text``) and ``qrels/<split>.tsv`` (a header ``query-id<TAB>corpus-id<TAB>score``
then one judgement a line, the score an integer relevance grade). Malformed input raises
:class:`~domainrag.errors.ConfigError` naming the file and the line.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..errors import ConfigError

_HEADER = ("query-id", "corpus-id", "score")


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    """Numbered (1-based), non-blank lines of a UTF-8 text file."""
    try:
        with path.open(encoding="utf-8-sig") as handle:
            for number, line in enumerate(handle, start=1):
                if line.strip():
                    yield number, line.rstrip("\r\n")
    except FileNotFoundError as exc:
        raise ConfigError(f"{path}: file not found") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    except OSError as exc:
        raise ConfigError(f"{path}: cannot be read ({exc.strerror or exc})") from exc


def _grade(text: str, where: str) -> int:
    try:
        value = float(text)
    except ValueError:
        raise ConfigError(f"{where}: score {text!r} is not a number") from None
    if not value.is_integer():
        raise ConfigError(f"{where}: score {text!r} is not an integer relevance grade")
    return int(value)


def load_beir_qrels(path: str | Path) -> dict[str, dict[str, int]]:
    """Read a BEIR qrels TSV into ``{query_id: {doc_id: grade}}``.

    The header line is optional. Blank lines are skipped; a pair judged twice with different
    grades, a line without three tab-separated fields, or a non-integer score is an error.
    """
    path = Path(path)
    qrels: dict[str, dict[str, int]] = {}
    for number, line in _lines(path):
        where = f"{path}, line {number}"
        fields = line.split("\t")
        if number == 1 and tuple(f.strip().lower() for f in fields) == _HEADER:
            continue
        if len(fields) != 3:
            raise ConfigError(
                f"{where}: expected 3 tab-separated fields (query-id, corpus-id, score), "
                f"got {len(fields)}: {line[:80]!r}"
            )
        qid, doc_id = fields[0].strip(), fields[1].strip()
        if not qid or not doc_id:
            raise ConfigError(f"{where}: empty query-id or corpus-id: {line[:80]!r}")
        grade = _grade(fields[2].strip(), where)
        judged = qrels.setdefault(qid, {})
        if judged.get(doc_id, grade) != grade:
            raise ConfigError(
                f"{where}: ({qid!r}, {doc_id!r}) judged again with a different score "
                f"({judged[doc_id]} then {grade})"
            )
        judged[doc_id] = grade
    return qrels


def load_beir_queries(path: str | Path) -> dict[str, str]:
    """Read a BEIR ``queries.jsonl`` into ``{query_id: text}`` (other fields are ignored)."""
    return {qid: record["text"] for qid, record in load_beir_query_records(path).items()}


def load_beir_query_records(path: str | Path) -> dict[str, dict[str, Any]]:
    """Read a BEIR ``queries.jsonl`` into ``{query_id: record}`` (every field kept)."""
    path = Path(path)
    queries: dict[str, dict[str, Any]] = {}
    for number, line in _lines(path):
        where = f"{path}, line {number}"
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{where}: invalid JSON ({exc.msg} at column {exc.colno})") from None
        if not isinstance(record, dict):
            raise ConfigError(f"{where}: expected a JSON object, got {type(record).__name__}")
        qid, text = record.get("_id"), record.get("text")
        if not isinstance(qid, (str, int)) or isinstance(qid, bool) or str(qid) == "":
            raise ConfigError(f"{where}: missing or invalid '_id' (got {qid!r})")
        if not isinstance(text, str):
            raise ConfigError(f"{where}: missing or non-string 'text' for query {qid!r}")
        if str(qid) in queries:
            raise ConfigError(f"{where}: duplicate query id {qid!r}")
        queries[str(qid)] = record
    return queries


def qrels_splits(root: str | Path) -> list[str]:
    """The split names of a BEIR folder (the stems of ``qrels/*.tsv``), sorted."""
    return sorted(p.stem for p in (Path(root) / "qrels").glob("*.tsv"))


def qrels_path(root: str | Path, split: str) -> Path:
    """The qrels file of ``split`` in a BEIR folder; an error lists the splits that exist."""
    path = Path(root) / "qrels" / f"{split}.tsv"
    if not path.is_file():
        found = ", ".join(qrels_splits(root)) or "none"
        raise ConfigError(f"{root}: no qrels for split {split!r} (splits found: {found})")
    return path
