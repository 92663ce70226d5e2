"""Print, as Markdown, a real MCP session: the official SDK client starts ``domainrag mcp`` over
stdio on a knowledge base built from the bundled medical sample, lists what the server offers,
calls every tool, reads a resource and renders a prompt. docs/MCP.md quotes its output.

Usage::

    python tools/mcp_transcript.py [--kb FOLDER]   # FOLDER is built from the sample if absent
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from mcp import Client, StdioServerParameters

from domainrag import KnowledgeBase

SAMPLE = Path(__file__).resolve().parent.parent / "src" / "domainrag" / "data" / "sample" / "medical"


def shorten(value: Any, limit: int = 160) -> Any:
    if isinstance(value, str):
        return value if len(value) <= limit else value[:limit] + "…"
    if isinstance(value, list):
        return [shorten(v, limit) for v in value[:3]] + (["…"] if len(value) > 3 else [])
    if isinstance(value, dict):
        return {k: shorten(v, limit) for k, v in value.items()}
    return value


def block(title: str, request: Any, result: Any) -> None:
    print(f"**{title}**\n\n```json\n// request\n{json.dumps(request, ensure_ascii=False)}\n// result"
          f"\n{json.dumps(shorten(result), ensure_ascii=False, indent=1)}\n```\n")


async def session(kb: Path) -> None:
    params = StdioServerParameters(command=sys.executable, args=["-m", "domainrag.cli", "mcp", "--kb", f"health={kb}"])
    async with Client(params) as client:
        info = client.server_info
        print(f"Connected to `{info.name if info else '?'}` {info.version if info else ''}, protocol "
              f"`{client.protocol_version}`.\n")
        tools = (await client.list_tools()).tools
        block("tools/list", {"method": "tools/list"},
              [{"name": t.name, "description": t.description, "inputSchema": t.input_schema} for t in tools[:1]]
              + [{"name": t.name} for t in tools[1:]])
        calls = [("list_collections", {}),
                 ("search", {"query": "What causes kidney stones?", "k": 3}),
                 ("ask", {"question": "What causes kidney stones?"}),
                 ("ask", {"question": "What is the capital of France?"})]
        found: dict[str, Any] = {}
        for name, arguments in calls:
            result = await client.call_tool(name, arguments)
            found.setdefault(name, result.structured_content)
            block(f"tools/call {name}", {"name": name, "arguments": arguments},
                  {"isError": result.is_error, "structuredContent": result.structured_content,
                   "content[0].text": result.content[0].text})
        passage = found["search"]["results"][0]["id"]
        result = await client.call_tool("fetch", {"id": passage})
        block("tools/call fetch", {"name": "fetch", "arguments": {"id": passage}},
              {"isError": result.is_error, "structuredContent": result.structured_content})
        result = await client.call_tool("search", {"query": "kidney", "k": 0})
        block("tools/call search (bad input)", {"name": "search", "arguments": {"query": "kidney", "k": 0}},
              {"isError": result.is_error, "content[0].text": result.content[0].text})
        resources = (await client.list_resources()).resources
        block("resources/list", {"method": "resources/list"},
              [r.model_dump(by_alias=True, exclude_none=True) for r in resources])
        read = await client.read_resource(resources[0].uri)
        block("resources/read", {"uri": resources[0].uri}, {"text": read.contents[0].text})
        prompts = (await client.list_prompts()).prompts
        block("prompts/list", {"method": "prompts/list"}, [p.name for p in prompts])
        rendered = await client.get_prompt("medical", {"question": "What causes kidney stones?"})
        block("prompts/get medical", {"name": "medical", "arguments": {"question": "What causes kidney stones?"}},
              {"messages": [{"role": m.role, "text": m.content.text} for m in rendered.messages]})


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--kb", type=Path, default=None)
    args = p.parse_args()
    kb = args.kb or Path(tempfile.mkdtemp()) / "health"
    if not (kb / "catalog.sqlite3").is_file():
        with KnowledgeBase.open(kb, create=True) as opened:
            opened.ingest([SAMPLE])
    asyncio.run(session(kb))


if __name__ == "__main__":
    main()
