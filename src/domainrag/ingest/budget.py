"""More parse time for a file whose loader does long but bounded work, such as OCR page by page.

The parse worker (:mod:`.worker`) gives each file ``ingest.parse_timeout_s``. A loader calls
:func:`extend` after each unit of slow work (one page recognised); inside the worker's child
process that asks the parent for that many more seconds (in all at most
``ingest.ocr_page_timeout_s`` x ``ingest.ocr_max_pages`` per file). Outside a worker it does
nothing.
"""

from __future__ import annotations

from collections.abc import Callable

_grant: Callable[[float], None] | None = None


def extend(seconds: float) -> None:
    """Ask for ``seconds`` more to finish the current file (see the module docstring)."""
    if _grant is not None:
        _grant(seconds)


def install(grant: Callable[[float], None] | None) -> None:
    """Set what :func:`extend` calls (the parse worker's child does, once)."""
    global _grant
    _grant = grant
