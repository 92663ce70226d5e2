"""``domainrag mcp``: the MCP server over stdio, as desktop agents start it (a subprocess whose
stdin and stdout carry the protocol). While it serves, the SDK points file descriptor 1 at stderr
and keeps the protocol on a private copy, so nothing else — a library's print, a warning — can
reach the stream; logs are JSON lines on stderr. The caller is the local operator: every
collection, every document, any answer model."""

from __future__ import annotations

import io
import logging
import sys
from collections.abc import AsyncIterable, AsyncIterator, Mapping
from pathlib import Path
from typing import Any, cast

from ...errors import require
from ..collections import Collections
from ..keys import LOCAL_ADMIN
from ..logs import configure
from .service import McpService
from .surrogates import mark_lone_surrogates

log = logging.getLogger("domainrag.mcp")


def run_stdio(collections: Mapping[str, str | Path], *, timeout_s: float = 300.0,
              descriptions: Mapping[str, str] | None = None) -> None:
    """Serve ``collections`` (name → folder or PostgreSQL URL) over stdin/stdout until the
    client closes stdin."""
    require("mcp", "mcp", "mcp", "domainrag mcp")
    import anyio
    from mcp.server.stdio import stdio_server

    from .protocol import build_server

    configure("WARNING")
    for name in ("mcp", "httpx"):
        logging.getLogger(name).handlers[:] = logging.getLogger("domainrag").handlers
        logging.getLogger(name).propagate = False
    served = Collections(None, collections)
    server = build_server(McpService(served, models=None, descriptions=dict(descriptions or {})),
                          lambda ctx: LOCAL_ADMIN, timeout_s=timeout_s)

    async def main() -> None:
        stdin = anyio.wrap_file(io.TextIOWrapper(sys.stdin.buffer, encoding="utf-8", errors="replace"))
        async with stdio_server(stdin=cast(Any, _MarkedLines(stdin))) as (read, write):
            await server.run(read, write, server.create_initialization_options())

    try:
        anyio.run(main)
    finally:
        served.close()


class _MarkedLines:
    """Lines of stdin with lone surrogates marked (:mod:`.surrogates`), as the SDK reads them.
    (Giving the SDK its stdin leaves fd 0 unclaimed; it still claims fd 1, the protocol's.)"""

    def __init__(self, lines: AsyncIterable[str]) -> None:
        self.lines = lines

    def __aiter__(self) -> AsyncIterator[str]:
        return self._marked()

    async def _marked(self) -> AsyncIterator[str]:
        async for line in self.lines:
            yield mark_lone_surrogates(line.encode("utf-8", "surrogatepass")).decode("utf-8", "replace")
