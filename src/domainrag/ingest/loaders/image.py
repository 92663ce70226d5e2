"""Images (``.png``, ``.jpg``/``.jpeg``, ``.tif``/``.tiff``, ``.bmp``, ``.webp``) read by OCR.

Each image (each frame of a multi-page TIFF) is a page: recognised by the OCR engine
(:mod:`..ocr`, ``domainrag[ocr]``), its lines rebuilt into paragraphs as a PDF page's are, its
blocks on that page. The size is checked from the header before any pixel is decoded: an image
over ``ingest.max_image_pixels`` is refused (a decompression bomb). Without an OCR engine, or
with ``ingest.ocr = "off"``, images fail with the reason and the fix.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

from ...errors import LoaderError, missing
from ...types import Document
from .. import ocr
from ..seams import BaseLoader, DocumentBuilder
from .pdf import page_paragraphs

#: The reason an image without text fails (an e-mail skips such attachments: logos, photos).
NO_TEXT = "no text recognised in the image"


class ImageLoader(BaseLoader):
    """Loads the text of an image (or of each frame of a TIFF) through OCR."""

    extensions: ClassVar[tuple[str, ...]] = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp")
    format: ClassVar[str] = "image"

    def load(self, path: Path, doc_id: str) -> list[Document]:
        if self.config.ocr == "off":
            raise LoaderError("images are read by OCR, which ingest.ocr = \"off\" turns off")
        if not ocr.wanted(self.config):
            raise missing(ocr.ENGINE_PACKAGES[self.config.ocr_engine], "ocr", "Reading images (OCR)")
        try:
            from PIL import Image
        except ImportError as exc:
            raise missing("pillow", "ocr", "Reading images (OCR)") from exc
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)   # our own limit applies
                image = Image.open(path)
        except Image.DecompressionBombError as exc:
            raise LoaderError(f"image too large to decode safely ({exc}); a decompression bomb?") from exc
        except (OSError, ValueError, SyntaxError) as exc:
            raise LoaderError(f"corrupt or not an image ({type(exc).__name__}: {exc}); re-save or re-scan it") from exc
        with image:
            frames = int(getattr(image, "n_frames", 1) or 1)
            results = list(ocr.recognise_pages(self._frames(image, frames), self.config))
        builder = DocumentBuilder()
        for result in results:
            builder.page = result.page
            for paragraph in page_paragraphs(result.text):
                builder.paragraph(paragraph)
        if builder.empty:
            raise LoaderError(NO_TEXT)
        meta: dict[str, Any] = {"page_count": frames, **ocr.metadata(results, self.config)}
        if frames > self.config.ocr_max_pages:
            meta["unread_pages"] = list(range(self.config.ocr_max_pages + 1, frames + 1))
            meta["unread_reason"] = f"past ingest.ocr_max_pages={self.config.ocr_max_pages}"
        return [builder.build(doc_id, str(path), metadata=meta)]

    def _frames(self, image: Any, frames: int) -> Iterator[tuple[int, Any]]:
        """Each frame (at most ``ingest.ocr_max_pages``), its size checked before it is decoded."""
        for index in range(min(frames, self.config.ocr_max_pages)):
            try:
                image.seek(index)
                ocr.check_pixels(image.width, image.height, self.config)
                image.load()
            except LoaderError:
                raise
            except (OSError, ValueError, SyntaxError, EOFError) as exc:
                raise LoaderError(f"corrupt or truncated image ({type(exc).__name__}: {exc}); "
                                  "re-save or re-scan it") from exc
            yield index + 1, image.copy()
