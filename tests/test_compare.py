"""Comparing runs: refusals, pairing on the intersection, scenarios, flips, gates, the CLI."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from domainrag import Run, compare_runs, gate
from domainrag.compare.compare import manifest_diff
from domainrag.config import GateConfig
from domainrag.errors import ConfigError


def run_dict(run_id: str, scores: list[dict], *, manifest: dict | None = None, name: str = "r") -> dict:
    cases = [{"id": f"c{i}", "question": f"question {i}?", "scenario": ["even" if i % 2 == 0 else "odd"],
              "answer": f"answer {i}", "scores": s} for i, s in enumerate(scores)]
    base = {"suite_hash": "s1", "corpus_hash": "k1", "model": "m1", "config_hash": "h1"}
    return {"run_id": run_id, "name": name, "manifest": {**base, **(manifest or {})}, "cases": cases}


def make_run(run_id: str, scores: list[dict], **options: object) -> Run:
    return Run.from_dict(run_dict(run_id, scores, **options))  # type: ignore[arg-type]


def noisy(n: int, shift: float, seed: int, odd_shift: float | None = None) -> list[dict]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        delta = odd_shift if odd_shift is not None and i % 2 else shift
        base = 0.5 + 0.3 * rng.random()
        out.append({"token_f1": min(1.0, max(0.0, base + delta)), "exact_match": float(base + delta > 0.7),
                    "latency_ms": 100.0 + 10 * rng.random() + (delta * 100)})
    return out


BASE = noisy(200, 0.0, seed=1)


def test_manifest_diff_names_what_changed() -> None:
    diff = manifest_diff({"model": "a", "seed": 0, "cases": 5}, {"model": "b", "seed": 0, "cases": 9})
    assert diff == {"model": {"a": "a", "b": "b"}}
    settings = {"embedder.max_length": 256, "retrieval.k": 10}
    new = manifest_diff({"config_hash": "x", "settings": settings},
                        {"config_hash": "y", "settings": {**settings, "embedder.max_length": 128}})
    assert new == {"config_hash": {"a": "x", "b": "y"}, "settings.embedder.max_length": {"a": 256, "b": 128}}
    # A run recorded before settings were: no setting-by-setting noise.
    assert manifest_diff({"config_hash": "x"}, {"config_hash": "x", "settings": settings}) == {}


def test_clear_improvement_is_better_with_ci_and_mde() -> None:
    report = compare_runs(make_run("A", BASE), make_run("B", noisy(200, 0.1, seed=2), manifest={"model": "m2"}))
    f1 = report.metrics["token_f1"]
    assert f1.verdict == "better" and f1.p < 0.01 and f1.ci and f1.ci[0] > 0 and f1.mde and f1.mde > 0
    assert report.manifest_diff == {"model": {"a": "m1", "b": "m2"}}
    assert report.metrics["exact_match"].test == "mcnemar"
    assert report.axes["latency_ms"].verdict == "worse" and "slower" in str(report.axes["latency_ms"].summary)
    lo, hi = f1.ci
    assert report.headline == (f"token_f1 better by {f1.delta:+.3f} [{lo:+.3f}, {hi:+.3f}]; "
                               f"{report.axes['latency_ms'].summary}")


def test_identical_runs_show_no_difference_without_dividing_by_zero() -> None:
    report = compare_runs(make_run("A", BASE), make_run("B", BASE))
    assert all(m.verdict == "no detectable difference" for m in report.metrics.values())
    assert report.metrics["token_f1"].p == 1.0 and report.flips == ()
    assert report.headline == "token_f1 within ±0.000 (no detectable difference)"


def test_scenario_regression_is_found_and_gated() -> None:
    worse_odd = noisy(200, 0.0, seed=1, odd_shift=-0.15)
    report = compare_runs(make_run("A", BASE), make_run("B", worse_odd))
    odd = report.scenarios["odd"].metrics["token_f1"]
    assert odd.verdict == "worse" and odd.p_holm is not None and report.scenarios["odd"].correction == "holm"
    assert report.verdict("token_f1", "even") == "no detectable difference"
    assert any(f.direction == "pass→fail" for f in report.flips)
    result = gate(report, GateConfig())
    assert not result.passed and any("in scenario 'odd' got worse" in r for r in result.reasons)


def test_comparison_page_charts_deltas_by_scenario() -> None:
    from domainrag.report.comparison_html import render_comparison_html

    worse_odd = noisy(200, 0.0, seed=1, odd_shift=-0.15)
    page = render_comparison_html(compare_runs(make_run("A", BASE), make_run("B", worse_odd)).to_dict())
    chart = page[page.index('aria-label="Δ token_f1, B − A"'):]
    chart = chart[: chart.index("</svg>")]
    assert "all cases" in chart and "odd (n=100)" in chart and "even (n=100)" in chart
    assert chart.count("<circle") == 3 and 'fill="#b91c1c"' in chart    # odd: worse, in red
    cited = run_dict("B", worse_odd)
    for case in cited["cases"]:
        case.update(abstained=False, citations=[{"number": 1, "doc_id": "docs/<policy>.md", "supported": False}])
    flips_page = render_comparison_html(compare_runs(make_run("A", BASE), Run.from_dict(cited)).to_dict())
    flips = flips_page[flips_page.index('id="flips"'):]
    assert "[1] <code>docs/&lt;policy&gt;.md</code>" in flips and 'class="bad">✗' in flips
    assert "https://" not in page and "<script" not in page
    hostile = render_comparison_html(compare_runs(make_run("A", BASE),
                                                  make_run("B", BASE, manifest={"model": "<script>x</script>"})).to_dict())
    assert "<script" not in hostile and "&lt;script&gt;x&lt;/script&gt;" in hostile


def test_gate_thresholds_floor_and_max_regression() -> None:
    report = compare_runs(make_run("A", BASE), make_run("B", noisy(200, -0.03, seed=1)))
    loose = GateConfig(metrics={"token_f1": {"max_regression": 0.05}})
    assert gate(report, loose).passed
    strict = GateConfig(metrics={"token_f1": {"floor": 0.9, "max_regression": 0.01}},
                        scenarios={"odd": {"ndcg@10": {"floor": 0.5}}})
    reasons = gate(report, strict).reasons
    assert any("below the floor 0.900" in r for r in reasons)
    assert any("fell by 0.030" in r and "allowed 0.010" in r for r in reasons)
    assert any("ndcg@10 in scenario 'odd' could not be checked" in r for r in reasons)


def test_missing_null_and_nan_scores_are_left_out_of_the_pairs() -> None:
    odd = [dict(s) for s in BASE]
    odd[0]["token_f1"], odd[1]["token_f1"], odd[2]["token_f1"] = None, float("nan"), "n/a"
    del odd[3]["token_f1"]
    report = compare_runs(make_run("A", BASE), make_run("B", odd))
    assert report.metrics["token_f1"].n == len(BASE) - 4
    assert report.verdict("token_f1") == "no detectable difference"


def test_refusals_and_the_intersection() -> None:
    a = make_run("A", BASE)
    with pytest.raises(ConfigError, match="Both sides are run A"):
        compare_runs(a, a)
    other = make_run("B", BASE, manifest={"suite_hash": "s2"})
    with pytest.raises(ConfigError, match="different data.*--force"):
        compare_runs(a, other)
    forced = compare_runs(a, other, force=True)
    assert forced.forced and not gate(forced, GateConfig(metrics={"token_f1": {"floor": 0.0}})).passed
    half = make_run("B", BASE[:120])
    report = compare_runs(a, half)
    assert report.cases.common == 120 and "compared on the 120 cases" in report.cases.note
    assert "interrupted or limited" in report.cases.note
    adaptive = make_run("B", BASE[:80], manifest={"stop_rule": "adaptive: betting test", "order": "random"})
    note = compare_runs(a, adaptive).cases.note
    assert "(A has 200, B has 80: B stopped early by its adaptive rule)" in note
    disjoint = run_dict("C", BASE)
    for case in disjoint["cases"]:
        case["id"] = "x" + case["id"]
    with pytest.raises(ConfigError, match="no case in common"):
        compare_runs(a, Run.from_dict(disjoint))


def test_compare_cli_with_pins_and_gate(kb_factory, tmp_path: Path) -> None:
    from test_cli import run

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.md").write_text("# Retention\n\nCustomer records are kept for seven years.")
    (docs / "b.txt").write_text("Passwords must be rotated every ninety days.")
    suite = tmp_path / "suite.jsonl"
    suite.write_text("\n".join(json.dumps({"id": f"q{i}", "question": q, "gold": [d], "scenario": [s]})
                               for i, (q, d, s) in enumerate([("How long are customer records kept?", "docs/a.md", "retention"),
                                                              ("How often are passwords rotated?", "docs/b.txt", "security")])))
    run("ingest", str(docs), "--embedder", "hash:64", cwd=tmp_path)
    run("eval", str(suite), "--metrics", "retrieval", "--name", "first", cwd=tmp_path)
    run("runs", "pin", "first", "production", cwd=tmp_path)
    assert "baseline production" in run("runs", cwd=tmp_path).stdout
    proc = run("eval", str(suite), "--metrics", "retrieval", "--mode", "lexical", "--name", "second",
               "--compare-to", "production", "--gate", cwd=tmp_path)
    assert "changed mode: hybrid → lexical" in proc.stdout and "Gate (no significant regression): passed" in proc.stdout
    out = run("compare", "production", "second", "--json", "cmp.json", "--html", "cmp.html", cwd=tmp_path).stdout
    page = (tmp_path / "cmp.html").read_text()
    assert page.startswith("<!doctype html>") and "changed" in page and "https://" not in page
    data = json.loads((tmp_path / "cmp.json").read_text())
    assert {"a", "b", "manifest_diff", "metrics", "scenarios", "flips", "gate"} <= set(data) and "ndcg@10" in out
    adaptive = run("eval", str(suite), "--metrics", "retrieval", "--compare-to", "production", "--adaptive",
                   cwd=tmp_path).stdout
    assert "Adaptive: undecided on ndcg@10 after 2 of 2 paired cases" in adaptive
    budget = run("eval", str(suite), "--metrics", "retrieval", "--compare-to", "production", "--adaptive",
                 "--budget", "1", "--name", "budgeted", "--json", "budgeted.json", cwd=tmp_path).stdout
    assert "Adaptive: undecided on ndcg@10 after 1 of 2 paired cases" in budget
    manifest = json.loads((tmp_path / "budgeted.json").read_text())["manifest"]
    assert manifest["order"] == "random" and "budget 1" in manifest["stop_rule"]
    listing = run("runs", cwd=tmp_path).stdout
    assert "budgeted" in listing and "stopped" in listing and "1/2" in listing
    refused = run("runs", "delete", "production", cwd=tmp_path, check_code=1)
    assert "unpin it first" in refused.stderr
    assert "Deleted 1 run(s)" in run("runs", "delete", "budgeted", cwd=tmp_path).stdout
    shown = run("runs", "show", "production", "--html", "first.html", "--json", "first.json", cwd=tmp_path)
    assert "first" in shown.stdout and (tmp_path / "first.html").read_text().startswith("<!doctype html>")
    assert json.loads((tmp_path / "first.json").read_text())["name"] == "first"
    usage = run("eval", str(suite), "--adaptive", cwd=tmp_path, check_code=2)
    assert "needs --compare-to" in usage.stderr
    missing = run("compare", "nope", "last", cwd=tmp_path, check_code=1)
    assert "No run 'nope'" in missing.stderr and "Recent runs:" in missing.stderr


def test_eval_matrix_compares_against_the_first(tmp_path: Path) -> None:
    from test_cli import run

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.md").write_text("# Retention\n\nCustomer records are kept for seven years.")
    suite = tmp_path / "suite.jsonl"
    suite.write_text(json.dumps({"id": "q1", "question": "How long are customer records kept?",
                                 "answers": ["seven years"], "gold": ["docs/a.md"]}) + "\n")
    run("ingest", str(docs), "--embedder", "hash:64", cwd=tmp_path)
    proc = run("eval", str(suite), "--template", "general", "--template", "legal", "--json", "m.json",
               "--html", "m.html", cwd=tmp_path)
    data = json.loads((tmp_path / "m.json").read_text())
    assert len(data["runs"]) == 2 and len(data["comparisons"]) == 1
    assert data["comparisons"][0]["manifest_diff"]["template"] == {"a": "general.en.j2", "b": "legal.en.j2"}
    assert "suite / extractive / legal" in proc.stdout
    page = (tmp_path / "m.html").read_text()
    assert page.startswith("<!doctype html>") and 'href="#cell1"' in page and 'id="cell1-metrics"' in page
    assert "suite / extractive / legal" in page and "https://" not in page
    refused = run("eval", str(suite), "--template", "general", "--template", "legal", "--compare-to", "last",
                  cwd=tmp_path, check_code=2)
    assert "matrix run" in refused.stderr
    stray = run("eval", str(suite), "--budget", "5", cwd=tmp_path, check_code=2)
    assert "only apply with --adaptive" in stray.stderr


def test_failed_cases_are_left_out_of_every_paired_metric_and_counted() -> None:
    a, b = run_dict("A", BASE[:40]), run_dict("B", noisy(40, 0.0, seed=3), manifest={"model": "m2"})
    for run in (a, b):
        for i, case in enumerate(run["cases"]):
            case["scores"]["ndcg@10"] = (i % 5) / 4
    for run, ids in ((a, (0, 1)), (b, (1, 2, 3))):
        for i in ids:   # a failed record keeps its retrieval scores only, with the reason
            run["cases"][i].update(scores={"ndcg@10": 0.5}, answer=None, status="failed",
                                   error={"kind": "timeout", "stage": "answer", "message": "slow"})
    report = compare_runs(Run.from_dict(a), Run.from_dict(b))
    assert report.to_dict()["cases"] == {
        "a": 40, "b": 40, "common": 36, "failed": {"a": 2, "b": 3}, "excluded": 4,
        "note": "4 case(s) left out because a model call failed in A (2 failed) or B (3 failed); re-run an "
                "evaluation to retry its failed cases"}
    assert report.metrics["token_f1"].n == report.metrics["ndcg@10"].n == 36   # retrieval scores too
    assert not {f.id for f in report.flips} & {"c0", "c1", "c2", "c3"}
    clean = compare_runs(make_run("A", BASE[:40]), make_run("B", BASE[:40]))
    assert clean.to_dict()["cases"] == {"a": 40, "b": 40, "common": 40, "note": ""}   # no failure: no new keys
    for case in b["cases"]:
        case.update(status="failed", error={"kind": "connection", "stage": "answer", "message": "refused"})
    with pytest.raises(ConfigError, match="no case that both completed"):
        compare_runs(Run.from_dict(a), Run.from_dict(b))
