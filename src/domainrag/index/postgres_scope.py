"""A search scope (metadata filters and the caller's ACL groups) as a SQL condition on chunks.

The condition goes into the ranking statement's WHERE clause, so the top-k is taken over the
chunks the caller may see and asked for. Filters mean what they mean for the embedded store:
``path`` globs (SQLite GLOB syntax: ``*``, ``?``, ``[...]``) over ``metadata.path`` or the
document id, ``doc_id`` the document ids, any other key a metadata value (equal as JSON). A
document is visible to ``groups`` when its ACL (``metadata["acl"]``) is empty or shares a group.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from ..errors import ConfigError


def scope_condition(schema: str, column: str, filters: Mapping[str, Any] | None,
                    groups: Iterable[str] | None) -> tuple[str, dict[str, Any]]:
    """``(sql, params)``: a condition true for the chunk rowids in ``column`` that are in scope
    (``TRUE`` for no filters and no groups)."""
    where, params = document_condition(filters, groups)
    if where == "TRUE":
        return where, params
    sql = (f"{column} IN (SELECT sc.rowid FROM {schema}.chunks sc JOIN {schema}.documents d "
           f"ON d.rowid = sc.doc_rowid WHERE {where})")
    return sql, params


def document_condition(filters: Mapping[str, Any] | None, groups: Iterable[str] | None) -> tuple[str, dict[str, Any]]:
    """The scope as a condition on ``documents d`` (``TRUE`` for none) and its parameters."""
    from psycopg.types.json import Jsonb

    clauses: list[str] = []
    params: dict[str, Any] = {}
    if groups is not None:
        params["scope_groups"] = sorted(set(groups))
        clauses.append("(cardinality(d.acl) = 0 OR d.acl && %(scope_groups)s::text[])")
    for i, (key, value) in enumerate((filters or {}).items()):
        values = list(value) if isinstance(value, (list, tuple, set, frozenset)) else [value]
        name = f"scope_f{i}"
        if key == "path":
            params[name] = [glob_regex(str(v)) for v in values]
            clauses.append(f"coalesce(d.metadata->>'path', d.id) ~ ANY(%({name})s::text[])")
        elif key == "doc_id":
            params[name] = [str(v) for v in values]
            clauses.append(f"d.id = ANY(%({name})s::text[])")
        else:
            if not key.replace("_", "").isalnum():
                raise ConfigError(f"Filter field {key!r} must be letters, digits and underscores")
            params[name] = [Jsonb(v) for v in values]
            params[name + "k"] = key
            clauses.append(f"d.metadata->%({name}k)s = ANY(%({name})s::jsonb[])")
    return (" AND ".join(clauses) or "TRUE"), params


_GLOB_TOKEN = re.compile(r"\*|\?|\[!?\]?[^\]]*\]|[^*?\[]+|\[")


def glob_regex(pattern: str) -> str:
    """An anchored PostgreSQL regular expression matching what SQLite's GLOB ``pattern`` does."""
    out = []
    for token in _GLOB_TOKEN.findall(pattern):
        if token == "*":
            out.append(".*")
        elif token == "?":
            out.append(".")
        elif token.startswith("[") and len(token) > 1 and token.endswith("]"):
            body = token[1:-1]
            if body.startswith("!") or body.startswith("^"):
                body = "^" + body[1:]
            out.append("[" + body.replace("\\", "\\\\") + "]")
        else:
            out.append(re.sub(r"([\\.^$|()\[\]{}*+?])", r"\\\1", token))
    return "^" + "".join(out) + "$"
