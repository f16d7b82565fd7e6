"""The evaluation metrics, each on hand-made values whose right answer is worked out in the test."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rag.evaluation.metrics import (
    Cited,
    Gold,
    Judged,
    Region,
    Trial,
    abstention_rates,
    contains_any,
    first_rank,
    hit_at,
    judge,
    mrr_at,
    normalize,
    split_answer,
    summarize,
    sweep,
    verbatim_count,
)

DOC = "Der Blauwal ist das größte Tier. Er wird 33 Meter lang.\n\nDer Vesuv brach 79 aus."
# offsets:  "Der Blauwal ist das größte Tier." = [0, 32); "Er wird 33 Meter lang." = [33, 55);
#           second paragraph [57, 80): "Der Vesuv brach 79 aus."
P1, P2 = Region("d", 0, 55), Region("d", 57, 80)
GOLD = Gold(paragraph=P1, spans=(Region("d", 41, 49),), texts=("33 Meter",))


def test_the_fixture_offsets_are_right() -> None:
    assert (
        DOC[41:49] == "33 Meter" and DOC[33:55] == "Er wird 33 Meter lang." and DOC[57:80].startswith("Der")
    )


def test_normalize_lower_cases_and_folds_white_space() -> None:
    assert normalize("  Der\tBlauwal \n ist ") == "der blauwal ist"


@pytest.mark.parametrize(
    ("text", "answers", "expected"),
    [
        ("Er wird 33  Meter lang.", ["33 meter"], True),  # case and white space folded on both sides
        ("Er wird 33 Meter lang.", ["34 Meter", "lang"], True),  # any of several answers
        ("Er wird 33 Meter lang.", ["Meter lang und"], False),
        ("Er wird 33 Meter lang.", ["", "   "], False),  # an empty gold answer matches nothing
        ("", ["33"], False),
    ],
)
def test_contains_any(text: str, answers: list[str], expected: bool) -> None:
    assert contains_any(text, answers) is expected


def test_a_region_contains_a_span_only_whole_and_in_the_same_document() -> None:
    span = Region("d", 41, 49)
    assert Region("d", 41, 49).contains(span)  # exact bounds
    assert Region("d", 33, 55).contains(span)
    assert not Region("d", 42, 55).contains(span)  # starts inside the answer
    assert not Region("d", 33, 48).contains(span)  # ends inside the answer
    assert not Region("e", 0, 100).contains(span)  # another document


def test_first_rank_is_one_based_and_none_when_missed() -> None:
    spans = [Region("d", 41, 49)]
    retrieved = [Region("d", 57, 80), Region("e", 0, 99), Region("d", 33, 55), Region("d", 0, 55)]
    assert first_rank(retrieved, spans) == 3
    assert first_rank(retrieved[:2], spans) is None
    assert first_rank([], spans) is None


def test_hit_and_mrr_on_known_ranks() -> None:
    ranks = [1, 2, None, 5, 11]
    assert hit_at(ranks, 1) == pytest.approx(1 / 5)
    assert hit_at(ranks, 3) == pytest.approx(2 / 5)
    assert hit_at(ranks, 5) == pytest.approx(3 / 5)
    assert hit_at(ranks, 10) == pytest.approx(3 / 5)  # rank 11 is past 10
    assert mrr_at(ranks, 10) == pytest.approx((1 + 1 / 2 + 0 + 1 / 5 + 0) / 5)
    assert hit_at([], 5) == 0.0 and mrr_at([], 10) == 0.0


@given(st.lists(st.one_of(st.none(), st.integers(min_value=1, max_value=30)), min_size=1, max_size=50))
def test_hit_grows_with_k_and_bounds_mrr(ranks: list[int | None]) -> None:
    hits = [hit_at(ranks, k) for k in (1, 3, 5, 10)]
    assert hits == sorted(hits)
    assert hit_at(ranks, 1) <= mrr_at(ranks, 10) <= hit_at(ranks, 10)


def test_split_answer_cuts_at_the_markers() -> None:
    assert split_answer("Der Blauwal ist das größte Tier. [1] Er wird 33 Meter lang. [2]") == [
        (1, "Der Blauwal ist das größte Tier."),
        (2, "Er wird 33 Meter lang."),
    ]
    assert split_answer("Text without a marker") == [(0, "Text without a marker")]


def test_verbatim_counts_only_sentences_equal_to_their_cited_span() -> None:
    good = [Cited(1, Region("d", 33, 55), "Er wird 33 Meter lang.")]
    assert verbatim_count("Er wird 33 Meter lang. [1]", good, {"d": DOC}) == (1, 1)
    shifted = [Cited(1, Region("d", 34, 55), "Er wird 33 Meter lang.")]  # offsets one off
    assert verbatim_count("Er wird 33 Meter lang. [1]", shifted, {"d": DOC}) == (0, 1)
    retold = [Cited(1, Region("d", 33, 55), "Er wird 33 Meter lang.")]  # the answer text differs
    assert verbatim_count("Er wird dreiunddreißig Meter lang. [1]", retold, {"d": DOC}) == (0, 1)
    assert verbatim_count("Er wird 33 Meter lang. [2]", good, {"d": DOC}) == (0, 1)  # no citation [2]
    assert verbatim_count("Er wird 33 Meter lang. [1]", good, {}) == (0, 1)  # unknown document


def _judge(answer: str, cited: list[Cited], abstained: bool = False, retrieved=(P1,)) -> Judged:
    return judge(GOLD, list(retrieved), abstained, answer, cited, {"d": DOC}, latency_ms=5.0)


def test_judge_an_answer_whose_second_sentence_holds_the_gold_answer() -> None:
    cited = [
        Cited(1, Region("d", 0, 32), "Der Blauwal ist das größte Tier."),
        Cited(2, Region("d", 33, 55), "Er wird 33 Meter lang."),
    ]
    j = _judge("Der Blauwal ist das größte Tier. [1] Er wird 33 Meter lang. [2]", cited, retrieved=(P2, P1))
    assert j.rank == 2 and not j.abstained
    assert j.contains and not j.first_contains
    assert (j.citations, j.citations_in_paragraph) == (2, 2)
    assert j.cited_answer and (j.verbatim, j.sentences) == (2, 2) and j.words == 11


def test_judge_a_citation_outside_the_gold_paragraph() -> None:
    cited = [Cited(1, Region("d", 57, 80), "Der Vesuv brach 79 aus.")]
    j = _judge("Der Vesuv brach 79 aus. [1]", cited)
    assert not j.contains and not j.cited_answer and j.citations_in_paragraph == 0 and j.verbatim == 1


def test_judge_an_abstention_quotes_nothing() -> None:
    j = _judge("Dazu steht nichts in den Artikeln.", [], abstained=True)
    assert j.abstained and not j.contains and not j.first_contains and not j.cited_answer
    assert (j.citations, j.sentences, j.verbatim) == (0, 0, 0)


def test_summarize_on_hand_made_verdicts() -> None:
    right = Judged(1, False, True, True, 2, 2, True, 2, 2, 30, 10.0)
    second = Judged(3, False, True, False, 2, 1, True, 2, 2, 40, 20.0)
    wrong = Judged(None, False, False, False, 1, 0, False, 1, 0, 20, 30.0)
    silent = Judged(2, True, False, False, 0, 0, False, 0, 0, 0, 40.0)
    report = summarize([right, second, wrong, silent])
    r, a, t = report["retrieval"], report["answers"], report["latency_ms"]
    assert r["hit@1"] == 0.25 and r["hit@3"] == 0.75 and r["hit@10"] == 0.75
    assert r["mrr@10"] == pytest.approx((1 + 1 / 3 + 0 + 1 / 2) / 4)
    assert a["contains_gold"] == 0.5 and a["first_sentence_contains_gold"] == 0.25
    assert a["answered_contains_gold"] == pytest.approx(2 / 3)
    assert a["citation_precision"] == pytest.approx(3 / 5)  # 2 + 1 + 0 of 2 + 2 + 1 citations
    assert a["citation_recall"] == pytest.approx(2 / 3)  # of the three answered questions
    assert a["verbatim_rate"] == pytest.approx(4 / 5)
    assert a["abstention_rate"] == 0.25
    assert a["mean_sentences"] == pytest.approx(5 / 3) and a["mean_words"] == pytest.approx(30)
    assert t["median"] == 25.0 and t["p95"] == pytest.approx(38.5)


def test_summarize_nothing() -> None:
    report = summarize([])
    assert report["retrieval"]["hit@1"] == 0.0 and report["answers"]["verbatim_rate"] == 1.0
    assert report["answers"]["citation_precision"] == 0.0 and report["latency_ms"]["p95"] == 0.0


def test_abstention_rates_apply_the_threshold_to_the_evidence() -> None:
    trials = [
        Trial(0.9, True, True),
        Trial(0.5, True, True),
        Trial(0.3, True, False),
        Trial(-math.inf, True, False),  # nothing to quote at all
        Trial(0.7, False, False),
        Trial(0.2, False, False),
    ]
    at_04 = abstention_rates(trials, 0.4)
    assert at_04 == {
        "threshold": 0.4,
        "answerable_answered": 0.5,
        "answerable_correct": 0.5,
        "unanswerable_abstained": 0.5,
    }
    rows = sweep(trials, [0.0, 0.6, 1.0])
    assert [r["answerable_answered"] for r in rows] == [0.75, 0.25, 0.0]
    assert [r["unanswerable_abstained"] for r in rows] == [0.0, 0.5, 1.0]
    assert [r["answerable_correct"] for r in rows] == [0.5, 0.25, 0.0]
