"""``domainrag mcp``: the MCP server over stdio, as desktop agents start it (a subprocess whose
stdin and stdout carry the protocol). While it serves, the SDK points file descriptor 1 at stderr
and keeps the protocol on a private copy, so nothing else — a library's print, a warning — can
reach the stream; logs are JSON lines on stderr. The caller is the local operator: every
collection, every document, any answer model."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path

from ...errors import require
from ..collections import Collections
from ..keys import LOCAL_ADMIN
from ..logs import configure
from .service import McpService

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
        async with stdio_server() as (read, write):
            await server.run(read, write, server.create_initialization_options())

    try:
        anyio.run(main)
    finally:
        served.close()
