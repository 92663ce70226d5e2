"""What an MCP tool call costs over the library call it makes, over stdio and Streamable HTTP.

Question answered: how much latency does the MCP edge add to ``KnowledgeBase.search`` and
``KnowledgeBase.document`` — the SDK client's ``call_tool("search")`` / ``call_tool("fetch")``
against ``domainrag mcp`` (a subprocess on stdio) and against ``domainrag serve``'s ``/mcp`` (a
subprocess on 127.0.0.1, with an API key) — and is it small next to the search itself?

The knowledge base is the first ``--docs`` documents of a BEIR corpus, built once under
``--cache`` (the bundled ``minilm`` embedder by default). Besides stdio and HTTP, the SDK client
also calls the server in this process (no transport: the SDK's and the handlers' own cost). The same ``--queries`` queries run in
rounds: each round times the library call in this process, then the stdio tool call, then the
HTTP tool call, query by query (so load on the shared machine hits all three alike); ``--repeats``
rounds. The REST API's own routes on the same server (``POST …/search``, ``GET …/documents/{id}``
with httpx2) are timed beside them, as the baseline an HTTP edge costs anyway. Reported: p50 and
p95 per call in ms, and the overhead (p50 − library p50, p95 − library p95). The client is the official ``mcp`` SDK in both cases, so its own time is included:
that is what an agent pays.

Usage::

    python benchmarks/mcp_overhead.py ../shared/data/medquad --docs 2000 --queries 100 --repeats 3
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from retrieval import machine, markdown_table, write_json  # noqa: E402

from domainrag import KnowledgeBase  # noqa: E402


def build_kb(dataset: Path, cache: Path, docs: int, embedder: str) -> Path:
    """The cached knowledge base of ``dataset``'s first ``docs`` documents."""
    folder = cache / f"{dataset.name}-{docs}-{embedder.replace(':', '_')}"
    corpus = folder / "corpus"
    if not (folder / "kb" / "built").is_file():
        corpus.mkdir(parents=True, exist_ok=True)
        with (dataset / "corpus.jsonl").open(encoding="utf-8") as source:
            lines = [line for _, line in zip(range(docs), source, strict=False)]
        (corpus / "corpus.jsonl").write_text("".join(lines), encoding="utf-8")
        with KnowledgeBase.open(folder / "kb", create=True, overrides={"embedder.model": embedder}) as kb:
            report = kb.ingest([corpus], format="beir", progress=True)
            assert not report.failed, report.failed
        (folder / "kb" / "built").write_text("ok")
    return folder / "kb"


def queries(dataset: Path, n: int) -> list[str]:
    texts = []
    with (dataset / "queries.jsonl").open(encoding="utf-8") as source:
        for line in source:
            texts.append(json.loads(line)["text"])
            if len(texts) == n:
                break
    return texts


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_http(kb: Path, home: Path) -> tuple[subprocess.Popen[bytes], str, str]:
    """``domainrag serve`` on a free loopback port with one read key; (process, URL, key)."""
    from domainrag.server.keys import KEYS_FILE, KeyStore

    home.mkdir(parents=True, exist_ok=True)
    with KeyStore(home / KEYS_FILE) as keys:
        secret = keys.create("bench", None, "read", None)[1]
    port = free_port()
    config = home / "server.toml"   # the default 120 requests per minute per key would stop the run
    config.write_text("[server]\nrate_limit_per_minute = 1000000\n")
    proc = subprocess.Popen([sys.executable, "-m", "domainrag.cli", "serve", "--kb", f"bench={kb}", "--port", str(port),
                             "--home", str(home), "--config", str(config)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    import httpx

    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc, f"http://127.0.0.1:{port}/mcp", secret
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError("domainrag serve did not start")


def percentiles(times: list[float]) -> dict[str, float]:
    ordered = sorted(times)
    return {"p50_ms": round(statistics.median(ordered), 3),
            "p95_ms": round(ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))], 3), "n": len(ordered)}


async def timed(fn: Callable[[], Awaitable[Any]]) -> float:
    started = time.perf_counter()
    await fn()
    return (time.perf_counter() - started) * 1000


async def measure(kb_path: Path, texts: list[str], repeats: int, k: int) -> dict[str, dict[str, list[float]]]:
    import httpx2
    from mcp import Client, StdioServerParameters
    from mcp.client.streamable_http import streamable_http_client

    kb = KnowledgeBase.open(kb_path)
    fallback = next(iter(kb.store.iter_documents()))["id"]
    doc_ids = [next((h.doc_id for h in kb.search(t, k=1)), fallback) for t in texts]   # what fetch reads
    times: dict[str, dict[str, list[float]]] = {tool: {"library": [], "in_process": [], "stdio": [], "http": [],
                                                       "rest": []}
                                                for tool in ("search", "fetch")}
    home = Path(tempfile.mkdtemp(prefix="mcp-bench-"))
    http_proc, url, secret = start_http(kb_path, home / "home")
    base = url.removesuffix("/mcp")
    env = {"OPENBLAS_NUM_THREADS": "1", "PATH": os.environ.get("PATH", "")}
    stdio = StdioServerParameters(command=sys.executable, args=["-m", "domainrag.cli", "mcp", "--kb", f"bench={kb_path}"],
                                  env=env)
    try:
        async with Client(_in_process(kb_path)) as in_process, Client(stdio) as over_stdio, \
                httpx2.AsyncClient(headers={"Authorization": f"Bearer {secret}"}, timeout=120) as http, \
                Client(streamable_http_client(url, http_client=http)) as over_http:
            clients = {"in_process": in_process, "stdio": over_stdio, "http": over_http}
            for client in clients.values():   # warm: embedder loaded, index open, connections made
                for text in texts[:3]:
                    result = await client.call_tool("search", {"query": text, "k": k})
                    assert not result.is_error, result.content
            for _ in range(repeats):
                for text, doc_id in zip(texts, doc_ids, strict=True):
                    times["search"]["library"].append(await timed(lambda t=text: _sync(kb.search, t, k)))
                    for name, client in clients.items():
                        times["search"][name].append(await timed(
                            lambda c=client, t=text: c.call_tool("search", {"query": t, "k": k})))
                    times["search"]["rest"].append(await timed(lambda t=text: _ok(http.post(
                        f"{base}/v1/collections/bench/search", json={"query": t, "k": k}))))
                    uri = f"domainrag://bench/{_quote(doc_id)}"
                    times["fetch"]["library"].append(await timed(lambda d=doc_id: _sync(kb.document, d)))
                    for name, client in clients.items():
                        times["fetch"][name].append(await timed(lambda c=client, u=uri: c.call_tool("fetch", {"id": u})))
                    times["fetch"]["rest"].append(await timed(lambda d=doc_id: _ok(http.get(
                        f"{base}/v1/collections/bench/documents/{_quote(d)}"))))
    finally:
        http_proc.terminate()
        http_proc.wait(30)
        kb.close()
    return times


def _in_process(kb_path: Path) -> Any:
    """The MCP server in this process (the SDK client dispatches to it directly, no transport):
    the SDK's and the handlers' own cost."""
    from domainrag.server.collections import Collections
    from domainrag.server.keys import LOCAL_ADMIN
    from domainrag.server.mcp.protocol import build_server
    from domainrag.server.mcp.service import McpService

    service = McpService(Collections(None, {"bench": kb_path}), models=None)
    return build_server(service, lambda ctx: LOCAL_ADMIN, timeout_s=300)


async def _sync(fn: Callable[..., Any], *args: Any) -> Any:
    return fn(*args)


async def _ok(response: Awaitable[Any]) -> None:
    answered = await response
    answered.raise_for_status()


def _quote(doc_id: str) -> str:
    from urllib.parse import quote

    return quote(doc_id, safe="/")


def summarise(times: dict[str, dict[str, list[float]]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for tool, by_path in times.items():
        stats = {path: percentiles(values) for path, values in by_path.items()}
        for path in ("in_process", "stdio", "http", "rest"):
            stats[path]["overhead_p50_ms"] = round(stats[path]["p50_ms"] - stats["library"]["p50_ms"], 3)
            stats[path]["overhead_p95_ms"] = round(stats[path]["p95_ms"] - stats["library"]["p95_ms"], 3)
        out[tool] = stats
    return out


PATHS = ("in_process", "stdio", "http", "rest")


def table(summary: dict[str, Any]) -> str:
    rows = []
    for tool, stats in summary.items():
        lib = stats["library"]
        rows.append([tool, f"{lib['p50_ms']:.2f} / {lib['p95_ms']:.2f}",
                     *(f"{stats[p]['p50_ms']:.2f} / {stats[p]['p95_ms']:.2f}" for p in PATHS),
                     *(f"{stats[p]['overhead_p50_ms']:+.2f} / {stats[p]['overhead_p95_ms']:+.2f}" for p in PATHS)])
    return markdown_table(["tool", "library p50 / p95 ms", "MCP in-process", "MCP stdio", "MCP HTTP",
                           "REST (same server)", "overhead p50 / p95: in-process", "stdio", "HTTP", "REST"], rows)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("dataset", type=Path, help="A BEIR folder (corpus.jsonl, queries.jsonl).")
    p.add_argument("--docs", type=int, default=2000)
    p.add_argument("--queries", type=int, default=100)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--k", type=int, default=5)
    p.add_argument("--embedder", default="minilm")
    p.add_argument("--cache", type=Path, default=Path("benchmarks/.cache/mcp_overhead"))
    p.add_argument("--out", type=Path, default=Path("benchmarks/results/mcp_overhead.json"))
    args = p.parse_args(argv)
    kb = build_kb(args.dataset, args.cache, args.docs, args.embedder)
    texts = queries(args.dataset, args.queries)
    load_before = os.getloadavg()
    started = time.time()
    times = asyncio.run(measure(kb, texts, args.repeats, args.k))
    summary = summarise(times)
    print(table(summary))
    write_json(args.out, {"dataset": args.dataset.name, "docs": args.docs, "queries": len(texts),
                          "repeats": args.repeats, "k": args.k, "embedder": args.embedder,
                          "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(started)),
                          "machine": machine(), "load_before": load_before, "load_after": os.getloadavg(),
                          "results": summary})


if __name__ == "__main__":
    main()
