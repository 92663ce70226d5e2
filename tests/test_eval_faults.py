"""Evaluations survive provider faults: a failed model call fails its case (recorded with its
reason), not the run; re-running retries only the failed cases; the concurrency adapts to a
server that answers one request at a time. Driven through the real ``openai`` SDK against the
loopback stub (tests/openai_stub.py) in its one-slot and fault-injection modes."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from openai_stub import OpenAIStub, last_user
from rich.console import Console

from domainrag.evaluate.faults import ConcurrencyLimit, failure_kind
from domainrag.evaluate.run_records import Run
from domainrag.evaluate.runner import EvalOptions, run_suite
from domainrag.evaluate.runs import RunStore
from domainrag.evaluate.suite import load_suite
from domainrag.models.generation import GenerationRequest, Message, ProviderSettings, is_loopback, load_generator
from domainrag.report.html import render_html
from domainrag.report.terminal import print_run

N = 12
MODEL = "openai:smollm2"
ANSWERS = frozenset({"retrieval", "answer", "citation"})
RETRIEVAL_KEYS = {"ndcg@10", "recall@10", "recall@100", "mrr@10", "map"}


@pytest.fixture
def corpus(tmp_path: Path) -> tuple[Path, Path]:
    """Twelve one-fact documents and a suite asking for each fact."""
    docs = tmp_path / "docs"
    docs.mkdir()
    cases = []
    for k in range(2, N + 2):  # W2..W13: no id is a prefix of another
        text = f"The weight of the widget model W{k} is {7 * k} grams. It ships in a blue box."
        (docs / f"widget{k}.txt").write_text(text)
        cases.append({"id": f"w{k}", "question": f"What is the weight of the widget model W{k}?",
                      "answers": [f"{7 * k} grams"], "gold": [f"docs/widget{k}.txt"],
                      "scenario": ["even" if k % 2 == 0 else "odd"]})
    suite = tmp_path / "suite.jsonl"
    suite.write_text("\n".join(json.dumps(c) for c in cases) + "\n")
    return docs, suite


def open_kb(kb_factory: Any, docs: Path, url: str, **settings: Any) -> Any:
    kb = kb_factory(**{"answer.base_url": url, "answer.max_tokens": 64, **settings})
    if not kb.status()["documents"]:
        kb.ingest([docs])
    kb.answerer.cache = kb.model_cache
    return kb


def faults_by_widget(faults: dict[int, str]):
    """A stub fault function: ``faults[k]`` for requests asking about widget W{k}."""
    def fault(body: dict[str, Any]) -> str | None:
        found = re.search(r"widget model W(\d+)\?", last_user(body))
        return faults.get(int(found.group(1))) if found else None
    return fault


def asked(stub: OpenAIStub, since: int = 0) -> list[str]:
    """The widget each chat request after the first ``since`` asked about (``w7``...)."""
    out = []
    for request in stub.chat_requests[since:]:
        found = re.search(r"widget model W(\d+)\?", last_user(request["body"]))
        out.append(f"w{found.group(1)}" if found else "?")
    return out


def failed(run: Run) -> dict[str, dict[str, str]]:
    """The failed cases' errors by case id, read from the JSON contract."""
    return {c["id"]: c["error"] for c in run.to_dict()["cases"] if c.get("status") == "failed"}


# -- the slow local server (llama.cpp on a CPU) -----------------------------------------------
@pytest.mark.slow
def test_one_slot_server_with_default_settings_completes_and_rerun_is_free(kb_factory, corpus) -> None:
    docs, suite_path = corpus
    with OpenAIStub(api_key=None, slots=1, service_s=0.3) as stub:
        kb = open_kb(kb_factory, docs, stub.url)
        store, messages = RunStore(kb.path), []
        run = run_suite(kb, load_suite(suite_path), EvalOptions(metrics=ANSWERS, model=MODEL), store, messages.append)
        assert len(run.cases) == N and not failed(run) and run.failed is None and "failed" not in run.to_dict()
        assert any(m.startswith("note: answering one case at a time: the model server at 127.0.0.1:") for m in messages)
        assert sorted(asked(stub)) == sorted(c.id for c in run.cases)  # one call per case, no retry
        assert stub.max_in_service == 1 and run.metric("token_f1") > 0
        calls = len(stub.chat_requests)
        again = run_suite(kb, load_suite(suite_path), EvalOptions(metrics=ANSWERS, model=MODEL), store)
        assert len(stub.chat_requests) == calls                     # 0 model calls: all from the cache
        assert again.run_id != run.run_id and not failed(again)
        assert [c.answer for c in again.cases] == [c.answer for c in run.cases]


@pytest.mark.slow
@pytest.mark.parametrize("cancel_abandoned", [True, False], ids=["llama.cpp", "llama-cpp-python"])
def test_concurrency_is_lowered_when_a_one_slot_server_falls_behind(kb_factory, corpus, cancel_abandoned) -> None:
    """Four calls at once on a server that serves one: the queued ones time out, the
    concurrency is halved and they are retried alone, so the run still completes — also when
    the server finishes the work of calls that timed out (llama-cpp-python does)."""
    docs, suite_path = corpus
    with OpenAIStub(api_key=None, slots=1, service_s=0.4, cancel_abandoned=cancel_abandoned) as stub:
        kb = open_kb(kb_factory, docs, stub.url, **{"answer.timeout_s": 1.5, "answer.max_retries": 0})
        messages: list[str] = []
        options = EvalOptions(metrics=ANSWERS, model=MODEL, concurrency=4)
        run = run_suite(kb, load_suite(suite_path), options, RunStore(kb.path), messages.append)
        assert len(run.cases) == N and not failed(run)
        lowered = [m for m in messages if m.startswith("note: the model server fell behind with 4 calls at once")]
        assert lowered and "--concurrency 1" in lowered[0]
        assert any("this run lowered the concurrency to" in w for w in run.warnings)
        assert len(stub.chat_requests) > N                          # the timed-out calls were sent again
        calls = len(stub.chat_requests)
        run_suite(kb, load_suite(suite_path), options, RunStore(kb.path))
        assert len(stub.chat_requests) == calls


# -- faults: recorded, counted, excluded, retried -----------------------------------------------
@pytest.mark.slow
def test_faults_fail_their_cases_and_a_rerun_retries_only_them(kb_factory, corpus, tmp_path: Path) -> None:
    docs, suite_path = corpus
    faults = {3: "500", 5: "hang", 7: "cut", 9: "drop"}
    with OpenAIStub(api_key=None) as stub:
        stub.fault = faults_by_widget(faults)
        kb = open_kb(kb_factory, docs, stub.url, **{"answer.timeout_s": 0.5, "answer.max_retries": 1})
        store = RunStore(kb.path)
        run = run_suite(kb, load_suite(suite_path), EvalOptions(metrics=ANSWERS, model=MODEL), store)
        errors = failed(run)
        assert {k: e["kind"] for k, e in errors.items()} == {
            "w3": "server_error", "w5": "timeout", "w7": "connection", "w9": "connection"}
        assert all(e["stage"] == "answer" and e["message"] for e in errors.values())
        assert "HTTP 500" in errors["w3"]["message"] and "0.5 s" in errors["w5"]["message"]
        assert asked(stub).count("w3") == 2                          # the SDK retried once, then gave up
        # The records: failed ones hold retrieval and the reason; the others are unchanged.
        data = run.to_dict()
        by_id = {c["id"]: c for c in data["cases"]}
        assert set(by_id["w3"]["scores"]) == RETRIEVAL_KEYS and by_id["w3"]["answer"] is None
        assert "abstained" not in by_id["w3"] and "usage" not in by_id["w3"]
        assert all("status" not in c and "error" not in c for i, c in by_id.items() if i not in errors)
        # The summary: counted, explained, excluded from answer metrics, kept in retrieval ones.
        by_kind = {"connection": 2, "server_error": 1, "timeout": 1}
        assert data["failed"] == run.failed == {"count": 4, "by_kind": by_kind, "cases": ["w3", "w5", "w7", "w9"]}
        assert run.warnings[0].startswith("4 of 12 cases failed (2 connection, 1 server error, 1 timeout)")
        assert any("answer.timeout_s" in w and "--concurrency 1" in w for w in run.warnings)
        assert data["scenarios"]["odd"]["failed"] == 4 and "failed" not in data["scenarios"]["even"]
        assert Run.from_dict(data).to_dict() == data                 # the typed records keep it all
        assert run.case("w3").failed and run.case("w3").error == errors["w3"] and not run.case("w2").failed
        ok = [c for c in run.cases if not c.failed]
        f1 = sum(c.scores["token_f1"] for c in ok) / len(ok)
        assert run.metric("token_f1") == pytest.approx(f1)
        ndcg = sum(c.scores["ndcg@10"] for c in run.cases) / N
        assert run.metric("ndcg@10") == pytest.approx(ndcg)
        (listed,) = store.list()
        assert (listed.status, listed.judged, listed.failed) == ("done", 12, 4)
        # The reports show the run: the terminal prints the failure lines, the page renders.
        console = Console(record=True, width=300)
        print_run(run, console)
        assert "warning: 4 of 12 cases failed" in console.export_text()
        assert "<html" in render_html(data)
        store.close()
        kb.close()

        # Re-run with a longer timeout: the same run reopens and only the failed cases are asked.
        stub.fault = lambda body: None
        kb = open_kb(kb_factory, docs, stub.url, **{"answer.timeout_s": 5, "answer.max_retries": 1})
        store, messages = RunStore(kb.path), []
        before = len(stub.chat_requests)
        options = EvalOptions(metrics=ANSWERS, model=MODEL)
        retried = run_suite(kb, load_suite(suite_path), options, store, messages.append)
        assert messages[0] == f"retrying 4 failed case(s) of {run.run_id}: 8 done"
        assert retried.run_id == run.run_id and sorted(asked(stub, before)) == ["w3", "w5", "w7", "w9"]
        assert not failed(retried) and retried.failed is None and len(retried.cases) == N
        assert [c.id for c in retried.cases] == [c.id for c in run.cases]   # suite order kept
        (listed,) = store.list()
        assert (listed.status, listed.failed) == ("done", 0)
        # Nothing failed any more: an unchanged re-run is a new run and makes no model call.
        before = len(stub.chat_requests)
        third = run_suite(kb, load_suite(suite_path), EvalOptions(metrics=ANSWERS, model=MODEL), store)
        assert third.run_id != run.run_id and len(stub.chat_requests) == before


def test_the_evaluation_api_records_faults_at_its_default_concurrency(kb_factory, corpus) -> None:
    """``kb.evaluate`` (4 answers at a time by default): a case the server always fails with
    500 is recorded as failed without lowering the concurrency; calling it again retries it."""
    docs, suite_path = corpus
    with OpenAIStub(api_key=None) as stub:
        stub.fault = faults_by_widget({4: "500", 8: "500"})
        kb = open_kb(kb_factory, docs, stub.url)
        messages: list[str] = []
        run = kb.evaluate(suite_path, model=MODEL, progress=messages.append)
        assert set(failed(run)) == {"w4", "w8"} and run.failed and run.failed["by_kind"] == {"server_error": 2}
        assert not any("lowering the concurrency" in m for m in messages)
        stub.fault = lambda body: None
        before = len(stub.chat_requests)
        again = kb.evaluate(suite_path, model=MODEL)
        assert again.run_id == run.run_id and again.failed is None and sorted(asked(stub, before)) == ["w4", "w8"]


def test_a_dead_server_is_given_up_on_after_ten_failures_in_a_row(kb_factory, corpus) -> None:
    docs, suite_path = corpus
    with OpenAIStub(api_key=None) as stub:
        url = stub.url
    kb = open_kb(kb_factory, docs, url, **{"answer.max_retries": 0})  # the port is closed now
    run = run_suite(kb, load_suite(suite_path), EvalOptions(metrics=ANSWERS, model=MODEL), RunStore(kb.path))
    assert run.failed and run.failed["by_kind"] == {"connection": 10, "not_attempted": 2}
    skipped = [e for e in failed(run).values() if e["kind"] == "not_attempted"]
    assert "the 10 model calls before it failed in a row" in skipped[0]["message"]
    assert "could not be reached" in skipped[0]["message"]
    assert run.metric("recall@100") == 1.0 and "answer" not in run.metrics


def test_a_judge_failure_fails_the_case_at_the_judge_stage(kb_factory, corpus, scripted) -> None:
    docs, suite_path = corpus
    scripted.script = lambda r: f"{r.sources[0].text.split('. ')[0]}. [1]"
    kb = kb_factory()
    kb.ingest([docs])
    options = EvalOptions(metrics=frozenset({"retrieval", "answer", "judge"}), model="scripted:m",
                          judge="scripted:fail", limit=3)
    run = run_suite(kb, load_suite(suite_path), options, RunStore(kb.path))
    assert {e["stage"] for e in failed(run).values()} == {"judge"}
    assert run.failed and run.failed["count"] == 3 and run.failed["by_kind"] == {"model_error": 3}
    assert "faithfulness" not in run.metrics and "cost" not in run.metrics


def test_a_configuration_error_still_ends_the_run_before_any_case(kb_factory, corpus) -> None:
    from domainrag.errors import ConfigError

    docs, suite_path = corpus
    kb = kb_factory()
    kb.ingest([docs])
    with pytest.raises(ConfigError, match="Unknown model provider 'nope'"):
        run_suite(kb, load_suite(suite_path), EvalOptions(metrics=ANSWERS, model="nope:x"), RunStore(kb.path))


# -- the pieces ---------------------------------------------------------------------------------
REQUEST = GenerationRequest((Message("user", "hi"),), max_tokens=8)


@pytest.mark.parametrize(("stub_options", "settings", "kind"), [
    ({"fail_429": 5}, {}, "rate_limit"),
    ({"fail_500": 5}, {}, "server_error"),
    ({"api_key": "right"}, {"api_key_env": "WRONG_KEY"}, "auth"),
    ({"delay_s": 1.0}, {"timeout_s": 0.2}, "timeout"),
])
def test_failure_kinds_of_real_sdk_errors(stub_options: dict, settings: dict, kind: str, monkeypatch) -> None:
    monkeypatch.setenv("WRONG_KEY", "wrong")
    with OpenAIStub(**stub_options) as stub:
        monkeypatch.setenv("STUB_KEY", stub.api_key or "")
        generator = load_generator(MODEL, ProviderSettings(**{"base_url": stub.url, "api_key_env": "STUB_KEY",
                                                               "max_retries": 0, **settings}))
        with pytest.raises(Exception) as info:
            generator.complete(REQUEST)
    assert failure_kind(info.value) == kind


@pytest.mark.parametrize(("failure", "kind"), [("fail_529", "server_error"), ("fail_429", "rate_limit")])
def test_failure_kinds_of_anthropic_errors(failure: str, kind: str, monkeypatch) -> None:
    from anthropic_replay import AnthropicReplay

    monkeypatch.setenv("ANTHROPIC_API_KEY", "replay-key")
    with AnthropicReplay(**{failure: 5}) as replay:
        generator = load_generator("anthropic:claude-sonnet-4-6", ProviderSettings(base_url=replay.url, max_retries=0))
        with pytest.raises(Exception) as info:
            generator.complete(REQUEST)
    assert failure_kind(info.value) == kind


def test_not_found_and_other_errors() -> None:
    from domainrag.errors import GenerationError

    with OpenAIStub(api_key=None) as stub:
        generator = load_generator(MODEL, ProviderSettings(base_url=stub.url + "/nope", max_retries=0))
        with pytest.raises(GenerationError) as info:
            generator.complete(REQUEST)
    assert failure_kind(info.value) == "not_found"
    assert failure_kind(GenerationError("Every model failed: a | b")) == "model_error"


def test_concurrency_limit_halves_once_per_round_and_never_below_one() -> None:
    limit = ConcurrencyLimit(4)
    assert limit.lower(0) and limit.value == 2
    assert not limit.lower(0) and limit.value == 2      # a call of the same round: no second cut
    assert limit.lower(1) and limit.value == 1
    assert not limit.lower(2) and limit.value == 1


@pytest.mark.parametrize(("url", "local"), [
    ("http://127.0.0.1:8080/v1", True), ("http://localhost:11434/v1", True), ("http://[::1]:8000/v1", True),
    ("http://10.0.0.5:8000/v1", False), ("https://api.openai.com/v1", False), (None, False)])
def test_loopback_servers_are_recognised(url: str | None, local: bool) -> None:
    assert is_loopback(url) is local


def test_calls_to_a_local_server_may_take_ten_minutes_unless_set() -> None:
    local, remote = "http://127.0.0.1:8080/v1", "http://10.0.0.5:8000/v1"
    assert load_generator(MODEL, ProviderSettings(base_url=local)).timeout_s == 600
    assert load_generator(MODEL, ProviderSettings(base_url=remote)).timeout_s == 60
    assert load_generator(MODEL, ProviderSettings(base_url=local, timeout_s=5)).timeout_s == 5


def test_stub_one_slot_queues_and_cancels_requests_whose_client_left() -> None:
    import openai

    with OpenAIStub(slots=1, service_s=0.6) as stub:
        client = openai.OpenAI(base_url=stub.url, api_key=stub.api_key, max_retries=0, timeout=0.3)
        with pytest.raises(openai.APITimeoutError):
            client.chat.completions.create(model="m", messages=[{"role": "user", "content": "slow"}])
        fast = openai.OpenAI(base_url=stub.url, api_key=stub.api_key, max_retries=0, timeout=5)
        reply = fast.chat.completions.create(model="m", messages=[{"role": "user", "content": "again"}])
    assert reply.choices[0].message.content == "I do not know."
    assert stub.max_in_service == 1 and stub.cancelled == 1 and len(stub.chat_requests) == 2
