"""Offline citation checking: parse ``[n]`` markers, drop fabricated ones, score support.

Markers
    ``[1]``, ``[1, 2]``, ``[1][3]``, ``[1-2]`` (ranges, also with an en dash) and the full-width
    ``【1】`` are recognised; numbers are written without leading zeros (``[01]``, ``[1.5]`` and
    ``[1, 2, ...]`` are plain text, not citations). In a list, a number that points to no source
    is removed (the whole marker, and the spaces before it, when nothing valid is left); a range
    is kept only when every number in it is a source, else removed whole, so ``[1-100]`` earns
    nothing. Removed numbers are reported in ``CheckResult.removed_markers``.

Markers copied from a document
    A source may hold ``[n]`` markers of its own (a paper's references). A marker of the answer
    preceded by the same three words as a marker with the same numbers in a source is the
    document's, copied along with its sentence: it is removed (``CheckResult.document_markers``)
    unless it names that very source.

Sentences and claims
    The cleaned answer is split with :func:`domainrag.text.sentence_spans` (English and Chinese)
    after masking the markers; a marker that follows a sentence's end punctuation belongs to that
    sentence, and a marker followed by more words ends a claim (``"Revenue grew [1] and costs
    fell [2]."`` is two claims). Each piece gets a ``role``:

    * ``claim`` — states a fact: it counts towards ``grounded``, cited or not. An uncited claim is
      checked against the sources of the nearest cited piece of its paragraph (the next, else the
      previous: ``"A. B [1]."`` checks A against [1]) and is unsupported (``reason="uncited"``)
      unless one of them supports it; an uncited claim alone in its paragraph is unsupported;
    * ``fragment`` — a cited piece of at most ``FRAGMENT_ITEMS`` content words and numbers (``"50
      mg [1]"``): it counts only when unsupported, or when the answer has no claim at all, so short
      pieces copied from a source cannot outvote an unsupported claim;
    * ``meta`` — connective or talk about the documents (``"Here is what the documents say:"``,
      an uncited piece of at most two words and no number): never counts;
    * ``echo`` — copied from the prompt's instructions (``ECHO_SHARE`` of its word 4-grams are in
      them, more than in the sources): counts as unsupported.

    A cited piece without content words (``"and [3]"``, ``"See [2]."``) is no claim: its markers
    join the nearest claim before it (else after it), whose own words alone are checked, so
    appending markers never adds a supported claim.

The verifier (the default: ``answer.verify = "offline"``)
    With a :class:`~domainrag.models.verification.Verifier`, every claim and fragment it reads
    (English for the shipped one) is re-judged after the word rules: a cited piece against the
    sources it cites, an **uncited** one against every source (supported when any supports it;
    ``checked`` then names that source, else it stays ``uncited``). The verifier reads the claim,
    without a lead-in about the documents, against the whole source when it has at most
    ``WINDOW_CHARS`` characters, else against its ``VERIFY_WINDOWS`` windows of
    ``WINDOW_SENTENCES`` sentences sharing most items with the claim; the best window counts.
    ``support`` is then the verifier's probability and the piece is supported when it reaches
    ``verify_threshold`` **and** the source passes the number and unit tests below (a figure
    the source does not state, or states in another unit, fails whatever the model says, as
    does a negation the source does not share) and,
    for a claim that states a figure, names every drug, company, statute or other proper name
    the claim gives (:func:`.claims.names`) in its title, headings or text, and in its text in
    a clause stating one of the claim's figures — a dose or a revenue figure taken from a
    passage about something else, or about another thing in the same passage, is unsupported
    (``entity``).
    Unsupported reasons: ``uncited``, ``meaning``, ``number``, ``unit``, ``negation``,
    ``entity``. A long source is also read as its ``WINDOW_SENTENCES`` best sentences gathered
    (a claim may join sentences that stand apart). All the pairs of one answer go to the
    verifier in one call.

Support score of the word rules (deterministic, no model; ``answer.verify = "lexical"``, and
claims in a language the verifier does not read)
    For a claim and one source, with *content tokens* the :class:`Analyzer` tokens of the claim
    (stemmed English without stopwords, jieba words for Chinese) with numbers taken out first and
    normalised (``"1,200,000"`` == ``"1200000"``, ``"5.50"`` == ``"5.5"``):

    * ``lexical`` = share of the claim's distinct content tokens and numbers found in the source;
    * ``numbers`` = share of the claim's distinct numbers found in the source (1.0 when none),
      as written or scaled (``"$1.2 million"`` is found as ``"1,200,000"``).

    Meta words of the claim (``"according to the documents"``) that the source lacks are left
    out, and a source's own ``[n]`` markers are not numbers it states.

    ``support = lexical`` when every number is found, else ``lexical * numbers / 2``. Two more
    tests (:mod:`.claims`) halve the score and fail the claim: a number stated with a currency,
    scale or unit the source gives it only otherwise (``"81 g"`` for ``"81 mg"``, ``reason="unit"``)
    and a negation that the source does not share, or a negation of the source sentence the claim
    restates that the claim drops (``reason="negation"``). A claim's support is the best over its
    cited sources, preferring those that pass every test, and it is ``supported`` when that source
    passes them **and** ``support >= threshold``.

Grounded
    ``grounded`` = supported counted pieces / counted pieces (see roles above), 0.0 when none.

Limits of the word rules (benchmarks/citations_adversarial.py, benchmarks/verifier.py)
    Word rules cannot tell an antonym (``"increased"`` for ``"decreased"``) from a synonym, and a
    claim that adds an invented clause to a supported sentence passes while its words stay above
    the threshold; honest paraphrases in other words (or a negation reworded, ``"shouldn't take"``
    for ``"not recommended"``) are flagged. ``answer.judge`` (a model judging entailment) covers
    what these rules do not.

Embedding overlap (optional)
    Paraphrases share fewer words. Given a ``similarity`` function (cosine of sentence
    embeddings; the knowledge base passes its embedder when it reads the claim's language), a
    claim that passes the number, unit and negation tests and whose lexical support falls short
    by less than ``SEMANTIC_BAND`` is compared with the ``SEMANTIC_CANDIDATES`` sentences of each
    cited source that share most words with it; ``semantic`` is the best cosine and the claim is
    supported when it reaches ``semantic_threshold``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from ..errors import ConfigError
from ..index.analyzer import Analyzer
from ..models.verification import Verifier
from ..text import detect_language, sentence_spans
from ..types import Source
from . import claims as lex
from .claims import normalize_number

__all__ = ["CheckResult", "CitationChecker", "CitedSentence", "Source", "clean_markers", "find_markers",
           "grounded_share", "normalize_number", "parse_marker", "strip_markers"]

#: benchmarks/citations.py flags 97.4% of unsupported sentences at 0.6 and 98.6% at 0.85 with no
#: false flags — but its supported sentences are near-verbatim. Real answers paraphrase, which
#: lowers word overlap, so the default sits below the benchmark's plateau
#: (results/citations.json; paraphrases: results/citations_adversarial.json).
DEFAULT_THRESHOLD = 0.6
#: Cosine a paraphrase needs with a source sentence (benchmarks/citations.py --semantic).
DEFAULT_SEMANTIC_THRESHOLD = 0.8
#: Support probability (the verifier's, calibrated) from which a claim is supported, chosen on
#: the development pairs by tools/verifier_thresholds.py (benchmarks/RESULTS.md §31): the best
#: balanced accuracy on WiCE dev (0.69; false accept 0.16) within 0.002 of the best macro over
#: the four attribution dev sets, at half its worst-set false accept.
DEFAULT_VERIFY_THRESHOLD = 0.45
#: The stricter presets' threshold (medical, finance, legal): macro false accept on dev 0.07
#: (WiCE 0.07, worst set 0.19).
STRICT_VERIFY_THRESHOLD = 0.6
#: Template presets that need :data:`STRICT_VERIFY_THRESHOLD` (and remove unsupported sentences).
STRICT_PRESETS = frozenset({"medical", "finance", "legal"})
#: An uncited claim is read against this many sources at most: those sharing the most words with it.
UNCITED_CANDIDATES = 8
#: Claim–evidence pairs one check may send to the verifier (~4 ms each on 2 cores): an answer
#: needing more is refused with a clear error instead of holding a worker for minutes.
DEFAULT_MAX_PAIRS = 4096


def preset_verify_threshold(template: str | None) -> float:
    """The support probability a claim needs under ``template`` (stricter for the presets
    medical, finance and legal)."""
    return STRICT_VERIFY_THRESHOLD if template in STRICT_PRESETS else DEFAULT_VERIFY_THRESHOLD
#: A source up to this many characters is read whole by the verifier; a longer one as its
#: ``VERIFY_WINDOWS`` windows of ``WINDOW_SENTENCES`` sentences sharing most words with the claim.
WINDOW_CHARS = 1000
WINDOW_SENTENCES = 3
VERIFY_WINDOWS = 2
SEMANTIC_BAND = 0.3
SEMANTIC_CANDIDATES = 3
#: A cited piece with at most this many content items (words and numbers) is a fragment.
FRAGMENT_ITEMS = 2
#: Share of a sentence's word 4-grams found in the prompt's instructions that makes it an echo.
ECHO_SHARE = 0.5
#: Words before a marker compared with a document's own markers.
DOCUMENT_MARKER_CONTEXT = 3
_MAX_RANGE = 100

_N = r"(?:0|[1-9]\d{0,5})"
_ITEM = rf"{_N}(?:\s*[\-–]\s*{_N})?"
_BODY = rf"{_ITEM}(?:\s*[,，、]\s*{_ITEM})*"
_MARKER = re.compile(rf"\[\s*({_BODY})\s*\]|【\s*({_BODY})\s*】")
_MARKER_WITH_SPACE = re.compile(r"[ \t]*(?:" + _MARKER.pattern + ")")

_PARAGRAPH = re.compile(r"\n\s*\n")
#: A lead-in of at most eight words ended by a colon or comma (checked to be meta talk).
_LEAD_IN = re.compile(r"^\s*((?:[^\s:,;]+\s+){0,7}[^\s:,;]+)\s*[:,]\s+")
#: Stems that may join meta words in a lead-in ("Based on the documents provided, ...").
_LEAD_IN_WORDS = frozenset({"base", "what", "we", "know", "given", "these", "your", "my", "short", "sum",
                            "up", "result", "find", "show", "indic", "note", "quick", "key", "point", "main"})

CLAIM, FRAGMENT, META, ECHO = "claim", "fragment", "meta", "echo"


@dataclass(frozen=True)
class CitedSentence:
    """One piece of the cleaned answer: ``CheckResult.text[start:end] == text``.

    ``sources`` are the valid numbers cited by its markers (empty when uncited); ``support`` is
    the score defined in the module docstring (0.0 when uncited); ``semantic`` the embedding
    similarity when it was consulted, else ``None``. ``role`` is ``claim``, ``fragment``,
    ``meta`` or ``echo`` (module docstring); ``reason`` says why it is unsupported (``uncited``,
    ``words``, ``number``, ``unit``, ``negation``, ``echo``; empty when supported or meta);
    ``claim`` is the text that was checked (markers and absorbed marker-only pieces left out);
    ``checked`` the sources it was checked against: its own, or for an uncited claim those of the
    nearest cited piece of its paragraph (next, else previous).
    """

    text: str
    start: int
    end: int
    sources: tuple[int, ...]
    support: float
    supported: bool
    semantic: float | None = None
    role: str = CLAIM
    reason: str = ""
    claim: str = ""
    checked: tuple[int, ...] = ()

    @property
    def counted(self) -> bool:
        """Whether it counts towards ``grounded`` regardless of the other pieces."""
        return self.role in (CLAIM, ECHO) or (self.role == FRAGMENT and not self.supported)


@dataclass(frozen=True)
class CheckResult:
    """The checked answer: ``text`` has invalid and copied markers removed; ``grounded`` is the
    share of counted pieces that are supported (0.0 if none); ``uncited`` counts the uncited
    claims that no nearby citation supports;
    ``document_markers`` the numbers of markers removed as copied from a document; ``echoed``
    the pieces copied from the prompt's instructions; ``delimiters`` whether the answer holds
    the prompt's source delimiters (it echoes the prompt)."""

    text: str
    sentences: tuple[CitedSentence, ...]
    removed_markers: tuple[int, ...]
    grounded: float
    uncited: int
    document_markers: tuple[int, ...] = ()
    echoed: int = 0
    delimiters: bool = False


@dataclass(frozen=True)
class _Marker:
    start: int
    end: int
    numbers: tuple[int, ...]
    ranges: tuple[tuple[int, int], ...] = ()


@dataclass(frozen=True)
class _Content:
    tokens: frozenset[str]
    numbers: frozenset[str]
    quantities: tuple[lex.Quantity, ...] = ()
    scopes: tuple[frozenset[str], ...] = ()
    #: every number as written and as scaled (``"1.2 million"`` is also ``"1200000"``)
    values: frozenset[str] = frozenset()
    #: each negation's items to the end of its clause
    clauses: tuple[frozenset[str], ...] = ()

    @property
    def items(self) -> frozenset[str]:
        return self.tokens | self.numbers


@dataclass
class _SourceContent:
    text: str
    whole: _Content
    sentences: tuple[_Content, ...]
    spans: tuple[tuple[int, int], ...] = ()
    _ngrams: frozenset[tuple[str, ...]] | None = None

    @property
    def ngrams(self) -> frozenset[tuple[str, ...]]:
        if self._ngrams is None:
            self._ngrams = frozenset(lex.ngrams(self.text))
        return self._ngrams


@dataclass
class _Piece:
    start: int
    end: int
    markers: list[_Marker]
    claim_start: int
    claim_end: int
    absorbed: bool = False
    extra: list[_Marker] = field(default_factory=list)


#: ``similarity(claim, candidates)``: the best cosine of ``claim`` with any candidate, or
#: ``None`` when it cannot tell (e.g. the embedder does not read the claim's language).
Similarity = Callable[[str, Sequence[str]], "float | None"]


class CitationChecker:
    """Checks the ``[n]`` citations of an answer against its numbered sources, offline."""

    def __init__(self, threshold: float = DEFAULT_THRESHOLD, analyzer: Analyzer | None = None,
                 similarity: Similarity | None = None,
                 semantic_threshold: float = DEFAULT_SEMANTIC_THRESHOLD,
                 verifier: Verifier | None = None,
                 verify_threshold: float = DEFAULT_VERIFY_THRESHOLD,
                 max_pairs: int = DEFAULT_MAX_PAIRS) -> None:
        if not isinstance(max_pairs, int) or max_pairs < 1:
            raise ConfigError(f"citation max_pairs must be a positive integer, got {max_pairs!r}")
        for name, value in (("threshold", threshold), ("semantic_threshold", semantic_threshold),
                            ("verify_threshold", verify_threshold)):
            if not 0.0 <= value <= 1.0:
                raise ConfigError(f"citation {name} must be between 0 and 1, got {value!r}")
        self.threshold = threshold
        self.analyzer = analyzer or Analyzer()
        self.similarity = similarity
        self.semantic_threshold = semantic_threshold
        self.verifier = verifier
        self.verify_threshold = verify_threshold
        self.max_pairs = max_pairs

    @property
    def id(self) -> str:
        """What checked: the verifier and its threshold, else the word rules and theirs."""
        if self.verifier is not None:
            return f"{self.verifier.id}@{self.verify_threshold:g}"
        checker = f"lexical-v1@{self.threshold:g}"
        if self.similarity is not None:
            checker += f"+semantic@{self.semantic_threshold:g}"
        return checker

    def check(self, answer: str, sources: Sequence[Source], instructions: str = "") -> CheckResult:
        """Check ``answer`` against ``sources``. ``instructions`` is the prompt's own text
        (without the sources and the question): pieces copied from it are echoes."""
        by_number = {s.number: s for s in sources}
        text, removed, copied = _clean(answer, set(by_number), sources)
        cache: dict[int, _SourceContent] = {}
        reference = lex.ngrams(instructions) if instructions else set()
        pieces = self._pieces(text)
        sentences = [self._sentence(text, p, by_number, cache, reference, _nearby(text, pieces, i))
                     for i, p in enumerate(pieces)]
        if self.verifier is not None:
            sentences = self._verify(sentences, by_number, cache)
        grounded = grounded_share(sentences, [s.supported for s in sentences])
        uncited = sum(1 for s in sentences if s.reason == "uncited")
        echoed = sum(1 for s in sentences if s.role == ECHO)
        return CheckResult(text, tuple(sentences), removed, grounded, uncited, copied, echoed,
                           bool(lex.PROMPT_DELIMITER.search(answer)))

    def support(self, sentence: str, source_text: str) -> tuple[float, bool]:
        """(support score, all numbers found) of ``sentence`` against one source text."""
        return _score(self._content(sentence), self._content(strip_markers(source_text)))

    # -- the verifier ------------------------------------------------------------------------
    def _verify(self, sentences: list[CitedSentence], by_number: dict[int, Source],
                cache: dict[int, _SourceContent]) -> list[CitedSentence]:
        """Re-judge every claim and fragment the verifier reads with its support probability.

        A cited piece is checked against the sources it cites; an uncited one against every
        source (it must be supported somewhere, else it is ``uncited``). Per source, the best
        window's probability counts; the number, unit, negation and name tests still apply
        (a figure the source does not state fails whatever the model says). One batched call
        per answer."""
        assert self.verifier is not None
        languages = getattr(self.verifier, "languages", None)
        jobs: list[tuple[int, int, str]] = []
        for i, sentence in enumerate(sentences):
            if sentence.role not in (CLAIM, FRAGMENT) or not sentence.claim:
                continue
            if languages is not None and detect_language(sentence.claim) not in languages:
                continue  # the word rules keep their verdict
            content = self._content(sentence.claim)
            for n in sentence.sources or self._likely_sources(content, by_number, cache):
                jobs.extend((i, n, window)
                            for window in self._windows(content.items, self._source(by_number[n], cache)))
        if not jobs:
            return sentences
        if len(jobs) > self.max_pairs:
            raise ConfigError(
                f"Checking this answer needs {len(jobs):,} claim–evidence pairs; one check reads at most "
                f"{self.max_pairs:,}. Check a shorter answer, or cite fewer sources per sentence."
            )
        claims = {i: self._without_lead_in(sentences[i].claim) for i, _, _ in jobs}
        scores = self.verifier.score([(claims[i], window) for i, _, window in jobs])
        best: dict[tuple[int, int], float] = {}
        for (i, n, _), score in zip(jobs, scores, strict=True):
            best[i, n] = max(score, best.get((i, n), 0.0))
        out = list(sentences)
        for i, sentence in enumerate(sentences):
            numbers = [n for (j, n) in best if j == i]
            if numbers:
                out[i] = self._verdict(sentence, {n: best[i, n] for n in numbers}, by_number, cache)
        return out

    def _likely_sources(self, claim: _Content, by_number: dict[int, Source],
                        cache: dict[int, _SourceContent]) -> tuple[int, ...]:
        """The sources an uncited claim is read against: all of them, or with many sources the
        :data:`UNCITED_CANDIDATES` sharing the most content words with it (ties: answer order)."""
        numbers = tuple(by_number)
        if len(numbers) <= UNCITED_CANDIDATES:
            return numbers
        shared = {n: len(claim.tokens & self._source(by_number[n], cache).whole.tokens) for n in numbers}
        return tuple(sorted(numbers, key=lambda n: -shared[n])[:UNCITED_CANDIDATES])

    def _verdict(self, sentence: CitedSentence, probabilities: dict[int, float], by_number: dict[int, Source],
                 cache: dict[int, _SourceContent]) -> CitedSentence:
        claim = self._content(sentence.claim)
        names = lex.names(sentence.claim) if claim.numbers else []
        ranked = []
        for n, p in probabilities.items():
            _score_, ok, reason = self._judge(claim, self._source(by_number[n], cache))
            if ok and names and self._names_fail(names, claim, by_number[n]):
                ok, reason = False, "entity"
            ranked.append((ok, p, n, reason))
        ok, p, n, reason = max(ranked)
        supported = ok and p >= self.verify_threshold
        if supported:
            reason = ""
        elif not sentence.sources:
            reason = "uncited"
        elif ok:
            reason = "meaning"
        checked = sentence.sources or ((n,) if supported else tuple(by_number))
        return _with(sentence, support=p, supported=supported, semantic=None, reason=reason, checked=checked)

    @staticmethod
    def _names_fail(names: list[str], claim: _Content, source: Source) -> bool:
        """A name of the claim the source never mentions, or mentions in its text only in
        clauses that state none of the claim's figures."""
        if lex.missing_names(names, _named_text(source)):
            return True
        in_text = [n for n in names if not lex.missing_names([n], source.text)]
        headings = " ".join((source.title, *source.heading_path))
        loose = [n for n in in_text if lex.missing_names([n], headings)]
        return bool(lex.unbound_names(loose, claim.numbers, strip_markers(source.text)))

    def _without_lead_in(self, claim: str) -> str:
        """The claim without a lead-in that talks about the documents (``"Here is what the
        sources say:"``, ``"According to the documents,"``): the verifier reads the fact."""
        match = _LEAD_IN.match(claim)
        if match is None:
            return claim
        head = self._content(match.group(1))
        if head.numbers or not head.tokens or not head.tokens <= lex.META_WORDS | _LEAD_IN_WORDS:
            return claim
        rest = claim[match.end() :].strip()
        return rest[:1].upper() + rest[1:] if rest else claim

    @staticmethod
    def _windows(items: frozenset[str], content: _SourceContent) -> list[str]:
        """The evidence the verifier reads for a claim (its content ``items``) in a source: the
        whole text when short, else the ``VERIFY_WINDOWS`` windows of ``WINDOW_SENTENCES``
        sentences sharing most items with the claim (in document order), and those best
        sentences gathered when they stand apart."""
        text, spans = content.text, content.spans
        if len(text) <= WINDOW_CHARS or len(content.sentences) <= WINDOW_SENTENCES:
            return [text]
        overlap = [len(items & s.items) for s in content.sentences]
        size = WINDOW_SENTENCES
        starts = range(max(1, len(spans) - size + 1))
        ranked = sorted(starts, key=lambda k: (-sum(overlap[k : k + size]), k))
        chosen: list[int] = []
        for k in ranked:
            if all(abs(k - c) >= size for c in chosen):
                chosen.append(k)
            if len(chosen) == VERIFY_WINDOWS:
                break
        windows = [text[spans[k][0] : spans[min(k + size, len(spans)) - 1][1]] for k in sorted(chosen)]
        # a claim may join sentences that stand apart: the best ones gathered, in document order
        best = sorted(sorted(range(len(spans)), key=lambda i: (-overlap[i], i))[:size])
        if any(not any(c <= i < c + size for c in chosen) for i in best if overlap[i]):
            windows.append(" ".join(text[spans[i][0] : spans[i][1]] for i in best))
        return windows

    # -- pieces -----------------------------------------------------------------------------
    def _pieces(self, text: str) -> list[_Piece]:
        """Sentence pieces with their markers; marker-only pieces absorbed by a neighbour."""
        pieces = [_Piece(a, b, markers, a, b) for (a, b), markers in _sentences_with_markers(text)]
        weights = [self._weight(text[p.start : p.end]) for p in pieces]
        last_kept: int | None = None
        for i, piece in enumerate(pieces):
            if not piece.markers or weights[i]:
                last_kept = i
                continue
            host = last_kept if last_kept is not None and weights[last_kept] else None
            if host is None and i + 1 < len(pieces) and weights[i + 1]:
                host = i + 1
            if host is None:
                last_kept = i
                continue
            target = pieces[host]
            target.extra.extend(piece.markers)
            piece.absorbed = True
            target.start, target.end = min(target.start, piece.start), max(target.end, piece.end)
        kept = [p for p in pieces if not p.absorbed]
        for p in kept:
            p.markers = p.markers + p.extra
        return kept

    def _weight(self, text: str) -> int:
        """Content items of ``text`` that are not meta words."""
        content = self._content(strip_markers(text))
        return len(content.tokens - lex.META_WORDS) + len(content.numbers)

    def _sentence(self, text: str, piece: _Piece, by_number: dict[int, Source],
                  cache: dict[int, _SourceContent], reference: set[tuple[str, ...]],
                  nearby: tuple[int, ...] = ()) -> CitedSentence:
        start, end = piece.start, piece.end
        numbers = _numbers(piece)
        claim_text = " ".join(lex.ENUMERATOR.sub(" ", strip_markers(text[piece.claim_start : piece.claim_end])).split())
        claim = self._content(claim_text)
        weight = len(claim.tokens - lex.META_WORDS) + len(claim.numbers)
        base = CitedSentence(text[start:end], start, end, numbers, 0.0, False, claim=claim_text)
        if reference and self._echoes(claim_text, reference, [by_number[n] for n in by_number], cache):
            return _with(base, role=ECHO, reason="echo")
        if not numbers:
            if weight < 3 and not claim.numbers:
                return _with(base, role=META)
            if not nearby:
                return _with(base, role=CLAIM, reason="uncited")
        if not weight:
            return _with(base, role=META)
        role = FRAGMENT if weight <= FRAGMENT_ITEMS and numbers else CLAIM
        checked = numbers or nearby
        verdicts = [self._judge(claim, self._source(by_number[n], cache)) for n in checked]
        score, ok, reason = max(verdicts, key=lambda v: (v[1], v[0]))
        supported = ok and score >= self.threshold
        semantic = None
        if not supported and ok and self.similarity and score >= self.threshold - SEMANTIC_BAND:
            semantic = self._semantic(claim_text, claim, [by_number[n] for n in checked])
            supported = semantic is not None and semantic >= self.semantic_threshold
        if not supported and not reason:
            reason = "words"
        if not supported and not numbers:
            reason = "uncited"
        return _with(base, support=score, supported=supported, semantic=semantic, role=role,
                     reason="" if supported else reason, checked=checked)

    def _judge(self, claim: _Content, source: _SourceContent) -> tuple[float, bool, str]:
        """(score, passes the number/unit/negation tests, reason when it does not)."""
        score, numbers_ok = _score(claim, source.whole)
        if not numbers_ok:
            return score, False, "number"
        if lex.unit_conflicts(claim.quantities, source.whole.quantities):
            return score / 2, False, "unit"
        near, top = _aligned_scopes(claim, source)
        if lex.negation_conflict(list(claim.scopes), claim.items, near, top):
            return score / 2, False, "negation"
        return score, True, ""

    def _echoes(self, claim_text: str, reference: set[tuple[str, ...]], sources: list[Source],
                cache: dict[int, _SourceContent]) -> bool:
        share = lex.shared_ngram_share(claim_text, reference)
        if share < ECHO_SHARE:
            return False
        grams = lex.ngrams(claim_text)
        in_sources = max((len(grams & self._source(s, cache).ngrams) / len(grams) for s in sources), default=0.0)
        return share > in_sources

    def _semantic(self, claim_text: str, claim: _Content, sources: list[Source]) -> float | None:
        """Best cosine of the claim with the sentences of its sources that share most words."""
        candidates: list[str] = []
        for source in sources:
            text = strip_markers(source.text)
            sentences = [text[a:b] for a, b in sentence_spans(text)]
            sentences.sort(key=lambda x: -len(claim.tokens & self._content(x).tokens))
            candidates.extend(sentences[:SEMANTIC_CANDIDATES])
        assert self.similarity is not None
        return self.similarity(claim_text, candidates) if candidates else None

    def _source(self, source: Source, cache: dict[int, _SourceContent]) -> _SourceContent:
        if source.number not in cache:
            text = strip_markers(source.text)  # a document's own [n] are not numbers it states
            spans = tuple(sentence_spans(text))
            sentences = tuple(self._content(text[a:b]) for a, b in spans)
            cache[source.number] = _SourceContent(text, _merge(sentences), sentences, spans)
        return cache[source.number]

    def _content(self, text: str) -> _Content:
        text = lex.ENUMERATOR.sub(" ", text)
        numbers = frozenset(lex.numbers(text))
        quantities = tuple(lex.quantities(text))
        values = numbers | {v for q in quantities if (v := lex.scaled(q))}
        words = lex.NUMBER.sub(" ", text)
        return _Content(frozenset(self.analyzer.tokenize(words)), numbers, quantities,
                        tuple(lex.negation_scopes(text, self._items)), values,
                        tuple(lex.negation_scopes(text, self._items, None)))

    def _items(self, text: str) -> list[str]:
        """Content items of ``text`` in order: normalised numbers and analyzer tokens."""
        out: list[str] = []
        pos = 0
        for m in lex.NUMBER.finditer(text):
            out.extend(self.analyzer.tokenize(text[pos : m.start()]))
            out.append(normalize_number(m.group()))
            pos = m.end()
        out.extend(self.analyzer.tokenize(text[pos:]))
        return out


def _named_text(source: Source) -> str:
    """What a source says it is about: its title, headings and text."""
    return " ".join((source.title, *source.heading_path, source.text))


def _merge(parts: Sequence[_Content]) -> _Content:
    """The content of a text from that of its sentences (words never span two sentences)."""
    return _Content(frozenset().union(*(p.tokens for p in parts)), frozenset().union(*(p.numbers for p in parts)),
                    tuple(q for p in parts for q in p.quantities), tuple(x for p in parts for x in p.scopes),
                    frozenset().union(*(p.values for p in parts)), tuple(x for p in parts for x in p.clauses))


def _aligned_scopes(claim: _Content, source: _SourceContent
                    ) -> tuple[list[lex.Negation], list[list[lex.Negation]]]:
    """(scope, clause) of the negations of the source sentences the claim restates: of those
    sharing at least half as many items with it as the best one, and at least two (a claim may
    join two sentences), and of each of the best ones (whose negations it must not drop)."""
    overlaps = [len(claim.items & s.items) for s in source.sentences]
    best = max(overlaps, default=0)
    near = [s for s, k in zip(source.sentences, overlaps, strict=True) if k and k >= max(2, best / 2)]
    top = [s for s, k in zip(source.sentences, overlaps, strict=True) if k and k == best]
    return ([p for s in near for p in zip(s.scopes, s.clauses, strict=True)],
            [list(zip(s.scopes, s.clauses, strict=True)) for s in top])


def _numbers(piece: _Piece) -> tuple[int, ...]:
    return tuple(dict.fromkeys(n for m in piece.markers for n in m.numbers))


def _nearby(text: str, pieces: list[_Piece], i: int) -> tuple[int, ...]:
    """For an uncited piece: the sources of the next cited piece of its paragraph, else of the
    previous one (``"A. B [1]."`` checks A against [1] too; it must still be supported there)."""
    if pieces[i].markers:
        return ()
    for direction in (range(i + 1, len(pieces)), range(i - 1, -1, -1)):
        for j in direction:
            lo, hi = sorted((pieces[i], pieces[j]), key=lambda p: p.start)
            if _PARAGRAPH.search(text, lo.end, hi.start):
                break
            if pieces[j].markers:
                return _numbers(pieces[j])
    return ()


def _with(sentence: CitedSentence, **changes: object) -> CitedSentence:
    from dataclasses import replace

    return replace(sentence, **changes)  # type: ignore[arg-type]


def grounded_share(sentences: Sequence[CitedSentence], verdicts: Sequence[bool]) -> float:
    """Share of the counted pieces whose verdict is supported (module docstring, roles): claims
    and echoes always count, fragments when unsupported or when there is no claim at all."""
    has_claim = any(s.role == CLAIM for s in sentences)
    counted = [ok for s, ok in zip(sentences, verdicts, strict=False)
               if s.role in (CLAIM, ECHO) or (s.role == FRAGMENT and (not ok or not has_claim))]
    return sum(counted) / len(counted) if counted else 0.0


def _score(claim: _Content, source: _Content) -> tuple[float, bool]:
    """(support, numbers_ok) as defined in the module docstring; meta words of the claim that
    the source lacks are left out (``"According to the documents, ..."``)."""
    missing_meta = len((claim.tokens & lex.META_WORDS) - source.tokens)
    items = len(claim.tokens) + len(claim.numbers) - missing_meta
    found_numbers = _found_numbers(claim, source)
    found = len(claim.tokens & source.tokens) + found_numbers
    lexical = found / items if items > 0 else 0.0
    if not claim.numbers:
        return lexical, True
    number_share = found_numbers / len(claim.numbers)
    if number_share == 1.0:
        return lexical, True
    return lexical * number_share / 2, False


def _found_numbers(claim: _Content, source: _Content) -> int:
    """How many of the claim's numbers the source states, as written or scaled."""
    alternatives: dict[str, set[str]] = {}
    for q in claim.quantities:
        if (v := lex.scaled(q)) is not None:
            alternatives.setdefault(q.value, set()).add(v)
    return sum(1 for n in claim.numbers if n in source.values or alternatives.get(n, set()) & source.values)


# -- markers --------------------------------------------------------------------------------
def parse_marker(body: str) -> tuple[int, ...]:
    """The numbers of a marker's body: ``"1, 2"`` -> (1, 2); ``"1-3"`` -> (1, 2, 3)."""
    return _parse(body)[0]


def _parse(body: str) -> tuple[tuple[int, ...], tuple[tuple[int, int], ...]]:
    numbers: list[int] = []
    ranges: list[tuple[int, int]] = []
    for part in re.split(r"\s*[,，、]\s*", body.strip()):
        ends = [int(x) for x in re.split(r"\s*[\-–]\s*", part) if x]
        if len(ends) == 2:
            ranges.append((ends[0], ends[1]))
            if 0 <= ends[1] - ends[0] <= _MAX_RANGE:
                numbers.extend(range(ends[0], ends[1] + 1))
            else:
                numbers.extend(ends)
        else:
            numbers.extend(ends)
    return tuple(dict.fromkeys(numbers)), tuple(ranges)


def find_markers(text: str) -> list[_Marker]:
    """Every citation marker of ``text`` with its offsets and numbers."""
    out = []
    for m in _MARKER.finditer(text):
        numbers, ranges = _parse(m.group(1) or m.group(2))
        out.append(_Marker(m.start(), m.end(), numbers, ranges))
    return out


def strip_markers(text: str) -> str:
    """``text`` without its citation markers (and the spaces before them)."""
    return _MARKER_WITH_SPACE.sub("", text)


def clean_markers(text: str, valid: set[int]) -> tuple[str, tuple[int, ...]]:
    """Remove marker numbers not in ``valid`` (a range with any, whole); returns the new text
    and the removed numbers (in order of appearance, repeated if cited again)."""
    cleaned, removed, _copied = _clean(text, valid, ())
    return cleaned, removed


def _clean(text: str, valid: set[int], sources: Sequence[Source]
           ) -> tuple[str, tuple[int, ...], tuple[int, ...]]:
    """``clean_markers`` that also removes markers copied from the sources' own text."""
    copied_keys = _document_markers(sources)
    removed: list[int] = []
    copied: list[int] = []
    parts: list[str] = []
    pos = 0
    for marker in find_markers(text):
        origin = copied_keys.get((_context(text, marker.start), marker.numbers), set())
        if origin and not origin & set(marker.numbers):
            good: list[int] = []
            copied.extend(marker.numbers)
        else:
            bad = [n for n in marker.numbers if n not in valid]
            broken = any(b < a or b - a > _MAX_RANGE for a, b in marker.ranges)
            if not bad and not broken:
                continue
            if marker.ranges:  # a range is all valid or nothing
                ends = [n for r in marker.ranges for n in r if n not in valid]
                removed.extend(ends or bad or [n for r in marker.ranges for n in r])
                good = []
            else:
                removed.extend(bad)
                good = [n for n in marker.numbers if n in valid]
        head = text[pos : marker.start]
        parts.append(head + _format(good, text[marker.start]) if good else head.rstrip(" \t"))
        pos = marker.end
    parts.append(text[pos:])
    return "".join(parts), tuple(removed), tuple(copied)


def _context(text: str, offset: int) -> tuple[str, ...]:
    """The last words before ``offset`` (markers left out)."""
    window = strip_markers(text[max(0, offset - 200) : offset])
    return tuple(lex.words(window)[-DOCUMENT_MARKER_CONTEXT:])


def _document_markers(sources: Sequence[Source]) -> dict[tuple[tuple[str, ...], tuple[int, ...]], set[int]]:
    """(words before, numbers) of every marker inside a source -> the sources holding it."""
    keys: dict[tuple[tuple[str, ...], tuple[int, ...]], set[int]] = {}
    for source in sources:
        for marker in find_markers(source.text):
            context = _context(source.text, marker.start)
            if len(context) == DOCUMENT_MARKER_CONTEXT:
                keys.setdefault((context, marker.numbers), set()).add(source.number)
    return keys


def _format(numbers: list[int], opener: str) -> str:
    if opener == "【":
        return "【" + "，".join(map(str, numbers)) + "】"
    return "[" + ", ".join(map(str, numbers)) + "]"


def _sentences_with_markers(text: str) -> list[tuple[tuple[int, int], list[_Marker]]]:
    """Sentence spans of ``text`` (markers masked while splitting), each extended over the
    markers that follow it, with the markers that belong to it."""
    markers = find_markers(text)
    masked = list(lex.ENUMERATOR.sub(lambda m: " " * len(m.group()), text))
    for m in markers:
        masked[m.start : m.end] = " " * (m.end - m.start)
        following = text[m.end :].lstrip()
        if following[:1].isalnum():  # words follow the marker: it closes a claim
            masked[m.start : m.start + 2] = "\n\n"
    spans = [list(s) for s in sentence_spans("".join(masked))]
    owned: list[list[_Marker]] = [[] for _ in spans]
    for marker in markers:
        i = _owner(spans, marker.start)
        if i is None:
            spans.append([marker.start, marker.end])
            owned.append([marker])
            continue
        owned[i].append(marker)
        spans[i][0] = min(spans[i][0], marker.start)
        spans[i][1] = max(spans[i][1], marker.end)
    return [((s[0], s[1]), o) for s, o in zip(spans, owned, strict=False)]


def _owner(spans: list[list[int]], offset: int) -> int | None:
    """Index of the last sentence starting at or before ``offset`` (the first if none)."""
    owner = None
    for i, (start, _end) in enumerate(spans):
        if start <= offset:
            owner = i
        else:
            break
    if owner is None and spans:
        return 0
    return owner
