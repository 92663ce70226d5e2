"""Does an incrementally updated knowledge base rank exactly like a fresh ingest of the same files?

For each BEIR set under DATA_DIR (tatqa, medquad, pubmedqa, policyqa, lecoqa, cmrc2018 — those
present) a seeded subsample of the corpus (``--docs``) and of the queries (``--queries``) is
written to a scratch folder, then ingested twice with the default settings (the bundled int8
MiniLM):

- incremental: the first half of the entries, then all of them, then again after ~1% of the
  entries were edited (a sentence appended);
- fresh: the final corpus at once, into a second knowledge base.

Each knowledge base has its own catalog and so its own embedding cache: the fresh one really
re-embeds every chunk (the ``embedded`` counts are reported). Every query is searched in hybrid,
dense and lexical mode; the top 10 (chunk ids and scores) must be identical.

    python benchmarks/determinism.py /work/shared/data
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from domainrag.kb import KnowledgeBase

SETS = ("tatqa", "medquad", "pubmedqa", "policyqa", "lecoqa", "cmrc2018")
MODES = ("hybrid", "dense", "lexical")
RESULTS = Path(__file__).parent / "results" / "determinism.json"


def main() -> None:
    args = _parse_args()
    started = time.perf_counter()
    rows = []
    with tempfile.TemporaryDirectory(prefix="determinism-") as scratch:
        for name in SETS:
            folder = Path(args.data) / name
            if not (folder / "corpus.jsonl").is_file():
                print(f"{name}: not present, skipped", file=sys.stderr)
                continue
            rows.append(_compare(folder, Path(scratch) / name, args))
            print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    report = {
        "question": "incremental vs fresh ingest of the same files: identical top-10 rankings?",
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "python": platform.python_version()},
        "settings": {"docs": args.docs, "queries": args.queries, "seed": args.seed, "modes": MODES, "k": 10},
        "sets": rows,
        "all_identical": all(row["identical_top10"] == row["rankings"] for row in rows),
        "seconds": round(time.perf_counter() - started, 1),
    }
    _print(report)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"\nwrote {out}")


def _parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("data", help="folder holding the BEIR sets (tatqa, medquad, ...)")
    parser.add_argument("--docs", type=int, default=2000, help="corpus entries sampled per set")
    parser.add_argument("--queries", type=int, default=200, help="queries sampled per set")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=str(RESULTS))
    return parser.parse_args()


def _compare(source: Path, scratch: Path, args: argparse.Namespace) -> dict[str, Any]:
    rng = random.Random(args.seed)
    entries = _sample(_lines(source / "corpus.jsonl"), args.docs, rng)
    queries = [json.loads(line)["text"] for line in _sample(_lines(source / "queries.jsonl"), args.queries, rng)]
    corpus = scratch / "beir"
    corpus.mkdir(parents=True)
    edited = _edited(entries, rng)

    _write(corpus, entries[: len(entries) // 2])
    started = time.perf_counter()
    with KnowledgeBase.open(scratch / "incremental", create=True) as kb:
        steps = [kb.ingest([corpus], format="beir")]
        _write(corpus, entries)
        steps.append(kb.ingest([corpus], format="beir"))
        _write(corpus, edited)
        steps.append(kb.ingest([corpus], format="beir"))
        incremental = _rankings(kb, queries)
        incremental_hash, chunks = kb.store.corpus_hash(), kb.store.stats()["chunks"]
    incremental_seconds = time.perf_counter() - started
    started = time.perf_counter()
    with KnowledgeBase.open(scratch / "fresh", create=True) as kb:
        fresh_report = kb.ingest([corpus], format="beir")
        fresh = _rankings(kb, queries)
        fresh_hash = kb.store.corpus_hash()
    fresh_seconds = time.perf_counter() - started
    if any(step.partial for step in [*steps, fresh_report]):
        raise SystemExit(f"{source.name}: an ingest failed: {[s.failed[:3] for s in [*steps, fresh_report]]}")
    identical = sum(a == b for a, b in zip(incremental, fresh, strict=True))
    return {
        "set": source.name,
        "docs": len(entries),
        "edited": sum(a != b for a, b in zip(entries, edited, strict=True)),
        "chunks": chunks,
        "queries": len(queries),
        "rankings": len(incremental),
        "identical_top10": identical,
        "differing_positions": sum(x != y for a, b in zip(incremental, fresh, strict=True)
                                   for x, y in zip(a, b, strict=False)),
        "equal_corpus_hash": incremental_hash == fresh_hash,
        "embedded_incremental": [step.embedded for step in steps],
        "embedded_fresh": fresh_report.embedded,
        "seconds_incremental": round(incremental_seconds, 1),
        "seconds_fresh": round(fresh_seconds, 1),
    }


def _lines(path: Path) -> list[str]:
    with path.open(encoding="utf-8") as handle:
        return [line for line in handle if line.strip()]


def _sample(lines: list[str], n: int, rng: random.Random) -> list[str]:
    return rng.sample(lines, n) if n < len(lines) else list(lines)


def _edited(entries: list[str], rng: random.Random) -> list[str]:
    """About 1% of the entries (at least 3) with a sentence appended to their text."""
    chosen = set(rng.sample(range(len(entries)), max(3, len(entries) // 100)))
    out = []
    for i, line in enumerate(entries):
        if i in chosen:
            record = json.loads(line)
            record["text"] = f"{record.get('text', '')} This entry was revised."
            line = json.dumps(record, ensure_ascii=False) + "\n"
        out.append(line)
    return out


def _write(corpus: Path, lines: list[str]) -> None:
    (corpus / "corpus.jsonl").write_text("".join(line if line.endswith("\n") else line + "\n" for line in lines),
                                         encoding="utf-8")


def _rankings(kb: KnowledgeBase, queries: list[str]) -> list[list[tuple[str, float]]]:
    return [[(hit.chunk_id, hit.score) for hit in kb.search(query, k=10, mode=mode)]
            for query in queries for mode in MODES]


def _print(report: dict[str, Any]) -> None:
    print(f"\n{'set':10} {'docs':>5} {'chunks':>6} {'edited':>6} {'rankings':>8} {'identical':>9} "
          f"{'embedded incr.':>18} {'fresh':>6} {'s incr.':>7} {'s fresh':>7}")
    for row in report["sets"]:
        print(f"{row['set']:10} {row['docs']:>5} {row['chunks']:>6} {row['edited']:>6} {row['rankings']:>8} "
              f"{row['identical_top10']:>9} {'+'.join(map(str, row['embedded_incremental'])):>18} "
              f"{row['embedded_fresh']:>6} {row['seconds_incremental']:>7} {row['seconds_fresh']:>7}")
    print(f"all identical: {report['all_identical']} ({report['seconds']} s)")


if __name__ == "__main__":
    main()
