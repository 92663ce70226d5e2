"""The evaluation API behind ``KnowledgeBase.evaluate``, ``evaluate_matrix`` and ``compare``
(an edge, like the CLI: it wires the evaluate and compare stages together)::

    from domainrag import KnowledgeBase

    with KnowledgeBase.open("kb") as kb:
        baseline = kb.evaluate("suite.jsonl", model="openai:gpt-4o-mini", name="baseline")
        kb.runs.pin(baseline.run_id, "production")
        new = kb.evaluate("suite.jsonl", model="openai:gpt-4.1-mini")
        result = kb.compare("production", new)        # paired deltas, CIs, verdicts, the gate
        print(result.headline, result.gate.passed)

Every model call goes through the knowledge base's model-call cache, so re-running an unchanged
evaluation costs nothing; each finished case is stored at once, so an interrupted run resumes.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .compare.adaptive import AdaptiveStop
from .compare.compare import compare_runs
from .compare.gate import gate as apply_gate
from .compare.results import Comparison
from .compare.sequential import FUTILITY
from .errors import ConfigError
from .evaluate.run_records import Run
from .evaluate.runner import EvalOptions, RetrievalCache, metric_groups, run_suite
from .evaluate.suite import Suite, load_suite

if TYPE_CHECKING:  # pragma: no cover
    from .kb import KnowledgeBase

Progress = Callable[[str], None]
SuiteLike = Suite | str | os.PathLike[str]
DEFAULT_METRICS = ("retrieval", "answer", "citation")
#: The file that marks a BEIR corpus cache as completely ingested (with the corpus's hash).
BEIR_COMPLETE = "beir-complete.json"


@dataclass(frozen=True, kw_only=True)
class Adaptive:
    """Adaptive stopping against ``baseline`` (a run, its id or a pinned name): the cases run
    in a random order and the run stops as soon as an anytime-valid betting test decides
    better/worse, or a full run could no longer find a difference (``futility``; 0 turns it
    off), or ``|delta| < margin`` is proven (0: off), or ``budget`` cases were judged."""

    baseline: str | Run
    futility: float | None = FUTILITY
    margin: float = 0.0
    budget: int | None = None


@dataclass(frozen=True, kw_only=True)
class Matrix:
    """Runs of one suite over several models and/or templates, each compared with the first."""

    runs: tuple[Run, ...]
    comparisons: tuple[Comparison, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        return {"runs": [r.run_id for r in self.runs], "comparisons": [c.to_dict() for c in self.comparisons]}


def as_suite(suite: SuiteLike, split: str = "test") -> Suite:
    return suite if isinstance(suite, Suite) else load_suite(suite, split)


def evaluate(kb: KnowledgeBase, suite: SuiteLike, *, split: str = "test", model: str | None = None,
             template: str | None = None, metrics: Iterable[str] = DEFAULT_METRICS, judge: str | None = None,
             mode: str | None = None, limit: int | None = None, concurrency: int | None = None, name: str | None = None,
             repeat: int = 1, seed: int = 0, adaptive: Adaptive | None = None,
             progress: Progress | None = None) -> Run:
    """Run ``suite`` on ``kb`` (see :meth:`KnowledgeBase.evaluate`)."""
    loaded = as_suite(suite, split)
    options = _options(kb, metrics, model=model, template=template, judge=judge, mode=mode, limit=limit,
                       concurrency=concurrency, name=name, repeat=repeat, seed=seed)
    if adaptive is not None:
        _adaptive_stop(kb, loaded, options, adaptive).apply(options)
    with model_cache(kb):
        return run_suite(kb, loaded, options, kb.runs, progress)


def evaluate_matrix(kb: KnowledgeBase, suite: SuiteLike, *, models: Iterable[str | None] = (None,),
                    templates: Iterable[str | None] = (None,), split: str = "test",
                    metrics: Iterable[str] = DEFAULT_METRICS, judge: str | None = None, mode: str | None = None,
                    limit: int | None = None, concurrency: int | None = None, name: str | None = None, repeat: int = 1,
                    seed: int = 0, progress: Callable[[int, str], None] | None = None) -> Matrix:
    """Every (model, template) pair, sharing retrieval, each compared with the first
    (see :meth:`KnowledgeBase.evaluate_matrix`). ``progress(cell, label)``."""
    loaded = as_suite(suite, split)
    grid = [(m, t) for m in (list(models) or [None]) for t in (list(templates) or [None])]
    options = _options(kb, metrics, judge=judge, mode=mode, limit=limit, concurrency=concurrency, name=name,
                       repeat=repeat, seed=seed)
    shared: RetrievalCache = {}
    runs = []
    with model_cache(kb):
        for index, (model, template) in enumerate(grid):
            label = (f"{name or loaded.name} / {model or kb.answerer.model_spec()} / "
                     f"{template or kb.config.answer.template}")
            cell = replace(options, model=model, template=template, name=label, retrieval_cache=shared)
            tick = (lambda text, i=index: progress(i, text)) if progress else None
            runs.append(run_suite(kb, loaded, cell, kb.runs, tick))
    comparisons = tuple(compare(kb, runs[0], run) for run in runs[1:])
    return Matrix(runs=tuple(runs), comparisons=comparisons)


def compare(kb: KnowledgeBase, a: str | Run, b: str | Run = "last", *, force: bool = False,
            alpha: float | None = None) -> Comparison:
    """Run ``b`` against baseline ``a`` with the ``[gate]`` applied (see :meth:`KnowledgeBase.compare`)."""
    run_a, run_b = kb.runs.get(a), kb.runs.get(b)
    comparison = compare_runs(run_a, run_b, force=force, alpha=alpha or kb.config.gate.alpha)
    return comparison.with_gate(apply_gate(comparison, kb.config.gate))


def _options(kb: KnowledgeBase, metrics: Iterable[str], **settings: Any) -> EvalOptions:
    judge = settings.get("judge")
    groups = metric_groups(metrics)
    overrides = dict(kb.overrides)
    if judge:
        overrides["answer.judge"] = judge
    return EvalOptions(metrics=groups | {"retrieval"}, overrides=overrides, **settings)


def _adaptive_stop(kb: KnowledgeBase, suite: Suite, options: EvalOptions, adaptive: Adaptive) -> AdaptiveStop:
    baseline = kb.runs.get(adaptive.baseline)
    cases = suite.cases[: options.limit] if options.limit else suite.cases
    return AdaptiveStop(baseline, [c.id for c in cases], answers="answer" in options.metrics,
                        alpha=kb.config.gate.alpha,
                        futility=FUTILITY if adaptive.futility is None else adaptive.futility,
                        margin=adaptive.margin, budget=adaptive.budget)


@contextmanager
def model_cache(kb: KnowledgeBase) -> Iterator[None]:
    """Route ``kb``'s model calls through its model-call cache for the duration."""
    answerer = kb.answerer
    previous, answerer.cache = answerer.cache, kb.model_cache
    try:
        yield
    finally:
        answerer.cache = previous


# -- knowledge bases for BEIR suites --------------------------------------------------------------
def beir_cache_path(root: Path, corpus: Any, overrides: Mapping[str, Any]) -> Path:
    """Where the knowledge base built from BEIR folder ``root`` is cached: keyed by the corpus's
    content (``corpus``, the digest of :func:`beir_corpus_digest`) and the embedder asked for."""
    from .models.onnx_export import cache_dir

    digest = corpus.copy()
    digest.update(json.dumps(overrides.get("embedder.model"), default=str).encode())
    return cache_dir() / "eval" / f"{root.name}-{digest.hexdigest()[:12]}"


def beir_corpus_digest(root: Path) -> Any:
    """The sha256 digest object of ``root/corpus.jsonl``, read once in blocks."""
    digest = hashlib.sha256()
    with (root / "corpus.jsonl").open("rb") as corpus:
        for block in iter(lambda: corpus.read(1 << 20), b""):
            digest.update(block)
    return digest


def ensure_beir_corpus(kb: KnowledgeBase, suite: Suite, corpus_hash: str, progress: bool | Progress = False,
                       notify: Progress | None = None) -> None:
    """Make sure ``kb`` holds the whole corpus of BEIR suite ``suite`` (whose corpus file hashes
    to ``corpus_hash``): ingested (incrementally, so an interrupted build resumes) until a
    completion marker for this corpus is written."""
    marker = kb.path / BEIR_COMPLETE if kb.path else None  # in PostgreSQL: no folder, no marker
    try:
        done = marker is not None and json.loads(marker.read_text(encoding="utf-8")).get("corpus_hash") == \
            corpus_hash[:16]
    except (OSError, ValueError, AttributeError):
        done = False
    if done:
        return
    if notify:
        notify(f"Ingesting the BEIR corpus {suite.path} into {kb.location} (once; cached)")
    report = kb.ingest([suite.path], format="beir", progress=progress)
    if report.interrupted:
        raise ConfigError(f"Ingesting the BEIR corpus into {kb.location} was interrupted; run the same command "
                          "again to finish it (the work so far is kept).")
    if report.failed and notify:
        notify(f"{len(report.failed)} corpus entries failed to ingest")
    if marker is not None:
        marker.write_text(json.dumps({"corpus_hash": corpus_hash[:16], "failed": len(report.failed)}),
                          encoding="utf-8")


def open_for_suite(suite: Suite, path: str | os.PathLike[str] | None = None, *,
                   overrides: Mapping[str, Any] | None = None, progress: bool | Progress = False,
                   notify: Progress | None = None) -> KnowledgeBase:
    """The knowledge base to evaluate ``suite`` on (see :meth:`KnowledgeBase.for_suite`)."""
    from .kb import DEFAULT_KB, KnowledgeBase

    target = path or os.environ.get("DOMAINRAG_KB") or None
    cached = target is None and suite.is_beir and not Path(DEFAULT_KB).exists()
    corpus = beir_corpus_digest(Path(suite.path)) if suite.is_beir else None
    if cached:
        target = beir_cache_path(Path(suite.path), corpus, overrides or {})
    kb = KnowledgeBase.open(target, create=suite.is_beir, overrides=overrides or None)
    try:
        if corpus is not None and (cached or not kb.store.stats()["chunks"]):
            ensure_beir_corpus(kb, suite, corpus.hexdigest(), progress, notify)
    except BaseException:
        kb.close()
        raise
    return kb
