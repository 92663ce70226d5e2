"""Verification: one public API (``domainrag.verify``, ``kb.verify``, ``domainrag verify``,
``POST /v1/verify``) over the checker every answer goes through; every factual sentence is
accounted for; the shipped offline verifier catches what word rules passed."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

import domainrag
from domainrag import registry
from domainrag.answer.claims import numbers
from domainrag.answer.verify import as_sources, read_answer_json, verify
from domainrag.errors import ConfigError

IBUPROFEN = ("Ibuprofen is a nonsteroidal anti-inflammatory drug. Adults usually take 200 to 400 mg "
             "every 4 to 6 hours as needed, and no more than 1,200 mg a day without a doctor's advice.")
ASPIRIN = ("Aspirin is used to reduce fever and relieve mild to moderate pain. For the prevention of "
           "heart attacks, a low dose of 75 to 100 mg once a day is common.")


class SubstringVerifier:
    """Supports a claim exactly when its words, lower-cased, appear in order in the evidence."""

    id = "substring@1"
    languages = frozenset({"en"})

    def __init__(self) -> None:
        self.calls: list[list[tuple[str, str]]] = []

    def score(self, pairs: Sequence[tuple[str, str]]) -> list[float]:
        self.calls.append(list(pairs))
        return [1.0 if _norm(c) in _norm(e) else 0.0 for c, e in pairs]


def _norm(text: str) -> str:
    return " ".join("".join(ch.lower() if ch.isalnum() else " " for ch in text).split())


@pytest.fixture
def substring() -> Iterator[SubstringVerifier]:
    verifier = SubstringVerifier()
    registry.register("domainrag.verifiers", "substring", lambda: verifier)
    yield verifier
    registry.unregister("domainrag.verifiers", "substring")


def test_every_factual_sentence_is_checked_cited_or_not(substring: SubstringVerifier) -> None:
    answer = ("Adults usually take 200 to 400 mg every 4 to 6 hours as needed [1]. "
              "A low dose of 75 to 100 mg once a day is common. For children, give 10 mg per kg.")
    result = verify(answer, [IBUPROFEN, ASPIRIN], verifier="substring")
    cited, found_elsewhere, invented = result.claims
    assert (cited.verdict, cited.checked) == ("supported", (1,))
    # uncited, but a source states it: supported, and the source that does is named
    assert (found_elsewhere.verdict, found_elsewhere.cites, found_elsewhere.checked) == ("supported", (), (2,))
    assert (invented.verdict, invented.reason) == ("unsupported", "uncited")
    assert result.grounded == pytest.approx(2 / 3) and not result.supported
    assert len(substring.calls) == 1  # one batched call per answer
    assert result.verifier == "substring@1@0.45"


def test_an_uncited_claim_is_read_against_the_sources_sharing_its_words(substring: SubstringVerifier) -> None:
    others = [f"Unrelated passage {i} about weather, harbours and trains." for i in range(20)]
    result = verify("A low dose of 75 to 100 mg once a day is common.", [*others, ASPIRIN], verifier="substring")
    assert result.claims[0].verdict == "supported" and result.claims[0].checked == (21,)
    read = {evidence for pairs in substring.calls for _, evidence in pairs}
    assert len(read) <= 8  # not all 21 sources: the 8 sharing the most words, the right one among them


def test_an_answer_needing_too_many_pairs_is_refused_by_name(substring: SubstringVerifier) -> None:
    from domainrag.answer.citations import CitationChecker

    checker = CitationChecker(verifier=substring, max_pairs=3)
    answer = " ".join(f"Dose {i} is {i}0 mg [1][2]." for i in range(1, 4))
    with pytest.raises(ConfigError, match="needs 6 claim–evidence pairs; one check reads at most 3"):
        checker.check(answer, as_sources([IBUPROFEN, ASPIRIN]))
    with pytest.raises(ConfigError, match="max_pairs"):
        CitationChecker(max_pairs=0)


def test_a_figure_the_source_does_not_state_fails_whatever_the_model_says() -> None:
    class Yes:
        id = "yes"

        def score(self, pairs: Sequence[tuple[str, str]]) -> list[float]:
            return [1.0] * len(pairs)

    result = verify("Adults take 600 mg every 4 hours [1].", [IBUPROFEN], verifier=Yes())
    assert result.claims[0].verdict == "unsupported" and result.claims[0].reason == "number"
    ok = verify("Adults take 200 to 400 mg every 4 to 6 hours [1].", [IBUPROFEN], verifier=Yes())
    assert ok.supported


def test_claims_in_a_language_the_verifier_does_not_read_keep_the_word_rules(substring) -> None:
    law = "第十四条 劳动者在该用人单位连续工作满十年的，应当订立无固定期限劳动合同。"
    result = verify("劳动者在该用人单位连续工作满十年的，应当订立无固定期限劳动合同。[1]", [law], verifier="substring")
    assert result.claims[0].verdict == "supported" and not substring.calls


def test_meta_talk_is_not_a_claim(substring) -> None:
    result = verify("Here is what the documents say: adults usually take 200 to 400 mg every 4 to 6 hours "
                    "as needed [1].", [IBUPROFEN], verifier="substring")
    assert result.supported


def test_a_figure_must_come_from_a_passage_about_what_the_claim_names() -> None:
    from domainrag.answer.claims import missing_names, names

    assert names("Aspirin is taken at 200 mg. Typically, Beta Industries and the CET1 ratio, under GDPR.") == [
        "aspirin", "beta", "industries", "cet1", "gdpr"]
    assert missing_names(["aspirin", "ibuprofen"], IBUPROFEN) == ["aspirin"]

    class Yes:
        id = "yes"

        def score(self, pairs: Sequence[tuple[str, str]]) -> list[float]:
            return [1.0] * len(pairs)

    wrong = verify("Aspirin is taken at 200 to 400 mg every 4 to 6 hours [1].", [IBUPROFEN], verifier=Yes())
    assert (wrong.claims[0].verdict, wrong.claims[0].reason) == ("unsupported", "entity")
    # a name in the source's title counts; a claim without a figure is left to the verifier
    titled = as_sources([{"text": "Adults take 200 to 400 mg every 4 to 6 hours.", "title": "Aspirin"}])
    assert verify("Aspirin: adults take 200 to 400 mg every 4 to 6 hours [1].", titled, verifier=Yes()).supported
    assert verify("Aspirin relieves pain [1].", [IBUPROFEN], verifier=Yes()).supported


def test_names_and_ordinals_are_not_numbers() -> None:
    assert numbers("a 2D scan and the 3rd dose") == []
    assert numbers("5mg twice, 3bn in 2020") == ["5", "3", "2020"]


def test_verification_serialises(substring) -> None:
    data = verify("Adults usually take 200 to 400 mg [9].", [IBUPROFEN], verifier="substring").to_dict()
    # the fabricated [9] is removed; the sentence, now uncited, is found in source 1
    assert data["removed_markers"] == [9] and data["claims"][0]["verdict"] == "supported"
    assert data["claims"][0]["cites"] == [] and data["claims"][0]["checked"] == [1]
    assert set(data) == {"text", "grounded", "supported", "verifier", "removed_markers", "claims"}
    assert json.loads(json.dumps(data)) == data


@pytest.mark.parametrize("sources, message", [
    ("just one string", "must be a list"),
    ([{"txt": "x"}], "Source 1 must be a text"),
    ([{"text": "a", "number": 1}, {"text": "b", "number": 1}], "unique"),
    ([{"text": "a", "number": -2}], "non-negative"),
])
def test_bad_sources_name_the_problem(sources, message) -> None:
    with pytest.raises(ConfigError, match=message):
        as_sources(sources)


def test_answer_json_in_both_shapes() -> None:
    text, sources = read_answer_json(json.dumps({"answer": "A [1].", "sources": ["x", {"text": "y", "page": 3}]}))
    assert text == "A [1]." and [s.text for s in sources] == ["x", "y"] and sources[1].page == 3
    asked = {"text": "B [2].", "sources": [{"number": 2, "doc_id": "d", "text": "z", "title": "T"}]}
    text, sources = read_answer_json(json.dumps(asked))
    assert text == "B [2]." and sources[0].number == 2 and sources[0].doc_id == "d"
    for bad, message in (("{", "not JSON"), ("[]", "one JSON object"), ('{"answer": "a"}', "no \"sources\""),
                         ('{"sources": ["x"]}', "no \"answer\"")):
        with pytest.raises(ConfigError, match=message):
            read_answer_json(bad)


# -- the answer pipeline shows no unsupported sentence as plain prose ------------------------------
def _docs(tmp_path: Path) -> Path:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "ibuprofen.txt").write_text(IBUPROFEN)
    return docs


@pytest.mark.parametrize("template, action, shown", [
    ("general", "mark", "For children, give 10 mg per kg. [unsupported]"),
    ("medical", "remove", None),
])
def test_unsupported_sentences_are_marked_or_removed(kb_factory, scripted, tmp_path, substring,
                                                     template, action, shown) -> None:
    kb = kb_factory(**{"answer.min_grounded": 0.0, "answer.min_evidence": 0.0})
    kb.ingest([_docs(tmp_path)])
    registry.register("domainrag.verifiers", "offline", lambda: substring)
    try:
        scripted.script = lambda r: ("Adults usually take 200 to 400 mg every 4 to 6 hours as needed [1]. "
                                     "For children, give 10 mg per kg.")
        answer = kb.ask("How much ibuprofen may adults take?", model="scripted:m", template=template)
    finally:
        registry.unregister("domainrag.verifiers", "offline")
    assert answer.text.startswith("Adults usually take 200 to 400 mg"), answer.trace
    if shown:
        assert answer.text.endswith(shown)
    else:
        assert "children" not in answer.text, answer.trace
    assert answer.trace["unsupported_sentences"] == [
        {"sentence": "For children, give 10 mg per kg.", "reason": "uncited", "action": action}]
    assert answer.grounded == 0.5 and answer.manifest["checker"].startswith("substring@1@")


def test_kb_verify_uses_the_knowledge_base_checker(kb_factory, substring) -> None:
    kb = kb_factory(**{"answer.verify_threshold": 0.9})
    registry.register("domainrag.verifiers", "offline", lambda: substring)
    try:
        result = kb.verify("Adults usually take 200 to 400 mg every 4 to 6 hours as needed [1].", [IBUPROFEN])
    finally:
        registry.unregister("domainrag.verifiers", "offline")
    assert result.supported and result.verifier == "substring@1@0.9"


def test_lexical_mode_keeps_the_word_rules(kb_factory) -> None:
    kb = kb_factory(**{"answer.verify": "lexical"})
    result = kb.verify("Adults usually take 200 to 400 mg every 4 to 6 hours as needed [1].", [IBUPROFEN])
    assert result.supported and result.verifier.startswith("lexical-v1@0.6")


# -- the shipped offline verifier -------------------------------------------------------------------
def test_shipped_verifier_catches_a_figure_from_another_drug() -> None:
    result = domainrag.verify("Aspirin is taken at 200 to 400 mg every 4 to 6 hours [1].", [IBUPROFEN, ASPIRIN])
    assert result.claims[0].verdict == "unsupported"
    right = domainrag.verify("Adults usually take 200 to 400 mg of ibuprofen every 4 to 6 hours [1].",
                             [IBUPROFEN, ASPIRIN])
    assert right.claims[0].verdict == "supported"


def test_shipped_verifier_flags_an_invented_uncited_dosage() -> None:
    result = domainrag.verify("Adults usually take 200 to 400 mg every 4 to 6 hours [1]. "
                              "Children under 12 should take 5 mg per kilogram.", [IBUPROFEN])
    assert [c.verdict for c in result.claims] == ["supported", "unsupported"]
    assert result.grounded == 0.5


def test_shipped_verifier_scores_do_not_depend_on_the_other_pairs() -> None:
    from domainrag.models.verifier_onnx import shared

    verifier = shared()
    pair = ("Adults take up to 1,200 mg a day.", IBUPROFEN)
    alone = verifier.score([pair])
    batch = verifier.score([("Aspirin prevents heart attacks.", ASPIRIN), pair, pair])
    assert batch[1] == batch[2] == alone[0]
    assert verifier.id.startswith("offline:")


def test_shipped_verifier_files_match_their_provenance() -> None:
    import hashlib

    from domainrag.models.verifier_onnx import SHIPPED_DIR

    provenance = json.loads((SHIPPED_DIR / "provenance.json").read_text())
    for name, digest in provenance["files"].items():
        assert hashlib.sha256((SHIPPED_DIR / name).read_bytes()).hexdigest() == digest, name
    assert (SHIPPED_DIR / "NOTICE.md").exists() and (SHIPPED_DIR / "LICENSE").exists()


# -- the command line ------------------------------------------------------------------------------
def _cli(*args: str, input: str | None = None) -> tuple[int, str, str]:
    from typer.testing import CliRunner

    from domainrag.cli import app

    result = CliRunner().invoke(app, list(args), input=input, env={"COLUMNS": "200"}, catch_exceptions=True)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


def test_cli_verify_reads_a_file_or_stdin_and_gates(tmp_path: Path, substring) -> None:
    registry.register("domainrag.verifiers", "offline", lambda: substring)
    try:
        answer = {"answer": "Adults usually take 200 to 400 mg every 4 to 6 hours as needed [1]. "
                            "For children, give 10 mg per kg.", "sources": [IBUPROFEN]}
        path = tmp_path / "answer.json"
        path.write_text(json.dumps(answer))
        code, out, _ = _cli("verify", str(path))
        assert code == 0 and "1 unsupported" in out and "uncited" in out
        code, out, _ = _cli("verify", "-", "--json", "--gate", input=json.dumps(answer))
        assert code == 1 and [c["verdict"] for c in json.loads(out)["claims"]] == ["supported", "unsupported"]
    finally:
        registry.unregister("domainrag.verifiers", "offline")


def test_cli_verify_errors_are_one_line(tmp_path: Path) -> None:
    (tmp_path / "bad.json").write_text('{"answer": "x"}')
    code, _, err = _cli("verify", str(tmp_path / "bad.json"))
    assert code == 1 and "sources" in err and "Traceback" not in err
    code, _, err = _cli("verify", str(tmp_path / "missing.json"))
    assert code == 1 and "Cannot read" in err


def test_ask_json_can_be_verified_again(kb_factory, scripted, tmp_path: Path, substring) -> None:
    from domainrag.answer.verify import source_dict

    kb = kb_factory(**{"answer.min_evidence": 0.0})
    kb.ingest([_docs(tmp_path)])
    scripted.script = lambda r: "Adults usually take 200 to 400 mg every 4 to 6 hours as needed [1]."
    registry.register("domainrag.verifiers", "offline", lambda: substring)
    try:
        answer = kb.ask("How much ibuprofen may adults take?", model="scripted:m")
    finally:
        registry.unregister("domainrag.verifiers", "offline")
    assert not answer.abstained
    data = {**answer.to_dict(), "sources": [source_dict(s) for s in answer.sources]}
    text, sources = read_answer_json(json.dumps(data))
    again = verify(text, sources, verifier="substring")
    assert again.supported and sources[0].doc_id == answer.citations[0].doc_id
