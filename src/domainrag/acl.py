"""Access-control groups: the names documents and API keys carry.

A document's groups are ``Document.metadata["acl"]`` (a sorted list of names; absent or empty:
every caller of the collection may read it). A caller with groups ``G`` reads a document when its
ACL is empty or shares a name with ``G``; a caller with no group restriction (``None``: the
library user, an admin key) reads everything. The store applies that rule inside its query;
this module only validates and normalises names, wherever they come from (``kb.ingest(acl=...)``,
``--acl``, ``[[ingest.acl]]`` rules, a document's own ``acl`` field, ``domainrag keys create
--groups``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from .errors import ConfigError

#: The document metadata field that holds its groups.
ACL_FIELD = "acl"
MAX_GROUP_CHARS = 64
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_BRACKETS = re.compile(r"\A\[(.*)\]\Z", re.DOTALL)


def check_group(name: object, where: str = "acl") -> str:
    """``name`` stripped of surrounding spaces if it is a valid group name, else
    :class:`ConfigError` naming ``where`` it came from and the rule it breaks."""
    if not isinstance(name, str):
        raise ConfigError(f"{where}: group names are text; got {name!r}. Write them as strings, e.g. [\"hr\"].")
    stripped = name.strip()
    problem = ""
    if not stripped:
        problem = "is empty"
    elif "," in stripped:
        problem = "contains a comma (commas separate groups: write 'a,b' as two groups)"
    elif len(stripped) > MAX_GROUP_CHARS:
        problem = f"is {len(stripped)} characters long; the limit is {MAX_GROUP_CHARS}"
    elif _CONTROL.search(stripped):
        problem = "contains a control character"
    elif stripped == "*":
        problem = ("is '*', which is not a group: a document without groups is visible to every key, "
                   "and a key created with --groups '*' sees every document")
    if problem:
        raise ConfigError(f"{where}: the group name {name!r} {problem}.")
    return stripped


def parse_groups(value: object, where: str = "acl") -> tuple[str, ...]:
    """Group names from a list of names or one comma-separated string (``"hr, legal"``, also
    ``"[hr, legal]"`` as simple front matter writes it), validated, sorted and without
    duplicates. ``None`` and ``""`` are no groups."""
    if value is None:
        return ()
    if isinstance(value, str):
        inner = _BRACKETS.match(value.strip())
        text = inner.group(1) if inner else value
        items: Iterable[object] = [part.strip().strip("\"'") for part in text.split(",")] if text.strip() else []
    elif isinstance(value, (list, tuple, set, frozenset)):
        items = value
    else:
        raise ConfigError(
            f"{where}: expected a list of group names or a comma-separated string; got {value!r}."
        )
    return tuple(sorted({check_group(item, where) for item in items}))
