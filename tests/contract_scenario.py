"""The evaluation scenario behind the pinned JSON contract (tests/fixtures/contract/): a small
knowledge base, a suite with scenario tags, two answer runs (one with repeats and a judge) and
their comparison with a gate. Used by tests/test_contract.py; run as a script it regenerates
the fixtures (only do that on purpose: the point is that they do not change)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

DOCS = {
    "thyroid.md": "# Hypothyroidism\n\nHypothyroidism is treated with levothyroxine. The usual starting dose for "
                  "adults is 50 micrograms daily.",
    "revenue.txt": "Revenue of the Fintech segment grew 39% year on year to RMB 101.4 billion in 2019.",
    "backup.txt": "Backups of the billing database run nightly at 2 am and are kept for 35 days.",
}
CASES = [
    {"id": "m1", "question": "What is the starting dose of levothyroxine for adults?",
     "answers": ["50 micrograms daily"], "scenario": ["medical"],
     "gold": [{"doc_id": "docs/thyroid.md", "quote": "starting dose for adults is 50 micrograms"}]},
    {"id": "f1", "question": "How much did Fintech revenue grow in 2019?", "answers": ["39%"],
     "gold": ["docs/revenue.txt"], "scenario": ["finance"]},
    {"id": "o1", "question": "How long are billing database backups kept?", "answers": ["35 days"],
     "gold": ["docs/backup.txt"], "scenario": ["ops"]},
    {"id": "u1", "question": "Who won the football world cup in 1998?", "answerable": False, "scenario": ["off-topic"]},
]
#: Values that differ from one execution to the next (ids, times, latencies).
VOLATILE = ("run_id", "created", "a", "b", "latency_ms", "latency_ms_p50", "latency_ms_p95", "timings_ms",
            "retrieve_ms", "suite", "corpus_hash", "index_hash", "path", "settings", "config_hash", "source")


def reply(request: Any) -> str:
    """The scripted model: the first sentence of the first source, cited; a judge verdict."""
    if "strict evaluator" in request.messages[0].content:
        return '{"score": 4, "unsupported_claims": ["x"], "reason": "mostly"}'
    return f"{request.sources[0].text.split('. ')[0].rstrip('.')}. [1]"


def write_inputs(root: Path) -> tuple[Path, Path]:
    docs = root / "docs"
    docs.mkdir(parents=True, exist_ok=True)
    for name, text in DOCS.items():
        (docs / name).write_text(text, encoding="utf-8")
    suite = root / "suite.jsonl"
    suite.write_text("\n".join(json.dumps(c, ensure_ascii=False) for c in CASES) + "\n", encoding="utf-8")
    return docs, suite


def scrub(value: Any) -> Any:
    """The contract's shape and stable values: volatile entries replaced by a placeholder."""
    if isinstance(value, dict):
        return {k: ("<volatile>" if k in VOLATILE else scrub(v)) for k, v in value.items()}
    if isinstance(value, list):
        return [scrub(v) for v in value]
    return value


if __name__ == "__main__":  # pragma: no cover - regenerates the fixtures
    import sys
    import tempfile

    sys.path.insert(0, str(Path(__file__).parent))
    import conftest

    from domainrag import KnowledgeBase, registry
    from domainrag.compare.compare import compare_runs
    from domainrag.compare.gate import apply_gate
    from domainrag.evaluate.runner import EvalOptions, run_suite
    from domainrag.evaluate.runs import RunStore
    from domainrag.evaluate.suite import load_suite
    from domainrag.models.cache import ModelCache

    for group, plugin, obj in conftest.FAKES:
        registry.register(group, plugin, obj)
    conftest.ScriptedGenerator.script = reply
    out = Path(__file__).parent / "fixtures" / "contract"
    with tempfile.TemporaryDirectory() as tmp:
        docs, suite_path = write_inputs(Path(tmp))
        kb = KnowledgeBase.open(Path(tmp) / "kb", create=True, overrides={
            "embedder.model": "fake-en:64", "chunking.target_tokens": 64, "chunking.overlap_tokens": 8})
        kb.ingest([docs])
        kb.answerer.cache = ModelCache(kb.path / "model_cache.sqlite3")
        suite = load_suite(suite_path)
        with RunStore(kb.path) as store:
            a = run_suite(kb, suite, EvalOptions(frozenset({"retrieval", "answer", "citation"}), model="scripted:a",
                                                  concurrency=1, name="A"), store)
            b = run_suite(kb, suite, EvalOptions(frozenset({"retrieval", "answer", "citation", "judge"}),
                                                  model="scripted:b", judge="scripted:judge", repeat=2,
                                                  concurrency=1, name="B"), store)
        comparison = compare_runs(a, b)
        comparison["gate"] = apply_gate(comparison, kb.config.gate)
        kb.close()
    for name, data in (("run_a", a), ("run_b", b), ("comparison", comparison)):
        (out / f"{name}.json").write_text(json.dumps(data, ensure_ascii=False, indent=1), encoding="utf-8")
        (out / f"{name}.shape.json").write_text(json.dumps(scrub(data), ensure_ascii=False, indent=1),
                                                encoding="utf-8")
    print("wrote", out)
