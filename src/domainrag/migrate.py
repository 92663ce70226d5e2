"""``domainrag migrate SRC DST``: copy a knowledge base between stores without re-embedding.

SRC and DST are each a knowledge-base folder (its store: the embedded SQLite catalog, or the
``[store] url`` of its ``domainrag.toml``) or a store URL (``postgresql://HOST/DB#collection``,
``sqlite:///FOLDER``). Everything the index holds is carried: sources with their content
hashes (so the next incremental ingest skips unchanged files), documents, chunks with their
analyser tokens and vectors, the index manifest and the embedding cache. The destination must
be empty. A new destination folder gets the source folder's ``domainrag.toml`` (the embedded
store); a ``domainrag.toml`` already in it is used as it is. Likewise a PostgreSQL destination
without a configuration gets the source's, so that it opens with no folder
(``--kb postgresql://HOST/DB#collection``); a PostgreSQL source with one passes it on.

The copy is then verified: lexical and dense rankings of sample queries (the tokens and vectors
of every ``sample_every``-th chunk) are compared on both stores; rankings must hold the same
chunks in the same order (chunks whose scores tie within float precision may swap).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import config as config_io
from .config import KBConfig
from .errors import ConfigError, DomainragError
from .index.postgres_connect import is_postgres_url
from .index.ranked import Ranked
from .index.sqlite_store import CATALOG, SQLiteStore
from .index.store import SourceUpdate, Store, StoreView, load_store
from .redaction import redact_url
from .types import Chunk, Document, Span

#: Relative score difference under which two chunks count as tied.
TIE_TOLERANCE = 1e-4


@dataclass
class Sample:
    """A verification query: a chunk's first tokens and its vector."""

    tokens: list[str]
    vector: np.ndarray | None


@dataclass
class MigrateReport:
    """What a migration copied and how the verification went."""

    source: str
    destination: str
    sources: int = 0
    documents: int = 0
    chunks: int = 0
    cached_embeddings: int = 0
    queries: int = 0
    mismatches: list[str] = field(default_factory=list)

    @property
    def verified(self) -> bool:
        return not self.mismatches

    def summary(self) -> dict[str, Any]:
        return {"source": self.source, "destination": self.destination, "sources": self.sources,
                "documents": self.documents, "chunks": self.chunks, "cached_embeddings": self.cached_embeddings,
                "queries": self.queries, "verified": self.verified, "mismatches": self.mismatches}


@dataclass
class _End:
    """One end of a migration: its store, and the knowledge-base folder when it is one."""

    label: str
    store: Store
    folder: Path | None
    config: KBConfig | None


def migrate(src: str, dst: str, *, batch_sources: int = 200, sample_every: int = 50,
            max_queries: int = 40, k: int = 10) -> MigrateReport:
    """Copy the knowledge base at ``src`` into the empty ``dst`` (see module docstring)."""
    source = _open(src, template=None)
    try:
        template = source.config or _config_from_manifest(source)
        target = _open(dst, template=template)
    except BaseException:
        source.store.close()
        raise
    try:
        _check_empty(target)
        if template is not None and target.folder is None and target.config is None and is_postgres_url(dst):
            from .index.postgres_config import write_config

            write_config(dst, template)
        report = MigrateReport(source.label, target.label)
        samples = _copy(source.store, target.store, report, batch_sources, sample_every)
        target.store.refresh()
        _verify(source.store.view(), target.store.view(), samples[:max_queries], k, report)
        return report
    finally:
        source.store.close()
        target.store.close()


def _open(where: str, template: KBConfig | None) -> _End:
    if "://" in where:
        config = None
        if is_postgres_url(where):
            from .index.postgres_config import read_config

            config = read_config(where)
        return _End(redact_url(where), load_store(where, Path("."), KBConfig().index), None, config)
    folder = Path(where)
    if folder.exists() and not folder.is_dir():
        raise ConfigError(f"{folder} is a file; give a knowledge-base folder or a store URL")
    has_config = (folder / config_io.CONFIG_FILE).is_file()
    if not has_config and not (folder / CATALOG).exists():
        if template is None:
            raise ConfigError(
                f"No knowledge base at {folder}, and the source's manifest does not say how it was built: give an "
                f"existing knowledge-base folder, or copy the source's domainrag.toml into {folder} first."
            )
        folder.mkdir(parents=True, exist_ok=True)
        config_io.save(template.model_copy(update={"store": template.store.model_copy(update={"url": ""})}), folder)
    config = config_io.load(folder)
    label = str(folder) + (f" ({redact_url(config.store.url)})" if config.store.url else "")
    return _End(label, load_store(config.store.url, folder, config.index), folder, config)


def _config_from_manifest(end: _End) -> KBConfig | None:
    """The settings a new folder needs to search what ``end`` holds (embedder and chunking, read
    from its index manifest), or ``None`` when the manifest does not say."""
    manifest = end.store.manifest() or {}
    embedder, chunker = manifest.get("embedder") or {}, str(manifest.get("chunker", ""))
    parts = chunker.split(":")
    if not embedder.get("model") or len(parts) not in (3, 4) or parts[0] != "structure-v1":
        return None
    settings: dict[str, Any] = {"embedder.model": embedder["model"], "chunking.target_tokens": int(parts[1]),
                                "chunking.overlap_tokens": int(parts[2])}
    if embedder.get("max_length"):
        settings["embedder.max_length"] = embedder["max_length"]
    if len(parts) == 4:
        settings["ingest.max_chunk_chars"] = int(parts[3].rstrip("c"))
    return KBConfig().with_overrides(settings)


def _check_empty(end: _End) -> None:
    stats = end.store.stats()
    if stats.get("sources") or end.store.manifest() is not None:
        raise ConfigError(
            f"The destination {end.label} already holds {stats.get('sources', 0)} sources (or an index manifest); "
            "migrate into an empty knowledge base or collection (a new folder, or a new #collection name)."
        )


def _copy(source: Store, target: Store, report: MigrateReport, batch_sources: int, sample_every: int) -> list[Sample]:
    manifest = source.manifest()
    if manifest is not None:
        target.set_manifest(manifest)
    samples: list[Sample] = []
    batch: list[SourceUpdate] = []
    for update in export(source, batch_sources):
        batch.append(update)
        for i, tokens in enumerate(update.tokens):
            if (report.chunks + i) % sample_every == 0 and tokens:
                vector = None if update.vectors is None else update.vectors[i]
                samples.append(Sample(tokens[:6], vector))
        report.sources += 1
        report.documents += len(update.documents)
        report.chunks += len(update.chunks)
        if len(batch) >= batch_sources:
            target.write(batch)
            batch = []
    if batch:
        target.write(batch)
    for model, items in export_cache(source):
        target.cache_vectors(model, items)
        report.cached_embeddings += len(items)
    return samples


def export(store: Store, batch_sources: int = 200) -> Iterator[SourceUpdate]:
    """Every source of ``store`` as a :class:`SourceUpdate` (a store's own ``export`` when it has
    one; the embedded store's catalog is read directly)."""
    own = getattr(store, "export", None)
    if callable(own):
        yield from own(batch_sources)
        return
    if isinstance(store, SQLiteStore):
        yield from _sqlite_export(store.path, batch_sources)
        return
    raise ConfigError(f"Cannot read the sources of a {type(store).__name__} store to migrate them")


def export_cache(store: Store) -> Iterator[tuple[str, dict[str, np.ndarray]]]:
    own = getattr(store, "export_cache", None)
    if callable(own):
        yield from own()
    elif isinstance(store, SQLiteStore):
        yield from _sqlite_cache(store.path)


def _readonly(path: Path) -> sqlite3.Connection:
    try:
        return sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise DomainragError(f"Cannot open {path} to migrate it ({exc})") from exc


def _sqlite_export(path: Path, batch_sources: int) -> Iterator[SourceUpdate]:
    db = _readonly(path)
    try:
        after = ""
        while True:
            sources = db.execute("SELECT source, content_hash, size, mtime_ns FROM sources WHERE source > ? "
                                 "ORDER BY source LIMIT ?", (after, batch_sources)).fetchall()
            yield from (_sqlite_update(db, row) for row in sources)
            if len(sources) < batch_sources:
                return
            after = sources[-1][0]
    except sqlite3.Error as exc:
        raise DomainragError(f"Cannot read {path} to migrate it ({exc})") from exc
    finally:
        db.close()


def _sqlite_update(db: sqlite3.Connection, row: tuple[Any, ...]) -> SourceUpdate:
    source = row[0]
    update = SourceUpdate(source, row[1], row[2], row[3], [], [])
    vectors: list[bytes | None] = []
    for doc_id, title, text, metadata in db.execute(
            "SELECT id, title, text, metadata FROM documents WHERE source = ? ORDER BY rowid", (source,)):
        update.documents.append(Document(doc_id, text, source, title=title, metadata=json.loads(metadata)))
        for chunk_id, ordinal, start, end, page, path, chunk_text, tokens, vector in db.execute(
                "SELECT id, ordinal, start, end, page, heading_path, text, tokens, vector FROM chunks "
                "WHERE doc_id = ? ORDER BY ordinal, rowid", (doc_id,)):
            update.chunks.append(Chunk(chunk_id, doc_id, chunk_text, Span(doc_id, start, end, page),
                                       tuple(json.loads(path)), ordinal))
            update.tokens.append(tokens.split())
            vectors.append(vector)
    if vectors and all(v is not None for v in vectors):
        update.vectors = np.vstack([np.frombuffer(v, dtype=np.float32) for v in vectors if v is not None])
    notes = db.execute("SELECT notes FROM parse_notes WHERE source = ?", (source,)).fetchone()
    update.notes = json.loads(notes[0]) if notes else []
    return update


def _sqlite_cache(path: Path, batch: int = 1000) -> Iterator[tuple[str, dict[str, np.ndarray]]]:
    db = _readonly(path)
    try:
        cursor = db.execute("SELECT model, key, vector FROM embedding_cache ORDER BY model, key")
        while rows := cursor.fetchmany(batch):
            by_model: dict[str, dict[str, np.ndarray]] = {}
            for model, key, vector in rows:
                by_model.setdefault(model, {})[key] = np.frombuffer(vector, dtype=np.float32)
            yield from by_model.items()
    finally:
        db.close()


def _verify(a: StoreView, b: StoreView, samples: list[Sample], k: int, report: MigrateReport) -> None:
    """Compare rankings of the sample queries on both stores (see module docstring)."""
    for i, sample in enumerate(samples):
        pairs = [("lexical", a.lexical(sample.tokens, k), b.lexical(sample.tokens, k))]
        if sample.vector is not None and a.has_vectors:
            pairs.append(("dense", a.dense(sample.vector, k), b.dense(sample.vector, k)))
        for mode, left, right in pairs:
            report.queries += 1
            if not same_ranking(_ids(a, left), left, _ids(b, right), right):
                report.mismatches.append(f"query {i} ({mode}, tokens {' '.join(sample.tokens)!r}) ranks differently")


def _ids(view: StoreView, ranked: Ranked) -> list[str]:
    return [h.chunk_id for h in view.hits(ranked)]


def same_ranking(ids_a: list[str], a: Ranked, ids_b: list[str], b: Ranked, tol: float = TIE_TOLERANCE) -> bool:
    """Whether two rankings agree: equal scores position by position (within ``tol``), and the
    same chunks within every run of tied scores (the last run may be cut differently)."""
    if len(ids_a) != len(ids_b):
        return False
    scores_a, scores_b = a.scores.astype(np.float64), b.scores.astype(np.float64)
    if not np.allclose(scores_a, scores_b, rtol=tol, atol=tol):
        return False
    start = 0
    for i in range(1, len(ids_a) + 1):
        if i == len(ids_a) or abs(scores_a[i] - scores_a[start]) > tol * max(1.0, abs(scores_a[start])):
            if i < len(ids_a) and set(ids_a[start:i]) != set(ids_b[start:i]):
                return False
            start = i
    return True
