"""The PostgreSQL + pgvector store against the embedded SQLite store: quality, scale, sharing.

Questions answered:

``quality``: on each shared BEIR set (subsampled: ``--docs`` documents holding the relevant
documents of ``--queries`` sampled test queries plus random others), document nDCG@10 of lexical,
dense and hybrid search through ``KnowledgeBase.rank_documents`` on the SQLite store and on the
same index migrated into PostgreSQL (``domainrag.migrate``: nothing re-embedded), side by side.

``tsrank``: on the collections ``quality`` left, lexical nDCG@10 of PostgreSQL's own full-text
ranking (``ts_rank_cd`` over the same analyser tokens) against the BM25 computed in SQL.

``incremental``: ``--chunks`` synthetic chunks bulk-loaded (HNSW graph and postings index built),
then ``--extra`` more written the way an ingest writes them (``--batch`` sources of 10 chunks per
transaction) into the indexed collection: chunks/s of those writes plus the refresh that ends
the ingest, then dense and hybrid latency and dense recall@10 against exact search over every
vector (new ones included). Run it once per code version (``PYTHONPATH=<checkout>/src``) with
``--tag``: collections of different versions are kept apart.

``scale``: ``--chunks`` synthetic chunks (Zipf tokens, clustered unit vectors of ``--dim``
dimensions; precomputed, so embedding is not measured) written in batches of whole sources:
ingest chunks/s; search p50/p95 per mode (lexical, dense, hybrid = both + fusion, each with
hits) at 1 and ``--clients`` concurrent clients (threads); HNSW recall@10 against exact search
for several ``ef_search``; two processes over one PostgreSQL return identical results. SQLite
side by side.

PostgreSQL: ``--url`` (a server of yours), else ``pgserver`` is started in
``benchmarks/.cache/pgdata`` (a Unix socket; PostgreSQL 16 + pgvector from PyPI).

Usage::

    python benchmarks/postgres.py quality ../shared/data/* --docs 600 --queries 150
    python benchmarks/postgres.py tsrank ../shared/data/*   # the folders quality used
    python benchmarks/postgres.py scale --chunks 100000
    python benchmarks/postgres.py incremental --chunks 100000 --extra 10000 --tag after
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from domainrag.config import IndexConfig
from domainrag.evaluate.beir_qrels import load_beir_qrels, load_beir_queries, qrels_path
from domainrag.evaluate.metrics import dedupe, ndcg_at_k
from domainrag.index.postgres_store import PostgresStore
from domainrag.index.sqlite_store import SQLiteStore
from domainrag.index.store import SourceUpdate, Store
from domainrag.retrieve.fusion import fuse
from domainrag.types import Chunk, Document, Span

CACHE = Path("benchmarks/.cache/postgres")
RESULTS = Path("benchmarks/results")
MODES = ("lexical", "dense", "hybrid")


# --- PostgreSQL ---------------------------------------------------------------------------------
def server_url(url: str | None, pgdata: Path | None = None) -> str:
    if url:
        return url
    import pgserver

    data = (pgdata or CACHE / "pgdata").resolve()
    data.parent.mkdir(parents=True, exist_ok=True)
    server = pgserver.get_server(data, cleanup_mode=None)
    return f"postgresql://postgres@/postgres?host={server.get_uri().split('host=')[1]}"


def drop_collection(url: str, name: str) -> None:
    import psycopg

    base, _, query = url.partition("?")
    with psycopg.connect(url.split("#")[0], autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS domainrag_{name} CASCADE")


def machine() -> dict[str, Any]:
    return {"platform": platform.platform(), "cpus": os.cpu_count(), "python": platform.python_version(),
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}


# --- quality ------------------------------------------------------------------------------------
def subsample(dataset: Path, docs: int, queries: int, seed: int = 0) -> Path:
    """A BEIR folder with ``queries`` test queries and ``docs`` documents (theirs first)."""
    out = CACHE / "data" / f"{dataset.name}-{docs}-{queries}"
    if (out / "done").exists():
        return out
    out.mkdir(parents=True, exist_ok=True)
    texts = load_beir_queries(dataset / "queries.jsonl")
    qrels = load_beir_qrels(qrels_path(dataset, "test"))
    qids = sorted(q for q, j in qrels.items() if q in texts and any(g > 0 for g in j.values()))
    rng = random.Random(seed)
    qids = sorted(rng.sample(qids, min(queries, len(qids))))
    wanted = {d for q in qids for d in qrels[q]}
    corpus = [json.loads(line) for line in (dataset / "corpus.jsonl").read_text(encoding="utf-8").splitlines()
              if line.strip()]
    others = [r for r in corpus if str(r["_id"]) not in wanted]
    rng.shuffle(others)
    keep = [r for r in corpus if str(r["_id"]) in wanted] + others[: max(0, docs - len(wanted))]
    (out / "corpus.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in keep))
    (out / "queries.jsonl").write_text("".join(json.dumps({"_id": q, "text": texts[q]}, ensure_ascii=False) + "\n"
                                               for q in qids))
    (out / "qrels").mkdir(exist_ok=True)
    lines = ["query-id\tcorpus-id\tscore"] + [f"{q}\t{d}\t{g}" for q in qids for d, g in qrels[q].items()]
    (out / "qrels" / "test.tsv").write_text("\n".join(lines) + "\n")
    (out / "done").write_text("")
    return out


def quality(args: argparse.Namespace) -> dict[str, Any]:
    from domainrag import KnowledgeBase
    from domainrag.migrate import migrate

    url = server_url(args.url, args.pgdata)
    rows = []
    for dataset in args.datasets:
        folder = subsample(Path(dataset), args.docs, args.queries) if args.docs else Path(dataset)
        sqlite_kb = CACHE / "kb" / f"{folder.name}-{args.embedder}"
        seed = args.seed / f"{folder.name}{args.seed_suffix}" / "catalog.sqlite3" if args.seed else None
        t0 = time.perf_counter()
        seeded = seed is not None and seed.exists()
        if seeded and not sqlite_kb.exists():
            assert seed is not None
            copy = CACHE / "seed" / folder.name
            copy.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(seed, copy / "catalog.sqlite3")
            migrate(f"sqlite://{copy.resolve()}", str(sqlite_kb))   # SQLite -> SQLite: the index as built
        with KnowledgeBase.open(sqlite_kb, create=True, overrides={"embedder.model": args.embedder}) as kb:
            if not seeded:
                kb.ingest([folder], format="beir")
            ingest_s = time.perf_counter() - t0
            chunks = kb.store.stats()["chunks"]
        name = "q_" + "".join(c if c.isalnum() else "_" for c in folder.name.lower())
        drop_collection(url, name)
        t0 = time.perf_counter()
        report = migrate(str(sqlite_kb), f"{url}#{name}")
        migrate_s = time.perf_counter() - t0
        pg_kb = CACHE / "kb" / f"{folder.name}-{args.embedder}-pg"
        if not pg_kb.exists():
            KnowledgeBase.open(pg_kb, create=True, overrides={"embedder.model": args.embedder,
                                                            "store.url": f"{url}#{name}"}).close()
        texts = load_beir_queries(folder / "queries.jsonl")
        qrels = load_beir_qrels(folder / "qrels" / "test.tsv")
        texts = {q: t for q, t in texts.items() if q in qrels}
        row: dict[str, Any] = {"dataset": Path(dataset).name, "docs": report.documents, "chunks": chunks,
                               "queries": len(texts), "sqlite_ingest_s": round(ingest_s, 1),
                               "migrate_s": round(migrate_s, 1), "migrate_verified": report.verified}
        for store_name, path in (("sqlite", sqlite_kb), ("postgres", pg_kb)):
            with KnowledgeBase.open(path) as kb:
                for mode in MODES:
                    scores = [ndcg_at_k(kb.rank_documents(text, 10, mode), qrels[q], 10) for q, text in texts.items()]
                    row[f"{store_name}_{mode}"] = round(float(np.mean(scores)), 4)
        rows.append(row)
        print(json.dumps(row), flush=True)
    return {"machine": machine(), "embedder": args.embedder, "docs": args.docs, "queries": args.queries, "rows": rows}


# --- scale --------------------------------------------------------------------------------------
def synthetic(n: int, dim: int, seed: int = 0, per_source: int = 10) -> tuple[list[SourceUpdate], np.ndarray]:
    """``n`` chunks in sources of ``per_source``: tokens drawn from a Zipf law over 30k terms
    without its 100 most frequent ranks (the stopwords an analyser drops), clustered vectors."""
    rng = np.random.default_rng(seed)
    vocab = np.array([f"t{i}" for i in range(30_000)])
    weights = 1.0 / np.arange(101, len(vocab) + 101) ** 1.05
    weights /= weights.sum()
    centers = rng.normal(size=(256, dim)).astype(np.float32)
    labels = rng.integers(0, len(centers), size=n)
    vectors = centers[labels] + 0.6 * rng.normal(size=(n, dim)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    lengths = rng.integers(20, 90, size=n)
    all_tokens = rng.choice(vocab, size=int(lengths.sum()), p=weights)
    updates, pos = [], 0
    for s in range(0, n, per_source):
        doc_id = f"doc{s // per_source:07d}"
        chunks, tokens = [], []
        for i in range(s, min(n, s + per_source)):
            toks = all_tokens[pos: pos + lengths[i]].tolist()
            pos += lengths[i]
            tokens.append(toks)
            chunks.append(Chunk(f"{doc_id}::{i - s}", doc_id, " ".join(toks), Span(doc_id, 0, 1), (), i - s))
        text = "\n\n".join(c.text for c in chunks)
        chunks = [Chunk(c.id, c.doc_id, c.text, Span(doc_id, 0, len(c.text)), (), c.ordinal) for c in chunks]
        doc = Document(doc_id, text, f"{doc_id}.txt", title=doc_id, metadata={"acl": ["all"]} if s % 3 else {})
        updates.append(SourceUpdate(f"{doc_id}.txt", doc_id, len(text), 1, [doc], chunks, tokens,
                                    vectors[s: s + per_source]))
    return updates, vectors


def queries(updates: list[SourceUpdate], count: int, dim: int, seed: int = 1) -> list[tuple[list[str], np.ndarray]]:
    rng = random.Random(seed)
    nrng = np.random.default_rng(seed)
    out = []
    for _ in range(count):
        u = rng.choice(updates)
        i = rng.randrange(len(u.chunks))
        tokens = rng.sample(u.tokens[i], min(4, len(u.tokens[i])))
        assert u.vectors is not None
        v = u.vectors[i] + 0.3 * nrng.normal(size=dim).astype(np.float32) / np.sqrt(dim)
        out.append((tokens, (v / np.linalg.norm(v)).astype(np.float32)))
    return out


def ingest(store: Store, updates: list[SourceUpdate], batch: int) -> dict[str, float]:
    t0 = time.perf_counter()
    for i in range(0, len(updates), batch):
        store.write(updates[i: i + batch])
        if i and i % (batch * 100) == 0:
            print(f"  {i * 10} chunks written in {time.perf_counter() - t0:.0f} s", flush=True)
    write_s = time.perf_counter() - t0
    t1 = time.perf_counter()
    store.refresh()
    refresh_s = time.perf_counter() - t1
    chunks = sum(len(u.chunks) for u in updates)
    return {"write_s": round(write_s, 1), "refresh_s": round(refresh_s, 1),
            "chunks_per_s": round(chunks / (write_s + refresh_s))}


def search_once(store: Store, mode: str, tokens: list[str], vector: np.ndarray, n: int = 100, k: int = 10) -> list[str]:
    view = store.view()
    if mode == "lexical":
        ranked = view.lexical(tokens, n)
    elif mode == "dense":
        ranked = view.dense(vector, n)
    else:
        ranked = fuse(view.lexical(tokens, n), view.dense(vector, n), "convex", 0.5, 60)
    return [h.chunk_id for h in view.hits(ranked.head(k))]


def latency(store: Store, mode: str, qs: list[tuple[list[str], np.ndarray]], clients: int) -> dict[str, float]:
    times: list[float] = []
    lock = threading.Lock()
    work = list(qs)

    def client(part: Sequence[tuple[list[str], np.ndarray]]) -> None:
        for tokens, vector in part:
            t0 = time.perf_counter()
            search_once(store, mode, tokens, vector)
            elapsed = (time.perf_counter() - t0) * 1000
            with lock:
                times.append(elapsed)

    for tokens, vector in work[:5]:  # warm
        search_once(store, mode, tokens, vector)
    threads = [threading.Thread(target=client, args=(work[i::clients],)) for i in range(clients)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    return {"p50_ms": round(float(np.percentile(times, 50)), 2), "p95_ms": round(float(np.percentile(times, 95)), 2),
            "qps": round(len(times) / wall, 1)}


def hnsw_recall(store: PostgresStore, qs: list[tuple[list[str], np.ndarray]], efs: Sequence[int]) -> dict[str, Any]:
    """recall@10 of the HNSW index against exact search, per ef_search, and the latency."""
    s = store.schema
    out: dict[str, Any] = {}
    with store._pool.connection() as conn:
        exact = []
        for _, v in qs:
            rows = conn.execute(f"SELECT id FROM {s}.chunks ORDER BY vector <=> %s, id LIMIT 10", (v,)).fetchall()
            exact.append({r[0] for r in rows})
        for ef in efs:
            conn.execute(f"SET hnsw.ef_search = {ef}")
            hits, times = 0, []
            for (_, v), truth in zip(qs, exact, strict=True):
                t0 = time.perf_counter()
                rows = conn.execute(f"SELECT id FROM {s}.chunks ORDER BY vector <=> %s LIMIT 10", (v,)).fetchall()
                times.append((time.perf_counter() - t0) * 1000)
                hits += len(truth & {r[0] for r in rows})
            out[str(ef)] = {"recall@10": round(hits / (10 * len(qs)), 4), "p50_ms": round(float(np.median(times)), 2)}
        conn.execute(f"SET hnsw.ef_search = {store.target.ef_search}")
    store._ef.clear()
    return out


TWO_PROCESSES = """
import json, sys
import numpy as np
sys.path.insert(0, "benchmarks")
from postgres import search_once
from domainrag.index.postgres_store import PostgresStore
store = PostgresStore(sys.argv[1])
qs = json.loads(sys.stdin.read())
print(json.dumps([search_once(store, "hybrid", t, np.asarray(v, dtype=np.float32)) for t, v in qs]))
"""


def two_processes(url: str, qs: list[tuple[list[str], np.ndarray]]) -> bool:
    payload = json.dumps([(t, v.tolist()) for t, v in qs])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(["src", os.environ.get("PYTHONPATH", "")])}
    procs = [subprocess.Popen([sys.executable, "-c", TWO_PROCESSES, url], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True, env=env) for _ in range(2)]
    outs = [p.communicate(payload, timeout=600)[0] for p in procs]
    return bool(outs[0].strip()) and outs[0] == outs[1]


def scale(args: argparse.Namespace) -> dict[str, Any]:
    url = server_url(args.url, args.pgdata)
    t0 = time.perf_counter()
    updates, _ = synthetic(args.chunks, args.dim)
    print(f"generated {args.chunks} chunks in {time.perf_counter() - t0:.1f} s", flush=True)
    qs = queries(updates, args.queries, args.dim)
    result: dict[str, Any] = {"machine": machine(), "chunks": args.chunks, "dim": args.dim, "queries": args.queries,
                              "batch_sources": args.batch, "stores": {}}
    name = f"scale_{args.chunks}"
    drop_collection(url, name)
    stores: list[tuple[str, Callable[[], Store]]] = [("postgres", lambda: PostgresStore(f"{url}#{name}"))]
    if not args.skip_sqlite:
        folder = Path(tempfile.mkdtemp(prefix="scale-sqlite-", dir=CACHE))
        stores.append(("sqlite", lambda: SQLiteStore(folder, IndexConfig())))
    for label, make in stores:
        store = make()
        facts: dict[str, Any] = {"ingest": ingest(store, updates, args.batch)}
        print(label, facts, flush=True)
        for clients in (1, args.clients):
            for mode in MODES:
                facts[f"{mode}_{clients}"] = latency(store, mode, qs, clients)
                print(label, mode, clients, facts[f"{mode}_{clients}"], flush=True)
        if isinstance(store, PostgresStore):
            facts["hnsw_recall"] = hnsw_recall(store, qs[: args.recall_queries], (40, 64, 100, 200))
            print(label, facts["hnsw_recall"], flush=True)
            facts["two_processes_identical"] = two_processes(f"{url}#{name}", qs[:50])
            print(label, "two processes identical:", facts["two_processes_identical"], flush=True)
        store.close()
        result["stores"][label] = facts
    return result


# --- incremental ingest into an indexed collection ---------------------------------------------
def incremental(args: argparse.Namespace) -> dict[str, Any]:
    url = server_url(args.url, args.pgdata)
    updates, vectors = synthetic(args.chunks + args.extra, args.dim)
    base = args.chunks // 10
    name = f"incr_{args.chunks}_{args.tag}"
    drop_collection(url, name)
    store = PostgresStore(f"{url}#{name}")
    result: dict[str, Any] = {"machine": machine(), "load_before": os.getloadavg(), "chunks": args.chunks,
                              "extra": args.extra, "batch_sources": args.batch, "tag": args.tag}
    result["bulk"] = ingest(store, updates[:base], 100)
    print("bulk", result["bulk"], flush=True)
    t0 = time.perf_counter()
    for i in range(base, len(updates), args.batch):
        store.write(updates[i: i + args.batch])
    write_s = time.perf_counter() - t0
    t1 = time.perf_counter()
    store.refresh()
    refresh_s = time.perf_counter() - t1
    result["incremental"] = {"write_s": round(write_s, 1), "refresh_s": round(refresh_s, 1),
                             "chunks_per_s": round(args.extra / (write_s + refresh_s)),
                             "pending_after": getattr(store, "pending_vectors", lambda: None)()}
    print("incremental", result["incremental"], flush=True)
    qs = queries(updates[base:], args.queries, args.dim)   # queries near the new chunks
    for mode in ("dense", "hybrid"):
        result[f"{mode}_1"] = latency(store, mode, qs, 1)
        print(mode, result[f"{mode}_1"], flush=True)
    ids = [c.id for u in updates for c in u.chunks]
    hits = 0
    for _tokens, v in qs[:100]:
        exact = {ids[r] for r in np.argsort(-(vectors @ v))[:10]}
        view = store.view()
        got = {h.chunk_id for h in view.hits(view.dense(v, 10))}
        hits += len(exact & got)
    result["dense_recall_at_10"] = round(hits / (10 * min(100, len(qs))), 4)
    print("recall", result["dense_recall_at_10"], flush=True)
    if args.fold and hasattr(store, "pending_vectors"):   # the deferred cost: the pending vectors into the graph
        import domainrag.index.postgres_store as pg_store

        waiting = store.pending_vectors()
        pg_store.PENDING_FOLD_AT = 0
        store.write(updates[-1:])                          # an ingest that wrote: its refresh folds
        t2 = time.perf_counter()
        store.refresh()
        fold_s = time.perf_counter() - t2
        result["fold"] = {"vectors": waiting, "seconds": round(fold_s, 1), "vectors_per_s": round(waiting / fold_s),
                          "pending_after": store.pending_vectors()}
        print("fold", result["fold"], flush=True)
    result["load_after"] = os.getloadavg()
    store.close()
    drop_collection(url, name)
    return result


# --- ts_rank_cd, the alternative to BM25 in SQL -------------------------------------------------
def tsrank(args: argparse.Namespace) -> dict[str, Any]:
    """Lexical nDCG@10 of PostgreSQL full-text ranking (``ts_rank_cd`` over a ``simple``
    tsvector of the same analyser tokens, OR of the query's tokens) against our BM25 in SQL, on the
    collections ``quality`` left (run it first)."""
    import psycopg

    from domainrag.index.analyzer import Analyzer

    url = server_url(args.url, args.pgdata)
    analyzer = Analyzer()
    rows = []
    for dataset in args.datasets:
        folder = Path(dataset)
        name = "q_" + "".join(c if c.isalnum() else "_" for c in folder.name.lower())
        store = PostgresStore(f"{url}#{name}")
        texts = load_beir_queries(folder / "queries.jsonl")
        qrels = load_beir_qrels(folder / "qrels" / "test.tsv")
        texts = {q: t for q, t in texts.items() if q in qrels}
        bm25, cd = [], []
        with psycopg.connect(url.split("#")[0], autocommit=True) as conn:
            for qid, text in texts.items():
                tokens = analyzer.tokenize(text)
                view = store.view()
                bm25.append(ndcg_at_k(dedupe(view.doc_ids(view.lexical(tokens, 100).rows)), qrels[qid], 10))
                query = " | ".join("'" + t.replace("'", "''") + "'" for t in dict.fromkeys(tokens))
                found = conn.execute(
                    f"SELECT d.id FROM {store.schema}.chunks c JOIN {store.schema}.documents d ON d.rowid = c.doc_rowid "
                    "CROSS JOIN to_tsquery('simple', %s) q "
                    "WHERE to_tsvector('simple', array_to_string(c.tokens, ' ')) @@ q "
                    "ORDER BY ts_rank_cd(to_tsvector('simple', array_to_string(c.tokens, ' ')), q) DESC, c.id LIMIT 100",
                    (query or "''",)).fetchall() if tokens else []
                cd.append(ndcg_at_k(dedupe(r[0] for r in found), qrels[qid], 10))
        store.close()
        row = {"dataset": folder.name, "queries": len(texts), "bm25_sql": round(float(np.mean(bm25)), 4),
               "ts_rank_cd": round(float(np.mean(cd)), 4)}
        rows.append(row)
        print(json.dumps(row), flush=True)
    return {"machine": machine(), "rows": rows}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    q = sub.add_parser("quality")
    q.add_argument("datasets", nargs="+")
    q.add_argument("--docs", type=int, default=600, help="subsample to this many documents (0: use as is)")
    q.add_argument("--seed", type=Path, help="folder of built SQLite knowledge bases to start from (copied)")
    q.add_argument("--seed-suffix", default="-minilm-headings", help="seed folder = dataset folder name + this")
    q.add_argument("--queries", type=int, default=150)
    q.add_argument("--embedder", default="minilm")
    t = sub.add_parser("tsrank")
    t.add_argument("datasets", nargs="+")
    s = sub.add_parser("scale")
    s.add_argument("--chunks", type=int, default=100_000)
    s.add_argument("--dim", type=int, default=384)
    s.add_argument("--queries", type=int, default=400)
    s.add_argument("--clients", type=int, default=8)
    s.add_argument("--batch", type=int, default=100, help="sources per write (10 chunks each)")
    s.add_argument("--skip-sqlite", action="store_true")
    s.add_argument("--recall-queries", type=int, default=100, help="queries for HNSW recall (each also runs exactly)")
    inc = sub.add_parser("incremental")
    inc.add_argument("--chunks", type=int, default=100_000)
    inc.add_argument("--extra", type=int, default=10_000)
    inc.add_argument("--dim", type=int, default=384)
    inc.add_argument("--batch", type=int, default=26, help="sources per write (10 chunks each; an ingest writes ~256)")
    inc.add_argument("--queries", type=int, default=200)
    inc.add_argument("--tag", default="now")
    inc.add_argument("--fold", action="store_true", help="then time folding the pending vectors into the graph")
    for parser in (q, s, t, inc):
        parser.add_argument("--url", help="postgresql:// URL of a server to use (else pgserver is started)")
        parser.add_argument("--out", type=Path)
        parser.add_argument("--pgdata", type=Path, help="data folder of the pgserver started when --url is not given")
    args = p.parse_args()
    CACHE.mkdir(parents=True, exist_ok=True)
    result = {"quality": quality, "tsrank": tsrank, "scale": scale, "incremental": incremental}[args.command](args)
    out = args.out or RESULTS / (f"postgres_scale_{args.chunks}.json" if args.command == "scale"
                                 else f"postgres_incremental_{args.chunks}_{args.tag}.json"
                                 if args.command == "incremental" else f"postgres_{args.command}.json")
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
