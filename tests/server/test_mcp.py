"""The MCP server with the official SDK client over both transports: ``domainrag mcp`` started as
a subprocess (stdio) and ``domainrag serve``'s app under Uvicorn on 127.0.0.1 (Streamable HTTP,
API keys). Each lists tools, resources and prompts, calls every tool, reads a resource and
renders a prompt; over HTTP the keys' collections and document groups hold."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from mcp.shared.exceptions import MCPError
from mcp_support import IDS, SECRET, call, free_port, http_session, make_kb, stdio_params, uvicorn_server

from domainrag.server.app import create_app
from domainrag.server.keys import KEYS_FILE, KeyStore
from domainrag.server.settings import CollectionSpec, ServerSettings

pytestmark = pytest.mark.integration
TOOLS = {"search", "fetch", "ask", "list_collections"}
PRESETS = {"general", "finance", "medical", "legal"}


async def exercise(client: Any, collection: str) -> dict[str, Any]:
    """List, call every tool, read a resource, render a prompt; returns what the checks need."""
    tools = {t.name: t for t in (await client.list_tools()).tools}
    assert set(tools) == TOOLS
    assert all(t.output_schema and t.input_schema["type"] == "object" and t.description for t in tools.values())
    error, found, text = await call(client, "search", {"query": "return goods refund", "k": 2})
    assert not error and found["collection"] == collection
    first = found["results"][0]
    assert first["doc_id"] == IDS["refunds"] and first["title"] == "Refunds" and "30 days" in first["text"]
    assert first["id"].startswith(f"domainrag://{collection}/") and first["id"] in text
    error, passage, _ = await call(client, "fetch", {"id": first["id"]})
    assert not error and passage["text"] == first["text"] and passage["url"] == first["document"]
    error, document, _ = await call(client, "fetch", {"id": first["document"]})
    assert not error and document["length"] == len(document["text"]) and "30 days" in document["text"]
    error, answer, text = await call(client, "ask", {"question": "Within how many days may customers return goods?"})
    assert not error and not answer["abstained"] and "30 days" in answer["answer"]
    citation = answer["citations"][0]
    assert citation["doc_id"] == IDS["refunds"] and citation["supported"] and "30 days" in citation["quote"]
    assert citation["document"] in text
    error, listed, text = await call(client, "list_collections", {})
    assert not error and collection in text
    resources = (await client.list_resources()).resources
    uri = next(r.uri for r in resources if r.name == IDS["refunds"])
    assert uri == first["document"]
    read = await client.read_resource(uri)
    assert read.contents[0].text == document["text"]
    templates = (await client.list_resource_templates()).resource_templates
    assert templates[0].uri_template == "domainrag://{collection}/{doc_id}"
    prompts = {p.name for p in (await client.list_prompts()).prompts}
    assert prompts >= PRESETS and not prompts & {"judge", "rewrite", "faithfulness"}
    rendered = await client.get_prompt("finance", {"question": "Within how many days may customers return goods?"})
    assert "30 days" in rendered.messages[0].content.text and rendered.messages[0].role == "user"
    return {"resources": {r.name for r in resources}, "collections": [c["name"] for c in listed["collections"]]}


def test_stdio_session_with_the_sdk_client(tmp_path: Path) -> None:
    kb = make_kb(tmp_path)

    async def session() -> dict[str, Any]:
        from mcp import Client

        async with Client(stdio_params(f"shop={kb}")) as client:
            assert client.server_info and client.server_info.name == "domainrag"
            seen = await exercise(client, "shop")
            error, found, _ = await call(client, "search", {"query": "merger board", "k": 3})
            assert SECRET in json.dumps(found)   # the local operator reads every document
            return seen

    seen = anyio.run(session)
    assert seen["resources"] == set(IDS.values()) and seen["collections"] == ["shop"]


def test_stdio_stdout_carries_nothing_but_protocol(tmp_path: Path) -> None:
    """Raw JSON-RPC lines, a lone surrogate, a NUL, junk: every stdout line is a JSON-RPC message,
    each request is answered, and the server is still there for the last one."""
    kb = make_kb(tmp_path)
    lines = [
        {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "raw", "version": "0"}}},
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        '{"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "search", '
        '"arguments": {"query": "lone \\ud800 surrogate"}}}',
        {"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": "search",
                                                                       "arguments": {"query": "a\u0000b"}}},
        "this is not JSON",
        {"jsonrpc": "2.0", "id": 4, "method": "tools/call", "params": {"name": "fetch", "arguments": {"id": 7}}},
        {"jsonrpc": "2.0", "id": 5, "method": "tools/call", "params": {"name": "search", "arguments": {"query": "refund"}}},
    ]
    proc = subprocess.Popen([sys.executable, "-m", "domainrag.cli", "mcp", "--kb", f"shop={kb}"], cwd=tmp_path,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdin and proc.stdout
    for line in lines:
        proc.stdin.write((line if isinstance(line, str) else json.dumps(line)) + "\n")
    proc.stdin.flush()
    by_id: dict[Any, Any] = {}
    while not {1, 2, 3, 4, 5} <= set(by_id):   # the client keeps stdin open until it has its answers
        line = proc.stdout.readline()
        assert line, f"stdout ended early; stderr: {proc.stderr.read() if proc.stderr else ''}"
        reply = json.loads(line)            # every line is a JSON-RPC message: nothing else on stdout
        assert reply["jsonrpc"] == "2.0"
        by_id[reply.get("id")] = reply
    rest, errors = proc.communicate(timeout=60)   # closes stdin: the server ends
    assert proc.returncode == 0, errors
    assert all(json.loads(line)["jsonrpc"] == "2.0" for line in rest.splitlines())
    for request_id, argument in ((2, "query"), (3, "query"), (4, "id")):
        result = by_id[request_id].get("result") or {}
        message = result.get("content", [{}])[0].get("text", "") or by_id[request_id].get("error", {}).get("message")
        assert result.get("isError") or "error" in by_id[request_id], by_id[request_id]
        assert f"'{argument}'" in message or "surrogate" in message.lower(), message
    assert not by_id[5]["result"].get("isError") and by_id[5]["result"]["structuredContent"]["results"]


def test_stdio_refuses_a_missing_knowledge_base_on_stderr(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "domainrag.cli", "mcp", "--kb", f"x={tmp_path / 'none'}"],
                          capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert proc.returncode == 1 and proc.stdout == "" and "no knowledge base" in proc.stderr


@pytest.fixture
def served(tmp_path: Path, scripted: type) -> Any:
    """Two collections under Uvicorn with keys: admin, staff (collection shop, public documents
    only) and board (group board); the scripted model offered."""
    scripted.script = ["Customers may return goods within 30 days for a full refund [1]."]
    shop, other = make_kb(tmp_path / "shop"), make_kb(tmp_path / "other")
    home = tmp_path / "home"
    home.mkdir()
    with KeyStore(home / KEYS_FILE) as keys:
        secrets = {"admin": keys.create("admin", None, "admin", None)[1],
                   "staff": keys.create("staff", ["shop"], "read", [])[1],
                   "board": keys.create("board", ["shop"], "read", ["board"])[1]}
    port = free_port()
    settings = ServerSettings(home=home, port=port, models=["scripted:m"], collections={
        "shop": CollectionSpec(path=shop, description="The shop's customer policies"),
        "other": CollectionSpec(path=other)})
    with uvicorn_server(create_app(settings), port) as url:
        yield url + "/mcp", secrets


def test_http_session_with_keys_and_groups(served: Any) -> None:
    url, keys = served

    async def session() -> None:
        async with http_session(url, keys["admin"]) as admin:
            error, _, text = await call(admin, "search", {"query": "refund"})
            assert error and "'collection'" in text and "other" in text and "shop" in text
            error, listed, _ = await call(admin, "list_collections", {})
            assert [c["name"] for c in listed["collections"]] == ["other", "shop"]
            assert listed["collections"][1]["description"] == "The shop's customer policies"
        async with http_session(url, keys["staff"]) as staff:
            await exercise(staff, "shop")   # one collection for this key: no name needed
            error, found, _ = await call(staff, "search", {"query": f"merger board harbor {SECRET}", "k": 10})
            assert not error and SECRET not in json.dumps(found["results"])
            merger = f"domainrag://shop/{IDS['merger'].replace('#', '%23')}"
            missing = merger.replace("merger", "nothing")
            hidden = await call(staff, "fetch", {"id": merger})
            absent = await call(staff, "fetch", {"id": missing})
            assert hidden[0] and absent[0] and hidden[2].replace(merger, "X") == absent[2].replace(missing, "X")
            with pytest.raises(MCPError) as denied:
                await staff.read_resource(merger)
            with pytest.raises(MCPError) as gone:
                await staff.read_resource(missing)
            assert denied.value.message.replace(merger, "X") == gone.value.message.replace(missing, "X")
            assert SECRET not in denied.value.message
            assert merger not in {r.uri for r in (await staff.list_resources()).resources}
            error, _, text = await call(staff, "search", {"query": "refund", "collection": "other"})
            assert error and "'collection'" in text and "may not read collection 'other'" in text
            error, _, unknown = await call(staff, "search", {"query": "refund", "collection": "nothing"})
            assert error and unknown.replace("nothing", "other") == text   # exists or not: the same words
            error, answer, _ = await call(staff, "ask", {"question": "How long for refunds?", "model": "scripted:m"})
            assert not error and answer["model"] == "scripted:m" and answer["citations"][0]["doc_id"] == IDS["refunds"]
            error, _, text = await call(staff, "ask", {"question": "refunds?", "model": "openai:gpt-4o"})
            assert error and "'model'" in text and "not offered" in text
            rendered = await staff.get_prompt("general", {"question": f"merger board {SECRET}"})
            assert SECRET not in rendered.messages[0].content.text.replace(f"merger board {SECRET}", "")
        async with http_session(url, keys["board"]) as board:
            error, found, _ = await call(board, "search", {"query": "merger board harbor", "k": 3})
            assert SECRET in json.dumps(found)
            read = await board.read_resource(f"domainrag://shop/{IDS['merger'].replace('#', '%23')}")
            assert SECRET in read.contents[0].text

    anyio.run(session)
    metrics = httpx.get(url.removesuffix("/mcp") + "/metrics", headers={"Authorization": f"Bearer {keys['admin']}"})
    assert 'domainrag_answers_total{collection="shop",outcome="answered"}' in metrics.text   # as for /ask
    assert 'route="/mcp"' in metrics.text


def test_http_needs_a_valid_key_and_a_local_host(served: Any) -> None:
    url, keys = served
    ping = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
    accept = {"Accept": "application/json, text/event-stream", "MCP-Protocol-Version": "2025-06-18"}
    with httpx.Client(timeout=30) as http:
        anonymous = http.post(url, json=ping, headers=accept)
        assert anonymous.status_code == 401 and anonymous.headers["www-authenticate"] == "Bearer"
        assert "Authorization: Bearer" in anonymous.json()["detail"]
        wrong = http.post(url, json=ping, headers={**accept, "Authorization": "Bearer nope"})
        assert wrong.status_code == 401
        rebinding = http.post(url, json=ping, headers={**accept, "Authorization": f"Bearer {keys['staff']}",
                                                       "Host": "evil.example"})
        assert rebinding.status_code in (400, 403, 421), rebinding.text


def test_http_rate_limit_applies_to_mcp_calls(tmp_path: Path) -> None:
    """The REST API's per-key rate limit counts MCP requests too (429 with Retry-After)."""
    kb = make_kb(tmp_path)
    home = tmp_path / "home"
    home.mkdir()
    with KeyStore(home / KEYS_FILE) as keys:
        secret = keys.create("agent", None, "read", None)[1]
    port = free_port()
    settings = ServerSettings(home=home, port=port, rate_limit_per_minute=3,
                              collections={"shop": CollectionSpec(path=kb)})
    call_search = {"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                   "params": {"name": "search", "arguments": {"query": "refund"}}}
    headers = {"Accept": "application/json, text/event-stream", "MCP-Protocol-Version": "2025-06-18",
               "Authorization": f"Bearer {secret}"}
    with uvicorn_server(create_app(settings), port) as url, httpx.Client(timeout=30) as http:
        statuses = [http.post(url + "/mcp", json=call_search, headers=headers) for _ in range(4)]
    assert [r.status_code for r in statuses] == [200, 200, 200, 429]
    assert statuses[0].json()["result"]["structuredContent"]["results"]
    assert int(statuses[3].headers["retry-after"]) >= 1 and "rate_limit_per_minute" in statuses[3].json()["detail"]


def readme_configs() -> list[dict[str, Any]]:
    """The README's stdio configurations (Claude Desktop / Cursor, VS Code), parsed."""
    text = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    blocks = [json.loads(b) for b in re.findall(r"```json\n(.*?)```", text, re.DOTALL)]
    servers = [b.get("mcpServers", b.get("servers", {})).get("policies", {}) for b in blocks]
    return [s for s in servers if "command" in s]


def test_the_readme_stdio_configs_start_a_working_server(tmp_path: Path) -> None:
    kb = make_kb(tmp_path)
    configs = readme_configs()
    assert len(configs) == 2 and {c.get("type") for c in configs} == {None, "stdio"}
    script = shutil.which("domainrag", path=str(Path(sys.executable).parent)) or shutil.which("domainrag")

    async def start(config: dict[str, Any]) -> list[str]:
        from mcp import Client, StdioServerParameters

        args = [str(kb) if a == "/abs/path/to/policies" else a for a in config["args"]]
        command, args = (script, args) if script else (sys.executable, ["-m", "domainrag.cli", *args])
        async with Client(StdioServerParameters(command=command, args=args)) as client:
            error, listed, _ = await call(client, "list_collections", {})
            assert not error
            return [c["name"] for c in listed["collections"]]

    for config in configs:
        assert config["command"] == "domainrag"
        assert anyio.run(start, config) == ["kb"]   # --kb DIR: named after its folder
