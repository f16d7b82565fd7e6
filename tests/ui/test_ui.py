"""The chat UI: safe HTML for articles, citations as links, trust shown, a compact history, the server."""

from __future__ import annotations

import html
import itertools
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st

from rag.embedding.fake import WordsEmbedder
from rag.http.schemas import MAX_HISTORY_TURNS, MAX_TURN_CHARS
from rag.pipeline import Pipeline, build_pipeline
from rag.retrieval.followup import Turn
from rag.server import create_server_app
from rag.settings import Settings
from rag.types import Answer, Citation, Document, DocumentMeta, Passage
from ui import render
from ui.app import Chat
from ui.conversation import KEPT, Conversation, Source
from ui.emphasis import key_spans, pieces, question_kind

ALLOWED_TAGS = {
    "article", "h2", "div", "p", "span", "a", "q", "i", "mark", "strong", "blockquote", "details", "summary",
    "ol", "ul", "li", "button", "section",
}  # fmt: skip
EVIL = (
    'Vorspann <script>alert("x")</script> und <img src=x onerror="alert(1)">.\n\n'
    "Der Hafen wurde 1888 eröffnet & ist <b>groß</b>.\n\n$$x^2$$ **fett** [link](javascript:alert(1))"
)
QUOTE = "Der Hafen wurde 1888 eröffnet & ist <b>groß</b>."
TIP = (
    r'<span class="rag-tip" role="tooltip" id="([^"]+)"><span class="rag-tip-title">(.*?)</span>(.*?)</span>'
)


def _doc(text: str, title: str = "Hafen <i>News</i>", date: str | None = "2024-01") -> Document:
    return Document("hafen", "hafen.md", text, DocumentMeta(title, date), (), "0" * 64)


def _answer(doc: Document, quote: str, language: str = "de", question: str = "Wann?") -> Answer:
    start = doc.text.index(quote)
    end = start + len(quote)
    p_start, p_end = max(0, start - 60), min(len(doc.text), end + 60)  # a passage around the sentence
    citation = Citation(1, doc.doc_id, doc.meta.title, doc.meta.date, quote, start, end,
                        doc.text[p_start:p_end], p_start, p_end, 0.9)  # fmt: skip
    return Answer(question, f"{quote} [1]", False, language, (citation,), (), 0.93, {}, question)


def _tags(markup: str) -> set[str]:
    return {m.lower() for m in re.findall(r"</?([a-zA-Z][a-zA-Z0-9]*)", markup)}


def _text(markup: str) -> str:
    """What a reader sees of ``markup``, white space folded (the tooltips left out)."""
    markup = re.sub(TIP, "", markup)
    return " ".join(html.unescape(render_strip(markup)).split())


def render_strip(markup: str) -> str:
    return re.sub(r"<[^>]*>", "", markup)


def _answer_paragraph(markup: str) -> str:
    return _text(markup[markup.index('<p class="rag-answer-text">') :].split("</p>", 1)[0])


# --- one turn


def test_article_markup_is_shown_as_text_never_as_markup() -> None:
    doc = _doc(EVIL)
    out = render.turn_html(1, "Wann <b>?</b>", _answer(doc, QUOTE), {doc.doc_id: doc}.get)
    assert _tags(out) <= ALLOWED_TAGS  # no <script>, <img>, <b> from the article, its title or the question
    assert "&lt;b&gt;groß&lt;/b&gt;" in out and "&lt;i&gt;News&lt;/i&gt;" in out and "Wann &lt;b&gt;" in out
    assert 'data-copy="„Der Hafen wurde 1888 eröffnet &amp; ist &lt;b&gt;' in out  # attributes escaped too


def test_the_answer_is_the_apis_text_with_each_n_a_link_named_after_its_source() -> None:
    doc = _doc(EVIL)
    out = render.turn_html(3, "Wann wurde der Hafen eröffnet?", _answer(doc, QUOTE), {doc.doc_id: doc}.get)
    assert _answer_paragraph(out) == f"{QUOTE} [1]"
    link = re.search(r'<a class="rag-ref"[^>]*>\[1\]</a>', out)
    assert link is not None
    assert 'href="#rag-t3-c1"' in link.group() and 'data-open="3:c1"' in link.group()
    assert 'aria-label="Quelle 1: Hafen &lt;i&gt;News&lt;/i&gt;"' in link.group()  # text, never raw markup
    tip = re.match(TIP, out[link.end() :])  # the preview right after its link
    assert (
        tip is not None and tip.group(1) == "rag-t3-tip1" and 'aria-describedby="rag-t3-tip1"' in link.group()
    )
    assert (
        html.unescape(tip.group(2)) == "Hafen <i>News</i> · 2024-01"
        and html.unescape(tip.group(3)) == f" {QUOTE}"
    )
    assert '<details class="rag-sources"><summary>Quellen (1)</summary>' in out  # closed: the answer first
    assert 'id="rag-t3-c1"' in out and 'data-open="3:c1">Im Artikel zeigen' in out


def test_the_cited_sentence_is_marked_in_a_window_of_its_passage() -> None:
    filler = " ".join(f"Satz{i}." for i in range(300))
    doc = _doc(f"{filler} {QUOTE} {filler}")
    answer = _answer(doc, QUOTE)
    citation = answer.citations[0]
    wide = Citation(1, doc.doc_id, doc.meta.title, doc.meta.date, QUOTE, citation.start, citation.end,
                    doc.text, 0, len(doc.text), 0.9)  # fmt: skip
    out = render.turn_html(
        1, "Wann?", Answer("Wann?", answer.answer, False, "de", (wide,), ()), lambda _: doc
    )
    excerpt = out[out.index('<blockquote class="rag-excerpt">') :].split("</blockquote>", 1)[0]
    before, marked = excerpt.split('<mark class="rag-cite">', 1)
    marked, after = marked.split("</mark>", 1)
    assert _text(marked) == QUOTE
    assert before.count("Satz") == pytest.approx(after.count("Satz"), abs=6)  # centred on its highlight
    assert len(_text(excerpt)) < 3 * render._CONTEXT + len(QUOTE) and "…" in excerpt


def test_a_date_or_number_asked_for_is_emphasised_without_changing_the_quote() -> None:
    doc = _doc(f"Kopf. {QUOTE} Ende.")
    when = render.turn_html(1, "Wann wurde der Hafen eröffnet?", _answer(doc, QUOTE), lambda _: doc)
    assert '<strong class="rag-key">1888</strong>' in when and _answer_paragraph(when) == f"{QUOTE} [1]"
    who = render.turn_html(1, "Wer hat den Hafen gebaut?", _answer(doc, QUOTE), lambda _: doc)
    assert "rag-key" not in who


def test_confidence_is_shown_on_every_answer_and_understood_only_for_follow_ups() -> None:
    doc = _doc(f"Kopf. {QUOTE}")
    plain = render.turn_html(1, "Wann?", _answer(doc, QUOTE), lambda _: doc)
    assert "Sicherheit: hoch (93 %)" in plain and "rag-level-high" in plain and "Verstanden als" not in plain
    follow = Answer("Und wann?", f"{QUOTE} [1]", False, "de", _answer(doc, QUOTE).citations, (), 0.8, {},
                    "Wer baute den Hafen? Und wann?")  # fmt: skip
    out = render.turn_html(2, "Und wann?", follow, lambda _: doc)
    assert (
        "Verstanden als: <q>Wer baute den Hafen? Und wann?</q>" in out and "Sicherheit: mittel (80 %)" in out
    )


def test_a_decline_leads_with_its_badge_and_marks_the_best_sentence_of_each_closest_passage() -> None:
    doc = _doc("Kopf.\n\nErster Satz hier. The harbour opened in 1888. Letzter Satz.")
    start = doc.text.index("The harbour")
    end = start + len("The harbour opened in 1888.")
    passage = Passage(doc.doc_id, doc.meta.title, 7, len(doc.text), doc.text[7:], 0.2, start, end)
    declined = Answer("Wer?", "Dazu steht nichts in den Artikeln.", True, "de", (), (passage,), 0.12)
    out = render.turn_html(4, "Wer?", declined, lambda _: doc)
    body = out[out.index('<div class="rag-msg') :]
    assert body.index("Keine Antwort in den Artikeln") < body.index("Dazu steht nichts")  # the badge first
    assert "Nächstliegende Stellen (1) · keine Antwort darin" in out and "rag-abstained" in out
    assert '<mark class="rag-near-mark">The harbour opened in 1888.</mark>' in out
    assert "Sicherheit: zu gering für eine Antwort (12 %)" in out and "rag-ref" not in out
    near = Source(
        doc.doc_id, start, end, doc.text[start:end], near=True, title=doc.meta.title, date="2024-01"
    )
    assert render.sources(declined, lambda _: doc) == {"p1": near}


def test_labels_follow_the_answers_language() -> None:
    doc = _doc("Kopf.\n\nThe harbour opened in 1888.")
    english = render.turn_html(1, "When?", _answer(doc, "The harbour opened in 1888.", "en"), lambda _: doc)
    assert "Sources (1)" in english and "Copy quote" in english and "Source 1:" in english
    assert "Quellen" not in english and 'lang="en"' in english


def test_copies_are_plain_text_with_title_date_and_a_stable_reference() -> None:
    doc = _doc(EVIL)
    answer = _answer(doc, QUOTE)
    c = answer.citations[0]
    out = render.turn_html(1, "Wann?", answer, lambda _: doc)
    copies = [html.unescape(m) for m in re.findall(r'data-copy="([^"]*)"', out)]
    whole, quote = copies
    assert quote == f"„{QUOTE}“\n— Hafen <i>News</i>, 2024-01; hafen, Zeichen {c.start}–{c.end}"
    assert whole == (
        f"Wann?\n\n{QUOTE} [1]\n\nQuellen:\n[1] Hafen <i>News</i>, 2024-01; hafen, Zeichen {c.start}–{c.end}"
    )  # the article's own text as it is, and no markup of the page's


def test_an_error_turn_says_so() -> None:
    out = render.error_html(2, "Wie?", "the question is longer than 2000 characters", "de")
    assert "Das hat nicht geklappt" in out and "rag-error" in out and "2000" in out and "Quellen" not in out


# --- the article, opened on demand


def test_the_article_panel_marks_the_span_and_shows_markup_as_text() -> None:
    doc = _doc(EVIL)
    start = doc.text.index(QUOTE)
    source = Source(doc.doc_id, start, start + len(QUOTE), QUOTE)
    out = render.article_html(doc, source, "de", "1:c1:7")
    assert _tags(out) <= ALLOWED_TAGS and "&lt;script&gt;" in out and 'data-request="1:c1:7"' in out
    assert re.findall(r'<mark class="rag-cite" id="rag-panel-mark">(.*?)</mark>', out) == [html.escape(QUOTE)]
    assert _text(out).count("Vorspann") == 1 and "Schließen" in out


def test_a_deleted_or_changed_article_is_said_to_be_gone() -> None:
    doc = _doc("Kopf.\n\nDer Hafen wurde 1888 eröffnet.")
    start = doc.text.index("Der Hafen")
    source = Source(doc.doc_id, start, len(doc.text), doc.text[start:])
    assert "nicht mehr im Korpus" in render.article_html(None, source, "de", "1:c1:1")
    changed = _doc("Kopf.\n\nDer Hafen wurde 1999 eröffnet.")
    assert "nicht mehr im Korpus" in render.article_html(changed, source, "de", "1:c1:1")
    assert "no longer in the corpus" in render.article_html(doc, None, "en", "9:c1:1")


def test_a_long_article_is_shown_as_a_window_around_the_span() -> None:
    filler = "Füllsatz ohne Belang. " * 10_000
    doc = _doc(f"Kopf.\n\n{filler}Der Hafen wurde 1888 eröffnet. {filler}")
    start = doc.text.index("Der Hafen")
    out = render.article_html(
        doc, Source(doc.doc_id, start, start + 30, doc.text[start : start + 30]), "de", ""
    )
    assert len(out) < render.ARTICLE_WINDOW * 1.2 and "Ausschnitt" in out
    assert '<mark class="rag-cite" id="rag-panel-mark">Der Hafen wurde 1888 eröffnet.</mark>' in out


def test_corpus_list_escapes_titles() -> None:
    out = render.corpus_html([_doc("Text.", title="<script>x</script>", date=None)])
    assert "&lt;script&gt;" in out and "ohne Datum" in out and _tags(out) <= ALLOWED_TAGS


# --- emphasis: the page's own patterns, linear in the text


@pytest.mark.parametrize(
    ("question", "kind"),
    [
        ("Wann wurde Nordkorea gegründet?", "when"),
        ("When was North Korea founded?", "when"),
        ("In welchem Jahr?", "when"),
        ("Wie viele Atomtests gab es?", "how_many"),
        ("How old was he when he died?", "how_many"),
        ("Wer ist Nebensja?", ""),
        ("What happened when Russia vetoed?", ""),
    ],
)
def test_question_kinds(question: str, kind: str) -> None:
    assert question_kind(question) == kind


def test_dates_and_numbers_are_found_whole() -> None:
    text = "Am 28. März 2024, 1948 und in den 1950er Jahren: 1,5 Millionen, 33 Meter, 2006, 2009 und 2013."
    assert [text[a:b] for a, b in key_spans(text, "when")] == [
        "28. März 2024", "1948", "1950er", "2006", "2009", "2013",
    ]  # fmt: skip
    assert [text[a:b] for a, b in key_spans(text, "how_many")] == ["1,5 Millionen", "33"]
    assert key_spans(text, "") == []


@given(st.text(max_size=300), st.sampled_from(["when", "how_many", ""]))
def test_emphasis_never_changes_the_text(text: str, kind: str) -> None:
    spans = key_spans(text, kind)  # type: ignore[arg-type]
    assert all(0 <= a < b <= len(text) for a, b in spans)
    assert all(b1 <= a2 for (_, b1), (a2, _) in itertools.pairwise(spans))
    assert "".join(piece for piece, _ in pieces(text, spans)) == text


def test_emphasis_takes_linear_time_on_hostile_text() -> None:
    for text in ("1." * 100_000, "1, " * 70_000, "März " * 40_000, "9" * 200_000):
        started = time.perf_counter()
        key_spans(text, "how_many"), key_spans(text, "when")
        assert time.perf_counter() - started < 2.0


# --- the conversation the server keeps


def test_the_conversation_applies_the_apis_history_limits() -> None:
    conversation = Conversation()
    for i in range(KEPT + 30):
        conversation = conversation.add(f"Frage {i} " + "x" * 20_000, "Antwort", "de", {})
    assert len(conversation.exchanges) == KEPT and conversation.count == KEPT + 30
    turns = conversation.turns()
    assert len(turns) == MAX_HISTORY_TURNS and all(len(t.content) <= MAX_TURN_CHARS for t in turns)
    assert turns[-1] == Turn("assistant", "Antwort") and conversation.exchanges[-1].number == KEPT + 30


@pytest.mark.parametrize(
    "request_", ["", "x", "1", "1:", ":c1", "1:c9", "99:c1", "-1:c1", "1" * 5000, "1:c1" * 99]
)
def test_a_request_for_nothing_kept_names_nothing(request_: str) -> None:
    conversation = Conversation().add("Wann?", "A [1]", "de", {"c1": Source("d", 0, 1, "A")})
    assert conversation.source(request_)[1] is None


def test_a_request_names_its_turn_and_card() -> None:
    conversation = Conversation().add("Wann?", "A [1]", "en", {"c1": Source("d", 0, 1, "A")})
    exchange, source = conversation.source("1:c1:17")
    assert exchange is not None and exchange.language == "en" and source == Source("d", 0, 1, "A")


# --- the chat handlers over the real pipeline (bag-of-words embedder)


@pytest.fixture
def chat(fake_pipeline: Pipeline) -> Chat:
    fake_pipeline.warm_up()
    return Chat(fake_pipeline)


def test_a_question_is_answered_with_one_new_turn(chat: Chat, fake_pipeline: Pipeline) -> None:
    box, turn, conversation = chat.ask("  Wann wurde Nordkorea gegründet? ", Conversation())
    assert box == "" and isinstance(turn, str) and 'id="rag-t1"' in turn and "rag-answered" in turn
    expected = fake_pipeline.ask("Wann wurde Nordkorea gegründet?")
    assert _answer_paragraph(turn) == " ".join(expected.answer.split())
    assert conversation.turns() == [
        Turn("user", "Wann wurde Nordkorea gegründet?"),
        Turn("assistant", expected.answer),
    ]
    _, second, conversation = chat.ask("Wer ist der russische UN-Botschafter?", conversation)
    assert 'id="rag-t2"' in second and "rag-t1" not in second  # a turn never carries the ones before it
    assert len(second) < 20_000 and '<details class="rag-article' not in second  # nor whole articles


def test_blank_input_adds_nothing(chat: Chat) -> None:
    box, turn, conversation = chat.ask("   ", Conversation())
    assert box == "" and conversation == Conversation() and "rag-turn" not in str(turn)


def test_follow_ups_read_the_conversation_and_show_how_they_were_understood(
    chat: Chat, fake_pipeline: Pipeline
) -> None:
    first = "Wogegen hat Russland sein Veto im Sicherheitsrat eingelegt?"
    _, _, conversation = chat.ask(first, Conversation())
    _, turn, _ = chat.ask("Und wann war das?", conversation)
    follow = fake_pipeline.ask("Und wann war das?", history=conversation.turns())
    assert not follow.abstained and _answer_paragraph(turn) == " ".join(follow.answer.split())
    assert follow.answer != fake_pipeline.ask("Und wann war das?").answer
    assert f"Verstanden als: <q>{first} Und wann war das?</q>" in turn


def test_a_question_that_names_its_own_subject_is_not_taken_as_a_follow_up(chat: Chat) -> None:
    _, _, conversation = chat.ask("Wer ist der russische UN-Botschafter?", Conversation())
    _, turn, _ = chat.ask("Wer ist der Bundeskanzler?", conversation)
    assert (
        "Verstanden als" not in turn and "rag-abstained" in turn and "Nebensja" not in _answer_paragraph(turn)
    )


def test_articles_open_on_demand_from_the_conversation(chat: Chat, fake_pipeline: Pipeline) -> None:
    _, _, conversation = chat.ask("Wann wurde Nordkorea gegründet?", Conversation())
    citation = fake_pipeline.ask("Wann wurde Nordkorea gegründet?").citations[0]
    panel = chat.open_article("1:c1:3", conversation)
    assert f'<mark class="rag-cite" id="rag-panel-mark">{html.escape(citation.quote)}</mark>' in panel
    assert "nicht mehr im Korpus" in chat.open_article("2:c1:4", conversation)
    assert "nicht mehr im Korpus" in chat.open_article(["not", "text"], None)


def test_pipeline_errors_become_a_turn_not_a_crash(chat: Chat) -> None:
    _, turn, conversation = chat.ask("Wie? " + "x" * 300_000, Conversation())
    assert "rag-error" in turn and "2000" in turn and conversation.count == 1
    assert len(conversation.exchanges[0].question) == 2001  # one over the limit, so the answer says so


def test_the_corpus_list_shows_titles_and_dates(chat: Chat) -> None:
    out = chat.corpus()
    assert "Russland will die UN-Sanktionen gegen Nordkorea aufweichen" in out and "2024-07" in out


# --- the one server: API and UI over one pipeline


@pytest.fixture
def server(fake_settings: Settings) -> Iterator[tuple[TestClient, Pipeline]]:
    pipeline = build_pipeline(fake_settings, WordsEmbedder())
    app = create_server_app(fake_settings, pipeline)
    with TestClient(app, base_url="http://127.0.0.1") as client:
        yield client, pipeline


def test_the_server_serves_the_ui_and_the_api_from_one_pipeline(server: tuple[TestClient, Pipeline]) -> None:
    client, pipeline = server
    assert client.app.state.pipeline is pipeline  # type: ignore[attr-defined]
    page = client.get("/")
    assert page.status_code == 200 and "window.gradio_config" in page.text
    assert client.post("/ask", json={"question": "Wann wurde Nordkorea gegründet?"}).status_code == 200
    assert client.get("/health").json()["status"] == "ready"
    assert client.get("/documents/nope").status_code == 404  # the API's, not the UI's catch-all


def test_the_page_loads_nothing_from_elsewhere(server: tuple[TestClient, Pipeline]) -> None:
    client, _ = server
    theme = client.get("/theme.css").text
    assert "googleapis" not in theme and "@import" not in theme and "system-ui" in theme
    config = client.get("/config").json()
    assert "fonts.googleapis" not in str(config)
    page = client.get("/").text
    external = [u for u in re.findall(r'(?:src|href)="(https?://[^"]+)"', page) if "localhost" not in u]
    assert external == []


def test_the_theme_uses_no_web_fonts() -> None:
    from gradio.themes.utils.fonts import GoogleFont

    from ui.app import theme

    t = theme()
    assert not any(isinstance(f, GoogleFont) for f in [*t._font, *t._font_mono])


def test_ui_package_exports(tmp_path: Path) -> None:
    import ui

    assert set(ui.__all__) == {"build_ui", "mount"}
