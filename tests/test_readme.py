"""The README's Python example runs as written (on a small folder and suite of our own)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"


def readme_example() -> str:
    text = README.read_text(encoding="utf-8")
    match = re.search(r"<!-- README example: tests/test_readme.py runs this block -->\n```python\n(.*?)```",
                      text, re.DOTALL)
    assert match, "the README lost its Python example"
    return match.group(1)


def test_the_readme_python_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    policies = tmp_path / "policies"
    policies.mkdir()
    (policies / "retention.md").write_text("# Retention\n\nCustomer records are kept for seven years.\n")
    (policies / "passwords.txt").write_text("Passwords must be rotated every ninety days.\n")
    cases = [{"id": "r1", "question": "How long are customer records kept?", "answers": ["seven years"],
              "gold": ["policies/retention.md"], "scenario": ["retention"]},
             {"id": "p1", "question": "How often must passwords be rotated?", "answers": ["every ninety days"],
              "gold": ["policies/passwords.txt"], "scenario": ["security"]}]
    (tmp_path / "suite.jsonl").write_text("\n".join(json.dumps(c) for c in cases) + "\n")
    (tmp_path / "kb").mkdir()
    (tmp_path / "kb" / "domainrag.toml").write_text('[embedder]\nmodel = "fake-en:64"\n')
    monkeypatch.chdir(tmp_path)
    exec(compile(readme_example(), str(README), "exec"), {})
    printed = capsys.readouterr().out
    assert "token_f1" in printed and "no detectable difference" in printed
    from domainrag import KnowledgeBase

    with KnowledgeBase.open(tmp_path / "kb") as kb:
        assert kb.runs.pins() == {"production": kb.runs.resolve("baseline")}
        assert [r.name for r in kb.runs.list()] == ["lexical", "baseline"]
