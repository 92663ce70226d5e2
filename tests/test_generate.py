"""Generated suites: heuristic cloze questions and model-written ones, grounded in the documents."""

from __future__ import annotations

import json
import math
from collections import Counter
from pathlib import Path

import pytest

from domainrag.errors import ConfigError, EmptyKnowledgeBase
from domainrag.evaluate.generate import (
    Passage,
    generate_suite,
    heuristic_question,
    parse_draft,
    write_suite,
)
from domainrag.evaluate.suite import load_suite, parse_case

FILES = {
    "medical/guide.md": (
        "# Metformin\n\n## Dosage\n\n"
        "The usual starting dose of metformin for adults is 500 mg taken twice daily with meals.\n"
        "The dose may be increased by no more than 500 mg each week to limit stomach upset.\n\n"
        "## Monitoring\n\n"
        "Kidney function should be checked at least once a year in patients taking metformin.\n"
        "Patients should stop the medicine two days before surgery that needs general anaesthesia.\n"
    ),
    "medical/policy.txt": (
        "Clinical records of adult patients are kept for 8 years after the last visit. "
        "Records of children are kept until the patient turns 25 years old. "
        "The Records Office in Geneva answers requests for copies within 30 days."
    ),
    "finance/report.md": (
        "# Annual report\n\n"
        "Group revenue rose to $4.2 million in 2023, driven by the Asian subscription business.\n"
        "Operating costs fell by 12% after the Lisbon office was closed in the spring.\n"
        "The board proposes a dividend of 15 cents per share for the financial year.\n"
    ),
    "finance/rates.csv": "year,region,revenue\n2022,Europe,3.1 million\n2023,Asia,4.2 million\n2023,Europe,3.4 million\n",
    "finance/劳动法.txt": (
        "劳动合同期限三个月以上不满一年的，试用期不得超过一个月。"
        "劳动合同期限一年以上不满三年的，试用期不得超过二个月。"
        "三年以上固定期限和无固定期限的劳动合同，试用期不得超过六个月。"
    ),
}


@pytest.fixture
def kb(kb_factory, tmp_path: Path):
    for name, text in FILES.items():
        path = tmp_path / "docs" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    base = kb_factory()
    report = base.ingest([tmp_path / "docs" / "medical", tmp_path / "docs" / "finance"])
    assert not report.partial
    return base


def texts(kb) -> dict[str, str]:
    return {d["id"]: d["text"] for d in kb.store.iter_documents()}


def check_grounded(records: list[dict], docs: dict[str, str]) -> None:
    for record in records:
        case = parse_case(record)
        gold = record["gold"][0]
        assert docs[gold["doc_id"]][gold["start"]:gold["end"]] == gold["quote"]
        assert case.generated and record["generated"] is True and case.gold[0].start == gold["start"]


def test_heuristic_suite_is_grounded_deterministic_and_tagged(kb) -> None:
    suite = generate_suite(kb, 12, seed=3)
    assert suite.generator == "heuristic" and len(suite.records) == 12
    assert generate_suite(kb, 12, seed=3).records == suite.records
    docs = texts(kb)
    check_grounded(suite.records, docs)
    for record in suite.records:
        answer, question, quote = record["answers"][0], record["question"], record["gold"][0]["quote"]
        assert answer and answer in quote and answer.casefold() not in question.casefold()
        assert record["scenario"][-1] == "generator:heuristic" and len(record["scenario"]) <= 4
    tags = {t for r in suite.records for t in r["scenario"]}
    assert {"markdown", "text", "csv", "medical", "finance", "en", "zh"} <= tags
    per_doc = Counter(r["gold"][0]["doc_id"] for r in suite.records)
    assert set(per_doc) == set(docs) and max(per_doc.values()) <= math.ceil(12 / len(docs)) + 1
    assert len({r["id"] for r in suite.records}) == 12


def test_heuristic_questions_by_kind(kb) -> None:
    by_quote = {r["gold"][0]["quote"]: r for r in generate_suite(kb, 40).records}
    dose = by_quote["The usual starting dose of metformin for adults is 500 mg taken twice daily with meals."]
    assert dose["answers"] == ["500 mg"] and dose["question"].endswith("___ taken twice daily with meals? (fill in the blank)")
    row = by_quote["2023 | Asia | 4.2 million"]
    assert row["question"] == "What is the revenue for year 2023, region Asia in rates?" and row["answers"] == ["4.2 million"]
    zh = by_quote["劳动合同期限三个月以上不满一年的，试用期不得超过一个月。"]
    assert zh["answers"] == ["三个月"] and zh["question"].endswith("（填空）") and "zh" in zh["scenario"]
    assert not any(q.startswith(("Metformin", "Dosage", "Annual report")) for q in by_quote)  # headings


@pytest.mark.parametrize("sentence, answer", [
    ("Group revenue rose to $4.2 million in 2023, driven by subscriptions.", "$4.2 million"),
    ("Operating costs fell by 12% after the office was closed in spring.", "12%"),
    ("The Records Office in Geneva answers requests for copies quickly.", "Records Office"),
    ("Patients should always stop their anticoagulants before surgery.", "anticoagulants"),
])
def test_cloze_masks_a_number_then_a_name_then_the_longest_content_word(sentence: str, answer: str) -> None:
    passage = Passage({"id": "a.txt", "text": sentence, "title": "a", "metadata": {}}, 0, len(sentence), "en")
    question, masked = heuristic_question(passage)
    assert masked == answer and question == sentence.replace(answer, "___", 1)[:-1] + "? (fill in the blank)"


def test_written_suite_loads_and_evaluates(kb, tmp_path: Path) -> None:
    suite = generate_suite(kb, 12)
    path = write_suite(suite.records, tmp_path / "out" / "generated.jsonl")
    loaded = load_suite(path)
    assert len(loaded.cases) == 12 and all(c.generated for c in loaded.cases)
    run = kb.evaluate(loaded, metrics=["retrieval"])
    assert run.metric("recall@10") > 0.5
    assert run.scenarios["generated"].n == 12 and "generator:heuristic" in run.scenarios


def test_model_generator_parses_repairs_and_counts(kb, scripted) -> None:
    replies = iter(["I cannot do that.", '{"question": "Empty?", "answer": ""}',
                    'Here:\n```json\n{"question": "Fenced?", "answer": "yes"}\n```'])

    def reply(request):
        default = json.dumps({"question": f"Question {len(scripted.requests)}?", "answer": f"answer {len(scripted.requests)}"})
        return next(replies, default)

    scripted.script = reply
    suite = generate_suite(kb, 6, model="scripted:m", seed=1)
    assert suite.generator == "scripted:m" and len(suite.records) == 6
    assert (suite.unparseable, suite.skipped) == (1, 1) and len(scripted.requests) == 8
    assert suite.records[0]["question"] == "Fenced?"
    check_grounded(suite.records, texts(kb))
    assert all(r["scenario"][-1] == "generator:scripted:m" for r in suite.records)
    request = scripted.requests[0]
    assert request.json and request.max_tokens == 200 and '"question"' in request.messages[0].content
    prompts = [r.messages[1].content for r in scripted.requests[3:]]
    for record, prompt in zip(suite.records[1:], prompts, strict=False):
        assert record["gold"][0]["quote"] in prompt
    assert any(r["gold"][0]["quote"].count(". ") >= 1 for r in suite.records if "en" in r["scenario"])


def test_extractive_model_means_heuristic(kb, scripted) -> None:
    suite = generate_suite(kb, 3, model="extractive")
    assert suite.generator == "heuristic" and not scripted.requests


def test_parse_draft_repairs_what_it_can() -> None:
    assert parse_draft('{"question": " What  dose? ", "answer": 500}') == ("What dose?", "500")
    assert parse_draft('Sure. {"note": 1} then {"question": "Q?", "answer": "A"} done') == ("Q?", "A")
    assert parse_draft('{"question": "Q?", "answer": ["A"]}') == ("Q?", "")
    assert parse_draft('{"question": "Q?", "answer": ') is None and parse_draft("no json") is None


def test_empty_knowledge_base_and_bad_n(kb_factory) -> None:
    empty = kb_factory("empty")
    with pytest.raises(EmptyKnowledgeBase, match="domainrag ingest"):
        generate_suite(empty, 5)
    with pytest.raises(ConfigError, match="at least 1"):
        generate_suite(empty, 0)
