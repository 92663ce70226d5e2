"""``domainrag serve`` under load: throughput, latency percentiles and errors over loopback, next to
the same calls in-process, and the server's memory over a soak.

Question answered: what does the HTTP edge cost over the library (p50 overhead), how does the
server behave with 1, 8 and 32 concurrent clients for search, offline ``ask`` and the
OpenAI-compatible chat endpoint, and does its memory stay flat under sustained load?

Data: a ~100k-chunk collection made by **replicating a real corpus** (default: MedQuAD's
16k answers; copy ``r`` gets document ids ``r<r>/<id>``, identical text) and embedding it with
the **``hash`` embedder at 384 dimensions** (MiniLM's width, so the dense scan costs the same;
real MiniLM embedding of 100k chunks takes ~15 min here, and the query embedding it would add —
a few ms per query — is the same in-process and over HTTP). Built once and cached under
``--cache``. Queries: the corpus's real questions (``queries.jsonl``).

Server: the real app (``create_app``) under Uvicorn in a subprocess, one worker, loopback, no
API key (loopback mode: no rate limit). Clients: one asyncio process with ``httpx`` and N
concurrent tasks, each sending its next request as soon as the last one returns, for
``--seconds`` per (workload, N) after a warm-up. The clients share the machine's cores with the
server. In-process: the same queries through one ``KnowledgeBase`` from N threads.
Workloads: ``search`` (k=10, hybrid), ``ask`` (the offline extractive model), ``openai``
(``/v1/chat/completions``, extractive, not streamed; HTTP only).

HTTP overhead: the phases above run one after another, so on a shared machine their load
differs; ``--pairs N`` also measures N queries per workload with the in-process call and the
same call over HTTP back to back (order alternating, one client), and reports the median of the
paired differences — the number to quote.

Server CPU: the server process's CPU time (``/proc/<pid>/stat``) per request over each phase —
what the edge costs, far less sensitive to other load on the machine than wall-clock latency.

Before/after in one run: ``--server LABEL=PYTHONPATH`` (repeatable) starts one server per source
tree (e.g. ``before=/work/wt/x-before/src``); every phase is cut into ``--slices`` slices that
alternate between the servers, and the paired overhead rotates local/each server per query, so
they all see the same machine load. The first ``--server`` is the one under test (``http``,
``paired`` and the soak); without ``--server`` it is the ``domainrag`` this script imports.

``--soak S`` adds S seconds of mixed search/ask load from 8 clients while sampling the server's
RSS every ``--sample`` seconds (start, end, max, slope).

    python benchmarks/serve_load.py ../shared/data/medquad --json benchmarks/results/serve_load.json
    python benchmarks/serve_load.py ../shared/data/medquad --soak 600
    python benchmarks/serve_load.py ../shared/data/medquad --chunks 20000 --server after=src \
        --server before=../before/src --json benchmarks/results/serve_load_compare.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import platform
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

import domainrag
from domainrag.kb import KnowledgeBase

COLLECTION = "load"
EMBEDDER = "hash:384"
RESULTS = Path(__file__).parent / "results" / "serve_load.json"
#: Clients send small requests at once (httpx's sync transport writes headers and body separately,
#: and Nagle's algorithm then waits for the server's delayed ACK: +40 ms per POST on Linux).
NODELAY = [(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]
SERVER = """
import sys, uvicorn
from domainrag.server.app import create_app
from domainrag.server.settings import load_settings
home, kb, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
settings = load_settings(overrides={"home": home, "port": port, "collections": {"load": {"path": kb}}})
uvicorn.run(create_app(settings), host="127.0.0.1", port=port, log_level="warning", access_log=False)
"""


# -- the collection ---------------------------------------------------------------------------
def build(dataset: Path, target: int, cache: Path) -> tuple[Path, dict[str, Any]]:
    """The cached knowledge base of ``dataset`` replicated to ``target`` chunks (built once)."""
    path = cache / "serve_load" / f"{dataset.name}-{target}"
    done = path / "serve_load.json"
    if done.is_file():
        return path, json.loads(done.read_text())
    docs = [json.loads(line) for line in (dataset / "corpus.jsonl").open(encoding="utf-8") if line.strip()]
    started = time.perf_counter()
    kb = KnowledgeBase.open(path, create=True, overrides={"embedder.model": EMBEDDER})
    copies = 0
    with tempfile.TemporaryDirectory(prefix="serve-load-") as tmp:
        while (chunks := int(kb.store.stats().get("chunks") or 0)) < target:
            per_doc = chunks / (copies * len(docs)) if copies else 0.0
            take = min(len(docs), target) if not per_doc else min(len(docs), math.ceil((target - chunks) / per_doc))
            folder = Path(tmp) / f"copy{copies}"
            folder.mkdir()
            with (folder / "corpus.jsonl").open("w", encoding="utf-8") as out:
                for doc in docs[:take]:
                    out.write(json.dumps({**doc, "_id": f"r{copies}/{doc['_id']}"}) + "\n")
            (folder / "queries.jsonl").write_text("")
            kb.ingest([folder], format="beir")
            copies += 1
            print(f"  copy {copies}: {kb.store.stats().get('chunks')} chunks", file=sys.stderr, flush=True)
    info = {"dataset": dataset.name, "documents": kb.store.stats().get("documents"), "chunks": chunks,
            "copies": copies, "embedder": EMBEDDER, "build_s": round(time.perf_counter() - started, 1)}
    kb.close()
    done.write_text(json.dumps(info))
    return path, info


def questions(dataset: Path, n: int, seed: int) -> list[str]:
    rows = [json.loads(line) for line in (dataset / "queries.jsonl").open(encoding="utf-8") if line.strip()]
    texts = [r["text"] for r in rows if r.get("text")]
    random.Random(seed).shuffle(texts)
    return texts[:n]


# -- measuring --------------------------------------------------------------------------------
def summary(latencies: list[float], errors: int, elapsed: float) -> dict[str, Any]:
    ms = sorted(x * 1000 for x in latencies)

    def pct(p: float) -> float | None:
        return round(ms[min(len(ms) - 1, int(p / 100 * len(ms)))], 2) if ms else None

    total = len(ms) + errors
    return {"requests": total, "ok": len(ms), "errors": errors, "error_rate": round(errors / total, 4) if total else 0,
            "throughput_rps": round(len(ms) / elapsed, 1), "p50_ms": pct(50), "p95_ms": pct(95), "p99_ms": pct(99),
            "mean_ms": round(statistics.fmean(ms), 2) if ms else None}


def body(workload: str, text: str) -> tuple[str, dict[str, Any]]:
    if workload == "search":
        return f"/v1/collections/{COLLECTION}/search", {"query": text, "k": 10}
    if workload == "ask":
        return f"/v1/collections/{COLLECTION}/ask", {"question": text}
    return "/v1/chat/completions", {"model": COLLECTION, "messages": [{"role": "user", "content": text}]}


async def http_level(base: str, workloads: list[str], texts: list[str], clients: int, seconds: float,
                     first_error: list[str]) -> dict[str, Any]:
    """``clients`` tasks issuing requests back to back for ``seconds`` (workloads alternate)."""
    latencies, errors, elapsed = await http_run(base, workloads, texts, clients, seconds, first_error)
    return summary(latencies, errors, elapsed)


async def http_run(base: str, workloads: list[str], texts: list[str], clients: int, seconds: float,
                   first_error: list[str], offset: int = 0) -> tuple[list[float], int, float]:
    """The raw latencies (s), error count and elapsed seconds of :func:`http_level`; ``offset``
    moves each client's place in the question list (so consecutive slices ask other questions)."""
    latencies: list[float] = []
    errors = 0
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    transport = httpx.AsyncHTTPTransport(limits=limits, socket_options=NODELAY)
    async with httpx.AsyncClient(base_url=base, transport=transport, timeout=120) as client:
        deadline = time.perf_counter() + seconds

        async def worker(index: int) -> None:
            nonlocal errors
            i = index * 7919 + offset
            while time.perf_counter() < deadline:
                path, payload = body(workloads[i % len(workloads)], texts[i % len(texts)])
                i += 1
                t = time.perf_counter()
                try:
                    response = await client.post(path, json=payload)
                    ok = response.status_code == 200
                    if not ok and not first_error:
                        first_error.append(f"{response.status_code} {response.text[:300]}")
                except httpx.HTTPError as exc:
                    ok = False
                    if not first_error:
                        first_error.append(repr(exc))
                if ok:
                    latencies.append(time.perf_counter() - t)
                else:
                    errors += 1

        started = time.perf_counter()
        await asyncio.gather(*(worker(n) for n in range(clients)))
        return latencies, errors, time.perf_counter() - started


def compared_level(servers: list[Server], workload: str, texts: list[str], clients: int, seconds: float,
                   slices: int, first_error: list[str]) -> dict[str, dict[str, Any]]:
    """One (workload, clients) phase for every server: ``slices`` slices of ``seconds / slices``
    each, the servers taking turns (order rotated per slice); latencies pooled per server, and
    the server's CPU time per request over its slices."""
    pooled: dict[str, tuple[list[float], list[int], list[float], list[float]]] = {
        s.label: ([], [0], [0.0], [0.0]) for s in servers}
    for n in range(slices):
        for server in servers[n % len(servers):] + servers[:n % len(servers)]:
            latencies, cpu_errors, elapsed, cpu = pooled[server.label]
            before = cpu_seconds(server.proc.pid)
            got, failed, took = asyncio.run(http_run(server.base, [workload], texts, clients, seconds / slices,
                                                     first_error, offset=n * 101))
            cpu[0] += cpu_seconds(server.proc.pid) - before
            latencies.extend(got)
            cpu_errors[0] += failed
            elapsed[0] += took
    out: dict[str, dict[str, Any]] = {}
    for label, (latencies, cpu_errors, elapsed, cpu) in pooled.items():
        result = summary(latencies, cpu_errors[0], elapsed[0])
        result["server_cpu_ms_per_request"] = round(cpu[0] * 1000 / max(1, result["requests"]), 3)
        out[label] = result
    return out


def local_level(call: Callable[[str], Any], texts: list[str], clients: int, seconds: float) -> dict[str, Any]:
    """The same loop in-process: ``clients`` threads over one knowledge base."""
    latencies: list[float] = []
    errors = 0
    lock = threading.Lock()
    deadline = time.perf_counter() + seconds

    def worker(index: int) -> None:
        nonlocal errors
        i = index * 7919
        while time.perf_counter() < deadline:
            text = texts[i % len(texts)]
            i += 1
            t = time.perf_counter()
            try:
                call(text)
            except Exception:  # noqa: BLE001 — counted
                with lock:
                    errors += 1
                continue
            with lock:
                latencies.append(time.perf_counter() - t)

    started, cpu = time.perf_counter(), time.process_time()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(worker, range(clients)))
    result = summary(latencies, errors, time.perf_counter() - started)
    result["cpu_ms_per_call"] = round((time.process_time() - cpu) * 1000 / max(1, result["requests"]), 3)
    return result


def paired_overhead(servers: list[Server], kb: KnowledgeBase, texts: list[str], n: int) -> dict[str, Any]:
    """HTTP overhead robust to a busy machine: per query, the in-process call and the same call
    over HTTP to each server back to back (order rotating), one client; the median of the paired
    differences, per server."""
    calls: dict[str, Callable[[str], Any]] = {"search": lambda q: kb.search(q, k=10), "ask": kb.ask}
    result: dict[str, Any] = {s.label: {} for s in servers}
    clients = {s.label: httpx.Client(base_url=s.base, transport=httpx.HTTPTransport(socket_options=NODELAY),
                                     timeout=120) for s in servers}
    sides = ["local", *clients]
    try:
        for workload, call in calls.items():
            timings: dict[str, list[float]] = {side: [] for side in sides}
            for i in range(n):
                path, payload = body(workload, texts[i % len(texts)])
                for side in sides[i % len(sides):] + sides[:i % len(sides)]:
                    t = time.perf_counter()
                    if side == "local":
                        call(texts[i % len(texts)])
                    else:
                        clients[side].post(path, json=payload).raise_for_status()
                    timings[side].append((time.perf_counter() - t) * 1000)
            for label in clients:
                diff = [h - loc for h, loc in zip(timings[label], timings["local"], strict=True)]
                result[label][workload] = {"pairs": n, "in_process_p50_ms": round(statistics.median(timings["local"]), 2),
                                           "http_p50_ms": round(statistics.median(timings[label]), 2),
                                           "overhead_p50_ms": round(statistics.median(diff), 2)}
    finally:
        for client in clients.values():
            client.close()
    return result


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process ``pid`` so far (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def soak(base: str, pid: int, texts: list[str], seconds: float, every: float,
               first_error: list[str]) -> dict[str, Any]:
    samples: list[tuple[float, float]] = []
    started = time.perf_counter()

    async def sampler() -> None:
        while time.perf_counter() - started < seconds:
            samples.append((round(time.perf_counter() - started, 1), round(rss_mb(pid), 1)))
            await asyncio.sleep(every)

    load = asyncio.create_task(http_level(base, ["search", "ask"], texts, 8, seconds, first_error))
    await sampler()
    result = await load
    samples.append((round(time.perf_counter() - started, 1), round(rss_mb(pid), 1)))
    values = [v for _, v in samples]
    half = len(values) // 2
    return {**result, "seconds": seconds, "rss_start_mb": values[0], "rss_end_mb": values[-1],
            "rss_max_mb": max(values),
            "rss_second_half_growth_mb": round(values[-1] - values[half], 1) if half else 0.0,
            "samples": samples}


# -- the server -------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class Server:
    """A server subprocess (one source tree) and its base URL."""

    def __init__(self, label: str, pythonpath: str, kb: Path, home: Path) -> None:
        self.label = label
        self.log = home / "server.log"
        self.proc, self.base = start_server(kb, home / "srv", self.log, pythonpath)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def start_server(kb: Path, home: Path, log: Path, pythonpath: str) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([pythonpath, os.environ.get("PYTHONPATH", "")])}
    home.mkdir(parents=True, exist_ok=True)
    with log.open("wb") as err:
        proc = subprocess.Popen([sys.executable, "-c", SERVER, str(home), str(kb), str(port)], env=env,
                                stdout=subprocess.DEVNULL, stderr=err)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the server exited ({proc.returncode}); see {log}")
        try:
            if httpx.get(base + "/readyz", timeout=60).status_code == 200:
                return proc, base
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit(f"the server did not become ready; see {log}")


def server_specs(values: list[str]) -> list[tuple[str, str]]:
    """``--server LABEL=PYTHONPATH`` values; none: this script's ``domainrag``."""
    if not values:
        return [("server", str(Path(domainrag.__file__).parents[1]))]
    specs = []
    for value in values:
        label, sep, path = value.partition("=")
        if not sep or not label or not path:
            raise SystemExit(f"--server {value!r}: give LABEL=PYTHONPATH, e.g. before=../before/src")
        specs.append((label, os.pathsep.join(str(Path(p).resolve()) for p in path.split(os.pathsep))))
    return specs


# -- the run ----------------------------------------------------------------------------------
def run(args: argparse.Namespace) -> dict[str, Any]:
    print(f"collection: {args.dataset.name} replicated to {args.chunks:,} chunks...", file=sys.stderr, flush=True)
    path, info = build(args.dataset, args.chunks, args.cache)
    texts = questions(args.dataset, args.queries, args.seed)
    levels = [int(x) for x in args.clients.split(",")]
    report: dict[str, Any] = {"collection": info, "queries": len(texts), "seconds_per_level": args.seconds,
                              "clients": levels, "http": {}, "in_process": {}}
    first_error: list[str] = []
    specs = server_specs(args.server)
    report["servers"] = {label: {"pythonpath": pythonpath, "http": {}} for label, pythonpath in specs}
    with tempfile.TemporaryDirectory(prefix="serve-load-home-") as home:
        servers: list[Server] = []
        try:
            for label, pythonpath in specs:
                servers.append(Server(label, pythonpath, path, Path(home) / label))
            main = servers[0]
            report["server_rss_mb"] = {"ready": round(rss_mb(main.proc.pid), 1)}
            for server in servers:
                asyncio.run(http_level(server.base, ["search", "ask", "openai"], texts, 4, args.warmup, first_error))
            report["server_rss_mb"]["warm"] = round(rss_mb(main.proc.pid), 1)
            for workload in args.workloads.split(","):
                for n in levels:
                    slices = args.slices if len(servers) > 1 else 1
                    results = compared_level(servers, workload, texts, n, args.seconds, slices, first_error)
                    for label, result in results.items():
                        report["servers"][label]["http"].setdefault(workload, {})[str(n)] = result
                        print(f"http {label:8} {workload:6} x{n:<2} {_line(result)}  "
                              f"server CPU {result['server_cpu_ms_per_request']} ms/req", file=sys.stderr, flush=True)
            report["http"] = report["servers"][main.label]["http"]
            report["server_rss_mb"]["after_levels"] = round(rss_mb(main.proc.pid), 1)
            if args.pairs:
                with KnowledgeBase.open(path) as local:
                    paired = paired_overhead(servers, local, texts, args.pairs)
                for label, by_workload in paired.items():
                    report["servers"][label]["paired"] = by_workload
                report["paired"] = paired[main.label]
                print(f"paired (1 client, interleaved): {paired}", file=sys.stderr, flush=True)
            if args.soak:
                print(f"soak {args.soak:g} s...", file=sys.stderr, flush=True)
                report["soak"] = asyncio.run(soak(main.base, main.proc.pid, texts, args.soak, args.sample, first_error))
                s = report["soak"]
                print(f"soak: {_line(s)}; RSS start {s['rss_start_mb']} end {s['rss_end_mb']} "
                      f"max {s['rss_max_mb']} MiB", file=sys.stderr, flush=True)
        finally:
            for server in servers:
                server.stop()
        report["first_error"] = first_error[0] if first_error else None
    kb = KnowledgeBase.open(path)
    try:
        calls: dict[str, Callable[[str], Any]] = {"search": lambda q: kb.search(q, k=10), "ask": kb.ask}
        local_level(calls["search"], texts, 4, args.warmup)
        local_level(calls["ask"], texts, 4, args.warmup)
        for workload, call in calls.items():
            if workload not in args.workloads.split(","):
                continue
            for n in levels:
                result = local_level(call, texts, n, args.seconds)
                report["in_process"].setdefault(workload, {})[str(n)] = result
                print(f"local {workload:6} x{n:<2} {_line(result)}  CPU {result['cpu_ms_per_call']} ms/call",
                      file=sys.stderr, flush=True)
    finally:
        kb.close()
    report["http_overhead_p50_ms"] = {
        w: round(report["http"][w][str(levels[0])]["p50_ms"] - report["in_process"][w][str(levels[0])]["p50_ms"], 2)
        for w in report["in_process"]}
    return report


def _line(r: dict[str, Any]) -> str:
    return (f"{r['throughput_rps']:7.1f} req/s  p50 {r['p50_ms']} p95 {r['p95_ms']} p99 {r['p99_ms']} ms  "
            f"errors {r['errors']}/{r['requests']}")


def table(report: dict[str, Any]) -> str:
    rows = ["| workload | clients | HTTP req/s | HTTP p50 / p95 / p99 ms | errors | in-process req/s | "
            "in-process p50 / p95 / p99 ms |", "|---|---|---|---|---|---|---|"]
    for workload, by_n in report["http"].items():
        for n, h in by_n.items():
            local = report["in_process"].get(workload, {}).get(n)
            lp = f"{local['throughput_rps']} | {local['p50_ms']} / {local['p95_ms']} / {local['p99_ms']}" if local \
                else "— | —"
            rows.append(f"| {workload} | {n} | {h['throughput_rps']} | {h['p50_ms']} / {h['p95_ms']} / {h['p99_ms']} | "
                        f"{h['errors']}/{h['requests']} | {lp} |")
    return "\n".join(rows)


def compare_table(report: dict[str, Any]) -> str:
    labels = list(report["servers"])
    rows = ["| workload | clients | " + " | ".join(f"{lb} p50 / p95 ms, req/s, CPU ms/req" for lb in labels) + " |",
            "|---|---|" + "---|" * len(labels)]
    first = report["servers"][labels[0]]["http"]
    for workload, by_n in first.items():
        for n in by_n:
            cells = []
            for label in labels:
                h = report["servers"][label]["http"][workload][n]
                cells.append(f"{h['p50_ms']} / {h['p95_ms']}, {h['throughput_rps']}, {h['server_cpu_ms_per_request']}")
            rows.append(f"| {workload} | {n} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("dataset", type=Path, help="a BEIR folder (corpus.jsonl, queries.jsonl), e.g. ../shared/data/medquad")
    p.add_argument("--chunks", type=int, default=100_000, help="chunks in the collection (replicated corpus)")
    p.add_argument("--clients", default="1,8,32", help="concurrency levels, comma-separated")
    p.add_argument("--workloads", default="search,ask,openai", help="of search, ask, openai; comma-separated")
    p.add_argument("--seconds", type=float, default=8.0, help="measured seconds per workload and level")
    p.add_argument("--warmup", type=float, default=3.0, help="warm-up seconds before measuring")
    p.add_argument("--queries", type=int, default=500, help="distinct questions cycled through")
    p.add_argument("--pairs", type=int, default=200, help="interleaved in-process/HTTP pairs per workload "
                   "for the overhead (0: skip)")
    p.add_argument("--server", action="append", default=[], metavar="LABEL=PYTHONPATH",
                   help="a server from this source tree (repeatable: side by side, the first is under test)")
    p.add_argument("--slices", type=int, default=4, help="with several servers: turns per phase")
    p.add_argument("--soak", type=float, default=0.0, help="seconds of mixed load while sampling server RSS")
    p.add_argument("--sample", type=float, default=5.0, help="RSS sampling interval during the soak, seconds")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--cache", type=Path, default=Path("benchmarks/.cache"))
    p.add_argument("--json", type=Path, default=RESULTS)
    args = p.parse_args()
    started = time.perf_counter()
    load_before = os.getloadavg()
    report = run(args)
    report.update(load_average={"start": [round(x, 2) for x in load_before],
                                "end": [round(x, 2) for x in os.getloadavg()]},
                  command="python " + " ".join(sys.argv), date=datetime.now(UTC).isoformat(timespec="seconds"),
                  machine=f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
                  version=domainrag.__version__,
                  env={k: os.environ.get(k) for k in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")},
                  wall_s=round(time.perf_counter() - started, 1))
    print(table(report))
    print(f"HTTP overhead p50, phases measured one after the other: {report['http_overhead_p50_ms']}")
    for label, server in report["servers"].items():
        for workload, pair in server.get("paired", {}).items():
            print(f"{label}: HTTP overhead p50, {pair['pairs']} interleaved pairs, {workload}: "
                  f"{pair['overhead_p50_ms']} ms (in-process {pair['in_process_p50_ms']} ms, HTTP {pair['http_p50_ms']} ms)")
    if len(report["servers"]) > 1:
        print(compare_table(report))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
