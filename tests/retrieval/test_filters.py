"""Filters (dates, sources, documents) inside retrieval, and citations newest first when dates differ.

The corpus ``tests/data/dated``: ``a`` (2024-07, dpa-AFX) and ``b`` (2024-08-20, Reuters) both say how many
berths the port of Beispielstadt has; ``c`` (no date, dpa-AFX) is about its fish market.
"""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path

import pytest

from rag.answering.compose import score_sentences, select
from rag.embedding.fake import WordsEmbedder
from rag.errors import NothingMatchesError
from rag.pipeline import Pipeline, build_pipeline
from rag.retrieval.filters import date_period, resolve
from rag.types import Filters

from ..conftest import DATA, words_settings

DATED = DATA / "dated"
A, B, C = "a", "b", "c"  # their files; doc ids are derived from them
BERTHS = "Wie viele Liegeplätze hat der Hafen von Beispielstadt?"


@pytest.fixture(scope="module")
def dated(tmp_path_factory: pytest.TempPathFactory) -> Pipeline:
    base = tmp_path_factory.mktemp("dated")
    shutil.copytree(DATED, base / "corpus")
    settings = words_settings(base / "corpus", base / "index")
    pipeline = build_pipeline(settings, WordsEmbedder())
    pipeline.warm_up()
    return pipeline


def _id(pipeline: Pipeline, name: str) -> str:
    return next(d.doc_id for d in pipeline.documents() if Path(d.path).stem == name)


# --- the date rule


@pytest.mark.parametrize(
    ("text", "period"),
    [
        ("2024-07-15", (date(2024, 7, 15), date(2024, 7, 15))),
        ("2024-07", (date(2024, 7, 1), date(2024, 7, 31))),
        ("2024-02", (date(2024, 2, 1), date(2024, 2, 29))),
        ("2024", (date(2024, 1, 1), date(2024, 12, 31))),
        (" 2024-07-15T08:00:00+02:00", (date(2024, 7, 15), date(2024, 7, 15))),
        ("2024-13", None),
        ("2024-02-30", None),
        ("Juli 2024", None),
        ("", None),
        (None, None),
        ("20240715", None),
    ],
)
def test_a_date_stands_for_the_period_it_names(text: str | None, period: tuple[date, date] | None) -> None:
    assert date_period(text) == period


@pytest.mark.parametrize(
    ("date_from", "date_to", "kept"),
    [
        (date(2024, 7, 15), None, {A, B}),  # the end of July 2024 is after the 15th
        (None, date(2024, 7, 1), {A}),  # and its start is on the 1st
        (None, date(2024, 6, 30), set()),
        (date(2024, 8, 1), date(2024, 8, 31), {B}),
        (date(2024, 8, 21), None, set()),
    ],
)
def test_a_month_overlaps_a_range_that_holds_any_of_its_days(
    dated: Pipeline, date_from: date | None, date_to: date | None, kept: set[str]
) -> None:
    filters = Filters(date_from, date_to)
    if not kept:
        with pytest.raises(NothingMatchesError, match="1 of the others has no date"):
            resolve(dated.snapshot, filters)
        return
    scope = resolve(dated.snapshot, filters)
    assert scope.documents == len(kept) and scope.undated_excluded == 1  # c has no date
    docs = {dated.snapshot.chunks[r].doc_id for r in scope.rows.tolist()}
    assert docs == {_id(dated, k) for k in kept}


def test_sources_fold_case_and_space_and_combine_with_and(dated: Pipeline) -> None:
    scope = resolve(dated.snapshot, Filters(sources=(" DPA-afx ",)))
    assert scope.documents == 2 and scope.undated_excluded == 0  # no date filter: nothing left out for it
    both = resolve(dated.snapshot, Filters(date_from=date(2024, 1, 1), sources=("dpa-AFX",)))
    assert both.documents == 1 and both.undated_excluded == 1  # c: dpa-AFX, but no date
    with pytest.raises(NothingMatchesError, match="sources Reuters; documents"):
        resolve(dated.snapshot, Filters(sources=("Reuters",), doc_ids=(_id(dated, A),)))


# --- retrieval searches only the matching chunks


def test_a_filter_still_fills_top_k_from_its_articles(fake_pipeline: Pipeline) -> None:
    """The seed corpus: 000 has k chunks. The best chunk for this question is 001's, so filtering after
    retrieval would have left fewer than k of 000's; filtering inside it finds all k."""
    fake_pipeline.warm_up()
    question = "Nordkorea Sanktionen UN-Sicherheitsrat"
    snap = fake_pipeline.snapshot
    ours = "000_ec495bea3a2a83c6"
    k = sum(c.doc_id == ours for c in snap.chunks)
    assert k >= 2
    _, unfiltered = fake_pipeline.search(snap, question, k)
    assert unfiltered[0].chunk.doc_id != ours and sum(h.chunk.doc_id == ours for h in unfiltered) < k
    query, hits = fake_pipeline.search(snap, question, k, filters=Filters(doc_ids=(ours,)))
    assert query.scope is not None and query.scope.documents == 1
    assert len(hits) == k and {h.chunk.doc_id for h in hits} == {ours}
    answer = fake_pipeline.ask(question, top_k=k, filters=Filters(doc_ids=(ours,)))
    assert {p.doc_id for p in answer.passages} == {ours} and len(answer.passages) == k
    assert all(c.doc_id == ours for c in answer.citations)
    assert answer.filters is not None and answer.filters.documents == 1


def test_no_filter_and_an_empty_filter_answer_alike(fake_pipeline: Pipeline) -> None:
    fake_pipeline.warm_up()
    plain = fake_pipeline.ask("Wann wurde Nordkorea gegründet?")
    empty = fake_pipeline.ask("Wann wurde Nordkorea gegründet?", filters=Filters())
    assert plain.filters is None and empty.filters is None
    assert plain.to_dict() | {"timings_ms": {}} == empty.to_dict() | {"timings_ms": {}}


def test_a_filter_that_leaves_nothing_is_an_error_not_an_abstention(dated: Pipeline) -> None:
    with pytest.raises(NothingMatchesError) as caught:
        dated.ask(BERTHS, filters=Filters(date_from=date(2025, 1, 1)))
    assert caught.value.status_code == 422
    assert "no article matches the filters (dates 2025-01-01 to any)" in caught.value.message
    assert "1 of the others has no date" in caught.value.message


# --- dates on conflict


def test_citations_of_articles_with_different_dates_go_newest_first(dated: Pipeline) -> None:
    answer = dated.ask(BERTHS)
    assert answer.citation_order == "newest_first" and len(answer.citations) >= 2
    dates = [c.date for c in answer.citations]
    assert dates[0] == "2024-08-20" and "2024-07" in dates  # August before July
    starts = [p[0] for p in map(date_period, dates) if p]
    assert starts == sorted(starts, reverse=True)
    assert [c.n for c in answer.citations] == list(range(1, len(answer.citations) + 1))
    assert answer.answer == " ".join(f"{c.quote} [{c.n}]" for c in answer.citations)
    for c in answer.citations:  # still verbatim
        assert dated.document(c.doc_id).text[c.start : c.end] == c.quote
    # the composer chose the same sentences; only their order and numbers follow the dates
    query, hits = dated.search(dated.snapshot, BERTHS, 5)
    chosen = select(score_sentences(dated.snapshot, query, hits, dated.composer), dated.composer)
    assert sorted(s.index for s in chosen) == sorted(
        next(i for i, x in enumerate(dated.snapshot.sentences) if x.start == c.start and
             dated.snapshot.sentence_doc[i] == c.doc_id)
        for c in answer.citations
    )  # fmt: skip


def test_one_date_among_the_citations_keeps_the_composers_order(fake_pipeline: Pipeline) -> None:
    """The seed corpus: one article dated 2024-07, the other undated: not a conflict of dates."""
    fake_pipeline.warm_up()
    answer = fake_pipeline.ask("Wogegen hat Russland sein Veto eingelegt?")
    assert answer.citation_order == "relevance"
