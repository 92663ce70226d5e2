"""Retrieval metrics: golden tests against pytrec_eval (trec_eval), hand-computed cases, BEIR readers."""

from __future__ import annotations

import json
import math
import os
import random
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest

from domainrag.errors import ConfigError
from domainrag.evaluate.beir_qrels import (
    load_beir_qrels,
    load_beir_queries,
    qrels_path,
    qrels_splits,
)
from domainrag.evaluate.metrics import (
    average_precision,
    evaluate_run,
    metric,
    mrr_at_k,
    ndcg_at_k,
    per_query,
    precision_at_k,
    recall_at_k,
)
from domainrag.evaluate.runner import RETRIEVAL_METRICS, summarise
from domainrag.evaluate.suite import load_suite

pytrec_eval = pytest.importorskip("pytrec_eval")

TOL = 1e-9
REPO_ROOT = Path(__file__).resolve().parents[1]
METRICS = ("ndcg@10", "recall@10", "recall@100", "mrr@10", "map", "precision@5")
TREC_MEASURES = {"ndcg_cut.10", "recall.10", "recall.100", "map", "P.5"}
TREC_NAME = {
    "ndcg@10": "ndcg_cut_10",
    "recall@10": "recall_10",
    "recall@100": "recall_100",
    "map": "map",
    "precision@5": "P_5",
}


# --- reference ------------------------------------------------------------------------------


def _as_trec_run(ranking: Sequence[str]) -> dict[str, float]:
    """Strictly decreasing scores, so trec_eval's tie-breaking (doc id, reverse) never applies."""
    n = len(ranking)
    return {doc: float(n - rank) for rank, doc in enumerate(ranking)}


def _reference(
    run: Mapping[str, Sequence[str]], qrels: Mapping[str, Mapping[str, int]]
) -> dict[str, dict[str, float]]:
    """pytrec_eval's scores per query under our metric names (mrr@10 via a truncated run)."""
    qrels = {q: dict(j) for q, j in qrels.items()}
    full = pytrec_eval.RelevanceEvaluator(qrels, TREC_MEASURES).evaluate(
        {q: _as_trec_run(r) for q, r in run.items()}
    )
    cut = pytrec_eval.RelevanceEvaluator(qrels, {"recip_rank"}).evaluate(
        {q: _as_trec_run(r[:10]) for q, r in run.items()}
    )
    out = {}
    for qid, scores in full.items():
        out[qid] = {ours: scores[theirs] for ours, theirs in TREC_NAME.items()}
        out[qid]["mrr@10"] = cut[qid]["recip_rank"]
    return out


def _assert_matches_reference(
    run: Mapping[str, Sequence[str]], qrels: Mapping[str, Mapping[str, int]]
) -> int:
    """Compare per-query scores and means with pytrec_eval; returns how many queries counted."""
    ours = per_query(run, qrels, METRICS)
    ref = _reference(run, qrels)
    assert ours, "no query with a relevant document"
    for qid, scores in ours.items():
        for name, value in scores.items():
            assert value == pytest.approx(ref[qid][name], abs=TOL), (qid, name)
    means = evaluate_run(run, qrels, METRICS)
    for name in METRICS:
        expected = math.fsum(ref[q][name] for q in ours) / len(ours)
        assert means[name] == pytest.approx(expected, abs=TOL), name
    return len(ours)


# --- golden: random runs with graded qrels --------------------------------------------------


def _random_case(rng: random.Random, n_queries: int) -> tuple[dict, dict]:
    docs = [f"d{i}" for i in range(400)]
    qrels, run = {}, {}
    for q in range(n_queries):
        qid = f"q{q}"
        judged = rng.sample(docs, rng.randint(1, 40))
        # Grades 0..3 plus the odd negative grade: only positive grades are relevant.
        qrels[qid] = {d: rng.choice((-1, 0, 0, 1, 1, 1, 2, 2, 3)) for d in judged}
        length = rng.choice((0, 1, 5, 9, 10, 11, 50, 99, 100, 101, 150))
        pool = rng.sample(docs, min(length, len(docs)))
        relevant = [d for d in judged if rng.random() < 0.6]
        for d in relevant:  # put some judged documents into the ranking, at random places
            if d not in pool:
                pool.insert(rng.randint(0, len(pool)), d)
        run[qid] = pool
    return run, qrels


@pytest.mark.parametrize("seed", range(5))
def test_random_graded_runs_match_pytrec_eval(seed: int) -> None:
    run, qrels = _random_case(random.Random(seed), n_queries=300)
    counted = _assert_matches_reference(run, qrels)
    with_relevant = sum(1 for j in qrels.values() if any(g >= 1 for g in j.values()))
    assert counted == with_relevant


def test_large_cut_offs_match_pytrec_eval() -> None:
    rng = random.Random(42)
    run, qrels = _random_case(rng, n_queries=100)
    measures = {"ndcg_cut.1", "ndcg_cut.3", "ndcg_cut.1000", "recall.1", "recall.1000", "P.100"}
    ref = pytrec_eval.RelevanceEvaluator(qrels, measures).evaluate(
        {q: _as_trec_run(r) for q, r in run.items()}
    )
    names = {"ndcg@1": "ndcg_cut_1", "ndcg@3": "ndcg_cut_3", "ndcg@1000": "ndcg_cut_1000",
             "recall@1": "recall_1", "recall@1000": "recall_1000", "precision@100": "P_100"}
    ours = per_query(run, qrels, tuple(names))
    for qid, scores in ours.items():
        for name, theirs in names.items():
            assert scores[name] == pytest.approx(ref[qid][theirs], abs=TOL), (qid, name)


# --- hand-computed ---------------------------------------------------------------------------


QRELS = {"a": 2, "b": 1, "c": 0, "d": -1, "e": 1}
RANKING = ["x", "d", "b", "a"]


def test_ndcg_by_hand() -> None:
    dcg = 1 / math.log2(4) + 2 / math.log2(5)
    idcg = 2 + 1 / math.log2(3) + 1 / math.log2(4)
    assert ndcg_at_k(RANKING, QRELS, 10) == pytest.approx(dcg / idcg, abs=1e-12)
    assert ndcg_at_k(RANKING, QRELS, 2) == 0.0  # negative grade gives no gain
    assert ndcg_at_k(["a", "b", "e"], QRELS, 3) == pytest.approx(1.0)
    assert ndcg_at_k(["a"], QRELS, 1) == pytest.approx(1.0)


def test_recall_precision_mrr_map_by_hand() -> None:
    assert recall_at_k(RANKING, QRELS, 10) == pytest.approx(2 / 3)
    assert recall_at_k(RANKING, QRELS, 3) == pytest.approx(1 / 3)
    assert precision_at_k(RANKING, QRELS, 4) == pytest.approx(2 / 4)
    assert precision_at_k(RANKING, QRELS, 10) == pytest.approx(2 / 10)
    assert mrr_at_k(RANKING, QRELS, 10) == pytest.approx(1 / 3)
    assert mrr_at_k(RANKING, QRELS, 2) == 0.0
    assert average_precision(RANKING, QRELS) == pytest.approx((1 / 3 + 2 / 4) / 3)


def test_duplicates_count_once_at_first_occurrence() -> None:
    ranking = ["x", "x", "b", "b", "a", "x"]
    deduped = ["x", "b", "a"]
    for name in METRICS:
        fn = metric(name)
        assert fn(ranking, QRELS) == fn(deduped, QRELS), name
    assert mrr_at_k(ranking, QRELS, 2) == pytest.approx(1 / 2)
    assert recall_at_k(ranking, QRELS, 2) == pytest.approx(1 / 3)


def test_no_relevant_documents_score_zero_and_are_not_averaged() -> None:
    qrels = {"q1": {"a": 1}, "q2": {"a": 0, "b": -2}, "q3": {}}
    run = {"q1": ["a"], "q2": ["a", "b"], "q3": ["c"]}
    for name in METRICS:
        assert metric(name)(["a", "b"], qrels["q2"]) == 0.0
    assert set(per_query(run, qrels)) == {"q1"}
    assert evaluate_run(run, qrels)["ndcg@10"] == 1.0


def test_query_missing_from_run_scores_zero() -> None:
    qrels = {"q1": {"a": 1}, "q2": {"b": 2}}
    means = evaluate_run({"q1": ["a"], "other": ["b"]}, qrels)
    assert means == {"ndcg@10": 0.5, "recall@10": 0.5, "recall@100": 0.5, "mrr@10": 0.5, "map": 0.5}
    assert per_query({}, qrels)["q2"]["map"] == 0.0


def test_empty_qrels_give_zero_means() -> None:
    assert evaluate_run({"q": ["a"]}, {}) == {m: 0.0 for m in ("ndcg@10", "recall@10",
                                                             "recall@100", "mrr@10", "map")}


@pytest.mark.parametrize("name", ["ndcg", "ndcg@0", "ndcg@x", "mrr@-1", "map@10", "bleu@4", ""])
def test_unknown_metric_names_are_rejected(name: str) -> None:
    with pytest.raises(ConfigError, match="unknown retrieval metric"):
        metric(name)


def test_metric_names_are_case_insensitive() -> None:
    assert metric("NDCG@10")(["a"], {"a": 1}) == 1.0


def test_bad_cut_off_is_rejected() -> None:
    with pytest.raises(ConfigError, match="positive"):
        ndcg_at_k(["a"], {"a": 1}, 0)


# --- BEIR readers ---------------------------------------------------------------------------


def test_load_beir_qrels(tmp_path: Path) -> None:
    path = tmp_path / "test.tsv"
    path.write_text("query-id\tcorpus-id\tscore\nq1\td1\t1\nq1\td2\t2\n\nq2\td1\t0\nq1\td1\t1\n")
    assert load_beir_qrels(path) == {"q1": {"d1": 1, "d2": 2}, "q2": {"d1": 0}}


def test_load_beir_qrels_without_header_and_float_grades(tmp_path: Path) -> None:
    path = tmp_path / "test.tsv"
    path.write_text("q1\td1\t1.0\r\nq1\td2\t-1\r\n")
    assert load_beir_qrels(path) == {"q1": {"d1": 1, "d2": -1}}


@pytest.mark.parametrize(
    "body, message",
    [
        ("q1\td1\n", "line 2: expected 3 tab-separated fields"),
        ("q1 d1 1\n", "line 2: expected 3"),
        ("q1\td1\tyes\n", "line 2: score 'yes' is not a number"),
        ("q1\td1\t0.5\n", "line 2: score '0.5' is not an integer"),
        ("q1\t\t1\n", "line 2: empty query-id or corpus-id"),
        ("q1\td1\t1\nq1\td1\t2\n", "line 3: .* judged again"),
    ],
)
def test_malformed_qrels_name_file_and_line(tmp_path: Path, body: str, message: str) -> None:
    path = tmp_path / "dev.tsv"
    path.write_text("query-id\tcorpus-id\tscore\n" + body)
    with pytest.raises(ConfigError, match=message) as info:
        load_beir_qrels(path)
    assert str(path) in str(info.value)


def test_missing_and_undecodable_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="file not found"):
        load_beir_qrels(tmp_path / "absent.tsv")
    bad = tmp_path / "queries.jsonl"
    bad.write_bytes(b'{"_id": "q1", "text": "\xff\xfe"}\n')
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_beir_queries(bad)


def test_load_beir_queries(tmp_path: Path) -> None:
    path = tmp_path / "queries.jsonl"
    lines = [{"_id": "q1", "text": "what?", "answer": "x"}, {"_id": 7, "text": "数字"}]
    path.write_text("\n".join(json.dumps(x, ensure_ascii=False) for x in lines) + "\n\n", "utf-8")
    assert load_beir_queries(path) == {"q1": "what?", "7": "数字"}


@pytest.mark.parametrize(
    "line, message",
    [
        ('{"_id": "q1", "text": ', "line 2: invalid JSON"),
        ('["q1", "text"]', "line 2: expected a JSON object"),
        ('{"text": "t"}', "line 2: missing or invalid '_id'"),
        ('{"_id": "q2", "text": 3}', "line 2: missing or non-string 'text'"),
        ('{"_id": "q0", "text": "again"}', "line 2: duplicate query id"),
    ],
)
def test_malformed_queries_name_file_and_line(tmp_path: Path, line: str, message: str) -> None:
    path = tmp_path / "queries.jsonl"
    path.write_text('{"_id": "q0", "text": "first"}\n' + line + "\n")
    with pytest.raises(ConfigError, match=message) as info:
        load_beir_queries(path)
    assert str(path) in str(info.value)


def test_qrels_path_lists_available_splits(tmp_path: Path) -> None:
    (tmp_path / "qrels").mkdir()
    (tmp_path / "qrels" / "dev.tsv").write_text("q\td\t1\n")
    (tmp_path / "qrels" / "test.tsv").write_text("q\td\t1\n")
    assert qrels_splits(tmp_path) == ["dev", "test"]
    assert qrels_path(tmp_path, "dev").name == "dev.tsv"
    with pytest.raises(ConfigError, match="splits found: dev, test"):
        qrels_path(tmp_path, "train")


# --- every shared dataset -------------------------------------------------------------------


def _shared_data_dir() -> Path | None:
    configured = os.environ.get("DOMAINRAG_SHARED_DATA")
    candidate = Path(configured) if configured else REPO_ROOT.parent / "shared" / "data"
    return candidate if candidate.is_dir() else None


def _dataset_names() -> list[str]:
    root = _shared_data_dir()
    if root is None:
        return ["<absent>"]
    names = sorted(p.name for p in root.iterdir() if (p / "qrels").is_dir())
    return names or ["<absent>"]


@pytest.fixture(params=_dataset_names())
def dataset_dir(request: pytest.FixtureRequest) -> Path:
    root = _shared_data_dir()
    if root is None or request.param == "<absent>":
        pytest.skip("shared data not found (set DOMAINRAG_SHARED_DATA or place it at ../shared/data)")
    return root / request.param


def _corpus_ids(path: Path) -> list[str]:
    with path.open(encoding="utf-8") as handle:
        return [str(json.loads(line)["_id"]) for line in handle if line.strip()]


def _synthetic_run(
    qrels: Mapping[str, Mapping[str, int]], corpus: Sequence[str], rng: random.Random
) -> dict[str, list[str]]:
    """For each query: ~120 random corpus ids with some relevant documents shuffled in."""
    run = {}
    for qid, judged in qrels.items():
        ranking = rng.sample(corpus, min(len(corpus), 120))
        for doc in judged:
            if rng.random() < 0.7 and doc not in ranking:
                ranking.insert(rng.randint(0, min(len(ranking), 30)), doc)
        run[qid] = ranking
    return run


@pytest.mark.data
@pytest.mark.slow
def test_metrics_match_pytrec_eval_on_shared_dataset(dataset_dir: Path) -> None:
    corpus = _corpus_ids(dataset_dir / "corpus.jsonl")
    queries = load_beir_queries(dataset_dir / "queries.jsonl")
    stats = json.loads((dataset_dir / "stats.json").read_text())
    rng = random.Random(dataset_dir.name)
    for split in qrels_splits(dataset_dir):
        qrels = load_beir_qrels(qrels_path(dataset_dir, split))
        expected = stats.get("qrels", {}).get(split)
        if expected:
            assert len(qrels) == expected["queries"]
            assert sum(len(j) for j in qrels.values()) == expected["pairs"]
        assert set(qrels) <= set(queries), f"{split}: qrels name queries absent from queries.jsonl"
        sample = {q: qrels[q] for q in rng.sample(sorted(qrels), min(500, len(qrels)))}
        counted = _assert_matches_reference(_synthetic_run(sample, corpus, rng), sample)
        assert counted == len(sample)


@pytest.mark.data
@pytest.mark.slow
def test_eval_summary_matches_pytrec_eval_on_shared_dataset(dataset_dir: Path) -> None:
    """``domainrag eval``'s aggregate equals trec_eval's mean: per-case records built as the
    runner builds them (gold = the BEIR suite's cases, scores = ``metric(m)(ranking, gold)``),
    averaged by ``summarise``, against pytrec_eval on the split's full qrels."""
    corpus = _corpus_ids(dataset_dir / "corpus.jsonl")
    rng = random.Random(f"{dataset_dir.name}:summary")
    for split in qrels_splits(dataset_dir):
        cases = {c.id: c for c in load_suite(dataset_dir, split).cases}
        qrels = load_beir_qrels(qrels_path(dataset_dir, split))
        sample = {q: qrels[q] for q in rng.sample(sorted(cases), min(500, len(cases)))}
        run = _synthetic_run(sample, corpus, rng)
        records = []
        for qid, ranking in run.items():
            gold = {e.doc_id: e.relevance for e in cases[qid].gold}
            records.append({"id": qid, "scenario": [],
                            "scores": {m: metric(m)(ranking, gold) for m in RETRIEVAL_METRICS}})
        summary = summarise(records)["metrics"]["retrieval"]
        ref = _reference(run, sample)
        assert set(summary) == set(RETRIEVAL_METRICS), split
        for name in RETRIEVAL_METRICS:
            expected = math.fsum(ref[q][name] for q in run) / len(run)
            assert summary[name] == pytest.approx(expected, abs=TOL), (split, name)
