"""The MCP tools' contracts, through the whole app in-process (the SDK client over an ASGI
transport: key check, body limit, the Streamable HTTP transport, the handlers):

- every tool's structured output validates against the output schema it declares (jsonschema),
  over answered and abstained questions, empty and full searches, passages, whole and cut
  documents;
- bad input — unknown collection or id, wrong types, k of 0 or 10**9, huge queries, NUL, lone
  surrogates, unknown arguments — is an error result naming the argument and the fix, never a
  crash: the same client goes on working after each.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx2
import jsonschema
import pytest
from mcp import Client
from mcp.shared.exceptions import MCPError
from mcp_support import IDS, RECORDS, call, http_session, make_kb

from domainrag.server.app import create_app
from domainrag.server.keys import KEYS_FILE, KeyStore
from domainrag.server.mcp.schemas import MAX_FETCH_CHARS
from domainrag.server.settings import CollectionSpec, ServerSettings

LONG = {"_id": "manual", "title": "Operations manual",
        "text": " ".join(f"Section {i}: forklifts are inspected every {i % 9 + 1} weeks." for i in range(2400))}


@asynccontextmanager
async def in_process(tmp_path: Path, scripted: type) -> AsyncIterator[tuple[Client, Any]]:
    """The app over ``shop`` (with a document longer than one fetch) and the SDK client with a key."""
    scripted.script = ["Customers may return goods within 30 days for a full refund [1]."]
    kb = make_kb(tmp_path, [*RECORDS, LONG])
    home = tmp_path / "home"
    home.mkdir()
    with KeyStore(home / KEYS_FILE) as keys:
        secret = keys.create("agent", None, "read", [])[1]
    app = create_app(ServerSettings(home=home, models=["scripted:m"], max_body_kb=64,
                                    collections={"shop": CollectionSpec(path=kb)}))
    transport = httpx2.ASGITransport(app=app)
    async with app.router.lifespan_context(app), \
            http_session("http://127.0.0.1/mcp", secret, transport=transport) as client:
        yield client, (transport, secret)


def test_every_structured_output_validates_against_its_declared_schema(tmp_path: Path, scripted: type) -> None:
    async def session() -> int:
        async with in_process(tmp_path, scripted) as (client, _):
            tools = {t.name: t for t in (await client.list_tools()).tools}
            for tool in tools.values():
                jsonschema.Draft202012Validator.check_schema(tool.input_schema)
                jsonschema.Draft202012Validator.check_schema(tool.output_schema)
            manual = f"domainrag://shop/{IDS['refunds'].replace('refunds', 'manual').replace('#', '%23')}"
            calls = [
                ("search", {"query": "return goods refund", "k": 3}),
                ("search", {"query": "forklifts inspected", "mode": "lexical", "k": 50}),
                ("search", {"query": "refund", "filters": {"doc_id": ["nothing-matches"]}}),
                ("search", {"query": "refund", "mode": "dense", "filters": {"path": "data/*.jsonl"}}),
                ("fetch", {"id": manual}),
                ("fetch", {"id": manual + "#chars=10-60"}),
                ("ask", {"question": "Within how many days may customers return goods?"}),
                ("ask", {"question": "How long for a refund?", "model": "scripted:m", "template": "finance"}),
                ("ask", {"question": "zebra quasar nebula"}),   # nothing on it: an abstention
                ("list_collections", {}),
            ]
            outputs = []
            for name, arguments in calls:
                error, structured, text = await call(client, name, arguments)
                assert not error, (name, arguments, text)
                jsonschema.validate(structured, tools[name].output_schema,
                                    cls=jsonschema.Draft202012Validator)
                assert text.strip()
                outputs.append(structured)
            whole, part = outputs[4], outputs[5]
            assert whole["truncated"] and whole["end"] == MAX_FETCH_CHARS and whole["next"]
            error, rest, _ = await call(client, "fetch", {"id": whole["next"]})
            assert not error and rest["end"] == rest["length"] == whole["length"] and not rest["truncated"]
            assert part["text"] == whole["text"][10:60] and "forklifts" in whole["text"] + rest["text"]
            assert outputs[2]["results"] == [] and outputs[8]["abstained"] and outputs[8]["citations"] == []
            assert outputs[7]["model"] == "scripted:m" and outputs[7]["citations"][0]["supported"]
            return len(calls)

    assert anyio.run(session) == 10


REFUNDS = f"domainrag://shop/{IDS['refunds'].replace('#', '%23')}"
BAD: list[tuple[str, dict[str, Any], str]] = [
    ("search", {"query": "x", "k": 0}, "k"),
    ("search", {"query": "x", "k": 10**9}, "k"),
    ("search", {"query": "x", "k": "5"}, "k"),
    ("search", {"query": "x", "k": 2.5}, "k"),
    ("search", {"query": "x", "k": True}, "k"),
    ("search", {"query": ""}, "query"),
    ("search", {"query": "word " * 5000}, "query"),
    ("search", {"query": "a\x00b"}, "query"),
    ("search", {"query": 5}, "query"),
    ("search", {"query": ["refund"]}, "query"),
    ("search", {}, "query"),
    ("search", {"query": "x", "top_k": 3}, "top_k"),
    ("search", {"query": "x", "mode": "fuzzy"}, "mode"),
    ("search", {"query": "x", "filters": "path=*.pdf"}, "filters"),
    ("search", {"query": "x", "filters": {"path": 3}}, "filters"),
    ("search", {"query": "x", "collection": "nope"}, "collection"),
    ("search", {"query": "x", "collection": ""}, "collection"),
    ("search", {"query": "x", "collection": "../../etc"}, "collection"),
    ("fetch", {"id": "refunds"}, "id"),
    ("fetch", {"id": 7}, "id"),
    ("fetch", {"id": "domainrag://"}, "id"),
    ("fetch", {"id": "domainrag://nope/x"}, "id"),
    ("fetch", {"id": REFUNDS + "#chars=9-3"}, "id"),
    ("fetch", {"id": REFUNDS + "#chars=0-99999999"}, "id"),
    ("fetch", {"id": REFUNDS + "#page=2"}, "id"),
    ("fetch", {"id": "x" * 3000}, "id"),
    ("ask", {"question": ""}, "question"),
    ("ask", {"question": "refund?", "model": "openai:gpt-4o"}, "model"),
    ("ask", {"question": "refund?", "template": "../../etc/passwd"}, "template"),
    ("ask", {"question": "refund?", "template": "nonexistent"}, "template"),
    ("ask", {"question": None}, "question"),
    ("list_collections", {"collection": "shop"}, "collection"),
]


def test_bad_input_is_an_error_result_naming_the_argument(tmp_path: Path, scripted: type) -> None:
    async def session() -> None:
        async with in_process(tmp_path, scripted) as (client, _):
            for tool, arguments, argument in BAD:
                error, structured, text = await call(client, tool, arguments)
                assert error and structured is None, (tool, arguments, text)
                assert f"'{argument}'" in text, (tool, arguments, text)
                assert "Traceback" not in text and len(text) < 2000
            error, _, text = await call(client, "searchh", {"query": "x"})
            assert error and "search, fetch, ask, list_collections" in text
            missing = await call(client, "fetch", {"id": REFUNDS.replace("refunds", "gone")})
            assert missing[0] and "No document" in missing[2]
            with pytest.raises(MCPError, match="'uri'"):
                await client.read_resource("file:///etc/passwd")
            with pytest.raises(MCPError, match="'question'"):
                await client.get_prompt("general", {})
            with pytest.raises(MCPError, match="'name'"):
                await client.get_prompt("judge", {"question": "x"})
            with pytest.raises(MCPError, match="'name'"):
                await client.get_prompt("no-such-template", {"question": "x"})
            error, found, _ = await call(client, "search", {"query": "refund"})   # still serving
            assert not error and found["results"]

    anyio.run(session)


def test_raw_lone_surrogate_and_oversized_bodies_over_http(tmp_path: Path, scripted: type) -> None:
    """What the SDK client cannot even send: a JSON ``\\ud800`` escape (an error result naming the
    argument, not a dropped request) and a body over max_body_kb (413 before anything runs)."""
    async def session() -> None:
        async with in_process(tmp_path, scripted) as (_, (transport, secret)):
            headers = {"Accept": "application/json, text/event-stream", "MCP-Protocol-Version": "2025-06-18",
                       "Authorization": f"Bearer {secret}", "Content-Type": "application/json"}
            body = ('{"jsonrpc": "2.0", "id": 9, "method": "tools/call", "params": {"name": "search", '
                    '"arguments": {"query": "refund \\ud800"}}}')
            async with httpx2.AsyncClient(transport=transport, base_url="http://127.0.0.1") as http:
                reply = await http.post("/mcp", content=body.encode(), headers=headers)
                assert reply.status_code == 200, reply.text
                result = reply.json()["result"]
                assert result["isError"] and "'query'" in result["content"][0]["text"]
                assert "surrogate" in result["content"][0]["text"]
                huge = json.dumps({"jsonrpc": "2.0", "id": 10, "method": "tools/call",
                                   "params": {"name": "search", "arguments": {"query": "x" * 70_000}}})
                assert (await http.post("/mcp", content=huge.encode(), headers=headers)).status_code == 413

    anyio.run(session)
