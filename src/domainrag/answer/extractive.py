"""``extractive``: the offline default "model" — answers with the sources' own sentences.

No model, no network, deterministic. Every sentence of the packed sources is scored by how
much of the question it covers (:mod:`domainrag.answer.evidence`: IDF-weighted share of the
question's terms); the coverage of its source's title and section headings adds a bonus,
``score = own + CONTEXT_WEIGHT * context * (1 - own)``, which never lowers a sentence's score. The best
sentence must reach ``MIN_SCORE``; then up to ``MAX_SENTENCES`` sentences scoring at least
``RELATIVE_CUTOFF`` of the best are returned, best first, each cited ``[n]``, skipping ones that
add no question term beyond sentences already taken. Questions in the sources (FAQ headings)
are never candidates. Below ``MIN_SCORE`` it returns no text and
``finish_reason="no_evidence"``, and the pipeline abstains.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..index.analyzer import Analyzer
from ..models.generation import BaseGenerator, Generation, GenerationRequest, ProviderInfo, ProviderSettings
from ..text import detect_language, sentence_spans
from ..types import Source, Usage
from .citations import strip_markers
from .evidence import Coverage

MIN_SCORE = 0.3
RELATIVE_CUTOFF = 0.7
MAX_SENTENCES = 3
CONTEXT_WEIGHT = 0.3
#: Table rows and lists arrive as long "sentences"; past this they are split at line breaks.
MAX_SENTENCE_CHARS = 400
VERSION = "extractive-v1"


@dataclass(frozen=True)
class _Candidate:
    source: int
    text: str


class ExtractiveGenerator(BaseGenerator):
    offline = True
    cacheable = False

    def __init__(self, model_name: str = "", settings: ProviderSettings | None = None) -> None:
        super().__init__(model_name, settings)
        self.id = "extractive"
        self.analyzer = Analyzer()

    @classmethod
    def info(cls) -> ProviderInfo:
        return ProviderInfo("extractive", "Offline, no model: quotes the sources' best-matching "
                            "sentences, cited; abstains when none covers the question.", offline=True)

    def complete(self, request: GenerationRequest) -> Generation:
        candidates = [c for s in request.sources for c in _sentences(s)]
        coverage = Coverage(request.question, self.analyzer)
        if not candidates or not coverage.terms:
            return self._empty()
        context = {s.number: " ".join((s.title, *s.heading_path)) for s in request.sources}
        own = coverage.scores([c.text for c in candidates])
        around = coverage.scores([context[c.source] for c in candidates])
        scores = [a + CONTEXT_WEIGHT * b * (1 - a) for a, b in zip(own, around, strict=False)]
        ranked = sorted(range(len(candidates)), key=lambda i: (-scores[i], i))
        if scores[ranked[0]] < MIN_SCORE:
            return self._empty()
        chosen: list[int] = []
        covered: set[str] = set()
        term_sets = coverage.term_sets(c.text for c in candidates)
        for i in ranked:
            if len(chosen) == MAX_SENTENCES or scores[i] < RELATIVE_CUTOFF * scores[ranked[0]]:
                break
            if chosen and term_sets[i] <= covered:
                continue
            chosen.append(i)
            covered |= term_sets[i]
        sep = "" if detect_language(request.question) == "zh" else " "
        text = sep.join(f"{candidates[i].text}{sep}[{candidates[i].source}]" for i in chosen)
        return Generation(text, self.id, VERSION, Usage(0, 0, 0.0), "stop")

    def _empty(self) -> Generation:
        return Generation("", self.id, VERSION, Usage(0, 0, 0.0), "no_evidence")


def _sentences(source: Source) -> list[_Candidate]:
    out: list[_Candidate] = []
    for start, end in sentence_spans(source.text):
        sentence = source.text[start:end]
        pieces = sentence.splitlines() if len(sentence) > MAX_SENTENCE_CHARS else [sentence]
        for piece in pieces:
            piece = " ".join(strip_markers(piece).split())  # the source's own [n] are not ours
            if len(piece) > 1 and not piece.endswith(("?", "？")):  # a question answers nothing
                out.append(_Candidate(source.number, piece))
    return out
