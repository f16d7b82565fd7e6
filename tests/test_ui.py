"""The chat UI: safe HTML for articles, marked citations, follow-ups from the chat history, the server."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st

from rag.followup import Turn
from rag.pipeline import Pipeline, build_pipeline
from rag.server import create_server_app
from rag.settings import Settings
from rag.testing import WordsEmbedder
from rag.types import Answer, Citation, Document, DocumentMeta, Passage
from ui import render
from ui.app import Chat, to_turns

ALLOWED_TAGS = {"div", "p", "span", "mark", "blockquote", "details", "summary", "br", "ul", "li"}
EVIL = (
    'Vorspann <script>alert("x")</script> und <img src=x onerror="alert(1)">.\n\n'
    "Der Hafen wurde 1888 eröffnet & ist <b>groß</b>.\n\n$$x^2$$ **fett** [link](javascript:alert(1))"
)


def _doc(text: str, title: str = "Hafen <i>News</i>", date: str | None = "2024-01") -> Document:
    return Document("hafen", "hafen.md", text, DocumentMeta(title, date), (), "0" * 64)


def _answer(doc: Document, quote: str, language: str = "de") -> Answer:
    start = doc.text.index(quote)
    end = start + len(quote)
    p_start, p_end = max(0, start - 60), min(len(doc.text), end + 60)  # a passage around the sentence
    citation = Citation(1, doc.doc_id, doc.meta.title, doc.meta.date, quote, start, end,
                        doc.text[p_start:p_end], p_start, p_end, 0.9)  # fmt: skip
    return Answer("Wann?", f"{quote} [1]", False, language, (citation,), ())


def _tags(markup: str) -> set[str]:
    return {m.lower() for m in re.findall(r"</?([a-zA-Z][a-zA-Z0-9]*)", markup)}


# --- rendering


def test_article_markup_is_shown_as_text_never_as_markup() -> None:
    doc = _doc(EVIL)
    out = render.answer_html(
        _answer(doc, "Der Hafen wurde 1888 eröffnet & ist <b>groß</b>."), {doc.doc_id: doc}.get
    )
    assert _tags(out) <= ALLOWED_TAGS  # no <script>, <img>, <b>, <i> from the article or its title
    assert "&lt;script&gt;" in out and "&lt;img src=x onerror=" in out and "&lt;i&gt;News&lt;/i&gt;" in out
    assert "\n" not in out  # one HTML block: Markdown never re-reads article text


def test_the_cited_span_is_marked_in_its_passage_and_in_the_whole_article() -> None:
    doc = _doc(EVIL)
    quote = "Der Hafen wurde 1888 eröffnet & ist <b>groß</b>."
    out = render.answer_html(_answer(doc, quote), {doc.doc_id: doc}.get)
    marks = re.findall(r'<mark class="rag-cite">(.*?)</mark>', out)
    assert marks == [html.escape(quote)] * 2  # once in the passage, once in the article
    assert '<span class="rag-ref">[1]</span>' in out
    article = out[out.index("<details") :]
    assert "Vorspann" in article and "Ganzen Artikel öffnen" in article


def test_labels_follow_the_answers_language_and_abstentions_look_different() -> None:
    doc = _doc("Kopf.\n\nThe harbour opened in 1888.")
    english = render.answer_html(_answer(doc, "The harbour opened in 1888.", "en"), {doc.doc_id: doc}.get)
    assert "Sources" in english and "Open the whole article" in english and "Quellen" not in english
    passage = Passage(doc.doc_id, doc.meta.title, 7, len(doc.text), doc.text[7:], 0.2)
    abstained = Answer("Wer?", "Dazu steht nichts in den Artikeln.", True, "de", (), (passage,))
    out = render.answer_html(abstained, {doc.doc_id: doc}.get)
    assert (
        "rag-abstained" in out and "Keine Antwort in den Artikeln" in out and "Nächstliegende Stellen" in out
    )
    assert '<mark class="rag-near-mark">The harbour opened in 1888.</mark>' in out
    assert "rag-answered" not in out and "rag-ref" not in out


def test_a_deleted_or_changed_article_is_said_to_be_gone() -> None:
    doc = _doc("Kopf.\n\nDer Hafen wurde 1888 eröffnet.")
    answer = _answer(doc, "Der Hafen wurde 1888 eröffnet.")
    assert "nicht mehr im Korpus" in render.answer_html(answer, lambda _id: None)
    changed = _doc("Kopf.\n\nDer Hafen wurde 1999 eröffnet.")
    assert "nicht mehr im Korpus" in render.answer_html(answer, lambda _id: changed)


def test_a_long_article_is_shown_as_a_window_around_the_citation() -> None:
    filler = "Füllsatz ohne Belang. " * 10_000
    text = f"Kopf.\n\n{filler}Der Hafen wurde 1888 eröffnet. {filler}"
    doc = _doc(text)
    out = render.answer_html(_answer(doc, "Der Hafen wurde 1888 eröffnet."), {doc.doc_id: doc}.get)
    assert len(out) < render.ARTICLE_WINDOW * 1.5 and "Ausschnitt" in out
    assert '<mark class="rag-cite">Der Hafen wurde 1888 eröffnet.</mark>' in out[out.index("<details") :]


@given(st.text(max_size=200), st.integers(0, 200), st.integers(0, 200))
def test_highlight_keeps_the_text_and_marks_exactly_the_span(text: str, a: int, b: int) -> None:
    start, end = sorted((min(a, len(text)), min(b, len(text))))
    out = render.highlight(text, start, end)
    assert "\n" not in out and "\r" not in out
    mark = re.search(r'<mark class="rag-cite">(.*)</mark>', out)
    assert mark is not None
    plain = lambda s: html.unescape(s.replace("<br>", "\n"))  # noqa: E731
    normalise = lambda s: s.replace("\r\n", "\n").replace("\r", "\n")  # noqa: E731
    assert plain(mark.group(1)) == normalise(text[start:end])
    assert plain(re.sub(r"</?mark[^>]*>", "", out)) == normalise(text)


def test_answer_text_reads_the_plain_answer_back() -> None:
    doc = _doc(EVIL)
    quote = "Der Hafen wurde 1888 eröffnet & ist <b>groß</b>."
    assert (
        render.answer_text(render.answer_html(_answer(doc, quote), {doc.doc_id: doc}.get)) == f"{quote} [1]"
    )


def test_corpus_list_escapes_titles() -> None:
    out = render.corpus_html([_doc("Text.", title="<script>x</script>", date=None)])
    assert "&lt;script&gt;" in out and "ohne Datum" in out and _tags(out) <= ALLOWED_TAGS


# --- the chat handlers over the real pipeline (bag-of-words embedder)


@pytest.fixture
def chat(fake_pipeline: Pipeline) -> Chat:
    fake_pipeline.warm_up()
    return Chat(fake_pipeline)


def test_a_question_is_answered_with_marked_sources(chat: Chat, fake_pipeline: Pipeline) -> None:
    box, history = chat.add_question("  Wann wurde Nordkorea gegründet? ", [])
    assert box == "" and history == [{"role": "user", "content": "Wann wurde Nordkorea gegründet?"}]
    history = chat.answer(history)
    reply = history[-1]["content"]
    assert history[-1]["role"] == "assistant" and "rag-answered" in reply and "1948" in reply
    citation = fake_pipeline.ask("Wann wurde Nordkorea gegründet?").citations[0]
    assert f'<mark class="rag-cite">{html.escape(citation.quote)}</mark>' in reply


def test_blank_input_adds_nothing(chat: Chat) -> None:
    assert chat.add_question("   ", []) == ("", [])
    assert chat.answer([]) == []


def test_follow_up_reads_the_chat_history(chat: Chat, fake_pipeline: Pipeline) -> None:
    first = "Wogegen hat Russland sein Veto im Sicherheitsrat eingelegt?"
    history = chat.answer([{"role": "user", "content": first}])
    # Gradio hands the history back with content as a list of typed parts
    echoed = [{**m, "content": [{"type": "text", "text": m["content"]}]} for m in history]
    history = chat.answer(
        [*echoed, {"role": "user", "content": [{"type": "text", "text": "Und wann war das?"}]}]
    )
    follow = fake_pipeline.ask(
        "Und wann war das?", history=[Turn("user", first), Turn("assistant", fake_pipeline.ask(first).answer)]
    )
    assert not follow.abstained
    assert (
        render.answer_text(history[-1]["content"])
        == follow.answer
        != fake_pipeline.ask("Und wann war das?").answer
    )


def test_to_turns_keeps_questions_and_plain_answers(chat: Chat) -> None:
    history = chat.answer([{"role": "user", "content": "Wann wurde Nordkorea gegründet?"}])
    turns = to_turns(history)
    assert turns[0] == Turn("user", "Wann wurde Nordkorea gegründet?")
    assert turns[1].role == "assistant" and "<" not in turns[1].content and turns[1].content.endswith("[1]")


def test_pipeline_errors_become_a_message_not_a_crash(chat: Chat) -> None:
    history = chat.answer([{"role": "user", "content": "Wie? " + "x" * 2100}])
    assert "rag-error" in history[-1]["content"] and "2000" in history[-1]["content"]


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


def test_citation_card_shows_a_window_around_the_cited_sentence() -> None:
    from ui.render import passage_window

    passage = " ".join(f"Wort{i}" for i in range(400))
    start = passage.index("Wort200")
    end = start + len("Wort200 Wort201 Wort202")
    text, a, b, before, after = passage_window(passage, start, end, context=60)
    assert text[a:b] == passage[start:end] and text in passage
    assert before and after and len(text) < 200
    assert not text.startswith(" ") and not text.endswith(" ")
    whole, a, b, before, after = passage_window("Kurz. Zitat. Ende.", 6, 12)
    assert (whole, whole[a:b], before, after) == ("Kurz. Zitat. Ende.", "Zitat.", False, False)
