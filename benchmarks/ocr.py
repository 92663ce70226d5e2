"""OCR: engines side by side on English and Chinese scanned pages, and what OCR costs retrieval.

The pages are *rendered*, not real scans: documents of two shared sets (English: medquad,
Chinese: cmrc2018) drawn at 200 dpi with DejaVu Sans / Noto Sans CJK and degraded by
``domainrag.testing.scans.degrade`` (rotation up to 1 degree, blur, noise, speckles, JPEG q55).

``engines``: every engine reads the same pages; character error rate (CER, edit distance per
reference character after NFKC and whitespace normalisation) and seconds per page (median, after
one warm-up page; the machine's 2 cores). Engines: ``rapidocr`` (RapidOCR 3.x, PP-OCR models
inside its wheel, as domainrag runs it: the default, line direction classifier off),
``rapidocr-cls`` (the same with RapidOCR's own defaults: classifier on),
``rapidocr-onnxruntime`` (the older 1.4 wheel, PP-OCRv4, its defaults),
``tesseract`` (Debian 5.3 with eng+chi_sim, what ``ingest.ocr_languages`` defaults to) and
``tesseract-lang`` (the page's own language only, which a user would have to know).

``retrieval``: the first ``--docs`` documents of a BEIR set with a query, written once as text
files and once as scanned image-only PDFs; both folders ingested by ``domainrag ingest`` (the
PDFs through the PDF loader's OCR); nDCG@10 of the set's queries for those documents, lexical
and hybrid, text against scans.

Usage::

    python benchmarks/ocr.py engines /work/shared/data/medquad /work/shared/data/cmrc2018 [--pages 8]
    python benchmarks/ocr.py speed /work/shared/data/medquad /work/shared/data/cmrc2018 [--pages 3 --rounds 2]
    python benchmarks/ocr.py retrieval /work/shared/data/medquad [--docs 200]

``speed``: engines alternated page by page, so that each sees the same load (this machine is
shared): median seconds per page and the ratio to the first engine.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from retrieval import machine, markdown_table, write_json

from domainrag.ingest.ocr import RapidOcrEngine, Recognised, TesseractEngine, fit
from domainrag.testing.scans import character_error_rate, degrade, image_pdf, render_page, render_pages

RESULTS = Path(__file__).parent / "results" / "ocr.json"


class OnnxruntimeRapid:
    """rapidocr-onnxruntime 1.4 (PP-OCRv4 models inside its wheel)."""

    name = "rapidocr-onnxruntime"

    def __init__(self) -> None:
        from rapidocr_onnxruntime import RapidOCR

        self._ocr = RapidOCR(intra_op_num_threads=2)

    def recognise(self, image: Any) -> Recognised:
        import numpy as np

        result, _ = self._ocr(np.asarray(image.convert("RGB"))[:, :, ::-1])
        if not result:
            return Recognised((), 0.0)
        return Recognised(tuple(r[1] for r in result), statistics.fmean(float(r[2]) for r in result))


def corpus_texts(dataset: Path, n: int, min_chars: int) -> list[tuple[str, str]]:
    out = []
    with (dataset / "corpus.jsonl").open(encoding="utf-8") as handle:
        for line in handle:
            record = json.loads(line)
            if len(record["text"]) >= min_chars:
                out.append((record["_id"], record["text"]))
            if len(out) >= n:
                break
    return out


def make_engines(names: list[str], language: str) -> dict[str, Any]:
    engines: dict[str, Any] = {}
    for name in names:
        if name == "rapidocr":
            engines[name] = RapidOcrEngine()
        elif name == "rapidocr-cls":
            engines[name] = RapidOcrEngine()
            engines[name]._ocr = __import__("rapidocr").RapidOCR(params={   # rapidocr's own defaults
                "Global.log_level": "error", "EngineConfig.onnxruntime.intra_op_num_threads": 2})
        elif name == "rapidocr-onnxruntime":
            engines[name] = OnnxruntimeRapid()
        elif name == "tesseract":
            engines[name] = TesseractEngine("eng+chi_sim")
        elif name == "tesseract-lang":
            engines[name] = TesseractEngine("eng" if language == "en" else "chi_sim")
    return engines


def run_engines(args: argparse.Namespace) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for language, dataset in (("en", args.english), ("zh", args.chinese)):
        pages = []
        for i, (_, text) in enumerate(corpus_texts(dataset, args.pages + 1, 400 if language == "zh" else 1200)):
            image, drawn = render_page(text, language)
            pages.append((fit(degrade(image, seed=i)), drawn))
        engines = make_engines(args.engines, language)
        for name, engine in engines.items():
            engine.recognise(pages[0][0])   # warm-up: models loaded, caches filled
            cers, seconds = [], []
            for image, drawn in pages[1:]:
                t0 = time.perf_counter()
                got = engine.recognise(image)
                seconds.append(time.perf_counter() - t0)
                cers.append(character_error_rate(drawn, got.text))
            results[f"{name}/{language}"] = {
                "engine": name, "language": language, "pages": len(cers),
                "cer_mean": round(statistics.fmean(cers), 4), "cer_median": round(statistics.median(cers), 4),
                "cer_max": round(max(cers), 4), "s_per_page_median": round(statistics.median(seconds), 2),
                "pages_per_s": round(1 / statistics.median(seconds), 3),
                "chars_per_page": round(statistics.fmean(len(d) for _, d in pages[1:])),
            }
            print(json.dumps(results[f"{name}/{language}"]), flush=True)
    return results


def run_speed(args: argparse.Namespace) -> dict[str, Any]:
    """Engines alternated page by page (so each sees the same machine load): median s/page."""
    results: dict[str, Any] = {}
    for language, dataset in (("en", args.english), ("zh", args.chinese)):
        pages = [fit(degrade(render_page(text, language)[0], seed=i))
                 for i, (_, text) in enumerate(corpus_texts(dataset, args.pages + 1, 400 if language == "zh" else 1200))]
        engines = make_engines(args.engines, language)
        for engine in engines.values():
            engine.recognise(pages[0])
        seconds: dict[str, list[float]] = {name: [] for name in engines}
        for _ in range(args.rounds):
            for image in pages[1:]:
                for name, engine in engines.items():
                    t0 = time.perf_counter()
                    engine.recognise(image)
                    seconds[name].append(time.perf_counter() - t0)
        base = statistics.median(seconds[args.engines[0]])
        for name, times in seconds.items():
            results[f"{name}/{language}"] = {"engine": name, "language": language, "runs": len(times),
                                             "s_per_page_median": round(statistics.median(times), 2),
                                             "ratio_to_first": round(statistics.median(times) / base, 2)}
            print(json.dumps(results[f"{name}/{language}"]), flush=True)
    return results


def safe_name(doc_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", doc_id)


def run_retrieval(args: argparse.Namespace) -> dict[str, Any]:
    from domainrag import KnowledgeBase
    from domainrag.evaluate.beir_qrels import load_beir_qrels, load_beir_queries, qrels_path
    from domainrag.evaluate.metrics import dedupe, evaluate_run

    dataset: Path = args.dataset
    queries = load_beir_queries(dataset / "queries.jsonl")
    qrels = load_beir_qrels(qrels_path(dataset, "test"))
    wanted = {d for j in qrels.values() for d in j}
    docs: list[tuple[str, str, str]] = []
    with (dataset / "corpus.jsonl").open(encoding="utf-8") as handle:
        for line in handle:
            record = json.loads(line)
            if record["_id"] in wanted:
                docs.append((record["_id"], record.get("title", ""), record["text"]))
            if len(docs) >= args.docs:
                break
    ids = {d[0] for d in docs}
    sub_qrels = {q: {d: g for d, g in j.items() if d in ids} for q, j in qrels.items()}
    sub_qrels = {q: j for q, j in sub_qrels.items() if j and q in queries}
    root = Path(tempfile.mkdtemp(prefix="ocr-retrieval-"))
    (root / "text").mkdir()
    (root / "scan").mkdir()
    by_name = {}
    pages = 0
    for i, (doc_id, title, text) in enumerate(docs):
        name = safe_name(doc_id)
        by_name[name] = doc_id
        body = f"{title}\n{text}" if title else text
        (root / "text" / f"{name}.txt").write_text(body, encoding="utf-8")
        rendered = [degrade(image, seed=i * 31 + p) for p, (image, _) in enumerate(render_pages(body))]
        pages += len(rendered)
        image_pdf(rendered, root / "scan" / f"{name}.pdf")
    out: dict[str, Any] = {"docs": len(docs), "queries": len(sub_qrels), "scanned_pages": pages}
    for kind in ("text", "scan"):
        kb = KnowledgeBase.open(root / f"kb-{kind}", create=True,
                                overrides={"ingest.parse_timeout_s": 600, "ingest.batch_chunks": 64})
        t0 = time.perf_counter()
        report = kb.ingest([root / kind])
        out[f"{kind}_ingest_s"] = round(time.perf_counter() - t0, 1)
        out[f"{kind}_failed"] = len(report.failed)
        for mode in ("lexical", "hybrid"):
            run = {}
            for qid in sub_qrels:
                hits = kb.search(queries[qid], k=50, mode=mode)
                run[qid] = dedupe([by_name.get(Path(h.doc_id).stem, h.doc_id) for h in hits])[:10]
            scores = evaluate_run(run, sub_qrels, ["ndcg@10"])
            out[f"{kind}_{mode}_ndcg10"] = round(scores["ndcg@10"], 4)
        kb.close()
        print(json.dumps(out), flush=True)
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    engines = sub.add_parser("engines")
    engines.add_argument("english", type=Path)
    engines.add_argument("chinese", type=Path)
    engines.add_argument("--pages", type=int, default=8)
    engines.add_argument("--engines", nargs="+",
                         default=["rapidocr", "rapidocr-cls", "rapidocr-onnxruntime", "tesseract", "tesseract-lang"])
    speed = sub.add_parser("speed")
    speed.add_argument("english", type=Path)
    speed.add_argument("chinese", type=Path)
    speed.add_argument("--pages", type=int, default=3)
    speed.add_argument("--rounds", type=int, default=2)
    speed.add_argument("--engines", nargs="+", default=["rapidocr", "rapidocr-cls", "tesseract-lang"])
    retrieval = sub.add_parser("retrieval")
    retrieval.add_argument("dataset", type=Path)
    retrieval.add_argument("--docs", type=int, default=200)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    payload: dict[str, Any] = json.loads(args.out.read_text()) if args.out.exists() else {}
    payload["machine"] = machine()
    payload["date"] = time.strftime("%Y-%m-%d")
    if args.command == "engines":
        payload["engines"] = run_engines(args)
        rows = [[r["engine"], r["language"], r["pages"], f"{r['cer_mean']:.3f}", f"{r['cer_max']:.3f}",
                 f"{r['s_per_page_median']:.2f}", f"{r['pages_per_s']:.2f}"] for r in payload["engines"].values()]
        print(markdown_table(["engine", "lang", "pages", "CER mean", "CER max", "s/page", "pages/s"], rows))
    elif args.command == "speed":
        payload["speed"] = run_speed(args)
    else:
        payload["retrieval"] = run_retrieval(args)
    write_json(args.out, payload)


if __name__ == "__main__":
    main()
