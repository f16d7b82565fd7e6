"""The chat page's filters (a date range and a source picker) and its dates note, at the handler level."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from rag.pipeline import Pipeline
from rag.types import Answer, Citation, FilterReport
from ui import render
from ui.app import Chat
from ui.conversation import Conversation, PageFilters
from ui.guard import EVENTS, page_events

DATED = "000_ec495bea3a2a83c6"  # the seed article dated 2024-07 (source dpa-AFX); 001 has no date


@pytest.fixture
def chat(fake_pipeline: Pipeline) -> Chat:
    fake_pipeline.warm_up()
    return Chat(fake_pipeline)


def test_the_page_offers_the_corpus_sources(chat: Chat) -> None:
    corpus, picker = chat.on_load()
    assert "Russland will die UN-Sanktionen" in corpus and picker["choices"] == ["dpa-AFX"]


def test_the_filter_controls_are_kept_with_the_conversation_and_applied(chat: Chat) -> None:
    conversation = Conversation().add("Wer?", "A", "de", {})
    kept = chat.set_filters("2024-07-01", "", [], conversation)
    assert kept.filters == PageFilters("2024-07-01", "", ()) and kept.exchanges == conversation.exchanges
    _, turn, after = chat.ask("Wogegen hat Russland sein Veto eingelegt?", kept)
    assert "rag-answered" in turn or "rag-abstained" in turn
    assert "Gefiltert: 1 passende Artikel durchsucht, 1 ohne Datum ausgelassen" in turn
    assert after.filters == kept.filters  # still set for the next question
    cited = [s.doc_id for s in after.exchanges[-1].sources.values()]
    assert cited and set(cited) == {DATED}
    by_source = chat.set_filters("", "", ["dpa-AFX"], after)  # 001 has no source
    _, turn, _ = chat.ask("Wogegen hat Russland sein Veto eingelegt?", by_source)
    assert "Gefiltert: 1 passende Artikel durchsucht</p>" in turn


def test_bad_values_from_the_page_are_cut_or_dropped(chat: Chat) -> None:
    page = chat.set_filters("2024-07-01" * 100, 5, ["a" * 500, {"path": "x"}, "b"], None).filters
    assert page == PageFilters("2024-07-01", "", ("a" * 200, "b"))


@pytest.mark.parametrize(
    ("date_from", "date_to", "message"),
    [
        ("2024-07", "", "is not a day written YYYY-MM-DD"),
        ("", "31.12.2024", "is not a day written YYYY-MM-DD"),
        ("2024-08-01", "2024-07-01", "the wrong way round"),
        ("2030-01-01", "", "no article matches the filters"),
    ],
)
def test_a_bad_or_empty_filter_is_an_error_turn_not_a_decline(
    chat: Chat, date_from: str, date_to: str, message: str
) -> None:
    conversation = chat.set_filters(date_from, date_to, [], Conversation())
    _, turn, after = chat.ask("Wann wurde Nordkorea gegründet?", conversation)
    assert "rag-error" in turn and message in turn and "Keine Antwort in den Artikeln" not in turn
    assert after.count == 1


def test_sources_of_different_dates_are_noted_newest_first_with_each_date() -> None:
    def cite(n: int, date: str | None) -> Citation:
        return Citation(n, f"d{n}", f"T{n}", date, f"Satz {n}.", 0, 8, f"Satz {n}.", 0, 8, 0.9)

    answer = Answer(
        "Wie viele?", "Satz 1. [1] Satz 2. [2] Satz 3. [3]", False, "de",
        (cite(1, "2024-08-20"), cite(2, "2024-07"), cite(3, None)), (), 0.95,
        filters=FilterReport(3, 0), citation_order="newest_first",
    )  # fmt: skip
    assert render.notes(answer, render.labels("de")) == [
        "Gefiltert: 3 passende Artikel durchsucht",
        "Quellen verschiedenen Datums, neueste zuerst: [1] 2024-08-20 · [2] 2024-07 · [3] ohne Datum",
    ]
    turn = render.turn_html(1, "Wie viele?", answer, lambda _: None)
    assert "neueste zuerst: [1] 2024-08-20" in turn


def test_every_event_of_the_page_is_listed_on_purpose() -> None:
    fns = {i: SimpleNamespace(api_name=name, inputs=[1], queue=True) for i, name in enumerate(sorted(EVENTS))}
    assert len(page_events(fns)) == len(EVENTS)
    fns[99] = SimpleNamespace(api_name="upload", inputs=[1], queue=True)
    with pytest.raises(RuntimeError, match=r"not in ui\.guard\.EVENTS: upload"):
        page_events(fns)
