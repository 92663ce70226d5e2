"""Optical character recognition of page images: the ``OcrEngine`` seam and its two engines.

An engine turns one page image into its text lines with a mean confidence (0-1). Two engines are
built in, both offline with their models on disk (never downloaded at run time):

- ``rapidocr`` (the default; ``domainrag[ocr]``): RapidOCR 3.x running the PP-OCR detection and
  recognition ONNX models shipped inside its wheel on onnxruntime; one model reads Chinese and
  English (and digits, punctuation) together;
- ``tesseract``: Debian's ``tesseract-ocr`` with its ``eng`` and ``chi_sim`` data
  (``apt-get install tesseract-ocr tesseract-ocr-eng tesseract-ocr-chi-sim``), called through
  ``pytesseract``.

``benchmarks/ocr.py`` measured both (RESULTS.md, "OCR"); ``ingest.ocr_engine`` chooses.
Images are bounded before any decoding: at most ``ingest.max_image_pixels`` pixels
(decompression bombs), and pages larger than :data:`MAX_SIDE` pixels are scaled down.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from ..config import IngestConfig
from ..errors import ConfigError, LoaderError, missing
from . import budget

if TYPE_CHECKING:
    from PIL.Image import Image

#: Pages are recognised at most this many pixels on their longer side (a 300 dpi A4 page is 3508).
MAX_SIDE = 2400
ENGINES = ("rapidocr", "tesseract")
#: The package each engine is imported from (for install hints).
ENGINE_PACKAGES = {"rapidocr": "rapidocr", "tesseract": "pytesseract"}
_CJK = "\u3000-\u303f\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff00-\uffef"
_CJK_GAP = re.compile(f"(?<=[{_CJK}]) +(?=[{_CJK}])")


@dataclass(frozen=True)
class Recognised:
    """What an engine read on one image: its lines (top to bottom) and mean confidence (0-1,
    weighted by characters; 0 when nothing was read)."""

    lines: tuple[str, ...]
    confidence: float

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


class OcrEngine(Protocol):
    """Reads the text of one page image."""

    name: str

    def recognise(self, image: Image) -> Recognised: ...


def engine(name: str, languages: str = "eng+chi_sim") -> OcrEngine:
    """The engine called ``name`` (see the module docstring); :class:`MissingDependencyError`
    with the install hint when its package is absent. Engines are kept per process."""
    with _LOCK:
        key = (name, languages)
        if key not in _ENGINES:
            if name == "rapidocr":
                _ENGINES[key] = RapidOcrEngine()
            elif name == "tesseract":
                _ENGINES[key] = TesseractEngine(languages)
            else:
                raise ConfigError(f"ingest.ocr_engine = {name!r} is not an OCR engine; use one of {', '.join(ENGINES)}")
        return _ENGINES[key]


def available(name: str) -> bool:
    """Whether engine ``name``'s package can be imported (cheap; loads no model)."""
    import importlib.util

    module = ENGINE_PACKAGES.get(name, name)
    return importlib.util.find_spec(module) is not None


_LOCK = threading.Lock()
_ENGINES: dict[tuple[str, str], OcrEngine] = {}


class RapidOcrEngine:
    """RapidOCR 3.x on onnxruntime with the models inside its wheel (PP-OCR, Chinese + English)."""

    name = "rapidocr"

    def __init__(self) -> None:
        try:
            from rapidocr import RapidOCR
        except ImportError as exc:
            raise missing("rapidocr", "ocr", "Recognising scanned pages and images (OCR)") from exc
        threads = max(1, min(os.cpu_count() or 1, 4))
        self._ocr = RapidOCR(params={
            "Global.log_level": "error",
            # The text-line direction classifier turns some lines of noisy upright scans upside
            # down (a whole line of garbage); pages are read as they stand (RESULTS.md, "OCR").
            "Global.use_cls": False,
            "EngineConfig.onnxruntime.intra_op_num_threads": threads,
            "EngineConfig.onnxruntime.inter_op_num_threads": 1,
            "Global.max_side_len": MAX_SIDE,
        })

    def recognise(self, image: Image) -> Recognised:
        import numpy as np

        # the whole pipeline's output (RapidOCROutput); its declared type is a union of every stage's
        result: Any = self._ocr(np.asarray(image.convert("RGB"))[:, :, ::-1])   # BGR, as OpenCV reads
        texts: Sequence[str] = result.txts or ()
        scores: Sequence[float] = result.scores or ()
        boxes: Any = result.boxes
        if not texts:
            return Recognised((), 0.0)
        lines = _rows([(float(np.min(b[:, 1])), float(np.max(b[:, 1])), float(np.min(b[:, 0])), t)
                       for b, t in zip(boxes, texts, strict=True)])
        return Recognised(lines, _weighted(list(zip(texts, scores, strict=True))))


def _rows(boxes: list[tuple[float, float, float, str]]) -> tuple[str, ...]:
    """Text boxes (top, bottom, left, text) joined into lines: a box whose vertical middle lies
    within the current line's band joins it (left to right); lines go top to bottom."""
    lines: list[list[tuple[float, float, float, str]]] = []
    for box in sorted(boxes):
        middle = (box[0] + box[1]) / 2
        if lines and lines[-1][0][0] <= middle <= lines[-1][0][1]:
            lines[-1].append(box)
        else:
            lines.append([box])
    return tuple(_join([b[3] for b in sorted(line, key=lambda b: b[2])]) for line in lines)


def _join(parts: list[str]) -> str:
    return _CJK_GAP.sub("", " ".join(p.strip() for p in parts if p.strip()))


def _weighted(pairs: list[tuple[str, float]]) -> float:
    chars = sum(len(t) for t, _ in pairs)
    return sum(len(t) * float(s) for t, s in pairs) / chars if chars else 0.0


class TesseractEngine:
    """Debian's tesseract through pytesseract; ``languages`` as tesseract names them."""

    name = "tesseract"

    def __init__(self, languages: str = "eng+chi_sim") -> None:
        try:
            import pytesseract
        except ImportError as exc:
            raise missing("pytesseract", "ocr", "Recognising scanned pages with tesseract") from exc
        self._tess = pytesseract
        self.languages = languages
        try:
            installed = set(pytesseract.get_languages(config=""))
        except (OSError, pytesseract.TesseractNotFoundError) as exc:
            raise LoaderError("the tesseract program is not installed; apt-get install tesseract-ocr tesseract-ocr-eng "
                              "tesseract-ocr-chi-sim, or set ingest.ocr_engine = \"rapidocr\"") from exc
        absent = [lang for lang in languages.split("+") if lang not in installed]
        if absent:
            raise LoaderError(f"tesseract has no data for {'+'.join(absent)}; install tesseract-ocr-"
                              f"{absent[0].replace('_', '-')} or change ingest.ocr_languages")

    def recognise(self, image: Image) -> Recognised:
        data = self._tess.image_to_data(image, lang=self.languages, output_type=self._tess.Output.DICT)
        lines: dict[tuple[int, int, int], list[str]] = {}
        scored: list[tuple[str, float]] = []
        for i, word in enumerate(data["text"]):
            conf = float(data["conf"][i])
            if conf < 0 or not word.strip():
                continue
            key = (data["block_num"][i], data["par_num"][i], data["line_num"][i])
            lines.setdefault(key, []).append(word)
            scored.append((word, conf / 100))
        return Recognised(tuple(_join(words) for _, words in sorted(lines.items())), _weighted(scored))


def wanted(config: IngestConfig) -> bool:
    """Whether scanned pages should be recognised: ``ingest.ocr`` "on", or "auto" with the
    engine's package installed."""
    return config.ocr == "on" or (config.ocr == "auto" and available(config.ocr_engine))


def install_hint(config: IngestConfig) -> str:
    """How to get the configured engine."""
    if config.ocr_engine == "tesseract":
        return "pip install 'domainrag[ocr]' and apt-get install tesseract-ocr"
    return "pip install 'domainrag[ocr]'"


def check_pixels(width: int, height: int, config: IngestConfig) -> None:
    """:class:`LoaderError` for an image over ``ingest.max_image_pixels`` (before decoding it)."""
    if width * height > config.max_image_pixels:
        raise LoaderError(
            f"image of {width:,} x {height:,} pixels is over ingest.max_image_pixels="
            f"{config.max_image_pixels:,} (a decompression bomb?); raise the limit to include it"
        )


def fit(image: Image) -> Image:
    """``image`` in grey levels, scaled down to at most :data:`MAX_SIDE` pixels on its longer side."""
    grey = image.convert("L")
    longest = max(grey.size)
    if longest <= MAX_SIDE:
        return grey
    scale = MAX_SIDE / longest
    return grey.resize((max(1, round(grey.width * scale)), max(1, round(grey.height * scale))))


@dataclass(frozen=True)
class PageText:
    """One page read by OCR."""

    page: int
    text: str
    confidence: float


def recognise_pages(pages: Iterable[tuple[int, Image]], config: IngestConfig) -> Iterator[PageText]:
    """Each ``(page number, image)`` read by the configured engine; asks the parse worker for
    ``ingest.ocr_page_timeout_s`` more per page (:mod:`.budget`)."""
    reader = engine(config.ocr_engine, config.ocr_languages)
    for number, image in pages:
        budget.extend(config.ocr_page_timeout_s)
        result = reader.recognise(fit(image))
        yield PageText(number, result.text, result.confidence)


def metadata(results: Sequence[PageText], config: IngestConfig) -> dict[str, Any]:
    """The document metadata of OCR'd pages: which, the engine, mean confidence, low pages."""
    if not results:
        return {}
    chars = sum(len(r.text) for r in results)
    mean = sum(len(r.text) * r.confidence for r in results) / chars if chars else 0.0
    low = [r.page for r in results if r.text.strip() and r.confidence < config.ocr_min_confidence]
    meta: dict[str, Any] = {"ocr_pages": [r.page for r in results], "ocr_engine": config.ocr_engine,
                            "ocr_confidence": round(mean, 4)}
    if low:
        meta.update(ocr_low_pages=low, ocr_min_confidence=config.ocr_min_confidence)
    return meta
