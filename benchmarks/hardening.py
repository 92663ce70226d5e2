"""Hostile files and kill -9: does one odd file ever block a folder, or a crash lose data?

    PYTHONPATH=src python benchmarks/hardening.py ../shared/data/medquad [--rounds 25] [--good 300] [--kills 50]

Part 1 (hostile mix): ``tests/hostile`` writes ``--rounds`` rounds of its hostile corpus (round 0
with the heavy kinds: a 50 MB single token, a zip bomb, a FIFO...) mixed with ``--good`` MedQuAD
documents written as .md/.txt/.html files, each holding a unique probe word. The folder is
ingested twice in child processes: through the Python API (per-file times from the progress
callback, peak RSS of the ingest and of its parse worker) and through the real CLI (exit code,
tracebacks). Counted: crashes (a traceback, or an exit code other than 0/3), hangs (past
``--timeout``), good files lost (not in the catalog, or not found by a search for their probe),
bad files not reported, and the worst per-file time.

Part 2 (kill -9): a smaller mixed folder is ingested by the CLI, killed (the whole process group:
the CLI and its parse worker) at a random moment, and re-run to completion; then the folder is
changed (files deleted, edited, added) and ``ingest --prune`` is killed and re-run the same way.
After each completed re-run the catalog (sources, documents, chunks with their vectors) is
compared with a clean ingest of the same files: documents and chunks lost, duplicated or
corrupted must all be 0. Embeddings use ``hash:384`` so that embedding is not what is measured.

Writes benchmarks/results/hardening.json.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import html
import json
import os
import platform
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))
EMBEDDER = "hash:384"


# -- corpus ------------------------------------------------------------------------------------
def write_good(corpus: Path, out: Path, count: int, seed: int) -> dict[str, str]:
    """``count`` MedQuAD documents as .md/.txt/.html files; {relative path: probe word}."""
    out.mkdir(parents=True, exist_ok=True)
    probes: dict[str, str] = {}
    rng = random.Random(seed)
    with (corpus / "corpus.jsonl").open(encoding="utf-8") as lines:
        records = [json.loads(line) for _, line in zip(range(count * 3), lines, strict=False)]
    for i, record in enumerate(rng.sample(records, count)):
        probe = f"zqgood{seed}x{i}"
        title, text = record.get("title") or "Untitled", f"{record['text']}\n\nReference {probe}."
        kind = ("md", "txt", "html")[i % 3]
        if kind == "md":
            body = f"# {title}\n\n{text}\n"
        elif kind == "txt":
            body = f"{title}\n\n{text}\n"
        else:
            body = f"<html><head><title>{html.escape(title)}</title></head><body><h1>{html.escape(title)}</h1>" \
                   f"<p>{html.escape(text)}</p></body></html>"
        rel = f"good-{i:04d}.{kind}"
        (out / rel).write_text(body, encoding="utf-8")
        probes[rel] = probe
    return probes


def build_mix(data: Path, root: Path, rounds: int, good: int, huge_mb: float) -> dict[str, Any]:
    from hostile import generate

    shutil.rmtree(root, ignore_errors=True)
    corpus, outside = root / "corpus", root / "outside"
    hostile = []
    for r in range(rounds):
        hostile += [(f"round{r:02d}", f) for f in generate(corpus / f"round{r:02d}", outside / f"round{r:02d}",
                                                           seed=r, huge_mb=huge_mb if r == 0 else 0.05,
                                                           heavy=r == 0)]
    probes = write_good(data, corpus / "medquad", good, seed=rounds)
    return {"corpus": corpus, "hostile": hostile, "good": probes}


# -- part 1 ------------------------------------------------------------------------------------
CHILD = """
import json, resource, sys, time
from domainrag import KnowledgeBase
kb_path, root, out, embedder = sys.argv[1:5]
ticks = []
last = [time.perf_counter()]
def tick(label):
    now = time.perf_counter()
    ticks.append((now - last[0], label))
    last[0] = now
with KnowledgeBase.open(kb_path, create=True, overrides={"embedder.model": embedder}) as kb:
    report = kb.ingest([root], progress=tick)
ticks.sort(reverse=True)
json.dump({"summary": report.summary(), "added": report.added, "failed": report.failed,
           "ignored": report.ignored, "slowest": ticks[:5],
           "rss_self_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
           "rss_worker_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024},
          open(out, "w"))
"""


def run_child(args: list[str], timeout: float) -> tuple[int | None, str, float]:
    """(exit code or None on a hang, stderr, seconds) of a Python child in its own process group."""
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    env.pop("DOMAINRAG_TRACEBACK", None)
    started = time.perf_counter()
    process = subprocess.Popen([sys.executable, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               env=env, start_new_session=True)
    try:
        _, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        _, err = process.communicate()
        return None, err.decode(errors="replace"), time.perf_counter() - started
    return process.returncode, err.decode(errors="replace"), time.perf_counter() - started


def part1(data: Path, work: Path, rounds: int, good: int, huge_mb: float, timeout: float) -> dict[str, Any]:
    from domainrag import KnowledgeBase
    from domainrag.index.builder import one_line
    from domainrag.ingest.discover import display_path

    t0 = time.perf_counter()
    mix = build_mix(data, work / "mix", rounds, good, huge_mb)
    corpus: Path = mix["corpus"]
    generated = time.perf_counter() - t0
    out = work / "api.json"
    code, err, seconds = run_child(["-c", CHILD, str(work / "kb-api"), str(corpus), str(out), EMBEDDER], timeout)
    crashes = int(code not in (0, 3) or "Traceback" in err)
    result = json.loads(out.read_text()) if out.exists() else {}
    cli_code, cli_err, cli_seconds = run_child(
        ["-m", "domainrag.cli", "ingest", str(corpus), "--kb", str(work / "kb-cli"), "--embedder", EMBEDDER],
        timeout)
    crashes += int(cli_code not in (0, 3) or "Traceback" in cli_err)

    added = set(result.get("added", []))
    failed_labels = [label for label, _ in result.get("failed", [])]
    ignored_labels = [label for label, _ in result.get("ignored", [])]
    lost: list[str] = []
    unreported: list[str] = []
    by_kind: Counter[str] = Counter()
    with KnowledgeBase.open(work / "kb-api") as kb:
        for rel, probe in mix["good"].items():
            doc_id = f"corpus/medquad/{rel}"
            hits = kb.search(probe, k=1, mode="lexical")
            if doc_id not in added or not hits or hits[0].doc_id != doc_id:
                lost.append(doc_id)
        for round_name, item in mix["hostile"]:
            doc_id = f"corpus/{round_name}/{display_path(item.name)}"
            tail = one_line(doc_id)
            by_kind[item.expect] += 1
            if item.expect == "good":
                hits = kb.search(item.probe, k=1, mode="lexical")
                if doc_id not in added or not hits or hits[0].doc_id.split("#")[0] != doc_id:
                    lost.append(doc_id)
            elif item.expect in ("failed", "ignored", "either"):
                labels = ignored_labels if item.expect == "ignored" else failed_labels
                taken = item.expect == "either" and doc_id in added
                if not taken and not any(label.endswith(tail) for label in labels):
                    unreported.append(doc_id)
    files = sum(1 for _ in corpus.rglob("*"))
    return {
        "files_in_folder": files,
        "hostile_files": sum(1 for _, f in mix["hostile"] if not f.kind.startswith("good-")),
        "hostile_files_to_ingest": sum(1 for _, f in mix["hostile"] if f.expect == "good" and not
                                       f.kind.startswith("good-")),
        "plain_good_files": sum(1 for _, f in mix["hostile"] if f.kind.startswith("good-")),
        "medquad_good_files": len(mix["good"]),
        "expectations": dict(by_kind),
        "generate_s": round(generated, 1),
        "crashes": crashes,
        "hangs": int(code is None) + int(cli_code is None),
        "good_files_lost": len(lost), "lost": lost[:20],
        "bad_files_unreported": len(unreported), "unreported": unreported[:20],
        "api_exit_code": code, "cli_exit_code": cli_code,
        "tracebacks": int("Traceback" in err) + int("Traceback" in cli_err),
        "summary": result.get("summary"),
        "ingest_s_api": round(seconds, 1), "ingest_s_cli": round(cli_seconds, 1),
        "peak_rss_mb_ingest": round(result.get("rss_self_mb", 0), 1),
        "peak_rss_mb_parse_worker": round(result.get("rss_worker_mb", 0), 1),
        "slowest_files": [[round(s, 3), label] for s, label in result.get("slowest", [])],
        "stderr_tail": (err[-500:] if crashes else ""),
    }


# -- part 2 ------------------------------------------------------------------------------------
def catalog(kb: Path) -> dict[str, Any]:
    """Documents and chunks of a knowledge base as comparable rows (ids with content hashes)."""
    db = sqlite3.connect(f"file:{kb / 'catalog.sqlite3'}?mode=ro", uri=True)
    try:
        def digest(*values: Any) -> str:
            return hashlib.sha256(repr(values).encode("utf-8", "backslashreplace")).hexdigest()[:16]

        docs = [(r[0], digest(*r)) for r in db.execute("SELECT id, source, title, text, metadata FROM documents")]
        chunks = [((r[1], r[2], r[3]), digest(*r)) for r in
                  db.execute("SELECT id, doc_id, start, end, text, tokens, heading_path, vector FROM chunks")]
        sources = [(r[0], r[1]) for r in db.execute("SELECT source, content_hash FROM sources")]
    finally:
        db.close()
    return {"documents": docs, "chunks": chunks, "sources": sources}


def compare(got: dict[str, Any], want: dict[str, Any]) -> dict[str, int]:
    out: dict[str, int] = {}
    for table in ("documents", "chunks", "sources"):
        have = Counter(key for key, _ in got[table])
        reference = dict(want[table])
        mine = dict(got[table])
        out[f"{table}_lost"] = sum(1 for key in reference if key not in mine)
        out[f"{table}_duplicated"] = sum(n - 1 for n in have.values() if n > 1)
        out[f"{table}_corrupted"] = sum(1 for key, value in mine.items()
                                        if key in reference and reference[key] != value)
        out[f"{table}_extra"] = sum(1 for key in mine if key not in reference)
    return out


def cli(folder: Path, kb: Path, *extra: str, timeout: float = 900) -> tuple[int | None, str, float]:
    return run_child(["-m", "domainrag.cli", "ingest", str(folder), "--kb", str(kb), "--embedder", EMBEDDER,
                      *extra], timeout)


def killed_run(folder: Path, kb: Path, delay: float, extra: tuple[str, ...]) -> bool:
    """Start an ingest and kill -9 its whole process group after ``delay`` s; True if it was
    still running when killed."""
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    process = subprocess.Popen([sys.executable, "-m", "domainrag.cli", "ingest", str(folder), "--kb", str(kb),
                                "--embedder", EMBEDDER, *extra], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, env=env, start_new_session=True)
    time.sleep(delay)
    running = process.poll() is None
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)  # the CLI and its parse worker
    process.wait()
    return running


def mutate(folder: Path, rng: random.Random, step: int) -> None:
    """Delete, edit and add a few files, as a user's folder changes between ingests."""
    files = sorted(p for p in folder.rglob("good-*") if p.is_file())
    for path in rng.sample(files, min(10, len(files))):
        path.unlink()
    left = [p for p in files if p.exists()]
    for path in rng.sample(left, min(10, len(left))):
        path.write_text(path.read_text(encoding="utf-8") + f"\n\nEdited in step {step}.\n", encoding="utf-8")
    for i in range(10):
        (folder / "medquad" / f"good-new-{step}-{i}.txt").write_text(f"New file {step} {i} zqnew{step}x{i}.\n")


def part2(data: Path, work: Path, kills: int, good: int, seed: int) -> dict[str, Any]:
    from hostile import generate

    rng = random.Random(seed)
    folder = work / "kill" / "corpus"
    shutil.rmtree(work / "kill", ignore_errors=True)
    generate(folder / "hostile", work / "kill" / "outside", seed=99, huge_mb=0.2, heavy=False)
    write_good(data, folder / "medquad", good, seed=seed)
    base = cli(folder, work / "kill" / "probe-kb")
    duration = base[2]
    totals: Counter[str] = Counter()
    trials: list[dict[str, Any]] = []
    step = 0
    killed_running = 0
    kb = work / "kill" / "kb"
    while killed_running < kills:
        prune = len(trials) % 2 == 1
        extra: tuple[str, ...] = ("--prune",) if prune else ()
        if prune:
            step += 1
            mutate(folder, rng, step)
        elif kb.exists() and rng.random() < 0.5:
            shutil.rmtree(kb)  # sometimes the very first ingest is the one killed
        delay = rng.uniform(0.2, duration * (0.6 if prune else 1.0))
        running = killed_run(folder, kb, delay, extra)
        killed_running += running
        code, err, _ = cli(folder, kb, *extra)
        reference = work / "kill" / f"ref-{step}"
        if not reference.exists():
            cli(folder, reference)
        diff = compare(catalog(kb), catalog(reference))
        diff["rerun_crash"] = int(code not in (0, 3) or "Traceback" in err)
        totals.update(diff)
        trials.append({"prune": prune, "delay_s": round(delay, 2), "killed_while_running": running,
                       **{k: v for k, v in diff.items() if v}})
    return {
        "trials": len(trials), "kills": killed_running,
        "ingest_kills": sum(1 for t in trials if not t["prune"] and t["killed_while_running"]),
        "prune_kills": sum(1 for t in trials if t["prune"] and t["killed_while_running"]),
        "clean_ingest_s": round(duration, 1), "files": sum(1 for p in folder.rglob("*")),
        "totals": {k: totals.get(k, 0) for k in sorted(set(totals) | {"documents_lost", "chunks_lost"})},
        "per_trial": trials,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("data", type=Path, help="a BEIR folder with corpus.jsonl (MedQuAD)")
    parser.add_argument("--rounds", type=int, default=25, help="rounds of the hostile corpus")
    parser.add_argument("--good", type=int, default=300, help="good MedQuAD files in the mix")
    parser.add_argument("--huge-mb", type=float, default=50.0, help="size of the single-token and single-line files")
    parser.add_argument("--kills", type=int, default=50, help="kills that hit a running ingest")
    parser.add_argument("--kill-good", type=int, default=100, help="good files in the kill -9 folder")
    parser.add_argument("--timeout", type=float, default=1800.0, help="an ingest running longer is a hang")
    parser.add_argument("--work", type=Path, default=None, help="working folder (default: a temporary one)")
    parser.add_argument("--skip", choices=("hostile", "kill"), default=None)
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "hardening.json")
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="domainrag-hardening-"))
    result: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}",
        "embedder": EMBEDDER, "command": " ".join(["benchmarks/hardening.py", *sys.argv[1:]]),
    }
    stamp = {"date": result["date"], "command": result["command"]}
    if args.skip != "hostile":
        result["hostile"] = {**stamp, **part1(args.data, work, args.rounds, args.good, args.huge_mb, args.timeout)}
        print(json.dumps({k: v for k, v in result["hostile"].items() if k not in ("lost", "unreported")}, indent=1))
    if args.skip != "kill":
        result["kill"] = {**stamp, **part2(args.data, work, args.kills, args.kill_good, seed=11)}
        print(json.dumps({k: v for k, v in result["kill"].items() if k != "per_trial"}, indent=1))
    if args.skip and args.out.exists():  # keep the part not run this time
        previous = json.loads(args.out.read_text())
        result = {**{k: v for k, v in previous.items() if k in ("hostile", "kill")}, **result}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1, ensure_ascii=False) + "\n")
    print(f"wrote {args.out}")
    if args.work is None:
        _make_writable(work)
        shutil.rmtree(work, ignore_errors=True)


def _make_writable(path: Path) -> None:
    for p in path.rglob("*"):
        if not p.is_symlink():
            with contextlib.suppress(OSError):
                p.chmod(0o755)


if __name__ == "__main__":
    main()
