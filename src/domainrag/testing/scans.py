"""Synthetic scanned pages for OCR tests and benchmarks, and the character error rate.

:func:`render_page` draws text on a white page at about 200 dpi with a real font (DejaVu Sans for
Latin text, Noto Sans CJK for Chinese — Debian's ``fonts-dejavu-core`` and ``fonts-noto-cjk``),
then :func:`degrade` makes it look scanned: a small rotation, blur, speckle noise and a JPEG
round trip. These are *rendered* pages, not real scans; what a real scanner adds beyond this
(bleed-through, curved lines, stains) is not simulated. Needs Pillow (``domainrag[ocr]``).
"""

from __future__ import annotations

import io
import random
import unicodedata
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from PIL.Image import Image
    from PIL.ImageFont import FreeTypeFont

FONTS = {
    "en": ("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf", "/usr/share/fonts/truetype/dejavu/DejaVuSerif.ttf"),
    "zh": ("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
           "/usr/share/fonts/opentype/noto/NotoSerifCJK-Regular.ttc"),
}
#: An A4 page at 200 dpi.
PAGE = (1654, 2339)
MARGIN = 150


def font_path(language: str) -> Path | None:
    """The first installed font for ``language`` ("en" or "zh"), or None."""
    return next((Path(p) for p in FONTS[language] if Path(p).exists()), None)


def render_page(text: str, language: str = "en", font_px: int = 30, size: tuple[int, int] = PAGE) -> tuple[Image, str]:
    """A clean page image of ``text`` (wrapped to the page; what does not fit is dropped) and
    the text actually drawn, line by line."""
    image, drawn, _ = _render(text, language, font_px, size)
    return image, drawn


def render_pages(text: str, language: str = "en", font_px: int = 30, size: tuple[int, int] = PAGE,
                 max_pages: int = 20) -> list[tuple[Image, str]]:
    """Clean page images of all of ``text`` (at most ``max_pages``), each with the text drawn on it."""
    pages: list[tuple[Image, str]] = []
    rest = text
    while rest.strip() and len(pages) < max_pages:
        image, drawn, rest = _render(rest, language, font_px, size)
        if not drawn:
            break
        pages.append((image, drawn))
    return pages


def _render(text: str, language: str, font_px: int, size: tuple[int, int]) -> tuple[Image, str, str]:
    from PIL import Image, ImageDraw, ImageFont

    path = font_path(language)
    if path is None:
        raise FileNotFoundError(f"no font for {language!r}: apt-get install fonts-dejavu-core fonts-noto-cjk")
    font = ImageFont.truetype(str(path), font_px)
    page = Image.new("L", size, 255)
    draw = ImageDraw.Draw(page)
    width = size[0] - 2 * MARGIN
    line_height = int(font_px * 1.6)
    drawn: list[str] = []
    y = MARGIN
    paragraphs = text.split("\n")
    for p, paragraph in enumerate(paragraphs):
        lines = _wrap(paragraph, font, width, language)
        for i, line in enumerate(lines):
            if y + line_height > size[1] - MARGIN:
                glue = "" if language == "zh" else " "
                rest = "\n".join([glue.join(lines[i:]), *paragraphs[p + 1:]])
                return page, "\n".join(drawn), rest
            draw.text((MARGIN, y), line, font=font, fill=0)
            drawn.append(line)
            y += line_height
        y += line_height // 2
    return page, "\n".join(drawn), ""


def _wrap(text: str, font: FreeTypeFont, width: int, language: str) -> list[str]:
    units: Sequence[str] = list(text) if language == "zh" else text.split()
    glue = "" if language == "zh" else " "
    lines: list[str] = []
    current = ""
    for unit in units:
        candidate = f"{current}{glue}{unit}" if current else unit
        if current and font.getlength(candidate) > width:
            lines.append(current)
            current = unit
        else:
            current = candidate
    if current.strip():
        lines.append(current)
    return lines


def degrade(page: Image, seed: int = 0, rotate: float = 1.0, blur: float = 0.7, noise: float = 0.02,
            jpeg_quality: int = 55) -> Image:
    """``page`` as if scanned: rotated up to ``rotate`` degrees, blurred, with a ``noise`` share
    of pixels flipped to speckles, and JPEG-compressed."""
    import numpy as np
    from PIL import Image, ImageFilter

    rng = random.Random(seed)
    image = page.rotate(rng.uniform(-rotate, rotate), resample=Image.Resampling.BILINEAR, expand=False, fillcolor=255)
    image = image.filter(ImageFilter.GaussianBlur(blur))
    pixels = np.asarray(image, dtype=np.int16).copy()
    gen = np.random.default_rng(seed)
    pixels += gen.normal(0, 12, pixels.shape).astype(np.int16)
    speckle = gen.random(pixels.shape) < noise / 2
    pixels[speckle] = gen.integers(0, 120, int(speckle.sum()))
    image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=jpeg_quality)
    return Image.open(io.BytesIO(buffer.getvalue())).convert("L")


def image_pdf(pages: Sequence[Image], path: Path, dpi: int = 200) -> Path:
    """An image-only PDF of ``pages`` (no text layer), as a scanner writes one."""
    first, *rest = [p.convert("RGB") for p in pages]
    first.save(path, "PDF", resolution=dpi, save_all=True, append_images=rest)
    return path


def normalise(text: str) -> str:
    """Text as compared for the error rate: NFKC, whitespace runs as one space, none next to a
    CJK character (a Chinese line break or a tesseract gap is not an error)."""
    import re

    text = " ".join(unicodedata.normalize("NFKC", text).split())
    return re.sub(r"(?<=[\u3000-\u9fff\uff00-\uffef]) | (?=[\u3000-\u9fff\uff00-\uffef])", "", text)


def levenshtein(a: str, b: str) -> int:
    """The edit distance of ``a`` and ``b`` (Hyyrö's bit-parallel algorithm on Python integers)."""
    if len(a) < len(b):
        a, b = b, a
    m = len(b)
    if m == 0:
        return len(a)
    peq: dict[str, int] = {}
    for i, char in enumerate(b):
        peq[char] = peq.get(char, 0) | (1 << i)
    full = (1 << m) - 1
    top = 1 << (m - 1)
    pv, mv, score = full, 0, m
    for char in a:
        eq = peq.get(char, 0)
        xv = eq | mv
        xh = ((((eq & pv) + pv) & full) ^ pv) | eq
        ph = (mv | ~(xh | pv)) & full
        mh = pv & xh
        if ph & top:
            score += 1
        elif mh & top:
            score -= 1
        ph = ((ph << 1) | 1) & full
        mh = (mh << 1) & full
        pv = (mh | ~(xv | ph)) & full
        mv = ph & xv
    return score


def character_error_rate(reference: str, hypothesis: str) -> float:
    """Edits needed to turn the hypothesis into the reference, per reference character (both
    :func:`normalise`-d)."""
    ref, hyp = normalise(reference), normalise(hypothesis)
    return levenshtein(ref, hyp) / max(len(ref), 1)
