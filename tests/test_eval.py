"""The evaluation harness: suites, the runner (retrieval, answers, cache, resume), stored runs."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from domainrag import CaseRecord
from domainrag.errors import ConfigError, DomainragError
from domainrag.evaluate.metrics import evaluate_run
from domainrag.evaluate.runner import EvalOptions, run_suite, summarise
from domainrag.evaluate.runs import RunStore
from domainrag.evaluate.suite import load_suite
from domainrag.models.cache import ModelCache

DOCS = {
    "thyroid.md": "# Hypothyroidism\n\nHypothyroidism is treated with levothyroxine. The usual starting dose for adults is 50 micrograms daily.",
    "revenue.txt": "Revenue of the Fintech segment grew 39% year on year to RMB 101.4 billion in 2019.",
    "backup.txt": "Backups of the billing database run nightly at 2 am and are kept for 35 days.",
    "law.txt": "第十四条 劳动者在该用人单位连续工作满十年的，应当订立无固定期限劳动合同。",
}
CASES = [
    {"id": "m1", "question": "What is the starting dose of levothyroxine for adults?", "answers": ["50 micrograms daily"],
     "gold": [{"doc_id": "docs/thyroid.md", "quote": "starting dose for adults is 50 micrograms"}], "scenario": ["medical"]},
    {"id": "f1", "question": "How much did Fintech revenue grow in 2019?", "answers": ["39%"],
     "gold": ["docs/revenue.txt"], "scenario": ["finance"]},
    {"id": "o1", "question": "How long are billing database backups kept?", "answers": ["35 days"],
     "gold": ["docs/backup.txt"], "scenario": ["ops"]},
    {"id": "z1", "question": "劳动者连续工作满十年，应当订立什么劳动合同？", "answers": ["无固定期限劳动合同"],
     "gold": ["docs/law.txt"], "scenario": ["law", "zh"]},
    {"id": "u1", "question": "Who won the football world cup in 1998?", "answerable": False, "scenario": ["off-topic"]},
]


@pytest.fixture
def kb(kb_factory, tmp_path: Path):
    root = tmp_path / "docs"
    root.mkdir()
    for name, text in DOCS.items():
        (root / name).write_text(text, encoding="utf-8")
    base = kb_factory()
    base.ingest([root])
    return base


@pytest.fixture
def suite_file(tmp_path: Path) -> Path:
    path = tmp_path / "suite.jsonl"
    path.write_text("\n".join(json.dumps(c, ensure_ascii=False) for c in CASES) + "\n", encoding="utf-8")
    return path


# -- suites -----------------------------------------------------------------------------------
def test_jsonl_suite_is_parsed(suite_file: Path) -> None:
    suite = load_suite(suite_file)
    assert [c.id for c in suite.cases] == ["m1", "f1", "o1", "z1", "u1"]
    assert suite.cases[0].gold[0].quote and suite.cases[1].gold[0].doc_id == "docs/revenue.txt"
    assert suite.cases[4].answerable is False and suite.cases[3].scenario == ("law", "zh")
    assert len(suite.hash) == 16 and suite.format == "jsonl"


def test_malformed_lines_are_reported_with_their_numbers(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"id": "a", "question": "ok?"}\n{not json\n{"id": "b"}\n\n'
                    '{"id": "c", "question": "x", "gold": [{"start": 1}]}\n{"id": "a", "question": "again"}\n')
    with pytest.raises(ConfigError) as info:
        load_suite(path)
    message = str(info.value)
    assert "4 malformed line(s)" in message
    for fragment in ("line 2: invalid JSON", "line 3: missing or empty 'question'", "line 5: gold item",
                     "line 6: duplicate id 'a'"):
        assert fragment in message


def test_empty_suite_and_missing_split_are_clear(tmp_path: Path) -> None:
    (tmp_path / "empty.jsonl").write_text("\n")
    with pytest.raises(ConfigError, match="holds no cases"):
        load_suite(tmp_path / "empty.jsonl")
    beir = make_beir(tmp_path / "tiny")
    with pytest.raises(ConfigError, match=r"no qrels for split 'dev' \(splits found: test\)"):
        load_suite(beir, split="dev")


def make_beir(root: Path) -> Path:
    (root / "qrels").mkdir(parents=True)
    corpus = [{"_id": f"d{i}", "title": f"Doc {i}", "text": text} for i, text in enumerate(DOCS.values())]
    (root / "corpus.jsonl").write_text("\n".join(json.dumps(d, ensure_ascii=False) for d in corpus), encoding="utf-8")
    queries = [{"_id": "q0", "text": "starting dose of levothyroxine", "answers": ["50 micrograms"], "answer_type": "span"},
               {"_id": "q1", "text": "Fintech revenue growth 2019", "answer": "39%"},
               {"_id": "q2", "text": "no relevant document"}]
    (root / "queries.jsonl").write_text("\n".join(json.dumps(q) for q in queries))
    (root / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq0\td0\t2\nq1\td1\t1\nq1\td2\t0\nq2\td3\t0\n")
    return root


def test_beir_folder_is_a_suite(tmp_path: Path) -> None:
    suite = load_suite(make_beir(tmp_path / "tiny"))
    assert [c.id for c in suite.cases] == ["q0", "q1"]  # q2 has no relevant document
    q0, q1 = suite.cases
    assert q0.gold[0].doc_id == "d0" and q0.gold[0].relevance == 2 and q0.answers == ("50 micrograms",)
    assert q0.scenario == ("tiny", "answer_type:span") and q1.answers == ("39%",)
    assert [g.doc_id for g in q1.gold] == ["d1"] and suite.is_beir and suite.split == "test"


# -- runs -------------------------------------------------------------------------------------
def test_retrieval_run_scores_and_stores(kb, suite_file: Path) -> None:
    run = kb.evaluate(suite_file, metrics=["retrieval"])
    assert set(run.metrics["retrieval"]) == {"ndcg@10", "recall@10", "recall@100", "mrr@10", "map"}
    assert run.metric("recall@10") == 1.0
    case = run.cases[0]
    assert case.retrieved[0] == "docs/thyroid.md" and case.answer is None and case.outcome is None
    assert run.scenarios["medical"].n == 1 and run.scenarios["medical"].ci95
    m = run.manifest
    for key in ("suite_hash", "config_hash", "corpus_hash", "index_hash", "template_hash", "code_version", "seed"):
        assert m[key] is not None
    assert m["settings"]["embedder.model"] == "fake-en:64" and m["settings"]["retrieval.mode"] == "hybrid"
    assert m["settings"] == kb.config.flat() and m["model_ids"] == []     # no answers in this run
    assert kb.runs.resolve("last") == run.run_id == kb.runs.resolve("suite")
    assert [r.run_id for r in kb.runs.list()] == [run.run_id]
    assert kb.runs.get("last") == run


def test_answer_run_scores_answers_citations_and_abstention(kb, suite_file: Path) -> None:
    run = kb.evaluate(suite_file, metrics=["retrieval", "answer"])
    m1, u1 = run.case("m1"), run.case("u1")
    assert m1.scores["numeric_match"] == 1.0 and (m1.scores["token_f1"] or 0) > 0.3
    assert m1.gold[0].start is not None  # the quote was located in the document
    assert m1.scores["citation_recall"] == 1.0
    assert u1.abstained is True
    assert run.metrics["abstention"]["abstention_recall"] == 1.0
    assert run.metrics["answer"]["token_f1"] > 0 and "latency_ms_p50" in run.metrics["cost"]


def test_rerun_with_a_model_makes_no_model_calls(kb, suite_file: Path, scripted) -> None:
    scripted.script = lambda r: f"{r.sources[0].text.split('. ')[0].rstrip('.')}. [1]"
    first = kb.evaluate(suite_file, metrics=["retrieval", "answer"], model="scripted:m", concurrency=3)
    calls = len(scripted.requests)
    assert calls >= 3 and first.manifest["model_versions"] == ["m-v1"]
    second = kb.evaluate(suite_file, metrics=["retrieval", "answer"], model="scripted:m", concurrency=3)
    assert len(scripted.requests) == calls  # every call served from the knowledge base's model-call cache
    assert second.run_id != first.run_id
    assert [c.answer for c in second.cases] == [c.answer for c in first.cases]
    assert kb.answerer.cache is None  # asking stays live: only evaluations go through the cache


def test_interrupted_run_resumes_without_losing_cases(kb, suite_file: Path) -> None:
    seen: list[str] = []

    def stop_after_two(label: str) -> None:
        seen.append(label)
        if len(seen) == 3:  # the start message, then two cases
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        kb.evaluate(suite_file, metrics=["retrieval"], progress=stop_after_two)
    (unfinished,) = kb.runs.list()
    assert unfinished.status == "running" and len(kb.runs.records(unfinished.run_id)) == 2
    assert unfinished.judged == 2 and unfinished.manifest.cases == 5
    messages: list[str] = []
    run = kb.evaluate(suite_file, metrics=["retrieval"], progress=messages.append)
    assert run.run_id == unfinished.run_id and len(run.cases) == 5
    assert messages[0].startswith(f"resuming {run.run_id}: 2 done, 3 to go")


def test_an_interrupted_run_with_a_failed_case_resumes_both(kb, suite_file: Path, scripted) -> None:
    """A case whose model call failed is kept (and counted) when the run is interrupted; the
    resumed run computes the cases still missing and retries the failed one."""
    from domainrag.errors import GenerationError

    def reply(request):
        if "levothyroxine" in request.question and flaky["on"]:
            raise GenerationError("The openai API at http://x (model 'm') failed with HTTP 502: bad gateway")
        return f"{request.sources[0].text.split('. ')[0]}. [1]"

    flaky = {"on": True}
    scripted.script = reply
    seen: list[str] = []

    def stop_after_two(label: str) -> None:
        seen.append(label)
        if len(seen) == 3:  # the start message, then two cases: m1 (failed) and f1
            raise KeyboardInterrupt

    options = EvalOptions(metrics=frozenset({"retrieval", "answer"}), model="scripted:m", concurrency=1)
    with pytest.raises(KeyboardInterrupt):
        run_suite(kb, load_suite(suite_file), options, RunStore(kb.path), stop_after_two)
    (unfinished,) = RunStore(kb.path).list()
    assert (unfinished.status, unfinished.judged, unfinished.failed) == ("running", 2, 1)
    flaky["on"] = False
    messages: list[str] = []
    run = run_suite(kb, load_suite(suite_file), options, RunStore(kb.path), messages.append)
    assert run.run_id == unfinished.run_id and messages[0] == f"resuming {run.run_id}: 1 done, 4 to go"
    assert run.failed is None and not any(c.failed for c in run.cases) and len(run.cases) == 5
    assert run.case("m1").answer and run.case("m1").outcome is not None   # answered this time


def test_unknown_gold_documents_are_reported_and_the_rest_runs(kb, tmp_path: Path) -> None:
    path = tmp_path / "s.jsonl"
    path.write_text(json.dumps({"id": "x", "question": "billing backups", "gold": ["docs/nope.txt"]}) + "\n"
                    + json.dumps(CASES[2]) + "\n")
    run = kb.evaluate(path, metrics=["retrieval"])
    assert run.warnings and "docs/nope.txt" in run.warnings[0]
    assert len(run.cases) == 2 and run.cases[1].scores["recall@10"] == 1.0


def test_runs_are_deleted_with_their_cases_and_pins_protect_baselines(kb, suite_file: Path) -> None:
    first = kb.evaluate(suite_file, metrics=["retrieval"], name="first")
    second = kb.evaluate(suite_file, metrics=["retrieval"], name="second", mode="lexical")
    store = kb.runs
    store.pin("first", "production")
    with pytest.raises(ConfigError, match="baseline 'production'; unpin it first"):
        store.delete(["second", "production"])
    assert len(store.list()) == 2                       # nothing deleted
    with pytest.raises(ConfigError, match="No run 'nope'"):
        store.delete(["second", "nope"])
    assert store.delete(["second", "second"]) == [second.run_id]
    assert [r.run_id for r in store.list()] == [first.run_id] and store.records(second.run_id) == {}
    assert store.unpin("production") == first.run_id and store.pins() == {}
    with pytest.raises(ConfigError, match="No baseline named 'production'"):
        store.unpin("production")
    assert store.delete(["first"]) == [first.run_id] and store.list() == []


def test_limit_and_name(kb, suite_file: Path) -> None:
    run = kb.evaluate(suite_file, metrics=["retrieval"], limit=2, name="baseline")
    assert run.name == "baseline" and len(run.cases) == 2 and run.manifest.cases == 2


def test_a_corrupt_run_store_is_a_clear_error(kb) -> None:
    (kb.path / "runs.sqlite3").write_bytes(b"this is not a database" * 100)
    with pytest.raises(DomainragError, match="run store .*cannot be read.*Move it aside"):
        kb.runs.list()


def test_unknown_metric_groups_are_refused_before_any_work(kb, suite_file: Path) -> None:
    with pytest.raises(ConfigError, match=r"Unknown metric group\(s\) \['speed'\]: use retrieval"):
        kb.evaluate(suite_file, metrics=["retrieval", "speed"])
    assert kb.runs.list() == []


def test_summary_means_equal_trec_eval_aggregates() -> None:
    rng = random.Random(0)
    docs = [f"d{i}" for i in range(30)]
    records, run, qrels = [], {}, {}
    from domainrag.evaluate.metrics import metric
    from domainrag.evaluate.runner import RETRIEVAL_METRICS

    for q in range(40):
        judged = {d: rng.choice([1, 2, 3]) for d in rng.sample(docs, rng.randint(1, 5))}
        ranking = rng.sample(docs, 20)
        qrels[f"q{q}"], run[f"q{q}"] = judged, ranking
        records.append({"id": f"q{q}", "scenario": [], "scores": {m: metric(m)(ranking, judged) for m in RETRIEVAL_METRICS}})
    expected = evaluate_run(run, qrels, RETRIEVAL_METRICS)
    got = summarise(records)["metrics"]["retrieval"]
    for name in RETRIEVAL_METRICS:
        assert got[name] == pytest.approx(expected[name], abs=1e-12)


# -- judge ------------------------------------------------------------------------------------
@pytest.mark.parametrize("reply, faithfulness, status", [
    ('{"score": 5, "unsupported_claims": [], "reason": "all supported"}', 1.0, "ok"),
    ('Here you go: {"score": 3, "unsupported_claims": ["x"]} thanks', 0.5, "repaired"),
    ("score: 2", 0.25, "repaired"),
    ('{"score": 9}', None, "unparseable"),
    ("I think it is fine.", None, "unparseable"),
])
def test_judge_replies_are_parsed_repaired_or_counted(reply: str, faithfulness, status: str) -> None:
    from domainrag.evaluate.faithfulness import parse_judgement

    judgement = parse_judgement(reply)
    assert (judgement.faithfulness, judgement.status) == (faithfulness, status)


def test_judge_metric_scores_counts_and_caches(kb, suite_file: Path, scripted) -> None:
    replies = iter(['{"score": 5, "unsupported_claims": []}', "not json at all", '{"score": 4} extra'] * 3)

    def reply(request):
        if request.json:
            return next(replies)
        return f"{request.sources[0].text.split('. ')[0].rstrip('.')}. [1]"

    scripted.script = reply
    options = dict(metrics=["retrieval", "answer", "judge"], model="scripted:m", judge="scripted:judge", concurrency=1)
    run = kb.evaluate(suite_file, **options)
    f = run.metrics["faithfulness"]
    assert f["judged"] == 5 and f["judge_unparseable"] >= 1 and f["judge_repaired"] >= 1
    assert 0 <= f["faithfulness_judge"] <= 1 and "faithfulness_proxy" in f
    assert run.manifest["judge"] == "scripted:judge" and len(run.manifest["judge_rubric_hash"]) == 16
    unparseable = [c for c in run.cases if c.judge and c.judge.status == "unparseable"]
    assert unparseable and all(c.scores["faithfulness_judge"] is None for c in unparseable)
    calls = len(scripted.requests)
    kb.evaluate(suite_file, **options)
    assert len(scripted.requests) == calls  # answers and verdicts come from the cache


def test_judge_metric_needs_a_judge_model(kb, suite_file: Path) -> None:
    with pytest.raises(ConfigError, match="--judge provider:model"):
        kb.evaluate(suite_file, metrics=["retrieval", "answer", "judge"])


def test_matrix_runs_share_retrieval(kb, suite_file: Path, scripted, monkeypatch) -> None:
    scripted.script = lambda r: f"{r.sources[0].text.split('. ')[0].rstrip('.')}. [1]"
    calls: list[str] = []

    def counting(method):
        def wrapper(self, query, *args, **kwargs):
            calls.append(query)
            return method(self, query, *args, **kwargs)
        return wrapper

    monkeypatch.setattr(type(kb), "search", counting(type(kb).search))
    monkeypatch.setattr(type(kb), "rank_documents", counting(type(kb).rank_documents))
    shared: dict = {}
    store = RunStore(kb.path)
    for model, template in (("scripted:a", "general"), ("scripted:b", "medical")):
        options = EvalOptions(metrics=frozenset({"retrieval", "answer"}), model=model, template=template,
                              name=f"{model}|{template}", retrieval_cache=shared)
        run = run_suite(kb, load_suite(suite_file), options, store)
        assert run.manifest["template"] == f"{template}.en.j2" and run.manifest.model == model
    assert len(calls) == 2 * len(CASES)  # the second run reused every retrieval
    assert any("clinician" in r.messages[0].content for r in scripted.requests)  # medical template used


def test_repeats_sample_anew_and_report_flaky_cases(kb, suite_file: Path, scripted) -> None:
    import itertools

    counter = itertools.count()

    def reply(request):  # a nondeterministic model: every other answer is useless
        good = "Adults start at 50 micrograms daily [1]." if "levothyroxine" in request.question else "No idea [1]."
        return good if next(counter) % 2 == 0 else "It depends on many factors [1]."

    scripted.script = reply
    options = dict(metrics=["retrieval", "answer"], model="scripted:m", repeat=3, concurrency=1)
    run = kb.evaluate(suite_file, **options)
    answered = [c for c in run.cases if c.answerable]
    assert all(c.repeats and len(c.repeats.samples) == 3 for c in answered)
    assert any(c.flaky for c in answered) and run.metrics["stability"]["repeats"] == 3
    assert run.metrics["stability"]["flaky_cases"] >= 1 and run.manifest["repeat"] == 3
    calls = len(scripted.requests)
    assert calls == 3 * sum(1 for c in run.cases if c.outcome and c.outcome.abstain_reason != "weak_evidence")
    kb.evaluate(suite_file, **options)
    assert len(scripted.requests) == calls  # each sample cached under its own key


def test_stop_hook_ends_a_shuffled_run_early(kb, suite_file: Path) -> None:
    seen: list[str] = []

    def stop(record: CaseRecord) -> bool:
        seen.append(record.id)
        return len(seen) == 3

    options = EvalOptions(shuffle=True, seed=7, stop=stop, stop_rule="test: three cases")
    run = run_suite(kb, load_suite(suite_file), options, RunStore(kb.path))
    assert [c.id for c in run.cases] == seen and len(seen) == 3
    assert run.manifest["order"] == "random" and run.manifest.stop_rule == "test: three cases"
    assert seen != ["m1", "f1", "o1"]  # the order was shuffled (seed 7)


def test_answers_cut_by_the_token_limit_are_cached_but_broken_streams_are_not(kb, suite_file: Path, scripted) -> None:
    scripted.script = lambda r: ("Adults start at 50 micrograms daily [1] and then the", "length")
    kb.evaluate(suite_file, metrics=["retrieval", "answer"], model="scripted:m", concurrency=1)
    calls = len(scripted.requests)
    assert calls >= 3
    kb.evaluate(suite_file, metrics=["retrieval", "answer"], model="scripted:m", concurrency=1, name="again")
    assert len(scripted.requests) == calls      # a length-cut answer is what the server returns each time
    scripted.script = lambda r: ("Adults start at 50 micrograms", "incomplete")
    kb.evaluate(suite_file, metrics=["retrieval", "answer"], model="scripted:other", concurrency=1)
    cut = len(scripted.requests) - calls
    kb.evaluate(suite_file, metrics=["retrieval", "answer"], model="scripted:other", concurrency=1, name="x")
    assert len(scripted.requests) - calls == 2 * cut   # a stream cut in transit is asked again


def test_a_corrupt_model_cache_is_a_clear_error_and_a_damaged_entry_a_miss(kb, suite_file: Path, scripted) -> None:
    (kb.path / "model_cache.sqlite3").write_bytes(b"not a database" * 100)
    with pytest.raises(DomainragError, match=r"model-call cache .*cannot be read.*only a cache: delete it"):
        kb.evaluate(suite_file, model="scripted:m")
    (kb.path / "model_cache.sqlite3").unlink()
    cache = ModelCache(kb.path / "model_cache.sqlite3")
    cache._db.execute("INSERT INTO calls VALUES ('k', '{broken')")
    assert cache.get("k") is None
    cache.close()


def test_a_beir_cache_is_used_only_once_complete(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from domainrag import KnowledgeBase
    from domainrag.evaluation import BEIR_COMPLETE

    beir = make_beir(tmp_path / "tiny")
    monkeypatch.setenv("DOMAINRAG_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("DOMAINRAG_KB", raising=False)
    monkeypatch.chdir(tmp_path)
    suite = load_suite(beir)
    notes: list[str] = []
    with KnowledgeBase.for_suite(suite, overrides={"embedder.model": "hash:64"}, notify=notes.append) as kb:
        assert (kb.path / BEIR_COMPLETE).is_file() and kb.store.stats()["documents"] == len(DOCS)
        cached = kb.path
    assert len(notes) == 1
    (cached / BEIR_COMPLETE).unlink()                # as if the first build had been interrupted
    with KnowledgeBase.for_suite(suite, overrides={"embedder.model": "hash:64"}, notify=notes.append) as kb:
        assert kb.path == cached and (kb.path / BEIR_COMPLETE).is_file()
    assert len(notes) == 2                            # completed (incrementally) before use
    with KnowledgeBase.for_suite(suite, overrides={"embedder.model": "hash:64"}, notify=notes.append):
        pass
    assert len(notes) == 2                            # complete: used as it is
