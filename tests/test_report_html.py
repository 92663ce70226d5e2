"""HTML report of an evaluation run: self-contained, escaped, deterministic, balanced tags."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest

from domainrag.report.html import render_html, write_html

SCENARIOS = ("medical", "legal", "finance")
SCRIPT = "<script>alert(1)</script>"
VOID = {"meta", "br", "hr", "img", "input", "link", "wbr", "col", "area", "base", "source"}


def _case(i: int) -> dict:
    """Case ``q{i:02d}``: token_f1 = (i % 10) / 10, so scores tie in threes (q00, q10, q20...)."""
    scenario = SCENARIOS[i % 3]
    return {
        "id": f"q{i:02d}",
        "question": SCRIPT if i == 0 else f"What does clause {i} of the {scenario} policy say?",
        "scenario": [scenario],
        "generated": i % 7 == 0,
        "retrieved": [f"doc{(i + j) % 12}" for j in range(8)],
        "gold": [
            {
                "doc_id": f"doc{i % 12}",
                "quote": f"Clause {i} says & means it.",
                "start": 10,
                "end": 40,
                "page": None,
            }
        ],
        "answers": [f"Clause {i} answer"],
        "answerable": i % 9 != 4,
        "answer": None if i % 5 == 3 else f"Generated answer {i}",
        "abstained": i % 5 == 3,
        "citations": [
            {
                "number": 1,
                "doc_id": f"doc{i % 12}",
                "page": 3,
                "quote": f"Clause {i} says",
                "supported": i % 2 == 0,
            }
        ],
        "scores": {
            "ndcg@10": round(1 - (i % 10) / 10, 3),
            "recall@10": 1.0,
            "token_f1": (i % 10) / 10,
            "citation_precision": None,
        },
        "latency_ms": 10.0 + i,
    }


def _retrieval_only_case() -> dict:
    return {
        "id": "q29",
        "question": "Which regulation covers retention?",
        "scenario": ["legal"],
        "generated": False,
        "retrieved": ["doc3", "doc9", "doc1"],
        "gold": [
            {"doc_id": "doc9", "quote": "Retention is 7 years.", "start": 0, "end": 21, "page": 2}
        ],
        "scores": {"ndcg@10": 0.631, "recall@10": 1.0},
        "latency_ms": 4.2,
    }


def _scenario(n: int, base: float, citation: float | None) -> dict:
    return {
        "n": n,
        "metrics": {
            "retrieval": {"ndcg@10": base, "recall@10": base + 0.1, "map": None},
            "answer": {"exact_match": base / 2, "token_f1": base - 0.1},
            "citation": {"citation_precision": citation, "grounded": 0.9},
        },
        "ci95": {
            "retrieval": {"ndcg@10": [base - 0.05, base + 0.05]},
            "answer": {"token_f1": [base - 0.2, base]},
            "citation": {"citation_precision": None},
        },
    }


@pytest.fixture
def run() -> dict:
    cases = [_case(i) for i in range(29)] + [_retrieval_only_case()]
    cases[27]["scores"] = {"ndcg@10": None, "token_f1": None}
    return {
        "run_id": "r-20261122-0001",
        "name": "baseline",
        "created": "2026-11-22T07:00:00Z",
        "manifest": {
            "model": "extractive",
            "model_version": "1",
            "judge": None,
            "template_hash": "t0",
            "config_hash": "c0",
            "corpus_hash": "k0",
            "index_hash": "i0",
            "suite": "suites/policies.jsonl",
            "suite_hash": "s0",
            "code_version": "0.1.0",
            "seed": 0,
            "overrides": {"retrieval.k": 20},
            "split": "test",
            "mode": "hybrid",
        },
        "metrics": {
            "retrieval": {
                "ndcg@10": 0.71,
                "recall@10": 0.8,
                "recall@100": 0.95,
                "mrr@10": 0.66,
                "map": 0.6,
            },
            "answer": {"exact_match": 0.3, "token_f1": 0.5, "numeric_match": None},
            "citation": {"citation_precision": 0.8, "citation_recall": 0.7, "grounded": 0.9},
            "abstention": {},
            "cost": {
                "latency_ms_p50": 12.0,
                "latency_ms_p95": 30.0,
                "prompt_tokens": 1000,
                "completion_tokens": 200,
                "cost_usd": None,
            },
        },
        "ci95": {
            "retrieval": {"ndcg@10": [0.65, 0.77], "recall@10": [0.7, 0.9]},
            "answer": {"token_f1": [0.41, 0.59]},
        },
        "scenarios": {
            "medical": _scenario(10, 0.8, 0.85),
            "legal": _scenario(10, 0.6, None),
            "finance": _scenario(10, 0.7, 0.75),
        },
        "cases": cases,
    }


class _BalanceChecker(HTMLParser):
    """Fails on an end tag that does not close the innermost open element."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.tags: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag, attrs):
        self.tags.append(tag)

    def handle_endtag(self, tag):
        assert self.stack and self.stack[-1] == tag, f"</{tag}> closes {self.stack[-1:]}"
        self.stack.pop()


def _case_ids(page: str) -> list[str]:
    return re.findall(r'<article class="case" id="case-([^"]+)"', page)


def _card(page: str, case_id: str) -> str:
    start = page.index(f'id="case-{case_id}"')
    return page[start : page.index("</article>", start)]


def test_page_is_one_balanced_html_document(run):
    page = render_html(run)
    assert page.startswith("<!doctype html>")
    assert page.count("<html") == 1 and page.rstrip().endswith("</html>")
    checker = _BalanceChecker()
    checker.feed(page)
    checker.close()
    assert checker.stack == []
    assert checker.tags.count("html") == checker.tags.count("body") == 1


def test_page_is_self_contained(run):
    page = render_html(run)
    assert "http://" not in page and "https://" not in page
    assert "<script" not in page.lower()
    assert " src=" not in page and "@import" not in page and "url(" not in page
    assert set(re.findall(r'href="([^"]*)"', page)) <= {
        "#overall",
        "#scenarios",
        "#distributions",
        "#worst",
    }


def test_user_text_is_escaped(run):
    page = render_html(run)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "Clause 0 says &amp; means it." in page
    assert "{&quot;retrieval.k&quot;: 20}" in page  # nested manifest value, as JSON


def test_header_and_overall_metrics(run):
    page = render_html(run)
    assert "<h1>baseline</h1>" in page and "r-20261122-0001" in page
    assert "2026-11-22T07:00:00Z" in page
    for key in run["manifest"]:
        assert f"<code>{key}</code>" in page
    assert "<td>0.710</td><td>[0.650, 0.770]</td>" in page  # ndcg@10: value and CI
    assert "<td><code>numeric_match</code></td><td>—</td><td>—</td>" in page  # None metric
    assert "<td><code>prompt_tokens</code></td><td>1000</td>" in page  # integers stay integers
    assert "<h3>abstention</h3>" not in page  # an empty group is left out


def test_scenarios_have_charts_and_tables(run):
    page = render_html(run)
    for name in SCENARIOS:
        assert f"{name} (n=10)" in page  # a row in each headline chart
        assert f"<tr><td>{name}</td><td>10</td>" in page  # a row in each scenario table
    scenarios = page[page.index('<section id="scenarios">') : page.index('<section id="distr')]
    assert scenarios.count("<svg") == 3  # ndcg@10, token_f1, citation_precision
    assert "overall (0.710)" in scenarios and 'stroke-dasharray="4 3"' in scenarios
    # legal's citation_precision is null: its row has a label but no dot, so 2 dots in 3 rows.
    citation = scenarios[scenarios.index("citation citation_precision") :]
    citation = citation[: citation.index("</svg>")]
    assert citation.count("<circle") == 2


def test_histograms_for_case_scores(run):
    page = render_html(run)
    section = page[page.index('<section id="distributions">') : page.index('<section id="worst">')]
    assert section.count("<svg") == 2
    assert "ndcg@10 per case: 29 cases" in section  # q27 has a null ndcg@10
    assert "token_f1 per case: 28 cases" in section  # q27 null, q29 retrieval-only


def test_worst_cases_order_by_score_then_id(run):
    ids = _case_ids(render_html(run))
    expected = [f"q{i:02d}" for score in range(7) for i in (score, score + 10, score + 20)][:20]
    assert ids == expected  # q27 (null score) and q29 (no token_f1) are not among the worst


def test_worst_case_card_contents(run):
    page = render_html(run)
    card = _card(page, "q00")
    assert '<span class="tag generated">generated</span>' in card
    assert '<span class="tag">medical</span>' in card
    assert "Generated answer 0" in card and "<li>Clause 0 answer</li>" in card
    assert '<span class="ok">✓</span>' in card
    assert '<mark class="gold">doc0</mark>' in card
    assert card.count("<li>") - 1 == 5  # top-5 retrieved, plus one reference answer
    assert "<code>token_f1</code> 0.000" in card
    assert "generated" not in _card(page, "q01")
    abstained = _card(page, "q03")
    assert "<em>abstained</em>" in abstained and '<span class="bad">✗</span>' in abstained
    assert "<em>unanswerable</em>" in _card(page, "q04")


def test_retrieval_only_run(run):
    only = {
        "run_id": "r-2",
        "cases": [_retrieval_only_case()],
        "metrics": {"retrieval": run["metrics"]["retrieval"]},
    }
    page = render_html(only)
    assert _case_ids(page) == ["q29"]
    card = _card(page, "q29")
    assert "<dt>answer</dt>" not in card and "<dt>citations</dt>" not in card
    assert "ndcg@10 0.631" in card and '<mark class="gold">doc9</mark>' in card
    assert page.count("<svg") == 1  # the ndcg@10 histogram; no scenarios


def test_minimal_run_renders():
    page = render_html({})
    assert page.startswith("<!doctype html>") and "No metrics." in page and "No cases." in page


def test_output_is_deterministic(run):
    assert render_html(run) == render_html(run)


def test_write_html(run, tmp_path):
    target = tmp_path / "reports" / "baseline.html"
    written = write_html(run, str(target))
    assert written == target and target.is_file()
    assert target.read_text(encoding="utf-8") == render_html(run)


# -- hostile text end to end: a document, a question, a model's answer and a run name -------------
HOSTILE = ('<script>alert("doc")</script> <img src=x onerror=alert(1)> <a href="javascript:alert(2)">x</a> '
           '<svg onload=alert(3)> "quoted" & \'single\' </textarea></title>')


class _TagCollector(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: set[str] = set()
        self.attributes: set[str] = set()

    def handle_starttag(self, tag, attrs):
        self.tags.add(tag)
        self.attributes.update(f"{name}={value}" for name, value in attrs)

    handle_startendtag = handle_starttag


def _assert_inert(page: str) -> None:
    """Nothing from the data became markup: no script, image, event handler or javascript: link,
    and the hostile text shows as text."""
    collector = _TagCollector()
    collector.feed(page)
    collector.close()
    assert not collector.tags & {"script", "img", "iframe", "object", "embed", "textarea"}
    assert not any(a.split("=")[0].startswith("on") for a in collector.attributes)
    assert not any("javascript:" in a for a in collector.attributes)
    assert "<img" not in page and "<script" not in page.lower() and "onload=alert(3)>" not in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page
    checker = _BalanceChecker()
    checker.feed(page)
    checker.close()
    assert checker.stack == []


def test_hostile_text_from_documents_questions_answers_and_names_is_escaped(kb_factory, tmp_path, scripted):
    import json as json_module

    from domainrag.compare.compare import compare_runs
    from domainrag.evaluate.runner import EvalOptions, run_suite
    from domainrag.evaluate.runs import RunStore
    from domainrag.evaluate.suite import load_suite
    from domainrag.report.comparison_html import render_comparison_html, render_matrix_html

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "evil.txt").write_text(f"Metformin treats type 2 diabetes. {HOSTILE}")
    suite = tmp_path / "suite.jsonl"
    case = {"id": "x1<img src=x onerror=alert(1)>", "question": f"What treats type 2 diabetes? {HOSTILE}",
            "answers": [f"Metformin {HOSTILE}"], "gold": [{"doc_id": "docs/evil.txt", "quote": HOSTILE}],
            "scenario": [f"s{HOSTILE}"]}
    suite.write_text(json_module.dumps(case) + "\n")
    kb = kb_factory(**{"answer.min_grounded": 0.0})  # the answers are shown, whatever their support
    kb.ingest([docs])
    store = RunStore(kb.path)
    runs = []
    for i, reply in enumerate((f"Metformin {HOSTILE} [1]", "Insulin <b>bold</b> [1]")):
        scripted.script = [reply]
        options = EvalOptions(metrics=frozenset({"retrieval", "answer"}), model="scripted:m",
                              name=f"run{i} <img src=x onerror=alert(1)>", concurrency=1)
        runs.append(run_suite(kb, load_suite(suite), options, store))
    pages = [run.to_dict() for run in runs]
    assert "<img src=x onerror=alert(1)>" in pages[0]["name"] and HOSTILE in pages[0]["cases"][0]["question"]
    store.close()
    comparison = compare_runs(runs[0], runs[1], force=True)
    assert comparison.flips  # the hostile answers are shown side by side
    report = comparison.to_dict()
    for page in (render_html(pages[0]), render_html(pages[1]), render_comparison_html(report),
                 render_matrix_html([report, report])):
        _assert_inert(page)


def test_tampered_numbers_in_a_stored_comparison_are_escaped():
    from domainrag.report.comparison_html import render_comparison_html

    bad = "<img src=x onerror=alert(1)>"
    report = {"a": "a", "b": "b", "metrics": {"token_f1": {"n": bad, "a": bad, "b": 0.5, "delta": bad, "p": bad,
                                                           "mde": bad, "verdict": bad, "ci": [0, 1]}},
              "scenarios": {bad: {"n": bad, "metrics": {}}},
              "flips": [{"id": bad, "direction": bad, "question": bad, "a_score": bad, "b_score": bad}]}
    _assert_inert(render_comparison_html(report))
