"""Shared parts of the MCP tests: a small knowledge base with document groups (the built-in
deterministic ``hash`` embedder, so a ``domainrag mcp`` subprocess reads it too), the real app
under Uvicorn on 127.0.0.1, and the official SDK client over stdio, Streamable HTTP or an ASGI
transport."""

from __future__ import annotations

import json
import os
import socket
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import httpx2
from mcp import Client, StdioServerParameters  # the conftest leaves these tests out without the SDK
from mcp.client.streamable_http import streamable_http_client

from domainrag import KnowledgeBase

HASH = {"embedder.model": "hash:64", "chunking.target_tokens": 64, "chunking.overlap_tokens": 8}
SECRET = "zqsecretq"
RECORDS = [
    {"_id": "refunds", "title": "Refunds", "text": "Customers may return goods within 30 days for a full refund."},
    {"_id": "shipping", "title": "Shipping", "text": "Orders ship within two business days. Express shipping "
                                                     "costs 12 euros."},
    {"_id": "merger", "title": "Board minutes", "acl": ["board"],
     "text": f"The board approved the merger with Harbor Freight {SECRET} for 40 million euros in March."},
]
IDS = {r["_id"]: f"data/policies.jsonl#{r['_id']}" for r in RECORDS}


def make_kb(root: Path, records: list[dict[str, Any]] = RECORDS, **settings: Any) -> Path:
    """A knowledge base at ``root/kb`` holding ``records`` (one JSONL file; ``acl`` = groups)."""
    data = root / "data"
    data.mkdir(parents=True, exist_ok=True)
    (data / "policies.jsonl").write_text("\n".join(json.dumps(r) for r in records), encoding="utf-8")
    with KnowledgeBase.open(root / "kb", create=True, overrides={**HASH, "answer.min_evidence": 0.0,
                                                                 **settings}) as kb:
        report = kb.ingest([data])
        assert not report.failed, report.failed
    return root / "kb"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def uvicorn_server(app: Any, port: int) -> Iterator[str]:
    """``app`` under Uvicorn on 127.0.0.1:``port``; yields the base URL."""
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started, "uvicorn did not start"
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(30)


def stdio_params(*kb_args: str, cwd: Path | None = None) -> StdioServerParameters:
    """``python -m domainrag.cli mcp --kb ...`` as the SDK starts a stdio server."""
    args = ["-m", "domainrag.cli", "mcp"]
    for value in kb_args:
        args += ["--kb", value]
    return StdioServerParameters(command=sys.executable, args=args, cwd=cwd,
                                 env={"OPENBLAS_NUM_THREADS": "1", "PYTHONPATH": os.environ.get("PYTHONPATH", "")})


@asynccontextmanager
async def http_session(url: str, key: str | None = None, transport: Any = None) -> AsyncIterator[Client]:
    """The SDK client on ``url`` (…/mcp) with ``Authorization: Bearer key``; ``transport``: an
    ``httpx2.ASGITransport`` to reach an app in-process."""
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    async with httpx2.AsyncClient(headers=headers, timeout=60, transport=transport) as http, \
            Client(streamable_http_client(url, http_client=http)) as client:
        yield client


async def call(client: Client, tool: str, arguments: dict[str, Any]) -> tuple[bool, Any, str]:
    """(is_error, structured content, text) of one tool call."""
    result = await client.call_tool(tool, arguments)
    text = "\n".join(block.text for block in result.content if getattr(block, "type", "") == "text")
    return bool(result.is_error), result.structured_content, text
