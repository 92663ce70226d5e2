"""The citation check against an adversary: each attack that once passed (issue 11) must fail,
and the honest rewordings next to it must still pass."""

from __future__ import annotations

import pytest

from domainrag.answer.citations import CitationChecker, Source

ASPIRIN = ("Low-dose aspirin is used to prevent heart attacks in adults at high risk. The usual low dose "
           "is 81 mg once a day. Aspirin is not recommended for children under 16 because of Reye's "
           "syndrome. A meta-analysis found the benefit was small [2].")
REVENUE = "Revenue grew to $1,200,000 in fiscal 2019, up from $950,000 in 2018."
LAW = "第十四条 劳动者在该用人单位连续工作满十年的，应当订立无固定期限劳动合同。"
SOURCES = [Source(1, "c1", "d1", ASPIRIN, 0, len(ASPIRIN)), Source(2, "c2", "d2", REVENUE, 0, len(REVENUE)),
           Source(3, "c3", "d3", LAW, 0, len(LAW))]
UNSUPPORTED = "Aspirin cures migraines in teenagers within one hour"


@pytest.fixture(scope="module")
def checker() -> CitationChecker:
    return CitationChecker()


def grounded(checker: CitationChecker, answer: str, instructions: str = "") -> float:
    return checker.check(answer, SOURCES, instructions).grounded


# -- padding ----------------------------------------------------------------------------------
@pytest.mark.parametrize("padding", [
    " and [1] and [2].", " [1]. See [2]. Source: [1].", " [1]. It is [1]. Yes [2].", " [1] [2] [1] [2].",
    " [1]. Aspirin [1]. Revenue [2]. Children [1].", " [1]. Here is the source: [1].",
])
def test_content_free_and_one_word_markers_earn_nothing(checker: CitationChecker, padding: str) -> None:
    assert grounded(checker, UNSUPPORTED + padding) == 0.0


def test_a_claim_without_content_words_is_not_supported(checker: CitationChecker) -> None:
    result = checker.check("It is so [1].", SOURCES)
    assert not any(s.supported for s in result.sentences) and result.grounded == 0.0


def test_markers_in_a_separate_sentence_still_cite_the_claim(checker: CitationChecker) -> None:
    result = checker.check("The usual low dose is 81 mg once a day. See [1].", SOURCES)
    assert result.grounded == 1.0 and [s.sources for s in result.sentences] == [(1,)]


def test_a_wrong_short_fragment_still_counts(checker: CitationChecker) -> None:
    assert grounded(checker, "Aspirin prevents heart attacks in adults at high risk [1]. 810 mg [1].") == 0.5


# -- negation ---------------------------------------------------------------------------------
@pytest.mark.parametrize("answer", [
    "The usual low dose is not 81 mg once a day [1].",
    "Low-dose aspirin is never used to prevent heart attacks in adults at high risk [1].",
    "Aspirin is recommended for children under 16 because of Reye's syndrome [1].",
    "Revenue did not grow to $1,200,000 in fiscal 2019 [2].",
    "劳动者在该用人单位连续工作满十年的，应当订立固定期限劳动合同。[3]",
])
def test_negation_added_or_dropped_is_unsupported(checker: CitationChecker, answer: str) -> None:
    result = checker.check(answer, SOURCES)
    assert [s.reason for s in result.sentences] == ["negation"] and result.grounded == 0.0


@pytest.mark.parametrize("answer", [
    "Aspirin should not be given to children under 16 because of Reye's syndrome [1].",
    "Because of Reye's syndrome, aspirin is not recommended for children under 16 [1].",
    "劳动者连续工作满十年的，应当订立无固定期限劳动合同。[3]",
    "The usual low dose of aspirin, no more than 81 mg once a day [1].",
])
def test_kept_negations_and_bounds_are_supported(checker: CitationChecker, answer: str) -> None:
    assert grounded(checker, answer) == 1.0


# -- numbers and units ------------------------------------------------------------------------
@pytest.mark.parametrize(("answer", "reason"), [
    ("The usual low dose is 81 g once a day [1].", "unit"),
    ("The usual low dose is 81 mcg once a day [1].", "unit"),
    ("The usual low dose is 8.1 mg once a day [1].", "number"),
    ("The usual low dose is 810 mg once a day [1].", "number"),
    ("Revenue grew to €1,200,000 in fiscal 2019 [2].", "unit"),
    ("Revenue grew to $1.2 billion in fiscal 2019 [2].", "number"),
])
def test_changed_numbers_and_units_are_unsupported(checker: CitationChecker, answer: str, reason: str) -> None:
    result = checker.check(answer, SOURCES)
    assert [s.reason for s in result.sentences] == [reason] and result.grounded == 0.0


@pytest.mark.parametrize("answer", [
    "The usual low dose is 81 milligrams once a day [1].",
    "The usual low dose is 81mg once a day [1].",
    "Revenue grew to $1.2 million in fiscal 2019 [2].",
    "Revenue grew to 1,200,000 dollars in fiscal 2019 [2].",
])
def test_numbers_written_otherwise_are_supported(checker: CitationChecker, answer: str) -> None:
    assert grounded(checker, answer) == 1.0


# -- uncited sentences ------------------------------------------------------------------------
def test_an_uncited_invented_sentence_counts_against_grounded(checker: CitationChecker) -> None:
    result = checker.check("The usual low dose is 81 mg once a day [1]. Aspirin also cures migraines.", SOURCES)
    assert result.grounded == 0.5 and result.uncited == 1
    assert [s.reason for s in result.sentences] == ["", "uncited"]
    only_uncited = checker.check("Aspirin cures migraines. It works within an hour in most patients.", SOURCES)
    assert only_uncited.grounded == 0.0 and only_uncited.uncited == 2


@pytest.mark.parametrize("lead", ["Here is what the documents say:", "Based on the provided sources:",
                                  "According to the documents,", "根据资料："])
def test_connective_sentences_do_not_count(checker: CitationChecker, lead: str) -> None:
    result = checker.check(f"{lead} The usual low dose is 81 mg once a day [1].", SOURCES)
    assert result.grounded == 1.0 and result.uncited == 0


def test_an_uncited_number_counts_even_in_a_short_sentence(checker: CitationChecker) -> None:
    assert grounded(checker, "The usual low dose is 81 mg once a day [1]. Maximum 4000 mg.") == 0.5


def test_a_numbered_list_is_checked_item_by_item(checker: CitationChecker) -> None:
    answer = "1. The usual low dose is 81 mg once a day [1]\n2. Revenue grew to $1,200,000 in fiscal 2019 [2]"
    result = checker.check(answer, SOURCES)
    assert result.grounded == 1.0 and [s.sources for s in result.sentences] == [(1,), (2,)]


# -- marker forms -----------------------------------------------------------------------------
@pytest.mark.parametrize("marker", ["[1-100]", "[0]", "[01]", "[1.5]", "[1,2,3,...]", "[1, 2, …]", "[2-9]",
                                    "[3-1]", "[1-2-3]", "【0】"])
def test_ranges_and_malformed_markers_earn_nothing(checker: CitationChecker, marker: str) -> None:
    result = checker.check(f"The usual low dose is 81 mg once a day {marker}.", SOURCES)
    assert result.grounded == 0.0
    assert all(not s.sources for s in result.sentences)


def test_a_range_within_the_sources_is_kept(checker: CitationChecker) -> None:
    result = checker.check("The usual low dose is 81 mg once a day [1-2].", SOURCES)
    assert result.sentences[0].sources == (1, 2) and result.grounded == 1.0


def test_a_range_past_the_sources_is_reported_by_its_ends(checker: CitationChecker) -> None:
    assert checker.check("A claim about dosing [1-100].", SOURCES).removed_markers == (100,)


# -- markers inside documents -----------------------------------------------------------------
def test_a_documents_own_marker_copied_by_the_model_is_not_a_citation(checker: CitationChecker) -> None:
    result = checker.check("A meta-analysis found the benefit was small [2].", SOURCES)
    assert result.document_markers == (2,) and result.removed_markers == ()
    assert "[2]" not in result.text and result.grounded == 0.0
    cited = checker.check("A meta-analysis found the benefit was small [2] [1].", SOURCES)
    assert cited.document_markers == (2,) and cited.sentences[0].sources == (1,) and cited.grounded == 1.0


def test_a_real_citation_that_looks_like_a_document_marker_is_kept(checker: CitationChecker) -> None:
    own = [Source(1, "c1", "d1", "Revenue grew 5% in 2019 [1].", 0, 28)]
    result = checker.check("Revenue grew 5% in 2019 [1].", own)
    assert result.document_markers == () and result.grounded == 1.0


def test_a_documents_marker_is_no_number_it_states(checker: CitationChecker) -> None:
    result = checker.check("A meta-analysis found the benefit was small in 2 trials [1].", SOURCES)
    assert result.sentences[0].reason == "number"


# -- echoes of the prompt ---------------------------------------------------------------------
INSTRUCTIONS = ("You answer questions using only the numbered sources supplied with each question. Rules: "
                "End every sentence that states a fact with the numbers of its sources in square brackets, "
                "like [1] or [2][3]. Copy numbers, amounts, dates, units and names exactly as the sources "
                "state them.")


def test_sentences_copied_from_the_instructions_are_echoes(checker: CitationChecker) -> None:
    result = checker.check(INSTRUCTIONS, SOURCES, INSTRUCTIONS)
    assert result.echoed >= 2 and result.grounded == 0.0
    mixed = checker.check("The usual low dose is 81 mg once a day [1]. Copy numbers, amounts, dates, units and "
                          "names exactly as the sources state them [1].", SOURCES, INSTRUCTIONS)
    assert [s.role for s in mixed.sentences] == ["claim", "echo"] and mixed.grounded == 0.5


def test_a_source_quoting_the_instructions_is_no_echo(checker: CitationChecker) -> None:
    quoting = [Source(1, "c1", "d1", "Copy numbers, amounts, dates, units and names exactly as the sources "
                      "state them.", 0, 80)]
    result = checker.check("Copy numbers, amounts, dates, units and names exactly as the sources state them [1].",
                           quoting, INSTRUCTIONS)
    assert result.echoed == 0 and result.grounded == 1.0


def test_the_prompts_delimiters_are_detected(checker: CitationChecker) -> None:
    echo = f'<source id="1">\n{ASPIRIN}\n</source> [1]'
    assert checker.check(echo, SOURCES).delimiters
    assert not checker.check("The usual low dose is 81 mg once a day [1].", SOURCES).delimiters


def test_a_name_holding_a_negation_character_is_no_negation(checker: CitationChecker) -> None:
    source = [Source(1, "c1", "d1", "1980年因美丽岛事件的影响，改笔名为「林双不」，作品风格丕变。", 0, 40)]
    assert checker.check("1980年因美丽岛事件的影响，改笔名为「林双不」，作品风格丕变。[1]", source).grounded == 1.0
