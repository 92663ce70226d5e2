"""Evaluation speed: how many cases per second does ``domainrag eval`` score, and where does the
time go?

Question answered: once the knowledge base is indexed, how fast is a **retrieval-only**
``run_suite`` over a BEIR folder's split (the folder itself is the suite), in queries per second,
in lexical and in hybrid mode (target: >= 50 q/s)? Which part of a run costs what (searching,
scoring, storing, summarising)? And how long does re-running an unchanged evaluation *with
answers* (offline ``extractive`` answerer) take?

Protocol per dataset folder D:

* **knowledge base**: ``--kb-cache/<D>-minilm`` (built by ``benchmarks/retrieval.py`` with the
  bundled MiniLM embedder) is reused as it is; when absent it is built here (BEIR ingest, same
  settings). Lexical mode on it never loads the embedder; hybrid loads it once, before the clock
  starts (the load time is reported apart), and embeds each query as ``kb.search`` does (the
  retriever's per-process cache of query vectors is emptied before each run, so every
  repetition embeds its queries as a fresh ``domainrag eval`` process would).
* **suite**: ``load_suite(D, --split)``, the first ``--limit`` cases (``EvalOptions.limit``,
  suite order; all cases without ``--limit``).
* **timed runs**: ``run_suite(kb, suite, EvalOptions(metrics={"retrieval"}, mode=...), store)``, each
  repetition with a fresh ``RunStore`` in a new temporary folder, so nothing is resumed and the
  cached knowledge base gets no ``runs.sqlite3``; ``--repeats`` repetitions (default 3), the
  median reported. q/s = cases / wall time of the whole ``run_suite`` call (manifest, search,
  scoring, per-case storing, summary with bootstrap intervals, loading the stored run back).
* **phases**: one more run with a timer around each part (wrapped from outside, ``src/`` is
  untouched): ``kb.rank_documents`` (what a retrieval-only run searches with; ``kb.search``
  only with answers) and their parts, timed on the ``SQLiteView`` class every search runs on
  (taking the view, lexical / dense index search, query embedding, mapping rows to document
  ids, ``retriever._one_per_doc``, fetching hits' rows from SQLite), gold documents, per-case
  records (metric scoring), ``RunStore.save_case`` (one SQLite commit per case), ``summarise``
  and the store's reads (``RunStore.get``).
* **profile**: one more run under ``cProfile``, the top functions by own time and by
  cumulative time (cProfile slows Python code down, so read the shares, not the seconds).
* **what-if**: per query, the same document ranking computed without building ``Hit`` objects
  (the candidates mapped to document ids, as ``benchmarks/retrieval.py`` does), and query
  embeddings in batches (``embedder.embed``) against one at a time (``embed_query``); these
  show what the runner would gain from each change.
* **answers**: ``EvalOptions(metrics={"retrieval", "answer"}, model="extractive")`` on the first
  ``--answer-cases`` cases (default mode of the knowledge base), twice on the same store and
  model cache (``model_cache.sqlite3`` in the same temporary folder, as ``domainrag eval``
  sets it): the second run is what re-running an unchanged evaluation costs.

Usage::

    python benchmarks/eval_speed.py ../shared/data/medquad --limit 2000
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

# Run as a script, ``benchmarks/`` is on sys.path: share retrieval.py's helpers.
from retrieval import kb_stats, machine, markdown_table, open_kb, write_json

from domainrag import KnowledgeBase
from domainrag.evaluate import runner
from domainrag.evaluate.metrics import dedupe
from domainrag.evaluate.run_records import Run
from domainrag.evaluate.runner import DEPTH, EvalOptions, run_suite
from domainrag.evaluate.runs import RunStore
from domainrag.evaluate.suite import Suite, load_suite
from domainrag.index.sqlite_store import SQLiteView
from domainrag.models.cache import ModelCache
from domainrag.retrieve import retriever as retriever_module
from domainrag.retrieve.fusion import fuse

EMBEDDER = "minilm"
TARGET_QPS = 50.0
MODES = ("lexical", "hybrid")


# --- knowledge base ---------------------------------------------------------------------------


def knowledge_base(dataset: Path, cache: Path) -> tuple[KnowledgeBase, dict[str, Any]]:
    """The cached MiniLM knowledge base of ``dataset``, reused as is; built when absent."""
    path = cache / f"{dataset.name}-{EMBEDDER}"
    if (path / "catalog.sqlite3").exists():
        kb = KnowledgeBase.open(path)
        info: dict[str, Any] = {"kb": str(path), "reused": True}
    else:
        kb, info = open_kb(dataset, cache, EMBEDDER)
    manifest = kb.store.manifest() or {}
    info.update(embedder=manifest.get("embedder", {}).get("id"), stats=kb_stats(kb),
                has_vectors=kb.store.view().has_vectors, default_mode=kb.config.retrieval.mode)
    return kb, info


def warm_up(kb: KnowledgeBase, suite: Suite, mode: str) -> float:
    """Seconds to load what ``mode`` needs (the embedder for hybrid) and run a first search."""
    t0 = time.perf_counter()
    kb.search(suite.cases[0].question, DEPTH, mode, one_per_doc=True)
    return time.perf_counter() - t0


# --- timed runs -------------------------------------------------------------------------------


def forget_query_vectors(kb: KnowledgeBase) -> None:
    """Empty the retriever's per-process cache of query vectors, so that each run embeds its
    queries as a fresh ``domainrag eval`` process would (not only the first repetition)."""
    cached = getattr(kb.retriever, "_query_vector", None)
    if cached is not None and hasattr(cached, "cache_clear"):
        cached.cache_clear()


def one_run(kb: KnowledgeBase, suite: Suite, options: EvalOptions,
            store_dir: Path | None = None) -> tuple[float, Run]:
    """Seconds of one ``run_suite`` call with a fresh store (or the store in ``store_dir``)."""
    forget_query_vectors(kb)
    with tempfile.TemporaryDirectory(prefix="eval_speed-") as tmp:
        store = RunStore(store_dir or tmp)
        t0 = time.perf_counter()
        run = run_suite(kb, suite, options, store)
        seconds = time.perf_counter() - t0
        store.close()
    return seconds, run


def timed_runs(kb: KnowledgeBase, suite: Suite, mode: str, limit: int | None, repeats: int
               ) -> dict[str, Any]:
    n = min(limit or len(suite.cases), len(suite.cases))
    seconds: list[float] = []
    summary: Mapping[str, Any] = {}
    for rep in range(repeats):
        options = EvalOptions(metrics=frozenset({"retrieval"}), mode=mode, limit=limit,
                              name=f"eval-speed-{mode}-{rep}")
        s, run = one_run(kb, suite, options)
        assert len(run.cases) == n, (len(run.cases), n)
        seconds.append(s)
        summary = run.metrics.get("retrieval", {})
        print(f"   {mode} rep {rep + 1}: {s:.2f} s, {n / s:.1f} q/s", file=sys.stderr, flush=True)
    median = statistics.median(seconds)
    return {"cases": n, "seconds": [round(s, 3) for s in seconds], "median_s": round(median, 3),
            "qps": round(n / median, 1), "qps_each": [round(n / s, 1) for s in seconds],
            "ndcg@10": summary.get("ndcg@10"), "recall@100": summary.get("recall@100")}


# --- phases -----------------------------------------------------------------------------------


class Timers:
    """Inclusive seconds and call counts per label."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)

    def wrap(self, label: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.seconds[label] += time.perf_counter() - t0
                self.calls[label] += 1
        return timed


@contextmanager
def patched(obj: Any, name: str, value: Any) -> Iterator[None]:
    """Set ``obj.name`` for the duration (an instance attribute shadows the method)."""
    had = name in vars(obj)
    old = vars(obj).get(name)
    setattr(obj, name, value)
    try:
        yield
    finally:
        if had:
            setattr(obj, name, old)
        else:
            delattr(obj, name)


# (label, owner, attribute): top-level parts of run_suite first, then parts of the searches.
# A retrieval-only run ranks documents with ``kb.rank_documents`` (no ``Hit`` rows); a run with
# answers also calls ``kb.search`` for the chunks to answer from. Both search an immutable
# ``SQLiteView`` of the store, so the index parts are timed on that class (every view).
SEARCHES = ("kb.rank_documents", "kb.search")
TOP = ("manifest", "store.start", "store.records", *SEARCHES, "gold documents",
       "case_record (scoring)", "store.save_case", "summarise", "store.finish", "store.get")
SEARCH_PARTS = ("store.view", "query embedding", "lexical index", "dense index", "view.doc_ids",
                "one_per_doc", "view.hits")


def phase_run(kb: KnowledgeBase, suite: Suite, mode: str, limit: int | None) -> dict[str, Any]:
    timers = Timers()
    with tempfile.TemporaryDirectory(prefix="eval_speed-") as tmp:
        store = RunStore(tmp)
        targets: list[tuple[Any, str, str]] = [
            (runner, "_manifest", "manifest"), (store, "start", "store.start"),
            (store, "records", "store.records"), (kb, "search", "kb.search"),
            (kb.store, "document", "gold documents"), (runner, "case_record", "case_record (scoring)"),
            (runner, "_retrieval_scores", "  of which retrieval metrics"),
            (store, "save_case", "store.save_case"), (runner, "summarise", "summarise"),
            (store, "finish", "store.finish"), (store, "get", "store.get"),
            (kb, "rank_documents", "kb.rank_documents"), (kb.store, "view", "store.view"),
            (SQLiteView, "lexical", "lexical index"), (SQLiteView, "dense", "dense index"),
            (SQLiteView, "doc_ids", "view.doc_ids"), (retriever_module, "_one_per_doc", "one_per_doc"),
            (SQLiteView, "hits", "view.hits"),
        ]
        if mode != "lexical":
            targets.append((kb.embedder, "embed_query", "query embedding"))
        forget_query_vectors(kb)
        with _all_patched(targets, timers):
            t0 = time.perf_counter()
            run_suite(kb, suite, EvalOptions(metrics=frozenset({"retrieval"}), mode=mode, limit=limit,
                                             name=f"eval-speed-phases-{mode}"), store)
            total = time.perf_counter() - t0
        store.close()
    n = min(limit or len(suite.cases), len(suite.cases))
    top = {k: timers.seconds.get(k, 0.0) for k in TOP}
    search = sum(top[k] for k in SEARCHES)
    parts = {k: timers.seconds[k] for k in SEARCH_PARTS if k in timers.seconds}
    rows = [{"part": k, "s": round(v, 3), "share": round(v / total, 3),
             "ms_per_case": round(1000 * v / n, 3), "calls": timers.calls.get(k, 0)} for k, v in top.items()]
    rows.append({"part": "other (run_suite glue)", "s": round(total - sum(top.values()), 3),
                 "share": round((total - sum(top.values())) / total, 3),
                 "ms_per_case": round(1000 * (total - sum(top.values())) / n, 3), "calls": 0})
    sub = [{"part": f"searches > {k}", "s": round(v, 3), "share": round(v / total, 3),
            "ms_per_case": round(1000 * v / n, 3), "calls": timers.calls[k]} for k, v in parts.items()]
    rest = search - sum(parts.values())
    sub.append({"part": "searches > rest (tokenize, fusion, language detection)", "s": round(rest, 3),
                "share": round(rest / total, 3), "ms_per_case": round(1000 * rest / n, 3), "calls": 0})
    scoring = timers.seconds.get("  of which retrieval metrics", 0.0)
    sub.append({"part": "case_record > retrieval metrics", "s": round(scoring, 3),
                "share": round(scoring / total, 3), "ms_per_case": round(1000 * scoring / n, 3),
                "calls": timers.calls.get("  of which retrieval metrics", 0)})
    return {"cases": n, "total_s": round(total, 3), "qps": round(n / total, 1), "parts": rows + sub}


@contextmanager
def _all_patched(targets: list[tuple[Any, str, str]], timers: Timers) -> Iterator[None]:
    with ExitStack() as stack:
        for obj, name, label in targets:
            stack.enter_context(patched(obj, name, timers.wrap(label, getattr(obj, name))))
        yield


# --- profile ----------------------------------------------------------------------------------


def profile_run(kb: KnowledgeBase, suite: Suite, mode: str, limit: int | None, top: int
                ) -> dict[str, Any]:
    profiler = cProfile.Profile()
    options = EvalOptions(metrics=frozenset({"retrieval"}), mode=mode, limit=limit,
                          name=f"eval-speed-prof-{mode}")
    forget_query_vectors(kb)
    with tempfile.TemporaryDirectory(prefix="eval_speed-") as tmp:
        store = RunStore(tmp)
        profiler.enable()
        run_suite(kb, suite, options, store)
        profiler.disable()
        store.close()
    stats = pstats.Stats(profiler)
    total = stats.total_tt  # type: ignore[attr-defined]
    entries = []
    for (file, line, func), (_cc, calls, tt, ct, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        where = f"{_short(file)}:{line}({func})" if line else func
        entries.append({"function": where, "calls": calls, "tottime_s": round(tt, 3),
                        "cumtime_s": round(ct, 3)})
    by_own = sorted(entries, key=lambda e: -e["tottime_s"])[:top]
    by_cum = sorted(entries, key=lambda e: -e["cumtime_s"])[:top]
    text = io.StringIO()
    pstats.Stats(profiler, stream=text).sort_stats("tottime").print_stats(top)
    print(text.getvalue(), file=sys.stderr)
    return {"profiled_total_s": round(total, 3), "top_tottime": by_own, "top_cumtime": by_cum}


def _short(file: str) -> str:
    for marker in ("site-packages/", "src/", "lib/python"):
        if marker in file:
            return file.split(marker, 1)[1]
    return file


# --- what-if ----------------------------------------------------------------------------------


def what_if(kb: KnowledgeBase, suite: Suite, mode: str, n: int) -> dict[str, Any]:
    """Per query: ``kb.search(..., one_per_doc=True)`` vs the same document ranking straight
    from the candidates (no ``Hit`` rows fetched); for hybrid also query embeddings one at a
    time vs in batches."""
    questions = [c.question for c in suite.cases[:n]]
    depth = max(kb.config.retrieval.candidates, DEPTH * 4)  # what kb.search asks for
    r = kb.config.retrieval

    def doc_ranking(question: str) -> list[str]:
        if mode == "lexical":
            ranked = kb.store.view().lexical(kb.analyzer.tokenize(question), depth)
        else:
            cand = kb.retriever.candidates(question, depth)
            ranked = fuse(cand.lexical, cand.dense, r.fusion, r.dense_weight, r.rrf_k)
        return dedupe(kb.store.view().doc_ids(ranked.rows))[:DEPTH]

    t0 = time.perf_counter()
    via_search = [[h.doc_id for h in kb.search(q, DEPTH, mode, one_per_doc=True)] for q in questions]
    search_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    direct = [doc_ranking(q) for q in questions]
    direct_s = time.perf_counter() - t0
    out: dict[str, Any] = {
        "queries": len(questions),
        "kb_search_ms": round(1000 * search_s / len(questions), 3),
        "doc_ids_only_ms": round(1000 * direct_s / len(questions), 3),
        "same_rankings": sum(a == b for a, b in zip(via_search, direct, strict=False)) / len(questions),
    }
    if mode != "lexical":
        embedder = kb.embedder
        t0 = time.perf_counter()
        for q in questions:
            embedder.embed_query(q)
        one = time.perf_counter() - t0
        t0 = time.perf_counter()
        embedder.embed(questions)
        batched = time.perf_counter() - t0
        out.update(embed_query_ms=round(1000 * one / len(questions), 3),
                   embed_batched_ms=round(1000 * batched / len(questions), 3),
                   embed_batch_size=embedder.config.batch_size)
    return out


# --- answers ----------------------------------------------------------------------------------


def answer_reruns(kb: KnowledgeBase, suite: Suite, cases: int) -> dict[str, Any]:
    """Two identical answer evaluations on one store and model cache: the second is a re-run."""
    with tempfile.TemporaryDirectory(prefix="eval_speed-answers-") as tmp:
        kb.answerer.cache = ModelCache(Path(tmp) / "model_cache.sqlite3")
        options = EvalOptions(metrics=frozenset({"retrieval", "answer"}), model="extractive", limit=cases,
                              name="eval-speed-answers")
        first, run1 = one_run(kb, suite, options, Path(tmp))
        second, run2 = one_run(kb, suite, options, Path(tmp))
        kb.answerer.cache = None
    n = len(run2.cases)
    same = [a.answer for a in run1.cases] == [b.answer for b in run2.cases]
    return {"cases": n, "mode": kb.config.retrieval.mode, "model": "extractive",
            "first_s": round(first, 2), "second_s": round(second, 2),
            "second_qps": round(n / second, 1), "same_answers": same,
            "token_f1": run2.metrics.get("answer", {}).get("token_f1")}


# --- per dataset ------------------------------------------------------------------------------


def evaluate_dataset(dataset: Path, args: argparse.Namespace) -> dict[str, Any]:
    t0 = time.perf_counter()
    suite = load_suite(dataset, args.split)
    load_s = time.perf_counter() - t0
    kb, info = knowledge_base(dataset, args.kb_cache)
    result: dict[str, Any] = {"dataset": dataset.name, "split": args.split, "suite_cases": len(suite.cases),
                              "load_suite_s": round(load_s, 3), "kb": info, "modes": {}}
    with kb:
        for mode in args.modes:
            if mode != "lexical" and not kb.store.view().has_vectors:
                result["modes"][mode] = {"skipped": "the knowledge base holds no vectors"}
                continue
            print(f"   {mode}: warm-up", file=sys.stderr, flush=True)
            entry: dict[str, Any] = {"warm_up_s": round(warm_up(kb, suite, mode), 3)}
            entry.update(timed_runs(kb, suite, mode, args.limit, args.repeats))
            entry["phases"] = phase_run(kb, suite, mode, args.limit)
            if args.profile:
                entry["profile"] = profile_run(kb, suite, mode, args.limit, args.top)
            if args.what_if_queries:
                entry["what_if"] = what_if(kb, suite, mode, args.what_if_queries)
            result["modes"][mode] = entry
        if args.answer_cases:
            print("   answers: two identical runs", file=sys.stderr, flush=True)
            result["answers"] = answer_reruns(kb, suite, args.answer_cases)
    return result


# --- output -----------------------------------------------------------------------------------


def speed_table(results: list[dict[str, Any]]) -> str:
    header = ["dataset", "KB (embedder)", "mode", "cases", "runs s", "median q/s", "target 50 q/s",
              "warm-up s", "nDCG@10"]
    rows = []
    for r in results:
        for mode, e in r["modes"].items():
            if "skipped" in e:
                rows.append([r["dataset"], r["kb"]["embedder"], mode, "—", e["skipped"], "—", "—", "—", "—"])
                continue
            rows.append([r["dataset"], r["kb"]["embedder"], mode, e["cases"],
                         " / ".join(f"{s:.1f}" for s in e["seconds"]), f"{e['qps']:.1f}",
                         "met" if e["qps"] >= TARGET_QPS else "**not met**", f"{e['warm_up_s']:.2f}",
                         e["ndcg@10"]])
    return markdown_table(header, rows)


def phase_table(results: list[dict[str, Any]]) -> str:
    blocks = []
    for r in results:
        for mode, e in r["modes"].items():
            if "phases" not in e:
                continue
            p = e["phases"]
            rows = [[x["part"], f"{x['ms_per_case']:.3f}", f"{100 * x['share']:.1f}%", x["calls"]]
                    for x in p["parts"] if x["s"] > 0 or x["part"].startswith("other")]
            blocks.append(f"{r['dataset']} {mode}: {p['cases']} cases, {p['total_s']:.2f} s "
                          f"({p['qps']:.1f} q/s, timers on)\n\n"
                          + markdown_table(["part", "ms / case", "share", "calls"], rows))
    return "\n\n".join(blocks)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("data_dirs", nargs="+", type=Path, metavar="DATA_DIR", help="BEIR folders")
    p.add_argument("--split", default="test", help="suite split (default: test)")
    p.add_argument("--kb-cache", type=Path, default=Path("benchmarks/.cache"))
    p.add_argument("--limit", type=int, default=None, help="first N cases of the split (default: all)")
    p.add_argument("--modes", nargs="+", default=list(MODES), choices=("lexical", "hybrid", "dense"))
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--no-profile", dest="profile", action="store_false", help="skip the cProfile run")
    p.add_argument("--top", type=int, default=15, help="profile entries kept")
    p.add_argument("--what-if-queries", type=int, default=300)
    p.add_argument("--answer-cases", type=int, default=200, help="0 skips the answer re-run")
    p.add_argument("--json", type=Path, default=Path("benchmarks/results/eval_speed.json"))
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    header = {"date": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "machine": machine(),
              "command": " ".join(["python", *sys.argv]), "target_qps": TARGET_QPS,
              "limit": args.limit, "repeats": args.repeats,
              "env": {k: os.environ[k] for k in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS") if k in os.environ},
              "load_average_start": [round(x, 2) for x in os.getloadavg()]}
    results = []
    for d in args.data_dirs:
        print(f"== {d.name}", file=sys.stderr, flush=True)
        results.append(evaluate_dataset(d, args))
    print(speed_table(results))
    print()
    print(phase_table(results))
    for r in results:
        for mode, e in r["modes"].items():
            if "what_if" in e:
                print(f"\n{r['dataset']} {mode} what-if: {e['what_if']}")
        if "answers" in r:
            print(f"\n{r['dataset']} answers: {r['answers']}")
    header["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
    write_json(args.json, {**header, "datasets": results})


if __name__ == "__main__":
    main()
