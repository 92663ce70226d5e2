"""Everything the CLI does, the Python API does, with the same results: the same suite evaluated
and compared both ways gives the same records (ids, times and latencies aside)."""

from __future__ import annotations

import json
from pathlib import Path

from contract_scenario import reply, scrub, write_inputs
from test_cli import run

from domainrag import KnowledgeBase


def test_eval_compare_and_gate_agree_between_cli_and_api(tmp_path: Path, scripted) -> None:
    scripted.script = reply
    docs, suite = write_inputs(tmp_path)
    run("ingest", str(docs), "--embedder", "fake-en:64", cwd=tmp_path)
    common = ["--model", "scripted:a", "--concurrency", "1"]
    run("eval", str(suite), *common, "--name", "cli-a", "--json", "cli_a.json", cwd=tmp_path)
    run("eval", str(suite), *common, "--mode", "lexical", "--name", "cli-b", "--json", "cli_b.json",
        cwd=tmp_path)
    run("compare", "cli-a", "cli-b", "--json", "cli_cmp.json", cwd=tmp_path)
    cli = [json.loads((tmp_path / f).read_text()) for f in ("cli_a.json", "cli_b.json", "cli_cmp.json")]

    with KnowledgeBase.open(tmp_path / "kb") as kb:
        a = kb.evaluate(suite, model="scripted:a", concurrency=1, name="api-a")
        b = kb.evaluate(suite, model="scripted:a", concurrency=1, mode="lexical", name="api-b")
        comparison = kb.compare("api-a", "api-b")
    api = [a.to_dict(), b.to_dict(), comparison.to_dict()]

    for from_cli, from_api in zip(cli, api, strict=True):
        for data in (from_cli, from_api):
            data.pop("name", None)
            data.pop("a_name", None)
            data.pop("b_name", None)
        assert scrub(from_cli) == scrub(from_api)
    assert comparison.gate is not None and cli[2]["gate"] == comparison.gate.to_dict()
    assert cli[2]["manifest_diff"] == {"mode": {"a": "hybrid", "b": "lexical"}}
