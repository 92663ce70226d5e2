"""S3 sync speed: ``KnowledgeBase.ingest("s3://...")`` of N small objects, the first sync and an
unchanged re-run, side by side with the same files in a local folder, in one run.

    python benchmarks/s3_sync.py ../shared/data/medquad --objects 10000 --repeats 3

The S3 server is moto's server mode (``moto[server]``) on 127.0.0.1, in its own process on the
same machine: its CPU time competes with the ingest, and each request is a loopback round trip,
so the figures are a lower bound on the client's own work, not a forecast for AWS. The first N
documents of the BEIR corpus (title + text) become objects ``bench/<id>.txt`` and files
``<folder>/<id>.txt``. Embedding uses the deterministic hash embedder (``hash:384``) so that
embedding does not dominate: this measures listing, download, parsing, chunking and writing.

Each run is a fresh Python process (its peak RSS is recorded); each repetition uses a fresh
knowledge base: first sync, then the unchanged re-run, for S3 then the folder (order alternates
between repetitions). Downloads are counted from the server's request log (``GET /bucket/key``),
list requests too. Medians of the repetitions go to benchmarks/results/s3_sync.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

BUCKET = "bench-sync"
CHILD = r"""
import json, resource, sys, time
from domainrag import KnowledgeBase

kb_dir, source = sys.argv[1], sys.argv[2]
kb = KnowledgeBase.open(kb_dir, create=True, overrides={"embedder.model": "hash:384"})
_ = kb.embedder
t0 = time.perf_counter()
report = kb.ingest([source])
wall = time.perf_counter() - t0
kb.close()
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"wall_s": wall, "added": len(report.added), "skipped": len(report.skipped),
                  "failed": len(report.failed), "chunks": report.chunks, "peak_rss_mb": rss}))
"""


def start_moto(log: Path) -> tuple[subprocess.Popen[bytes], str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with log.open("wb") as out:
        process = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                                   stdout=out, stderr=subprocess.STDOUT)
    for _ in range(600):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return process, f"http://127.0.0.1:{port}"
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("moto server did not start")


def documents(corpus: Path, n: int) -> list[tuple[str, str]]:
    out = []
    with corpus.open(encoding="utf-8") as lines:
        for line in lines:
            record = json.loads(line)
            text = f"{record.get('title', '')}\n\n{record.get('text', '')}".strip()
            name = re.sub(r"[^\w.-]+", "_", str(record["_id"]))
            out.append((f"{name}.txt", text))
            if len(out) == n:
                break
    return out


def upload(endpoint: str, docs: list[tuple[str, str]], folder: Path) -> float:
    import boto3

    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="bench",
                          aws_secret_access_key="bench")
    client.create_bucket(Bucket=BUCKET)
    folder.mkdir(parents=True)
    t0 = time.perf_counter()
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda d: client.put_object(Bucket=BUCKET, Key=f"bench/{d[0]}", Body=d[1].encode()), docs))
    for name, text in docs:
        (folder / name).write_text(text, encoding="utf-8")
    return time.perf_counter() - t0


def requests(log: Path, since: int) -> dict[str, int]:
    with log.open("rb") as f:
        f.seek(since)
        text = f.read().decode("utf-8", "replace")
    return {"object_gets": len(re.findall(rf"GET /{BUCKET}/bench/\S+ HTTP", text)),
            "object_heads": len(re.findall(rf"HEAD /{BUCKET}/bench/\S+ HTTP", text)),
            "list_pages": len(re.findall(rf"GET /{BUCKET}\?list-type=2", text))}


def run(kb_dir: Path, source: str, env: dict[str, str], log: Path | None) -> dict[str, float]:
    mark = log.stat().st_size if log else 0
    proc = subprocess.run([sys.executable, "-c", CHILD, str(kb_dir), source], capture_output=True, text=True,
                          env=env, check=False)
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-3000:])
    result: dict[str, float] = json.loads(proc.stdout.strip().splitlines()[-1])
    if log:
        result.update(requests(log, mark))
    result["load_1m"] = os.getloadavg()[0]
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data", type=Path, help="a BEIR folder (corpus.jsonl)")
    parser.add_argument("--objects", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "s3_sync.json")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="s3-sync-"))
    log = work / "moto.log"
    server, endpoint = start_moto(log)
    try:
        docs = documents(args.data / "corpus.jsonl", args.objects)
        upload_s = upload(endpoint, docs, work / "folder")
        env = {**os.environ, "AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "bench",
               "AWS_SECRET_ACCESS_KEY": "bench", "AWS_DEFAULT_REGION": "us-east-1",
               "PYTHONPATH": str(Path(__file__).resolve().parent.parent / "src")}
        runs: dict[str, list[dict[str, float]]] = {k: [] for k in ("s3_first", "s3_rerun", "folder_first",
                                                                    "folder_rerun")}
        for rep in range(args.repeats):
            order = [("s3", f"s3://{BUCKET}/bench"), ("folder", str(work / "folder"))]
            for kind, source in order if rep % 2 == 0 else order[::-1]:
                kb_dir = work / f"kb-{kind}-{rep}"
                for phase in ("first", "rerun"):
                    result = run(kb_dir, source, env, log if kind == "s3" else None)
                    runs[f"{kind}_{phase}"].append(result)
                    print(f"rep {rep} {kind:6} {phase:5} {json.dumps(result)}", flush=True)
    finally:
        server.terminate()
        server.wait()
    medians = {name: {key: statistics.median(r[key] for r in results) for key in results[0]}
               for name, results in runs.items()}
    n = len(docs)
    table = {name: {**m, "objects_per_s": n / m["wall_s"]} for name, m in medians.items()}
    print(f"\n{n} objects ({sum(len(t) for _, t in docs) / n:.0f} chars each on average), medians of {args.repeats}")
    print(f"{'run':14} {'wall s':>8} {'objects/s':>10} {'GETs':>6} {'HEADs':>6} {'lists':>6} {'RSS MB':>7}")
    for name, m in table.items():
        print(f"{name:14} {m['wall_s']:8.2f} {m['objects_per_s']:10.0f} {m.get('object_gets', 0):6.0f} "
              f"{m.get('object_heads', 0):6.0f} {m.get('list_pages', 0):6.0f} {m['peak_rss_mb']:7.0f}")
    ratios = {"s3_first_over_folder_first": table["s3_first"]["wall_s"] / table["folder_first"]["wall_s"],
              "s3_rerun_over_folder_rerun": table["s3_rerun"]["wall_s"] / table["folder_rerun"]["wall_s"],
              "s3_rerun_over_s3_first": table["s3_rerun"]["wall_s"] / table["s3_first"]["wall_s"]}
    print(json.dumps(ratios, indent=1))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({
        "command": " ".join(["python", "benchmarks/s3_sync.py", *sys.argv[1:]]),
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "machine": platform.platform(),
        "cpus": os.cpu_count(), "objects": n, "embedder": "hash:384", "upload_s": upload_s,
        "medians": table, "ratios": ratios, "runs": runs}, indent=1) + "\n")


if __name__ == "__main__":
    main()
