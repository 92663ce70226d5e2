"""Evaluation suites: JSONL files of cases, or BEIR folders read as suites.

JSONL, one case per line::

    {"id": "q1", "question": "What is the starting dose?", "answers": ["50 micrograms"],
     "gold": ["guide.md", {"doc_id": "guide.md", "quote": "starting dose is 50 micrograms"},
              {"doc_id": "report.pdf", "page": 3}, {"doc_id": "a.txt", "start": 10, "end": 80}],
     "scenario": ["medical", "dosage"], "answerable": true}

``id`` and ``question`` are required; ``answers`` (a string or a list), ``gold``, ``scenario``
(a string or a list of tags), ``answerable`` (default true; false means the right output is an
abstention) and ``generated`` (default false) are optional. Gold evidence names a document by
the id domainrag gives it (its path relative to the ingested folder, or a BEIR ``_id``), with
an optional char range, quote or page, and ``relevance`` (default 1). A malformed line is
reported with its line number and the reason — every bad line at once, before any work starts.

A BEIR folder (``corpus.jsonl``, ``queries.jsonl``, ``qrels/<split>.tsv``) becomes one case per
query of the split's qrels that has a relevant document: gold = the judged documents with
their grades; answers from the query's ``answers``/``answer`` field; scenario = the dataset's
name plus ``scenario``/``tags`` fields and ``answer_type``/``answer_from``/``category`` values.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..types import Case, Evidence
from .beir_qrels import load_beir_qrels, load_beir_query_records, qrels_path

#: Query fields of BEIR folders that become scenario tags as ``field:value``.
TAG_FIELDS = ("answer_type", "answer_from", "category", "type")
MAX_ERRORS_SHOWN = 10


@dataclass(frozen=True)
class Suite:
    """The cases of a suite and what identifies it: ``hash`` covers the file(s) read."""

    name: str
    path: str
    cases: tuple[Case, ...]
    hash: str
    format: str  # "jsonl" | "beir"
    split: str | None = None

    @property
    def is_beir(self) -> bool:
        return self.format == "beir"


def load_suite(path: str | os.PathLike[str], split: str = "test") -> Suite:
    """A JSONL suite, or a BEIR folder's ``split`` as a suite."""
    path = Path(path)
    if path.is_dir():
        if not (path / "queries.jsonl").is_file():
            raise ConfigError(f"{path} is a folder but not a BEIR dataset (no queries.jsonl). "
                              "Give a JSONL suite file or a BEIR folder.")
        return _beir_suite(path, split)
    if not path.is_file():
        raise ConfigError(f"Suite {path} does not exist.")
    return _jsonl_suite(path)


def _jsonl_suite(path: Path) -> Suite:
    raw = path.read_bytes()
    cases: list[Case] = []
    errors: list[str] = []
    seen: set[str] = set()
    for number, line in enumerate(raw.decode("utf-8-sig", errors="replace").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            case = parse_case(json.loads(line))
        except json.JSONDecodeError as exc:
            errors.append(f"line {number}: invalid JSON ({exc.msg} at column {exc.colno})")
            continue
        except ConfigError as exc:
            errors.append(f"line {number}: {exc}")
            continue
        if case.id in seen:
            errors.append(f"line {number}: duplicate id {case.id!r}")
            continue
        seen.add(case.id)
        cases.append(case)
    if errors:
        shown = "; ".join(errors[:MAX_ERRORS_SHOWN])
        more = f" (and {len(errors) - MAX_ERRORS_SHOWN} more)" if len(errors) > MAX_ERRORS_SHOWN else ""
        raise ConfigError(f"{path}: {len(errors)} malformed line(s): {shown}{more}. Fix them and run again.")
    if not cases:
        raise ConfigError(f"{path} holds no cases: write one JSON object per line with 'id' and 'question'.")
    return Suite(path.stem, str(path), tuple(cases), _hash(raw), "jsonl")


def parse_case(record: Any) -> Case:
    """A :class:`Case` from one suite record; a :class:`ConfigError` says what is wrong."""
    if not isinstance(record, dict):
        raise ConfigError(f"expected a JSON object, got {type(record).__name__}")
    unknown = set(record) - {"id", "question", "answers", "gold", "scenario", "answerable", "generated"}
    if unknown:
        raise ConfigError(f"unknown field(s) {sorted(unknown)}")
    cid, question = record.get("id"), record.get("question")
    if not isinstance(cid, (str, int)) or isinstance(cid, bool) or str(cid) == "":
        raise ConfigError(f"missing or invalid 'id' (got {cid!r})")
    if not isinstance(question, str) or not question.strip():
        raise ConfigError(f"missing or empty 'question' for case {cid!r}")
    answerable = record.get("answerable", True)
    if not isinstance(answerable, bool):
        raise ConfigError(f"'answerable' must be true or false (got {answerable!r})")
    return Case(str(cid), question.strip(), _strings(record.get("answers"), "answers"),
                tuple(_evidence(g) for g in _list(record.get("gold"), "gold")),
                _strings(record.get("scenario"), "scenario"), answerable,
                bool(record.get("generated", False)))


def _evidence(item: Any) -> Evidence:
    if isinstance(item, str) and item:
        return Evidence(item)
    if not isinstance(item, dict) or not isinstance(item.get("doc_id"), str) or not item["doc_id"]:
        raise ConfigError(f"gold item {item!r} needs a 'doc_id' (or is a document id string)")
    start, end = item.get("start"), item.get("end")
    valid_range = isinstance(start, int) and isinstance(end, int) and 0 <= start < end
    if (start is None) != (end is None) or (start is not None and not valid_range):
        raise ConfigError(f"gold item {item!r}: 'start' and 'end' must be given together, 0 <= start < end")
    quote, page, relevance = item.get("quote"), item.get("page"), item.get("relevance", 1)
    if quote is not None and (not isinstance(quote, str) or not quote.strip()):
        raise ConfigError(f"gold item {item!r}: 'quote' must be non-empty text")
    if page is not None and (not isinstance(page, int) or page < 1):
        raise ConfigError(f"gold item {item!r}: 'page' must be a page number >= 1")
    if not isinstance(relevance, int) or relevance < 1:
        raise ConfigError(f"gold item {item!r}: 'relevance' must be an integer >= 1")
    return Evidence(item["doc_id"], start, end, quote, page, relevance)


def _list(value: Any, name: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise ConfigError(f"'{name}' must be a list (got {type(value).__name__})")
    return value


def _strings(value: Any, name: str) -> tuple[str, ...]:
    items = [value] if isinstance(value, str) else _list(value, name)
    if not all(isinstance(v, str) for v in items):
        raise ConfigError(f"'{name}' must be text or a list of text (got {value!r})")
    return tuple(v.strip() for v in items if v.strip())


def _beir_suite(root: Path, split: str) -> Suite:
    qrels_file = qrels_path(root, split)
    qrels = load_beir_qrels(qrels_file)
    records = load_beir_query_records(root / "queries.jsonl")
    cases = []
    for qid in sorted(qrels):
        judged = qrels[qid]
        if qid not in records or not any(g >= 1 for g in judged.values()):
            continue
        record = records[qid]
        gold = tuple(Evidence(doc, relevance=grade) for doc, grade in sorted(judged.items()) if grade >= 1)
        cases.append(Case(qid, record["text"], _beir_answers(record), gold, _beir_tags(root.name, record)))
    if not cases:
        raise ConfigError(f"{qrels_file}: no query of split {split!r} has a relevant document.")
    digest = _hash((root / "queries.jsonl").read_bytes() + b"\0" + qrels_file.read_bytes())
    return Suite(f"{root.name}:{split}", str(root), tuple(cases), digest, "beir", split)


def _beir_answers(record: dict[str, Any]) -> tuple[str, ...]:
    answers = record.get("answers")
    if isinstance(answers, list):
        return tuple(a for a in answers if isinstance(a, str) and a.strip())
    answer = record.get("answer")
    return (answer,) if isinstance(answer, str) and answer.strip() else ()


def _beir_tags(name: str, record: dict[str, Any]) -> tuple[str, ...]:
    tags = [name]
    for key in ("scenario", "tags"):
        value = record.get(key)
        tags += [value] if isinstance(value, str) else [v for v in value or [] if isinstance(v, str)]
    tags += [f"{key}:{record[key]}" for key in TAG_FIELDS if isinstance(record.get(key), str) and record[key]]
    return tuple(dict.fromkeys(t for t in tags if t))


def _hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:16]
