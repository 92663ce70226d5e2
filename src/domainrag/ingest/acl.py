"""Access groups at ingest: which groups each ingested document gets.

In order, the first that applies decides a source's groups:
1. the groups given to the ingest (``kb.ingest(paths, acl=[...])``, ``domainrag ingest --acl``),
   for every document of those paths (``[]``: visible to every caller);
2. the first ``[[ingest.acl]]`` rule whose ``path`` glob matches the file's path relative to the
   ingested folder;
3. the groups the source was given by 1 or 2 when it was last ingested: a plain re-ingest (or
   ``--reindex``) never makes a restricted document public;
4. the document's own ``acl`` field (a JSON/JSONL record's or a BEIR corpus entry's ``acl``, a
   Markdown front matter ``acl:`` line or list), a list or a comma-separated string.

Groups given by 1-3 are part of the source's stored content hash (``<sha256>|acl=g1,g2``): a
source re-ingested with other groups is "changed" and rewritten, with its chunks' vectors taken
from the embedding cache (no re-embedding).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from ..acl import ACL_FIELD, parse_groups
from ..config import AclRule
from ..types import Document
from .discover import glob_match

Groups = tuple[str, ...]
_TAG = "|acl="


def rule_groups(rules: Sequence[AclRule], relative: str) -> Groups | None:
    """The groups of the first rule whose ``path`` matches ``relative``; ``None`` if none does."""
    for rule in rules:
        if glob_match(relative, rule.path):
            return tuple(sorted(set(rule.groups)))
    return None


def tagged(digest: str, groups: Groups | None) -> str:
    """The content hash stored for a source with ``digest`` and given ``groups``."""
    return digest if groups is None else f"{digest}{_TAG}{','.join(groups)}"


def given_groups(content_hash: str) -> Groups | None:
    """The groups a source was given (by the ingest call or a rule), read from its stored content
    hash; ``None`` when none were."""
    digest, tag, names = content_hash.partition(_TAG)
    if not tag:
        return None
    return tuple(names.split(",")) if names else ()


def with_groups(document: Document, given: Groups | None) -> Document:
    """``document`` with ``metadata["acl"]`` set to its groups: ``given`` when not ``None``, else
    its own ``acl`` field, validated (:class:`~domainrag.errors.ConfigError` names the bad name).
    A document without groups has no ``acl`` field."""
    groups = given if given is not None else parse_groups(document.metadata.get(ACL_FIELD),
                                                          where=f"{document.id}: the {ACL_FIELD} field")
    metadata = {k: v for k, v in document.metadata.items() if k != ACL_FIELD}
    if groups:
        metadata[ACL_FIELD] = list(groups)
    if metadata == dict(document.metadata):
        return document
    return dataclasses.replace(document, metadata=metadata)
