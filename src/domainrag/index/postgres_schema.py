"""The PostgreSQL store's schema: one PostgreSQL schema per collection, versioned.

A collection ``NAME`` lives in the schema ``domainrag_NAME``; its ``schema_version`` table holds
the version the tables were created or migrated to. :func:`ensure_schema` creates a missing
collection, migrates an older one step by step (each step in the caller's transaction) and
refuses one written by a newer domainrag.

Tables (all in the collection's schema):

- ``state`` (one row): ``generation`` (bumped by every write transaction), ``horizon`` (the
  generation of the last write that deleted rows: views older than it have expired), the vector
  dimension (``NULL`` until the first vector), the manifest.
- ``gen_stats``: per live generation, the highest chunk rowid it holds (rowids come from one
  sequence and writers are serialised, so the rows of generation ``g`` are exactly those with
  ``rowid <= max_rowid`` once no older view can be alive past a delete), the number of chunks,
  their total token length and how many have vectors (the BM25 statistics a view uses).
- ``sources``, ``documents`` (``acl`` text array from ``metadata["acl"]``), ``chunks``
  (``tokens`` the analyser's tokens; ``vector``, in the HNSW graph), ``pending`` (chunk rowid
  and vector of the chunks written after the graph was built: searched exactly until a refresh
  folds them into the graph — pgvector inserts into a graph one vector at a time, ~25x slower per
  vector than a bulk build; a narrow table with the vectors stored inline, so that an exact scan
  reads no TOAST), ``postings`` (term, chunk, term frequency, chunk length;
  its index ``postings_pkey`` is dropped by a bulk load into an empty collection and built again
  when the load ends) and ``terms`` (document frequency per term), ``embedding_cache``;
- ``parse_notes`` (version 3): each source's parse notes (a jsonb list), removed with the source.
"""

from __future__ import annotations

import re

from ..errors import ConfigError

#: The version this code writes; a collection at a higher version is refused.
SCHEMA_VERSION = 3
SCHEMA_PREFIX = "domainrag_"
VECTOR_INDEX = "chunks_vector_hnsw"
POSTINGS_INDEX = "postings_pkey"
_COLLECTION = re.compile(r"[a-z][a-z0-9_]{0,39}")


def schema_name(collection: str) -> str:
    """The PostgreSQL schema of ``collection`` (validated: it becomes an identifier)."""
    if not _COLLECTION.fullmatch(collection):
        raise ConfigError(
            f"Collection name {collection!r} is not valid: use 1-40 lower-case letters, digits and "
            "underscores, starting with a letter (postgresql://HOST/DB#my_collection)"
        )
    return SCHEMA_PREFIX + collection


def create_statements(schema: str) -> list[str]:
    """DDL of the current version (the vector column gets its dimension with the first vector)."""
    s = schema
    return [
        f"CREATE SCHEMA IF NOT EXISTS {s}",
        f"CREATE TABLE {s}.schema_version (version integer NOT NULL)",
        f"INSERT INTO {s}.schema_version VALUES ({SCHEMA_VERSION})",
        f"""CREATE TABLE {s}.state (
            one boolean PRIMARY KEY DEFAULT true CHECK (one),
            generation bigint NOT NULL DEFAULT 0, horizon bigint NOT NULL DEFAULT 0,
            dimensions integer, manifest jsonb)""",
        f"INSERT INTO {s}.state DEFAULT VALUES",
        f"""CREATE TABLE {s}.gen_stats (
            gen bigint PRIMARY KEY, max_rowid bigint NOT NULL, chunks bigint NOT NULL,
            total_length bigint NOT NULL, vectors bigint NOT NULL)""",
        f"INSERT INTO {s}.gen_stats VALUES (0, 0, 0, 0, 0)",
        f"""CREATE TABLE {s}.sources (
            source text PRIMARY KEY, content_hash text NOT NULL, size bigint NOT NULL,
            mtime_ns bigint NOT NULL, ingested_at timestamptz NOT NULL DEFAULT now())""",
        f"""CREATE TABLE {s}.documents (
            rowid bigserial UNIQUE, id text PRIMARY KEY,
            source text NOT NULL REFERENCES {s}.sources(source) ON DELETE CASCADE,
            title text NOT NULL, text text NOT NULL, metadata jsonb NOT NULL,
            acl text[] NOT NULL DEFAULT '{{}}')""",
        f"CREATE INDEX ON {s}.documents (source)",
        f"CREATE INDEX ON {s}.documents USING gin (acl)",
        f"""CREATE TABLE {s}.chunks (
            rowid bigserial PRIMARY KEY, id text NOT NULL UNIQUE,
            doc_rowid bigint NOT NULL REFERENCES {s}.documents(rowid) ON DELETE CASCADE,
            ordinal integer NOT NULL, start_char integer NOT NULL, end_char integer NOT NULL,
            page integer, heading_path jsonb NOT NULL, text text NOT NULL, tokens text[] NOT NULL,
            vector vector)""",
        f"CREATE INDEX ON {s}.chunks (doc_rowid)",
        *pending_table_statements(s),
        f"""CREATE TABLE {s}.postings (
            term text NOT NULL, chunk bigint NOT NULL,
            tf integer NOT NULL, length integer NOT NULL)""",
        postings_index_statement(s),
        f"CREATE TABLE {s}.terms (term text PRIMARY KEY, df bigint NOT NULL)",
        f"""CREATE TABLE {s}.embedding_cache (
            model text NOT NULL, key text NOT NULL, vector bytea NOT NULL, PRIMARY KEY (model, key))""",
        *parse_notes_statements(s),
    ]


def pending_table_statements(schema: str) -> list[str]:
    """The vectors waiting outside the HNSW graph (see the module docstring; version 2)."""
    return [f"""CREATE TABLE IF NOT EXISTS {schema}.pending (
                rowid bigint PRIMARY KEY REFERENCES {schema}.chunks(rowid) ON DELETE CASCADE,
                vector vector NOT NULL)""",
            f"ALTER TABLE {schema}.pending ALTER COLUMN vector SET STORAGE MAIN"]


def parse_notes_statements(schema: str) -> list[str]:
    """The ``parse_notes`` table (version 3)."""
    return [f"""CREATE TABLE {schema}.parse_notes (
        source text PRIMARY KEY REFERENCES {schema}.sources(source) ON DELETE CASCADE, notes jsonb NOT NULL)"""]


_SCHEMA_MARK = "SCHEMA__"
#: Steps from version N to N+1 (statements with ``{s}`` for the schema).
MIGRATIONS: dict[int, list[str]] = {
    1: [statement.replace(_SCHEMA_MARK, "{s}") for statement in pending_table_statements(_SCHEMA_MARK)],
    2: [statement.replace(_SCHEMA_MARK, "{s}") for statement in parse_notes_statements(_SCHEMA_MARK)],
}


def postings_index_statement(schema: str) -> str:
    """The postings index (term, chunk) with tf and length, so that a term's postings are an
    index-only range scan. A bulk load drops it and builds it again at its end."""
    return f"CREATE UNIQUE INDEX IF NOT EXISTS {POSTINGS_INDEX} ON {schema}.postings (term, chunk) INCLUDE (tf, length)"


def vector_column_statement(schema: str, dimensions: int) -> str:
    """Give the vector column its dimension (with the first vector written)."""
    return f"ALTER TABLE {schema}.chunks ALTER COLUMN vector TYPE vector({dimensions})"


def vector_index_statement(schema: str, m: int, ef_construction: int) -> str:
    """The HNSW (cosine) index over the chunk vectors, built in one pass at the end of an ingest."""
    return (f"CREATE INDEX IF NOT EXISTS {VECTOR_INDEX} ON {schema}.chunks USING hnsw (vector vector_cosine_ops) "
            f"WITH (m = {m}, ef_construction = {ef_construction})")
