"""The answer pipeline: hits -> packed sources -> prompt -> model -> checked citations -> Answer.

1. **Pack** the retrieved chunks into ``answer.context_tokens`` (:mod:`.packing`).
2. **Evidence gate**: if the sources cover less than ``answer.min_evidence`` of the question
   (:mod:`.evidence`), abstain without calling a model.
3. **Prompt** from the template (:mod:`.templates`) in the question's language.
4. **Generate** with the model, then each ``answer.fallback`` model in turn if it fails;
   streamed deltas go to ``on_token``.
5. **Check** the ``[n]`` citations and every factual sentence (:mod:`.citations`) with the
   verifier (``answer.verify``: the offline cross-encoder, or a model in one batched call per
   answer) against the sources and the prompt's own instructions (sentences copied from them are
   echoes). In ``strict`` mode a failing answer is re-asked once, listing the problems. A
   sentence no source supports is marked inline (``[unsupported]``) or removed
   (``answer.unsupported``) — never shown as plain prose.
6. **Abstain** when the model says the sources do not answer (``model_abstained``), when the
   answer repeats the prompt — its source delimiters or sentences of its instructions
   (``echoed_prompt``) — or when fewer than ``answer.min_grounded`` of its claims, cited or not,
   are supported (``citations_failed``); the draft is kept in the trace.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from ..config import AnswerConfig
from ..errors import ConfigError, DomainragError, GenerationError
from ..index.analyzer import Analyzer
from ..models.cache import ModelCache, request_key
from ..models.embedding import BaseEmbedder
from ..models.generation import (
    BaseGenerator,
    Generation,
    GenerationRequest,
    Message,
    ProviderSettings,
    load_generator,
    resolve_model,
    with_usage_cost,
)
from ..models.verification import Verifier, load_verifier
from ..text import detect_language, sentence_spans
from ..types import Answer, Citation, Hit, Source, Span, Trace, Usage
from .citations import (
    CLAIM,
    ECHO,
    FRAGMENT,
    META,
    STRICT_PRESETS,
    CheckResult,
    CitationChecker,
    CitedSentence,
    grounded_share,
    preset_verify_threshold,
    strip_markers,
)
from .evidence import Coverage
from .model_verifier import ModelVerifier
from .packing import pack, token_counter
from .templates import LANGUAGE_NAMES, Prompt, Templates, abstain_message, source_fields
from .verify import Verification, verification

OnToken = Callable[[str], None]


@dataclass(frozen=True)
class Turn:
    """One exchange of a conversation."""

    question: str
    answer: str


@dataclass
class _Run:
    """Everything one answer accumulates on its way through the pipeline."""

    question: str
    language: str
    started: float
    timings: dict[str, float] = field(default_factory=dict)
    usage: Usage = field(default_factory=lambda: Usage(0, 0, 0.0))
    attempts: list[dict[str, str]] = field(default_factory=list)
    trace: dict[str, Any] = field(default_factory=dict)

    def lap(self, name: str, since: float) -> float:
        now = time.perf_counter()
        self.timings[name] = round((now - since) * 1000, 3)
        return now


class Answerer:
    """Answers questions from retrieved hits; holds the model clients between calls.

    ``manifest`` carries what identifies the knowledge base (config hash, index manifest hash,
    code version); every answer's manifest adds the model, template and checker.
    """

    def __init__(self, config: AnswerConfig, templates: Templates, analyzer: Analyzer,
                 manifest: Mapping[str, Any] | None = None,
                 embedder: Callable[[], BaseEmbedder] | None = None) -> None:
        self.config = config
        self.templates = templates
        self.analyzer = analyzer
        self._embedder = embedder
        # the embedding rescue belongs to the word rules; the verifiers read meaning themselves
        rescue = embedder is not None and config.semantic_support and config.verify == "lexical"
        self.checker = CitationChecker(config.citation_threshold, analyzer,
                                       self.similarity if rescue else None,
                                       config.semantic_threshold,
                                       verifier=offline_verifier() if config.verify != "lexical" else None,
                                       verify_threshold=verify_threshold(config))
        self.base_manifest = dict(manifest or {})
        self._generators: dict[tuple[str, bool], BaseGenerator] = {}
        #: Set a :class:`ModelCache` to serve repeated model calls from it (evaluation runs).
        self.cache: ModelCache | None = None

    # -- models -----------------------------------------------------------------------------
    def model_spec(self, model: str | None = None) -> str:
        """The model a call uses: ``model``, else ``answer.model``, else ``$DOMAINRAG_MODEL``,
        else ``extractive``."""
        return resolve_model(model, self.config.model, os.environ.get("DOMAINRAG_MODEL"))

    def generator(self, spec: str, primary: bool = True) -> BaseGenerator:
        """The generator for ``spec`` (cached). ``answer.base_url``/``api_key_env`` apply to the
        primary model only; fallbacks and the judge use their providers' defaults."""
        key = (spec, primary)
        if key not in self._generators:
            c = self.config
            settings = ProviderSettings(c.base_url if primary else None, c.api_key_env if primary else None,
                                        c.timeout_s, c.max_retries, c.untrusted if primary else None)
            self._generators[key] = load_generator(spec, settings)
        return self._generators[key]

    def prepare(self) -> None:
        """Load lazily created parts now, in this thread (before answering from a thread
        pool); without a usable embedder the checker goes on without embedding overlap."""
        if self._embedder is None:
            return
        try:
            self._embedder()
        except DomainragError:
            self._embedder = None
            self.checker.similarity = None

    def similarity(self, claim: str, candidates: Sequence[str]) -> float | None:
        """Best cosine of ``claim`` with ``candidates`` under the knowledge base's embedder, or
        ``None`` when it does not read the claim's language or fails."""
        assert self._embedder is not None
        try:
            embedder = self._embedder().similarity_model()
            if not embedder.covers(detect_language(claim)):
                return None
            vectors = embedder.embed([claim, *candidates])
        except DomainragError:
            return None
        return float(max(vectors[1:] @ vectors[0]))

    # -- answering --------------------------------------------------------------------------
    def answer(self, question: str, hits: Sequence[Hit], *, model: str | None = None,
               template: str | None = None, on_token: OnToken | None = None,
               timings: Mapping[str, float] | None = None,
               extra_trace: Mapping[str, Any] | None = None, sample: int = 0) -> Answer:
        run = _Run(question, self._language(question), time.perf_counter(), dict(timings or {}))
        run.trace.update(extra_trace or {})
        spec = self.model_spec(model)
        t = time.perf_counter()
        counter = token_counter(spec)
        packed = pack(hits, self.config.context_tokens, counter)
        evidence = _evidence(question, packed.sources, self.analyzer)
        run.trace.update(retrieved=[h.chunk_id for h in hits], sources=packed.chunk_ids,
                         evidence=round(evidence, 4), context_tokens=packed.tokens,
                         token_counter=counter.id,
                         packing={"duplicates": packed.dropped_duplicates, "merged": packed.merged,
                                  "over_budget": packed.skipped_for_budget})
        t = run.lap("pack_ms", t)
        prompt = self._prompt(template, run, packed.sources)
        instructions = prompt_instructions(prompt, run.question, packed.sources, self._abstain_text(run.language))
        t = run.lap("prompt_ms", t)
        manifest = {**self.base_manifest, "template": prompt.name, "template_hash": prompt.hash,
                    "language": run.language, "checker": self._checker(spec, template).id,
                    "judge": self.config.judge}
        if not packed.sources or evidence < self.config.min_evidence:
            reason = "no_sources" if not packed.sources else "weak_evidence"
            return self._abstain(run, reason, {**manifest, "model": spec, "model_version": None})
        request = GenerationRequest(prompt.messages, self.config.max_tokens, self.config.temperature,
                                    question, tuple(packed.sources), run.language, sample=sample)
        generation = self._generate(run, spec, request, on_token)
        manifest.update(model=generation.model, model_version=generation.version)
        t = time.perf_counter()
        check, supported = self._check(run, generation.text, packed.sources, instructions, spec, template)
        if self.config.strict and _failing(check, supported) and generation.finish_reason != "no_evidence":
            generation, check, supported = self._retry(run, spec, request, prompt, generation, check, supported,
                                                       instructions, template)
            t = time.perf_counter()
        run.lap("check_ms", t)
        return self._finish(run, generation, check, supported, packed.sources, manifest, template)

    def prompt(self, question: str, hits: Sequence[Hit], *, model: str | None = None,
               template: str | None = None) -> Prompt:
        """The messages :meth:`answer` would send a model for ``question`` and ``hits`` (packed
        and numbered the same way), for clients that bring their own model (MCP prompts)."""
        run = _Run(question, self._language(question), time.perf_counter())
        packed = pack(hits, self.config.context_tokens, token_counter(self.model_spec(model)))
        return self._prompt(template, run, packed.sources)

    def rewrite(self, question: str, history: Sequence[Turn], model: str | None = None) -> tuple[str, Usage]:
        """A follow-up question rewritten to stand alone (the offline default keeps it as is)."""
        generator = self.generator(self.model_spec(model))
        if not history or generator.id == "extractive":
            return question, Usage(0, 0, 0.0)
        prompt = self.templates.render("rewrite", self._language(question), question=question,
                                       history=list(history)[-6:])
        generation = self.complete(generator, GenerationRequest(prompt.messages, 200))
        rewritten = strip_markers(generation.text).strip().splitlines()
        return (rewritten[0].strip() if rewritten else "") or question, generation.usage

    def checker_id(self, model: str | None = None, template: str | None = None) -> str:
        """What checks the answers of ``model`` with ``template`` (the verifier, its threshold)."""
        return self._checker(self.model_spec(model), template).id

    def verify(self, text: str, sources: Sequence[Source], *, model: str | None = None,
               template: str | None = None) -> Verification:
        """Check ``text`` against ``sources`` exactly as an answer by ``model`` with ``template``
        is checked (``answer.verify``, the preset's threshold)."""
        checker = self._checker(self.model_spec(model), template)
        check = checker.check(text, sources)
        return verification(check, checker.id)

    # -- steps ------------------------------------------------------------------------------
    def _checker(self, spec: str, template: str | None = None) -> CitationChecker:
        """The checker of an answer by model ``spec`` with ``template`` (its preset's threshold):
        with ``answer.verify = "model"``, one whose verifier asks ``answer.judge`` (else that
        model; the offline verifier for ``extractive``). Setting ``answer.judge`` alone asks that
        model too, as it did before ``answer.verify`` existed."""
        checker = self.checker
        threshold = verify_threshold(self.config, template)
        if threshold != checker.verify_threshold:
            checker = replace_threshold(checker, threshold)
        if checker.verifier is None or not (self.config.verify == "model" or self.config.judge):
            return checker
        judge = self.config.judge or spec
        if resolve_model(judge, None, None) == "extractive":
            return checker
        generator = self.generator(judge, primary=judge == spec)
        verifier = ModelVerifier(generator.id, lambda request: self.complete(generator, request), self.templates,
                                 checker.verifier)
        return CitationChecker(checker.threshold, self.analyzer, None, checker.semantic_threshold,
                               verifier=verifier, verify_threshold=threshold, max_pairs=checker.max_pairs)

    def _language(self, question: str) -> str:
        if self.config.language != "auto":
            return self.config.language
        return "zh" if detect_language(question) == "zh" else "en"

    def _prompt(self, template: str | None, run: _Run, sources: Sequence[Source]) -> Prompt:
        return self.templates.render(
            template or self.config.template, run.language, question=run.question,
            sources=source_fields(sources), abstain_message=self._abstain_text(run.language),
            language_name=LANGUAGE_NAMES.get(run.language, "English"))

    def _abstain_text(self, language: str) -> str:
        return abstain_message(language, self.config.abstain_message)

    def _generate(self, run: _Run, spec: str, request: GenerationRequest,
                  on_token: OnToken | None) -> Generation:
        started = time.perf_counter()
        chain = [spec, *[m for m in self.config.fallback if m != spec]]
        errors: list[str] = []
        for i, model in enumerate(chain):
            try:
                generator = self.generator(model, primary=i == 0)
                generation = self.complete(generator, request, on_token)
            except (GenerationError, ConfigError) as exc:
                if len(chain) == 1:
                    raise
                run.attempts.append({"model": model, "error": str(exc)})
                errors.append(f"{model}: {exc}")
                continue
            run.attempts.append({"model": generation.model, "error": ""})
            run.usage += generation.usage
            run.lap("generate_ms", started)
            return generation
        raise GenerationError("Every model failed: " + " | ".join(errors))

    def complete(self, generator: BaseGenerator, request: GenerationRequest,
                  on_token: OnToken | None = None) -> Generation:
        """One model call: from the cache when it holds this request, priced."""
        key = request_key(generator.id, request) if self.cache and generator.cacheable else None
        cached = self.cache.get(key) if self.cache and key else None
        if cached is not None:
            if on_token and cached.text:
                on_token(cached.text)
            return self._priced(cached)
        generation = _call(generator, request, on_token)
        if self.cache and key and generation.finished:
            self.cache.put(key, generation)
        return self._priced(generation)

    def _priced(self, generation: Generation) -> Generation:
        if generation.model == "extractive":
            return generation
        price = self.config.prices.get(generation.model)
        if price is None:
            price = self.config.prices.get(generation.model.split("@")[0])
        return with_usage_cost(generation, (price.input, price.output) if price else None)

    def _check(self, run: _Run, text: str, sources: Sequence[Source],
               instructions: str = "", spec: str = "extractive",
               template: str | None = None) -> tuple[CheckResult, list[bool]]:
        checker = self._checker(spec, template)
        check = checker.check(text, sources, instructions)
        if isinstance(checker.verifier, ModelVerifier):
            stats = checker.verifier.stats
            run.usage += stats.usage
            run.trace["verifier"] = {"model": checker.verifier.model_id, **stats.to_dict()}
        return check, [s.supported for s in check.sentences]

    def _retry(self, run: _Run, spec: str, request: GenerationRequest, prompt: Prompt,
               draft: Generation, check: CheckResult, supported: list[bool],
               instructions: str, template: str | None = None) -> tuple[Generation, CheckResult, list[bool]]:
        problems = _problems(check, supported, self.config.min_grounded)
        retry = self.templates.render(prompt.name, run.language, blocks=("retry",), problems=problems,
                                      abstain_message=self._abstain_text(run.language))
        messages = (*request.messages, Message("assistant", draft.text), *retry.messages)
        second = self._generate(run, spec, replace(request, messages=messages), None)
        check2, supported2 = self._check(run, second.text, request.sources, instructions, spec, template)
        run.trace["retried"] = {"problems": problems, "first_draft": draft.text}
        if _grounded(check2, supported2) >= _grounded(check, supported):
            return second, check2, supported2
        return draft, check, supported

    def _finish(self, run: _Run, generation: Generation, check: CheckResult, supported: list[bool],
                sources: Sequence[Source], manifest: dict[str, Any], template: str | None = None) -> Answer:
        run.trace.update(removed_markers=list(check.removed_markers), uncited_sentences=check.uncited,
                         document_markers=list(check.document_markers), echoed_sentences=check.echoed,
                         finish_reason=generation.finish_reason)
        grounded = _grounded(check, supported)
        reason = abstain_reason(check, supported, self.config.min_grounded, self._abstain_text(run.language),
                                generation.finish_reason)
        if reason in ("no_evidence", "model_abstained"):
            return self._abstain(run, reason, manifest)
        if reason:
            run.trace["draft"] = check.text
            return self._abstain(run, reason, manifest, grounded)
        citations = tuple(self._citations(check, supported, sources))
        text, flagged = shown_text(check, supported, self._unsupported_action(template), run.language)
        run.trace["unsupported_sentences"] = flagged
        claims = [ok for s, ok in zip(check.sentences, supported, strict=False) if s.role in (CLAIM, ECHO)]
        run.trace["claims"] = {"total": len(claims), "supported": sum(claims)}
        self._close(run)
        return Answer(question=run.question, text=text, citations=citations, abstained=False,
                      grounded=grounded, usage=run.usage, manifest=manifest, trace=Trace(run.trace),
                      complete=generation.complete, sources=tuple(sources))

    def _unsupported_action(self, template: str | None = None) -> str:
        if self.config.unsupported:
            return self.config.unsupported
        return "remove" if (template or self.config.template) in STRICT_PRESETS else "mark"

    def _abstain(self, run: _Run, reason: str, manifest: dict[str, Any], grounded: float = 0.0) -> Answer:
        run.trace["abstain_reason"] = reason
        self._close(run)
        return Answer(question=run.question, text=self._abstain_text(run.language), citations=(), abstained=True,
                      grounded=grounded, usage=run.usage, manifest=manifest, trace=Trace(run.trace))

    def _close(self, run: _Run) -> None:
        run.lap("total_ms", run.started)
        run.trace.update(timings_ms=run.timings, attempts=run.attempts)

    def _citations(self, check: CheckResult, supported: list[bool],
                   sources: Sequence[Source]) -> Iterator[Citation]:
        by_number = {s.number: s for s in sources}
        for sentence, ok in zip(check.sentences, supported, strict=False):
            if sentence.role == META:
                continue
            claim = sentence.claim
            for n in sentence.sources:
                source = by_number[n]
                start, end, score = self._quote(claim, source)
                yield Citation(number=n, doc_id=source.doc_id, chunk_id=source.chunk_id,
                               span=Span(source.doc_id, source.start + start, source.start + end, source.page),
                               quote=source.text[start:end], sentence=claim,
                               support=sentence.support if len(sentence.sources) == 1 else score,
                               supported=ok, source=source.source, title=source.title, semantic=sentence.semantic)

    def _quote(self, claim: str, source: Source) -> tuple[int, int, float]:
        """Offsets (in the source text) of its sentence that best supports ``claim``, and its score."""
        best = (0, len(source.text), -1.0)
        for start, end in sentence_spans(source.text):
            score, numbers_ok = self.checker.support(claim, source.text[start:end])
            score = score if numbers_ok else score / 2
            if score > best[2]:
                best = (start, end, score)
        return best


def _call(generator: BaseGenerator, request: GenerationRequest, on_token: OnToken | None) -> Generation:
    if on_token is None:
        return generator.complete(request)
    result: Generation | None = None
    for item in generator.stream(request):
        if isinstance(item, Generation):
            result = item
        else:
            on_token(item)
    if result is None:
        raise GenerationError(f"{generator.id} ended its stream without a result")
    return result


def _evidence(question: str, sources: Sequence[Source], analyzer: Analyzer) -> float:
    """The best coverage of the question by one source (text, title and headings)."""
    if not sources:
        return 0.0
    coverage = Coverage(question, analyzer)
    if not coverage.terms:
        return 1.0  # nothing to measure (a question of stopwords only): let the model decide
    texts = [" ".join((s.title, *s.heading_path, s.text)) for s in sources]
    return max(coverage.scores(texts))


def abstain_reason(check: CheckResult, supported: Sequence[bool], min_grounded: float, abstain_message: str,
                   finish_reason: str = "stop") -> str | None:
    """Why a checked answer is not shown (``no_evidence``, ``model_abstained``, ``echoed_prompt``,
    ``citations_failed``), or ``None`` when it is shown."""
    if finish_reason == "no_evidence":
        return "no_evidence"
    if _says_abstain(check.text, abstain_message):
        return "model_abstained"
    if check.delimiters or check.echoed:
        return "echoed_prompt"
    if grounded_share(check.sentences, supported) < min_grounded:
        return "citations_failed"
    return None


def prompt_instructions(prompt: Prompt, question: str, sources: Sequence[Source], abstain: str) -> str:
    """The prompt's own text: its messages without the sources' fields, the question and the
    abstention message (which a model is asked to repeat)."""
    text = "\n".join(m.content for m in prompt.messages)
    fields = [v for f in source_fields(sources) for v in (f["text"], f["title"], f["location"])]
    for value in sorted((v for v in (*fields, question, abstain) if len(v.strip()) > 3), key=len, reverse=True):
        text = text.replace(value, " ")
    return text


def _grounded(check: CheckResult, supported: Sequence[bool]) -> float:
    return grounded_share(check.sentences, supported)


def _failing(check: CheckResult, supported: list[bool]) -> bool:
    counted = [ok for s, ok in zip(check.sentences, supported, strict=False)
               if s.role in (CLAIM, ECHO) or (s.role == FRAGMENT and not ok)]
    cited = any(s.sources for s in check.sentences)
    return bool(check.removed_markers) or check.delimiters or not cited or not all(counted)


def _problems(check: CheckResult, supported: list[bool], min_grounded: float) -> list[str]:
    problems = [f"[{n}] cites a source that was not given." for n in dict.fromkeys(check.removed_markers)]
    if check.delimiters:
        problems.append("The answer repeats the prompt's <source> blocks instead of answering.")
    for sentence, ok in zip(check.sentences, supported, strict=False):
        if sentence.role == ECHO:
            problems.append(f'"{sentence.claim}" repeats the instructions instead of answering.')
        elif sentence.reason == "uncited":
            problems.append(f'"{sentence.claim}" cites no source.')
        elif sentence.sources and not ok and sentence.role != META:
            cited = ", ".join(f"[{n}]" for n in sentence.sources)
            problems.append(f'"{sentence.claim}" is not supported by {cited}.')
    if not any(s.sources for s in check.sentences):
        problems.append("No sentence cites a source.")
    return problems


def _says_abstain(text: str, message: str) -> bool:
    def norm(s: str) -> str:
        return "".join(ch for ch in strip_markers(s).lower() if ch.isalnum())

    said, expected = norm(text), norm(message)
    return bool(expected) and (said == expected or (said.startswith(expected) and len(said) < 2 * len(expected)))



#: Inline mark of a sentence no source supports, per language.
UNSUPPORTED_MARK = {"en": "[unsupported]", "zh": "【无依据】"}


def offline_verifier() -> Verifier:
    """The built-in offline verifier (loaded on its first score)."""
    return load_verifier("offline")


def verify_threshold(config: AnswerConfig, template: str | None = None) -> float:
    """``answer.verify_threshold``, else the template preset's (stricter for medical, finance, legal)."""
    if config.verify_threshold is not None:
        return config.verify_threshold
    return preset_verify_threshold(template or config.template)


def replace_threshold(checker: CitationChecker, threshold: float) -> CitationChecker:
    return CitationChecker(checker.threshold, checker.analyzer, checker.similarity, checker.semantic_threshold,
                           verifier=checker.verifier, verify_threshold=threshold, max_pairs=checker.max_pairs)


def shown_text(check: CheckResult, supported: Sequence[bool], action: str,
               language: str = "en") -> tuple[str, list[dict[str, str]]]:
    """The answer as shown: each counted sentence no source supports marked inline or removed
    (``action``), and what was done to which sentence."""
    text = check.text
    flagged: list[dict[str, str]] = []
    mark = UNSUPPORTED_MARK.get(language, UNSUPPORTED_MARK["en"])
    for sentence, ok in sorted(zip(check.sentences, supported, strict=False), key=lambda x: -x[0].start):
        if ok or not _counted(sentence):
            continue
        flagged.append({"sentence": sentence.claim or sentence.text, "reason": sentence.reason, "action": action})
        if action == "remove":
            end = sentence.end
            while end < len(text) and text[end] in " \t":
                end += 1
            text = text[: sentence.start] + text[end:]
        else:
            text = text[: sentence.end] + " " + mark + text[sentence.end :]
    flagged.reverse()
    return text.strip(), flagged


def _counted(sentence: CitedSentence) -> bool:
    if sentence.role in (CLAIM, ECHO):
        return True
    return sentence.role == FRAGMENT and bool(sentence.reason)
