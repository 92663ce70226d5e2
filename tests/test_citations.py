"""Citation checker: marker parsing, fabricated markers, support scores (EN and ZH)."""

from __future__ import annotations

import pytest

from domainrag.answer.citations import (
    CitationChecker,
    Source,
    clean_markers,
    normalize_number,
    parse_marker,
)
from domainrag.errors import ConfigError

SOURCES = [
    Source(1, "c1", "d1", "Metformin lowers blood glucose in adults with type 2 diabetes. "
           "The usual starting dose is 500 mg twice daily.", 0, 100, page=3),
    Source(2, "c2", "d2", "Revenue grew to $1,200,000 in fiscal 2019, up from $950,000.", 0, 60),
    Source(3, "c3", "d3", "糖尿病患者需要控制血糖和饮食，并定期检查。", 0, 20),
]


@pytest.fixture(scope="module")
def checker() -> CitationChecker:
    return CitationChecker()


@pytest.mark.parametrize(
    ("body", "numbers"),
    [("1", (1,)), ("1, 2", (1, 2)), ("1,2,2", (1, 2)), ("1-3", (1, 2, 3)), ("2–3", (2, 3)),
     ("1，2", (1, 2))],
)
def test_parse_marker(body: str, numbers: tuple[int, ...]) -> None:
    assert parse_marker(body) == numbers


@pytest.mark.parametrize(
    ("answer", "sources"),
    [("Metformin lowers blood glucose [1].", (1,)),
     ("Metformin lowers blood glucose [1, 2].", (1, 2)),
     ("Metformin lowers blood glucose [1][3].", (1, 3)),
     ("Metformin lowers blood glucose [1-3].", (1, 2, 3)),
     ("Metformin lowers blood glucose【1】", (1,)),
     ("Metformin lowers blood glucose.[2]", (2,))],
)
def test_marker_forms(checker: CitationChecker, answer: str, sources: tuple[int, ...]) -> None:
    result = checker.check(answer, SOURCES)
    assert [s.sources for s in result.sentences] == [sources]
    assert result.removed_markers == ()
    assert result.text == answer


def test_marker_after_full_stop_belongs_to_previous_sentence(checker: CitationChecker) -> None:
    answer = "Metformin lowers blood glucose.[1] Revenue grew to $1,200,000. [2] 患者需要控制血糖。【3】"
    result = checker.check(answer, SOURCES)
    assert [s.sources for s in result.sentences] == [(1,), (2,), (3,)]
    assert [s.text for s in result.sentences] == [
        "Metformin lowers blood glucose.[1]", "Revenue grew to $1,200,000. [2]", "患者需要控制血糖。【3】"
    ]
    assert all(result.text[s.start : s.end] == s.text for s in result.sentences)
    assert result.grounded == 1.0


def test_invalid_markers_removed_and_counted(checker: CitationChecker) -> None:
    answer = "Metformin lowers blood glucose [7]. The dose is 500 mg [1][9]. Revenue grew [2, 8]."
    result = checker.check(answer, SOURCES)
    assert result.removed_markers == (7, 9, 8)
    assert result.text == "Metformin lowers blood glucose. The dose is 500 mg [1]. Revenue grew [2]."
    assert [s.sources for s in result.sentences] == [(), (1,), (2,)]
    assert result.sentences[0].checked == (1,) and result.sentences[0].supported  # by the next one's [1]
    assert result.uncited == 0


def test_all_markers_removed_when_no_sources(checker: CitationChecker) -> None:
    result = checker.check("A claim [1]. Another【2】", [])
    assert result.text == "A claim. Another"
    assert result.removed_markers == (1, 2)
    assert result.grounded == 0.0


def test_faithful_paraphrase_is_supported(checker: CitationChecker) -> None:
    result = checker.check("In adults with type 2 diabetes, metformin lowers glucose [1].", SOURCES)
    (sentence,) = result.sentences
    assert sentence.supported and sentence.support >= 0.9


def test_unsupported_claim_is_flagged(checker: CitationChecker) -> None:
    result = checker.check("Aspirin prevents migraines in children [1].", SOURCES)
    (sentence,) = result.sentences
    assert not sentence.supported and sentence.support < checker.threshold
    assert result.grounded == 0.0


def test_wrong_number_is_flagged_even_with_full_word_overlap(checker: CitationChecker) -> None:
    good = checker.check("The usual starting dose is 500 mg twice daily [1].", SOURCES)
    bad = checker.check("The usual starting dose is 5000 mg twice daily [1].", SOURCES)
    assert good.sentences[0].supported
    assert not bad.sentences[0].supported
    assert bad.sentences[0].support < good.sentences[0].support


def test_numbers_are_normalised(checker: CitationChecker) -> None:
    assert normalize_number("1,200,000") == normalize_number("1200000") == "1200000"
    assert normalize_number("5.50") == "5.5" and normalize_number("3.0") == "3"
    result = checker.check("Revenue grew to 1200000 in fiscal 2019 [2].", SOURCES)
    assert result.sentences[0].supported


def test_best_cited_source_counts(checker: CitationChecker) -> None:
    result = checker.check("Revenue grew to $1,200,000 in fiscal 2019 [1, 2].", SOURCES)
    assert result.sentences[0].supported


def test_chinese_sentence(checker: CitationChecker) -> None:
    good = checker.check("糖尿病患者需要控制血糖。【3】", SOURCES)
    bad = checker.check("高血压患者应该多吃盐。[3]", SOURCES)
    assert good.sentences[0].supported
    assert not bad.sentences[0].supported


def test_empty_answer(checker: CitationChecker) -> None:
    result = checker.check("", SOURCES)
    assert result.text == "" and result.sentences == () and result.grounded == 0.0
    assert checker.check("   ", SOURCES).sentences == ()


def test_answer_without_markers(checker: CitationChecker) -> None:
    result = checker.check("Metformin lowers glucose. It is cheap and widely sold.", SOURCES)
    assert result.grounded == 0.0
    assert result.uncited == 2
    assert all(not s.sources and not s.supported for s in result.sentences)


def test_clean_markers_keeps_valid_text_unchanged() -> None:
    assert clean_markers("x [1] y [2-3]", {1, 2, 3}) == ("x [1] y [2-3]", ())


def test_threshold_is_validated() -> None:
    with pytest.raises(ConfigError, match="1.5"):
        CitationChecker(threshold=1.5)


def test_a_marker_followed_by_words_closes_a_claim(checker: CitationChecker) -> None:
    result = checker.check(
        "Revenue grew to $1,200,000 in fiscal 2019 [2] and metformin lowers blood glucose [1].", SOURCES)
    assert [s.sources for s in result.sentences] == [(2,), (1,)]
    assert all(s.supported for s in result.sentences) and result.grounded == 1.0
    rows = checker.check("Revenue: fiscal 2019 1,200,000 [2] Revenue grew, up from 950,000 [2]", SOURCES)
    assert len(rows.sentences) == 2 and rows.grounded == 1.0


def test_a_marker_before_punctuation_stays_with_its_sentence(checker: CitationChecker) -> None:
    result = checker.check("Metformin lowers blood glucose [1], as trials show [1].", SOURCES)
    assert len(result.sentences) == 1


def test_embedding_similarity_rescues_paraphrases_in_the_band_only() -> None:
    asked: list[str] = []

    def similarity(claim: str, candidates) -> float:
        asked.append(claim)
        assert candidates and all(isinstance(c, str) for c in candidates)
        return 0.9

    checker = CitationChecker(similarity=similarity, semantic_threshold=0.8)
    paraphrase = checker.check("Metformin lowers glucose levels in grown-ups with diabetes [1].", SOURCES)
    (sentence,) = paraphrase.sentences
    assert sentence.support < 0.6 and sentence.supported and sentence.semantic == 0.9
    number = checker.check("Metformin reduces sugar in adults, 850 mg daily [1].", SOURCES)
    assert not number.sentences[0].supported and number.sentences[0].semantic is None
    unrelated = checker.check("Quarterly dividends were suspended by the board [1].", SOURCES)
    assert not unrelated.sentences[0].supported and unrelated.sentences[0].semantic is None
    assert asked == ["Metformin lowers glucose levels in grown-ups with diabetes."]


def test_low_similarity_does_not_rescue() -> None:
    checker = CitationChecker(similarity=lambda claim, candidates: 0.5)
    result = checker.check("Metformin lowers glucose levels in grown-ups with diabetes [1].", SOURCES)
    assert not result.sentences[0].supported and result.sentences[0].semantic == 0.5
