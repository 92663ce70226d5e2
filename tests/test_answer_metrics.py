"""Answer metrics and bootstrap intervals: golden values, hand-computed cases, and a check of
exact match / token F1 against the official SQuAD v1.1 evaluation logic."""

from __future__ import annotations

import random
import re
import string
from collections import Counter

import pytest

from domainrag.evaluate import intervals
from domainrag.evaluate.answer_metrics import (
    abstention_scores,
    answer_tokens,
    citation_scores,
    exact_match,
    normalize_answer,
    numeric_match,
    parse_numbers,
    token_f1,
)
from domainrag.evaluate.intervals import bootstrap_ci, mean_ci

# --- normalisation, exact match, token F1 -------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("The  Cat!", "cat"),
        ("  An apple, a DAY. ", "apple day"),
        ("don't", "dont"),
        ("Theater the", "theater"),
        ("ＡＢＣ１２３", "abc123"),  # full-width -> ASCII (NFKC)
        ("北京，是「首都」。", "北京是首都"),
    ],
)
def test_normalize_answer(text, expected):
    assert normalize_answer(text) == expected


def test_exact_match():
    assert exact_match("The  Cat!", ["cat"]) == 1.0
    assert exact_match("a dog", ["cat", "the dog"]) == 1.0
    assert exact_match("cats", ["cat"]) == 0.0
    with pytest.raises(ValueError):
        exact_match("cat", [])


def test_token_f1_hand_computed():
    # prediction tokens: cat sat on mat (4); reference: cat on mat (3); common 3
    # precision 3/4, recall 1 -> F1 = 2 * 0.75 / 1.75 = 6/7
    assert token_f1("the cat sat on the mat", ["a cat on a mat"]) == pytest.approx(6 / 7)
    # two references: the better one counts (common 1 of 2 vs 2 each -> 1/2 vs 1)
    assert token_f1("red car", ["blue car", "the red car"]) == 1.0
    assert token_f1("red car", ["blue car"]) == pytest.approx(0.5)
    assert token_f1("dog", ["cat"]) == 0.0
    # repeated tokens are a bag: prediction "cat cat" vs "cat": common 1, P 1/2, R 1 -> 2/3
    assert token_f1("cat cat", ["cat"]) == pytest.approx(2 / 3)


def test_token_f1_empty_answers():
    assert token_f1("the", ["a"]) == 1.0  # both normalise to nothing
    assert token_f1("", ["cat"]) == 0.0
    with pytest.raises(ValueError):
        token_f1("cat", [])


def test_token_f1_chinese_by_character():
    assert answer_tokens("北京是中国的首都") == list("北京是中国的首都")
    assert answer_tokens("GDP增长5%") == ["gdp", "增", "长", "5"]
    # prediction 8 characters, reference 5, all 5 shared: P 5/8, R 1 -> F1 = 10/13
    assert token_f1("北京是中国的首都", ["首都是北京"]) == pytest.approx(10 / 13)
    assert exact_match("北京。", ["北京"]) == 1.0


def _squad_normalize(s):
    """Official SQuAD v1.1 ``normalize_answer``."""
    s = "".join(ch for ch in s.lower() if ch not in set(string.punctuation))
    return " ".join(re.sub(r"\b(a|an|the)\b", " ", s).split())


def _squad_f1(prediction, ground_truth):
    """Official SQuAD v1.1 ``f1_score``."""
    pred, gold = _squad_normalize(prediction).split(), _squad_normalize(ground_truth).split()
    num_same = sum((Counter(pred) & Counter(gold)).values())
    if num_same == 0:
        return 0
    precision, recall = num_same / len(pred), num_same / len(gold)
    return 2 * precision * recall / (precision + recall)


_WORDS = ["cat", "Cat!", "mat.", "sat", "on", "don't", "U.S.", "1,200", "(big)", "red-car",
          "dog", "the", "The", "a", "an", "An", "blue", "car", "sat,", "\"quoted\""]


def test_matches_official_squad_v11_on_random_pairs():
    rng = random.Random(1234)

    def phrase():
        return " ".join([rng.choice(_WORDS[:10])] + rng.choices(_WORDS, k=rng.randint(0, 6)))

    for _ in range(20):
        prediction, references = phrase(), [phrase() for _ in range(rng.randint(1, 3))]
        official_em = max(float(_squad_normalize(prediction) == _squad_normalize(r))
                          for r in references)
        official_f1 = max(_squad_f1(prediction, r) for r in references)
        assert exact_match(prediction, references) == official_em
        assert token_f1(prediction, references) == pytest.approx(official_f1)


# --- numbers ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1.2 million", [1.2e6]),
        ("1,200,000", [1.2e6]),
        ("$1.2m and 1.2M", [1.2e6, 1.2e6]),
        ("(1,234)", [-1234.0]),
        ("-5.3% or 5.3 percent", [-5.3, 5.3]),
        ("1.2bn, 3 billion, 50k, 2 thousand", [1.2e9, 3e9, 5e4, 2e3]),
        ("1.2亿, 120万, 3万亿", [1.2e8, 1.2e6, 3e12]),
        ("１２３．５", [123.5]),
        ("2019-2020", [2019.0, 2020.0]),
        ("12mm", [12.0]),
        ("no numbers here", []),
    ],
)
def test_parse_numbers(text, expected):
    assert parse_numbers(text) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("prediction", "reference", "expected"),
    [
        ("1.2 million", "1,200,000", 1.0),
        ("$1.2m", "1200000", 1.0),
        ("(1,234)", "-1234", 1.0),
        ("5.3%", "5.3 percent", 1.0),
        ("5.3%", "0.053", 0.0),
        ("1.2亿", "120000000", 1.0),
        ("12.5", "12.6", 0.0),
        ("Revenue was $1.2bn in 2020.", "1.2 billion", 1.0),
        ("about 1.203 million", "1,200,000", 1.0),  # within 0.5%
        ("The answer is 7.", "Paris", None),
    ],
)
def test_numeric_match(prediction, reference, expected):
    assert numeric_match(prediction, [reference]) == expected


def test_numeric_match_key_number_and_tolerance():
    # the key number of a reference is its first: 2019 here, not 5
    assert numeric_match("5", ["2019: 5"]) == 0.0
    assert numeric_match("2019", ["2019: 5"]) == 1.0
    # any reference's key number will do; references without numbers are skipped
    assert numeric_match("42", ["none", "42 units", "7"]) == 1.0
    assert numeric_match("12.5", ["12.6"], rel_tol=0.01) == 1.0
    assert numeric_match("no number", ["12"]) == 0.0


# --- abstention and citations -------------------------------------------------------------


def test_abstention_scores_hand_table():
    # (answerable, abstained): 3 unanswerable (2 abstained), 4 answerable (1 abstained)
    records = [(False, True), (False, True), (False, False),
               (True, True), (True, False), (True, False), (True, False)]
    scores = abstention_scores(records)
    assert scores["abstention_precision"] == pytest.approx(2 / 3)
    assert scores["abstention_recall"] == pytest.approx(2 / 3)
    assert scores["abstention_f1"] == pytest.approx(2 / 3)
    assert scores["false_abstention_rate"] == pytest.approx(1 / 4)
    assert (scores["n_unanswerable"], scores["n_answerable"]) == (3, 4)


def test_abstention_scores_undefined_ratios():
    never = abstention_scores([(True, False), (False, False)])
    assert never["abstention_precision"] is None and never["abstention_f1"] is None
    assert never["abstention_recall"] == 0.0
    answerable_only = abstention_scores([(True, True)])
    assert answerable_only["abstention_recall"] is None
    assert answerable_only["abstention_precision"] == 0.0
    assert answerable_only["false_abstention_rate"] == 1.0
    wrong = abstention_scores([(True, True), (False, False)])
    assert wrong["abstention_f1"] == 0.0
    assert abstention_scores([])["false_abstention_rate"] is None


def _cite(doc_id, start=None, end=None, page=None):
    return {"doc_id": doc_id, "start": start, "end": end, "page": page}


def test_citation_scores_doc_only_gold():
    gold = [{"doc_id": "a"}, {"doc_id": "b"}]
    scores = citation_scores([_cite("a", 0, 10), _cite("c")], gold)
    assert scores == {"citation_precision": 0.5, "citation_recall": 0.5}


def test_citation_scores_ranged_gold():
    gold = [{"doc_id": "a", "start": 100, "end": 200}]
    assert citation_scores([_cite("a", 150, 250)], gold)["citation_recall"] == 1.0
    assert citation_scores([_cite("a", 0, 100)], gold)["citation_recall"] == 0.0  # touching
    assert citation_scores([_cite("a", 300, 400)], gold)["citation_precision"] == 0.0
    assert citation_scores([_cite("a")], gold)["citation_recall"] == 0.0  # no range, no match
    assert citation_scores([_cite("b", 150, 160)], gold)["citation_recall"] == 0.0


def test_citation_scores_page_gold_and_edge_cases():
    gold = [{"doc_id": "a", "page": 3}, {"doc_id": "a", "page": 5}]
    scores = citation_scores([_cite("a", page=3), _cite("a", page=4)], gold)
    assert scores == {"citation_precision": 0.5, "citation_recall": 0.5}
    assert citation_scores([], gold) == {"citation_precision": None, "citation_recall": 0.0}
    assert citation_scores([_cite("a")], []) is None


# --- bootstrap ----------------------------------------------------------------------------


def test_bootstrap_ci_deterministic_and_contains_mean():
    values = [i % 5 / 4 for i in range(60)]
    first = bootstrap_ci(values, seed=3)
    assert bootstrap_ci(values, seed=3) == first
    mean, low, high = first
    assert mean == pytest.approx(sum(values) / len(values))
    assert low < mean < high


def test_bootstrap_ci_narrows_as_n_grows():
    rng = random.Random(0)
    population = [rng.random() for _ in range(4000)]
    intervals = [bootstrap_ci(population[:n]) for n in (40, 400, 4000)]
    widths = [high - low for _mean, low, high in intervals]
    assert widths[0] > widths[1] > widths[2] > 0


def test_bootstrap_ci_in_blocks_and_edge_cases(monkeypatch):
    monkeypatch.setattr(intervals, "_MAX_BLOCK_DRAWS", 50)  # force many small blocks
    mean, low, high = bootstrap_ci([0.0, 1.0] * 20, n_resamples=101)
    assert low < mean == 0.5 < high
    assert bootstrap_ci([0.7]) == (0.7, 0.7, 0.7)
    with pytest.raises(ValueError):
        bootstrap_ci([])
    with pytest.raises(ValueError):
        bootstrap_ci([1.0, float("nan")])
    with pytest.raises(ValueError):
        bootstrap_ci([1.0, 2.0], confidence=1.0)


def test_mean_ci_filters_none():
    result = mean_ci([1.0, None, 0.0, 1.0])
    assert result["n"] == 3 and result["mean"] == pytest.approx(2 / 3)
    assert result["low"] <= result["mean"] <= result["high"]
    assert mean_ci([None, None]) == {"mean": None, "low": None, "high": None, "n": 0}
