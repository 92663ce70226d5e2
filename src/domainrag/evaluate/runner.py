"""Run a suite against a knowledge base: per-case records, metrics, scenarios, a stored run.

For each case: the top 100 documents (hybrid by default, one chunk per document) score the
retrieval metrics against the gold documents and their grades; with ``answer`` metrics the
question is answered (``KnowledgeBase.ask``'s pipeline, on the chunk-level hits) and scored
against the reference answers, the gold evidence and the answerability label. Every model call
goes through a cache keyed by the full request (``model_cache.sqlite3``), so re-running an
unchanged evaluation makes no model calls; each finished case is stored at once, so an
interrupted run resumes. Answers run ``concurrency`` at a time (model calls wait on the
network); retrieval runs first, in the calling thread.

Provider faults (:mod:`.faults`) do not end the run: a case whose model call fails is stored as
failed, with its reason, and the run goes on. Running the same evaluation again reopens that run
and retries only its failed cases (the run key ignores ``answer.timeout_s`` and
``answer.max_retries``, so a re-run with a longer timeout reopens it too). The concurrency
adapts: unset, it is 1 for a model server on this machine (llama.cpp, Ollama... usually answer
one request at a time) and 4 otherwise; a call that fails from overload while others are in
flight halves it and is retried alone. (Calls to a server on this machine may also take 600 s
each unless ``answer.timeout_s`` is set: ``ProviderSettings.timeout_for``.)

Aggregates: the mean of each per-case score over the cases where it applies, with a 95%
percentile-bootstrap interval (:mod:`.stats`), overall and per scenario tag. Failed cases have
only retrieval scores, so they count in the retrieval metrics and are left out of the answer,
citation, judge, abstention and cost metrics; ``summary["failed"]`` (present only when a case
failed) gives their count, kinds and ids, and ``warnings`` says so in words.
"""

from __future__ import annotations

import hashlib
import json
import random
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from ..errors import ConfigError, DomainragError, MissingDependencyError
from ..models.generation import is_loopback
from ..retrieve.retriever import Mode
from .answer_metrics import abstention_scores, citation_scores, exact_match, numeric_match, token_f1
from .faithfulness import FaithfulnessJudge, rubric_path
from .faults import GIVE_UP_AFTER, LOAD_KINDS, ConcurrencyLimit, failure, failure_summary, is_failed
from .intervals import mean_ci
from .metrics import metric
from .run_records import CaseRecord, Run
from .runs import RunStore
from .suite import Suite

if TYPE_CHECKING:  # pragma: no cover
    from ..kb import KnowledgeBase
    from ..types import Answer, Case, Hit

RETRIEVAL_METRICS = ("ndcg@10", "recall@10", "recall@100", "mrr@10", "map")
GROUPS = ("retrieval", "answer", "citation", "judge")
#: The per-case score that decides pass/fail (flaky repeats, flipped cases), first one present;
#: a case passes at ``PASS_AT`` or above (binary scores pass at 1).
HEADLINE_METRICS = ("token_f1", "exact_match", "ndcg@10")
PASS_AT = 0.5
DEPTH = 100
#: Which group each per-case score belongs to in the summary.
SCORE_GROUPS = {
    **{name: "retrieval" for name in RETRIEVAL_METRICS},
    "exact_match": "answer", "token_f1": "answer", "numeric_match": "answer",
    "semantic_similarity": "answer",
    "faithfulness_proxy": "faithfulness", "faithfulness_judge": "faithfulness",
    "citation_precision": "citation", "citation_recall": "citation", "grounded": "citation",
    "latency_ms": "cost", "prompt_tokens": "cost", "completion_tokens": "cost", "cost_usd": "cost",
}
#: Answers at a time when ``EvalOptions.concurrency`` is unset and no model server is local.
DEFAULT_CONCURRENCY = 4
#: Settings that change how long a call may take, not what is measured: left out of the run key.
PACING_SETTINGS = ("answer.timeout_s", "answer.max_retries")
#: ``progress`` receives each stored case's id, and notices that start with one of these words.
NOTICES = ("starting", "resuming", "retrying", "note:")
Progress = Callable[[str], None]
#: Retrieval results shared between the runs of a matrix: (question, mode) -> (documents, chunks).
RetrievalCache = dict[tuple[str, str | None], tuple[list[str], list["Hit"]]]


def metric_groups(names: Iterable[str]) -> frozenset[str]:
    """The metric groups to run: ``names`` checked against :data:`GROUPS`; citation and judge
    metrics need answers, so they bring the answer group."""
    groups = frozenset(g.strip() for g in names if g.strip())
    if not groups <= set(GROUPS):
        raise ConfigError(f"Unknown metric group(s) {sorted(groups - set(GROUPS))}: use {', '.join(GROUPS)}.")
    return groups | {"answer"} if groups & {"citation", "judge"} else groups


@dataclass(kw_only=True)
class EvalOptions:
    """What to run: ``metrics`` groups, the model (None: the knowledge base's default), the
    retrieval mode, at most ``limit`` cases, ``concurrency`` answers at a time (None: 1 for a
    model server on this machine, else :data:`DEFAULT_CONCURRENCY`; lowered when the server
    falls behind)."""

    metrics: frozenset[str] = frozenset({"retrieval"})
    model: str | None = None
    judge: str | None = None
    mode: Mode | None = None
    limit: int | None = None
    concurrency: int | None = None
    name: str | None = None
    overrides: dict[str, Any] = field(default_factory=dict)
    seed: int = 0
    #: A prompt template for this run (None: ``answer.template``).
    template: str | None = None
    #: Answers per case (nondeterministic models): each sample is its own cached model call;
    #: a case's score is its mean over samples, and cases whose pass/fail differs are flaky.
    repeat: int = 1
    #: Evaluate the cases in a random order (seeded by ``seed``): required by adaptive stopping.
    shuffle: bool = False
    #: Called with each stored record; returning True stops the run there (adaptive mode).
    #: ``stop_rule`` describes it for the manifest.
    stop: Callable[[CaseRecord], bool] | None = None
    stop_rule: str | None = None
    #: Called once the run ends; its dict is stored in the manifest as ``stop_result``.
    stop_result: Callable[[], dict[str, Any]] | None = None
    #: Retrieval results shared between the runs of a matrix (same questions, same settings).
    retrieval_cache: RetrievalCache | None = None


def run_suite(kb: KnowledgeBase, suite: Suite, options: EvalOptions, store: RunStore,
              progress: Progress | None = None) -> Run:
    """Evaluate ``suite`` on ``kb``; returns the stored run.

    Resumes the unfinished run of the same evaluation, or reopens a finished one that has
    failed cases and retries only those (see the module docstring)."""
    cases = list(suite.cases[: options.limit] if options.limit else suite.cases)
    if options.shuffle:
        cases = random.Random(options.seed).sample(cases, len(cases))
    judge = _judge(kb, options) if "judge" in options.metrics else None
    manifest = _manifest(kb, suite, options, len(cases))
    if judge:
        manifest.update(judge=judge.model_id, judge_rubric_hash=judge.rubric_hash)
    run_id, resumed = store.start(options.name or suite.name, manifest, run_key(manifest))
    done = store.records(run_id)
    completed = {case_id: r for case_id, r in done.items() if not is_failed(r)}
    if resumed == "done":  # a finished run reopened: only its failed cases are run again
        pending = [(i, c) for i, c in enumerate(cases) if c.id in done and is_failed(done[c.id])]
    else:
        pending = [(i, c) for i, c in enumerate(cases) if c.id not in completed]
    if options.stop and completed and _replay(options.stop, [completed[c.id] for c in cases if c.id in completed]):
        pending = []   # a resumed adaptive run that had already decided
    concurrency, why = _concurrency(kb, options) if pending and "answer" in options.metrics else (1, None)
    if progress:
        progress(f"retrying {len(pending)} failed case(s) of {run_id}: {len(completed)} done" if resumed == "done"
                 else f"{'resuming' if resumed else 'starting'} {run_id}: {len(completed)} done, {len(pending)} to go")
        if why:
            progress(why)
    notes = _run_cases(kb, pending, options, judge, concurrency,
                       lambda i, record: store.save_case(run_id, i, record), progress)
    records = [r for r in store.records(run_id).values()]
    # What actually answered: the provider's id (with the server for custom base URLs; a
    # fallback shows up here too) and the version strings it reported.
    manifest["model_ids"] = sorted({r["model_id"] for r in records if r.get("model_id")})
    manifest["model_versions"] = sorted({r["model_version"] for r in records if r.get("model_version")})
    if judge:
        manifest["judge_versions"] = sorted({r["judge"]["version"] for r in records if r.get("judge")})
    if options.stop_result:
        manifest["stop_result"] = options.stop_result()
    summary = summarise(records)
    summary["warnings"] += notes
    store.finish(run_id, manifest, summary)
    return store.get(run_id)


def run_key(manifest: dict[str, Any]) -> str:
    """What identifies an evaluation for resuming: the manifest without the settings that only
    pace the model calls (:data:`PACING_SETTINGS`; ``config_hash`` covers them, and ``settings``
    holds every other setting)."""
    keyed = {k: v for k, v in manifest.items() if k != "config_hash"}
    for name in ("settings", "overrides"):
        keyed[name] = {k: v for k, v in (manifest.get(name) or {}).items() if k not in PACING_SETTINGS}
    return hashlib.sha256(json.dumps(keyed, sort_keys=True, default=str).encode()).hexdigest()


def _concurrency(kb: KnowledgeBase, options: EvalOptions) -> tuple[int, str | None]:
    """Answers at a time, and a notice when it was chosen for a local server. Building the
    generators here also reports a bad model spec or a missing key before any case runs."""
    generators = [kb.answerer.generator(kb.answerer.model_spec(options.model))]
    judge = options.judge or kb.config.answer.judge
    if judge:
        generators.append(kb.answerer.generator(judge, primary=False))
    if options.concurrency:
        return options.concurrency, None
    for generator in generators:
        url = str(getattr(generator, "base_url", None) or "")
        if is_loopback(url):
            timeout = getattr(generator, "timeout_s", None)
            limit = f"; each try may take {timeout:g} s (answer.timeout_s)" if timeout else ""
            return 1, (f"note: answering one case at a time: the model server at {urlparse(url).netloc} runs on "
                       "this machine, and local servers usually answer one request at a time; set --concurrency "
                       f"N to change it{limit}")
    return DEFAULT_CONCURRENCY, None


def _replay(stop: Callable[[CaseRecord], bool], records: list[dict[str, Any]]) -> bool:
    """Feed a resumed run's stored records (in evaluation order) to its stop rule, so that an
    adaptive test continues where it was; True when it had already decided."""
    return any(stop(CaseRecord.from_dict(record)) for record in records)


def _judge(kb: KnowledgeBase, options: EvalOptions) -> FaithfulnessJudge:
    spec = options.judge or kb.config.answer.judge
    if not spec:
        raise ConfigError("The judge metrics need a judge model: --judge provider:model "
                          "(or answer.judge in domainrag.toml).")
    generator = kb.answerer.generator(spec, primary=False)
    return FaithfulnessJudge(generator.id, lambda request: kb.answerer.complete(generator, request),
                             kb.answerer.templates, rubric_path(kb.path))


def _manifest(kb: KnowledgeBase, suite: Suite, options: EvalOptions, n_cases: int) -> dict[str, Any]:
    answers = "answer" in options.metrics
    answerer = kb.answerer
    chosen = options.template or kb.config.answer.template
    templates = {lang: answerer.templates.resolve(chosen, lang) for lang in ("en", "zh")}
    return {
        "suite": suite.path, "suite_name": suite.name, "suite_hash": suite.hash, "split": suite.split,
        "cases": n_cases, "metrics": sorted(options.metrics),
        "model": answerer.model_spec(options.model) if answers else None,
        "judge": options.judge or kb.config.answer.judge,
        "verifier": answerer.checker_id(options.model, options.template) if answers else None,
        "template": templates["en"], "template_hash": answerer.templates.hash(templates["en"]),
        "template_hashes": {lang: answerer.templates.hash(file) for lang, file in templates.items()},
        "mode": options.mode or kb.config.retrieval.mode, "config_hash": kb.config.hash(),
        "settings": kb.config.flat(),
        "overrides": options.overrides, "corpus_hash": kb.store.corpus_hash(),
        "index_hash": answerer.base_manifest.get("index_hash"),
        "code_version": answerer.base_manifest.get("code_version"), "seed": options.seed,
        "repeat": options.repeat, "order": "random" if options.shuffle else "suite",
        "stop_rule": options.stop_rule,
    }


def _run_cases(kb: KnowledgeBase, pending: Sequence[tuple[int, Case]], options: EvalOptions,
               judge: FaithfulnessJudge | None, concurrency: int, save: Callable[[int, dict[str, Any]], None],
               progress: Progress | None) -> list[str]:
    """Run and store the pending cases; returns warnings for the summary (pacing notes)."""
    answers = "answer" in options.metrics
    documents = {e.doc_id: kb.store.document(e.doc_id) for _, c in pending for e in c.gold}
    if pending:
        kb.retriever.prepare(options.mode)   # model loading is not the first case's latency

    def store(i: int, record: dict[str, Any]) -> bool:
        """Save the record; True when the run should stop here (adaptive mode)."""
        save(i, record)
        if progress:
            progress(record["id"])
        return bool(options.stop and options.stop(CaseRecord.from_dict(record)))

    if not answers:
        for i, case in pending:
            docs, _hits, ms = _retrieve(kb, case, options, answers=False)
            if store(i, case_record(case, docs, None, ms, documents)):
                return []
        return []
    kb.answerer.prepare()  # load models in this thread: the SQLite connection is not shared
    retrieved = [_Item(i, case, *_retrieve(kb, case, options, answers=True)) for i, case in pending]

    def emit(item: _Item, outcomes: list[Outcome]) -> bool:
        return store(item.position, _case_outcome(item, outcomes, documents))

    return _Answering(kb, retrieved, options, judge, concurrency, progress).run(emit)


@dataclass
class _Item:
    """A pending case with its retrieval done."""

    position: int
    case: Case
    docs: list[str]
    hits: list[Hit]
    retrieve_ms: float


@dataclass
class _Job:
    """One answer (one sample of a case) to compute. ``alone``: a retry after an overload
    failure, run with no other call in flight; ``crowded``: another call ran beside it."""

    item: int
    sample: int
    alone: bool = False
    crowded: bool = False
    epoch: int = 0


#: What one answer job gives: the answer and its model-scored extras, or a failure
#: (``{"kind", "stage", "message"}``, see :mod:`.faults`).
Outcome = tuple["Answer", dict[str, Any]] | dict[str, str]


class _Answering:
    """Answers the retrieved cases on a thread pool under an adaptive :class:`ConcurrencyLimit`
    and hands each case's outcomes to ``emit`` in order (so adaptive stopping sees the
    evaluation order). A job that fails from overload while others were in flight lowers the
    limit and runs again alone; after :data:`GIVE_UP_AFTER` failures in a row the jobs not yet
    started are recorded as not attempted."""

    def __init__(self, kb: KnowledgeBase, items: list[_Item], options: EvalOptions,
                 judge: FaithfulnessJudge | None, concurrency: int, progress: Progress | None) -> None:
        self.kb, self.items, self.options, self.judge, self.progress = kb, items, options, judge, progress
        self.repeat = max(1, options.repeat)
        self.limit = ConcurrencyLimit(concurrency)
        self.queue = deque(_Job(n, s) for n in range(len(items)) for s in range(self.repeat))
        self.outcomes: list[list[Outcome | None]] = [[None] * self.repeat for _ in items]
        self.running: dict[Future[Outcome], _Job] = {}
        self.streak = 0

    def run(self, emit: Callable[[_Item, list[Outcome]], bool]) -> list[str]:
        emitted = 0
        pool = ThreadPoolExecutor(max_workers=self.limit.start)
        try:
            while self.queue or self.running:
                self._dispatch(pool)
                finished, _ = wait(self.running, return_when=FIRST_COMPLETED)
                for future in finished:
                    self._settle(self.running.pop(future), future.result())
                while emitted < len(self.items) and None not in self.outcomes[emitted]:
                    outcomes = [o for o in self.outcomes[emitted] if o is not None]
                    if emit(self.items[emitted], outcomes):
                        return self._notes()
                    emitted += 1
        finally:
            pool.shutdown(wait=True, cancel_futures=True)  # on Ctrl-C, do not start the rest
        return self._notes()

    def _dispatch(self, pool: ThreadPoolExecutor) -> None:
        while self.queue:
            busy = bool(self.running)
            if busy and (self.queue[0].alone or len(self.running) >= self.limit.value
                         or any(j.alone for j in self.running.values())):
                return
            job = self.queue.popleft()
            job.epoch, job.crowded = self.limit.epoch, busy
            for other in self.running.values():
                other.crowded = True
            item = self.items[job.item]
            self.running[pool.submit(_answer, self.kb, item.case, item.hits, self.options, self.judge,
                                     job.sample)] = job

    def _settle(self, job: _Job, outcome: Outcome) -> None:
        if isinstance(outcome, dict) and outcome["kind"] in LOAD_KINDS and job.crowded and not job.alone:
            before = self.limit.value
            if self.limit.lower(job.epoch) and self.progress:
                self.progress(f"note: the model server fell behind with {before} calls at once "
                              f"({outcome['kind'].replace('_', ' ')}): lowering the concurrency to "
                              f"{self.limit.value} and retrying the case alone; for a server that answers one "
                              "request at a time pass --concurrency 1")
            self.queue.appendleft(_Job(job.item, job.sample, alone=True))
            return
        self.outcomes[job.item][job.sample] = outcome
        self.streak = self.streak + 1 if isinstance(outcome, dict) else 0
        if isinstance(outcome, dict) and self.streak >= GIVE_UP_AFTER and self.queue:
            self._give_up(outcome)

    def _give_up(self, last: dict[str, str]) -> None:
        reason = (f"not attempted: the {self.streak} model calls before it failed in a row "
                  f"(the last: {last['kind'].replace('_', ' ')}: {last['message'][:300]})")
        skipped = {job.item for job in self.queue}
        for job in self.queue:
            self.outcomes[job.item][job.sample] = {"kind": "not_attempted", "stage": "answer", "message": reason}
        self.queue.clear()
        if self.progress:
            self.progress(f"note: {self.streak} model calls failed in a row; the remaining {len(skipped)} case(s) "
                          "are stored as failed without being attempted: fix the cause and run the same "
                          "evaluation again to retry them")

    def _notes(self) -> list[str]:
        if self.limit.value == self.limit.start:
            return []
        return [f"The model server fell behind at {self.limit.start} concurrent calls; this run lowered the "
                f"concurrency to {self.limit.value}. Pass --concurrency {self.limit.value} next time."]


def _case_outcome(item: _Item, outcomes: list[Outcome], documents: dict[str, dict[str, Any] | None]
                  ) -> dict[str, Any]:
    """The case's record from its answers (one per sample), or a failed record."""
    samples = []
    for outcome in outcomes:
        if isinstance(outcome, dict):  # one failed sample fails the case
            return failed_record(item.case, item.docs, item.retrieve_ms, documents, outcome)
        answer, extra = outcome
        record = case_record(item.case, item.docs, answer, item.retrieve_ms, documents)
        extra = dict(extra)
        record["scores"].update(extra.pop("scores"))
        samples.append({**record, **extra})
    return samples[0] if len(samples) == 1 else combine_repeats(samples)


def _retrieve(kb: KnowledgeBase, case: Case, options: EvalOptions, answers: bool
              ) -> tuple[list[str], list[Hit], float]:
    """The top documents (for the retrieval metrics), the chunks to answer from, and the ms."""
    started = time.perf_counter()
    cache = options.retrieval_cache if options.retrieval_cache is not None else {}
    key = (case.question, options.mode)
    if key not in cache or (answers and not cache[key][1]):
        docs = kb.rank_documents(case.question, DEPTH, options.mode)
        hits = kb.search(case.question, kb.config.answer.k, options.mode) if answers else []
        cache[key] = (docs, hits)
    docs, hits = cache[key]
    return docs, hits, (time.perf_counter() - started) * 1000


def _answer(kb: KnowledgeBase, case: Case, hits: list[Hit], options: EvalOptions,
            judge: FaithfulnessJudge | None, sample: int = 0) -> Outcome:
    """The answer and the scores that need a model (similarity to the references, the judge),
    or the failure of a model call (``{"kind", "stage", "message"}``). Configuration errors are
    not case failures: they end the run."""
    stage = "answer"
    try:
        answer = kb.answerer.answer(case.question, hits, model=options.model, template=options.template,
                                    sample=sample)
        extra: dict[str, Any] = {"scores": {}}
        if case.answers and not answer.abstained:
            extra["scores"]["semantic_similarity"] = kb.answerer.similarity(answer.text, case.answers)
        if judge:
            stage = "judge"
            verdict = judge.judge(case.question, answer.text, [h.text for h in hits])
            extra["scores"]["faithfulness_judge"] = verdict.faithfulness
            extra["judge"] = {"status": verdict.status, "unsupported_claims": list(verdict.unsupported_claims),
                              "reason": verdict.reason, "version": verdict.version}
    except (ConfigError, MissingDependencyError):
        raise
    except DomainragError as exc:
        return failure(exc, stage)
    return answer, extra


# -- per case -------------------------------------------------------------------------------
def case_record(case: Case, docs: list[str], answer: Answer | None, retrieve_ms: float,
                documents: dict[str, dict[str, Any] | None]) -> dict[str, Any]:
    """The stored record of one case: what was retrieved and answered, and its scores."""
    gold, unknown = _resolve_gold(case, documents)
    record: dict[str, Any] = {
        "id": case.id, "question": case.question, "scenario": list(case.scenario),
        "generated": case.generated, "answerable": case.answerable, "answers": list(case.answers),
        "gold": gold, "unknown_gold": unknown, "retrieved": docs,
        "scores": {**_retrieval_scores(case, docs), "latency_ms": round(retrieve_ms, 3)},
        "latency_ms": round(retrieve_ms, 3),
    }
    if answer is None:
        record["answer"] = None  # a retrieval-only run
    else:
        record.update(_answer_fields(answer))
        record["scores"].update(_answer_scores(case, answer, gold))
        record["latency_ms"] = round(retrieve_ms + answer.trace["timings_ms"]["total_ms"], 3)
        record["scores"]["latency_ms"] = record["latency_ms"]
    return record


def failed_record(case: Case, docs: list[str], retrieve_ms: float, documents: dict[str, dict[str, Any] | None],
                  error: dict[str, str]) -> dict[str, Any]:
    """The record of a case whose model call failed: its retrieval (which ran) with
    ``"status": "failed"`` and ``"error"``; no answer, so no answer, citation or cost scores."""
    record = case_record(case, docs, None, retrieve_ms, documents)
    del record["scores"]["latency_ms"]   # retrieval time alone would skew the answer latencies
    record.update(status="failed", error=error)
    return record


def _retrieval_scores(case: Case, docs: list[str]) -> dict[str, float]:
    qrels = {e.doc_id: e.relevance for e in case.gold}
    if not qrels:
        return {}
    return {name: metric(name)(docs, qrels) for name in RETRIEVAL_METRICS}


def _answer_fields(answer: Answer) -> dict[str, Any]:
    return {"answer": answer.text, "abstained": answer.abstained, "complete": answer.complete,
            "grounded": answer.grounded, "citations": [c.to_dict() for c in answer.citations],
            "usage": answer.usage.to_dict(), "model_id": answer.manifest.get("model"),
            "model_version": answer.manifest.get("model_version"),
            "abstain_reason": answer.trace.get("abstain_reason")}


def _answer_scores(case: Case, answer: Answer, gold: list[dict[str, Any]]) -> dict[str, float | None]:
    scores: dict[str, float | None] = {"prompt_tokens": answer.usage.prompt_tokens,
                                       "completion_tokens": answer.usage.completion_tokens,
                                       "cost_usd": answer.usage.cost_usd}
    if case.answerable and case.answers:
        text = "" if answer.abstained else answer.text
        scores["exact_match"] = exact_match(text, case.answers)
        scores["token_f1"] = token_f1(text, case.answers)
        scores["numeric_match"] = numeric_match(text, case.answers)
    if not answer.abstained:
        scores["grounded"] = answer.grounded
        scores["faithfulness_proxy"] = faithfulness_proxy(answer)
        cited = [{"doc_id": c.doc_id, "start": c.span.start, "end": c.span.end, "page": c.span.page}
                 for c in answer.citations]
        scores.update(citation_scores(cited, gold) or {})
    return scores


def combine_repeats(samples: list[dict[str, Any]]) -> dict[str, Any]:
    """One record from a case's repeated samples: scores are means over the samples, ``score_sd``
    their standard deviations, ``flaky`` whether the headline metric's pass/fail (>= 0.5)
    differs between samples; every sample is kept in ``repeats``; the first one's answer shown."""
    record = dict(samples[0])
    names = dict.fromkeys(n for s in samples for n in s["scores"])
    values = {n: [s["scores"][n] for s in samples if s["scores"].get(n) is not None] for n in names}
    record["scores"] = {n: (sum(v) / len(v) if v else None) for n, v in values.items()}
    record["score_sd"] = {n: _sd(v) for n, v in values.items() if len(v) > 1}
    headline = next((n for n in HEADLINE_METRICS if values.get(n)), None)
    record["flaky"] = bool(headline) and len({x >= PASS_AT for x in values[headline]}) > 1
    record["repeats"] = [{k: s.get(k) for k in ("answer", "abstained", "citations", "scores")} for s in samples]
    return record


def _sd(values: list[float]) -> float:
    mean = sum(values) / len(values)
    return float((sum((x - mean) ** 2 for x in values) / len(values)) ** 0.5)


def faithfulness_proxy(answer: Answer) -> float | None:
    """Offline faithfulness: supported claims over all claims with content (cited or not), as
    the checker verified them (``trace.claims``; runs before it: from the citations)."""
    checked = answer.trace.get("claims")
    if isinstance(checked, Mapping) and checked.get("total"):
        return float(checked["supported"]) / float(checked["total"])
    claims: dict[str, bool] = {}
    for c in answer.citations:
        claims[c.sentence] = claims.get(c.sentence, False) or c.supported
    total = len(claims) + int(answer.trace.get("uncited_sentences", 0))
    return sum(claims.values()) / total if total else None


def _resolve_gold(case: Case, documents: dict[str, dict[str, Any] | None]
                  ) -> tuple[list[dict[str, Any]], list[str]]:
    """Gold evidence with quotes located in the current documents (char ranges), and the
    doc ids the knowledge base does not hold."""
    gold, unknown = [], []
    for e in case.gold:
        doc = documents.get(e.doc_id)
        if doc is None:
            unknown.append(e.doc_id)
        item = e.to_dict()
        if doc is not None and e.quote and e.start is None:
            start = _find(doc["text"], e.quote)
            if start is not None:
                item.update(start=start, end=start + len(e.quote))
        gold.append(item)
    return gold, unknown


def _find(text: str, quote: str) -> int | None:
    index = text.find(quote)
    if index < 0:
        index = text.lower().find(quote.lower())
    return index if index >= 0 else None


# -- aggregates -----------------------------------------------------------------------------
def summarise(records: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Metrics and 95% intervals overall and per scenario tag, plus warnings; ``failed`` (count,
    ``by_kind``, case ids) only when some case failed, and per scenario its ``failed`` count."""
    metrics, ci95 = _aggregate(records)
    scenarios = {}
    for tag in sorted({t for r in records for t in _tags(r)}):
        mine = [r for r in records if tag in _tags(r)]
        m, c = _aggregate(mine)
        scenarios[tag] = {"n": len(mine), "metrics": m, "ci95": c}
    repeated = [r for r in records if "repeats" in r]
    if repeated:
        metrics["stability"] = {"repeats": len(repeated[0]["repeats"]),
                                "flaky_cases": sum(r["flaky"] for r in repeated),
                                "flaky_rate": sum(r["flaky"] for r in repeated) / len(repeated)}
    unknown = sorted({d for r in records for d in r.get("unknown_gold", [])})
    warnings = [f"{len(unknown)} gold document id(s) not in the knowledge base: {unknown[:10]}"] if unknown else []
    failed, explained = failure_summary(records)
    summary = {"metrics": metrics, "ci95": ci95, "scenarios": scenarios, "warnings": warnings + explained}
    if failed:
        summary["failed"] = failed
        for tag, entry in scenarios.items():
            n = sum(is_failed(r) for r in records if tag in _tags(r))
            if n:
                entry["failed"] = n
    return summary


def _tags(record: dict[str, Any]) -> list[str]:
    return [*record.get("scenario", []), *(["generated"] if record.get("generated") else [])]


def _aggregate(records: Sequence[dict[str, Any]]) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
    metrics: dict[str, dict[str, Any]] = {}
    ci95: dict[str, dict[str, Any]] = {}
    for name in dict.fromkeys(n for r in records for n in r["scores"]):
        group = SCORE_GROUPS.get(name, "other")
        values = [r["scores"].get(name) for r in records]
        stats = mean_ci([v for v in values if v is not None])
        if stats["n"] == 0:
            continue
        metrics.setdefault(group, {})[name] = stats["mean"]
        ci95.setdefault(group, {})[name] = [stats["low"], stats["high"]]
    answered = [(r["answerable"], r["abstained"]) for r in records if "abstained" in r]
    if answered:
        metrics["abstention"] = abstention_scores(answered)
    judged = [r["judge"]["status"] for r in records if r.get("judge")]
    if judged:
        metrics.setdefault("faithfulness", {}).update(
            judged=len(judged), judge_repaired=judged.count("repaired"),
            judge_unparseable=judged.count("unparseable"))
    if "cost" in metrics:
        _latency_percentiles(metrics["cost"], [r["latency_ms"] for r in records if not is_failed(r)])
    return metrics, ci95


def _latency_percentiles(cost: dict[str, Any], latencies: Iterable[float]) -> None:
    ordered = sorted(latencies)
    if ordered:
        cost["latency_ms_p50"] = ordered[len(ordered) // 2]
        cost["latency_ms_p95"] = ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]
