"""The configuration of a knowledge base with no folder (``--kb postgresql://HOST/DB#COLLECTION``):
the text of its ``domainrag.toml`` in the table ``config`` of the collection's schema.

It never holds ``[store] url`` or ``[runs] url`` (the knowledge base is where its URL points),
and its network settings are not trusted (:func:`domainrag.config.loads`).
"""

from __future__ import annotations

from .. import config as config_io
from ..config import KBConfig
from .postgres_tables import PostgresTables

DDL = ("CREATE TABLE IF NOT EXISTS config (name text PRIMARY KEY, content text NOT NULL)",)
NAME = config_io.CONFIG_FILE


def read_config(url: str) -> KBConfig | None:
    """The configuration kept in the collection ``url`` names; ``None`` when it has none."""
    tables = PostgresTables(url, DDL, what="configuration")
    try:
        rows = tables.execute("SELECT content FROM config WHERE name = ?", (NAME,))
    finally:
        tables.close()
    return config_io.loads(rows[0][0], f"{tables.label} (table config)") if rows else None


def write_config(url: str, config: KBConfig) -> None:
    """Keep ``config`` (less its store and runs URLs) as the collection's configuration."""
    portable = config.model_copy(update={"store": config.store.model_copy(update={"url": ""}),
                                         "runs": config.runs.model_copy(update={"url": ""})})
    tables = PostgresTables(url, DDL, what="configuration")
    try:
        tables.execute("INSERT INTO config (name, content) VALUES (?, ?) "
                       "ON CONFLICT (name) DO UPDATE SET content = excluded.content", (NAME, config_io.dumps(portable)))
    finally:
        tables.close()
