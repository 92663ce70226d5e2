"""Overhead of the answer pipeline, excluding retrieval and the model call.

Question answered: what does domainrag add around the model — packing the context, rendering
the prompt, checking every citation, building the Answer — and is it under the issue's target
(p50 <= 30 ms)?

For each dataset (a BEIR folder; the knowledge base is the one ``answer_abstention.py`` caches
under ``benchmarks/.cache/answer_abstention/<name>``, built if absent: lexical retrieval, hash
embedder) the hits of ``--n`` test questions are retrieved first, outside the timing. Then
``Answerer.answer`` runs on those hits with a *replay* model registered as a plug-in: it returns
at once an LLM-like answer built from the prompt's sources (three sentences, each citing its
source, one clause dropped, plus one fabricated marker), so the time measured is the pipeline's
own. ``model_ms`` (the replay's time) is subtracted. Each question runs ``--repeats`` times;
medians and p95 over all runs, per stage. The offline ``extractive`` answerer's time (its
"model" call) is reported beside it.

Usage::

    python benchmarks/answer_overhead.py ../shared/data/medquad ../shared/data/tatqa ../shared/data/lecoqa
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from retrieval import machine, markdown_table, split_queries, write_json  # noqa: E402

from domainrag import KnowledgeBase, registry  # noqa: E402
from domainrag.models.generation import BaseGenerator, Generation, GenerationRequest  # noqa: E402
from domainrag.text import sentence_spans  # noqa: E402
from domainrag.types import Usage  # noqa: E402


class ReplayModel(BaseGenerator):
    """Answers instantly from the request's sources, like a model that cites them."""

    def __init__(self, model_name: str = "replay", settings: Any = None) -> None:
        super().__init__(model_name, settings)
        self.id = "replay:llm"

    def complete(self, request: GenerationRequest) -> Generation:
        parts = []
        for source in request.sources[:3]:
            spans = sentence_spans(source.text)
            if not spans:
                continue
            sentence = source.text[spans[0][0]:spans[0][1]].rstrip(".。")
            if "," in sentence:
                sentence = sentence.rsplit(",", 1)[0]
            parts.append(f"{sentence} [{source.number}].")
        if parts:
            parts[-1] = parts[-1][:-1] + f" [{len(request.sources) + 5}]."
        return Generation(" ".join(parts), self.id, "replay-1", Usage(1000, 80), "stop")


registry.register("domainrag.generators", "replay", ReplayModel)
STAGES = ("pack_ms", "prompt_ms", "check_ms")


def kb_path(dataset: Path, cache: Path) -> Path:
    path = cache / "answer_abstention" / dataset.name
    if not (path / "catalog.sqlite3").exists():
        with KnowledgeBase.open(path, create=True, overrides={"embedder.model": "hash:256",
                                                             "retrieval.mode": "lexical"}) as kb:
            kb.ingest([dataset], format="beir")
    return path


def measure(dataset: Path, args: argparse.Namespace) -> dict[str, Any]:
    queries, _ = split_queries(dataset, "test", args.n, 0)
    kb = KnowledgeBase.open(kb_path(dataset, args.cache), overrides={"answer.min_evidence": 0.0})
    hits = {q: kb.search(text, kb.config.answer.k) for q, text in queries.items()}
    answerer = kb.answerer
    rows: dict[str, list[float]] = {"overhead_ms": [], "extractive_ms": [], **{s: [] for s in STAGES}}
    flagged = removed = 0
    for _ in range(args.repeats):
        for q, text in queries.items():
            started = time.perf_counter()
            answer = answerer.answer(text, hits[q], model="replay:llm")
            total = (time.perf_counter() - started) * 1000
            t = answer.trace["timings_ms"]
            rows["overhead_ms"].append(total - t.get("generate_ms", 0.0))
            for stage in STAGES:
                rows[stage].append(t.get(stage, 0.0))
            removed += len(answer.trace.get("removed_markers", []))
            flagged += sum(not c.supported for c in answer.citations)
            started = time.perf_counter()
            answerer.answer(text, hits[q], model="extractive")
            rows["extractive_ms"].append((time.perf_counter() - started) * 1000)
    kb.close()
    runs = len(rows["overhead_ms"])
    return {"dataset": dataset.name, "questions": len(queries), "runs": runs,
            "fabricated_removed_per_answer": round(removed / runs, 2),
            "unsupported_citations_per_answer": round(flagged / runs, 2),
            **{name: stats(values) for name, values in rows.items()}}


def stats(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {"p50": round(statistics.median(ordered), 2),
            "p95": round(ordered[int(0.95 * (len(ordered) - 1))], 2)}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("data_dirs", nargs="+", type=Path)
    p.add_argument("--n", type=int, default=100, help="test questions per dataset")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--cache", type=Path, default=Path("benchmarks/.cache"))
    p.add_argument("--json", type=Path, default=Path("benchmarks/results/answer_overhead.json"))
    args = p.parse_args(argv)
    results = [measure(d, args) for d in args.data_dirs]
    header = ["dataset", "runs", "overhead p50 / p95 ms", "pack", "prompt", "check",
              "extractive answer p50 / p95 ms"]
    rows = [[r["dataset"], r["runs"], f"{r['overhead_ms']['p50']} / {r['overhead_ms']['p95']}",
             r["pack_ms"]["p50"], r["prompt_ms"]["p50"], r["check_ms"]["p50"],
             f"{r['extractive_ms']['p50']} / {r['extractive_ms']['p95']}"] for r in results]
    table = markdown_table(header, rows)
    print(table)
    write_json(args.json, {"command": " ".join(sys.argv), "machine": machine(), "target_p50_ms": 30,
                           "results": results, "table": table})


if __name__ == "__main__":
    main()
