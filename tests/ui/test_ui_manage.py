"""The chat page's article management and export, as handlers over the real pipeline (instant embedder),
and the guard's list of the page's events."""

from __future__ import annotations

import base64
import json
import logging
from datetime import UTC, datetime

import gradio as gr
import pytest
from fastapi import FastAPI
from pydantic import SecretStr

from rag.embedding.fake import WordsEmbedder
from rag.pipeline import Pipeline, build_pipeline
from rag.settings import Settings
from ui import app as ui_app
from ui.app import Chat, build_ui, mount
from ui.conversation import Conversation, Source
from ui.export import conversation_markdown
from ui.guard import EVENTS
from ui.manage import Articles, accepted_suffixes

from ..conftest import ROOT

KEY = "manage-key-Ä-9f2"  # not ASCII: the page sends what was typed, as UTF-8
ARTICLE = "Der Leuchtturm von Beispielhausen wurde 1888 gebaut und ist 40 Meter hoch.\n"


def _payload(name: str, data: bytes) -> str:
    return json.dumps({"name": name, "data": base64.b64encode(data).decode()})


@pytest.fixture
def keyed(fake_settings: Settings) -> Pipeline:
    settings = fake_settings.updated(api_key=SecretStr(KEY))
    pipeline = build_pipeline(settings, WordsEmbedder())
    pipeline.warm_up()
    return pipeline


def test_an_article_is_uploaded_listed_asked_about_and_deleted_with_the_key(keyed: Pipeline) -> None:
    articles = Articles(keyed)
    listing, status = articles.upload(_payload("leuchtturm.txt", ARTICLE.encode()), KEY)
    assert "Hinzugefügt" in status and "leuchtturm" in listing and len(keyed.documents()) == 3
    assert KEY not in listing + status
    answer = keyed.ask("Wann wurde der Leuchtturm von Beispielhausen gebaut?")
    doc_id = answer.citations[0].doc_id
    assert f'data-delete="{doc_id}"' in listing  # its button in the list
    listing, status = articles.delete(doc_id, KEY)
    assert "Gelöscht" in status and "leuchtturm" not in listing and len(keyed.documents()) == 2


@pytest.mark.parametrize(
    ("key", "said"),
    [
        ("", "API-Schlüssel eingeben"),
        ("   ", "API-Schlüssel eingeben"),
        ("wrong", "stimmt nicht"),
        (None, ""),
    ],
)
def test_without_the_right_key_nothing_changes(keyed: Pipeline, key: str | None, said: str) -> None:
    articles = Articles(keyed)
    before = {d.doc_id for d in keyed.documents()}
    for listing, status in (
        articles.upload(_payload("x.txt", ARTICLE.encode()), key),
        articles.delete(next(iter(before)), key),
    ):
        assert "rag-manage-error" in status and said in status and KEY not in status
        assert listing.count("data-delete") == 2
    assert {d.doc_id for d in keyed.documents()} == before


def test_with_no_key_configured_management_is_off(fake_pipeline: Pipeline) -> None:
    fake_pipeline.warm_up()
    _, status = Articles(fake_pipeline).upload(_payload("x.txt", ARTICLE.encode()), "anything")
    assert "RAG_API_KEY" in status and len(fake_pipeline.documents()) == 2


@pytest.mark.parametrize(
    ("payload", "said"),
    [
        ("not json", "no readable file"),
        (json.dumps({"name": "x.txt", "data": "%%%"}), "no readable file"),
        (json.dumps({"name": 3, "data": ""}), "no readable file"),
        (json.dumps([1, 2]), "no readable file"),
        (None, "larger than the limit"),
        ("x" * 5_000_000, "larger than the limit"),
        (_payload("x.pdf.exe", ARTICLE.encode()), "unsupported file type"),
        (_payload("leer.txt", b""), "empty"),
        (_payload("gross.txt", b"a " * 1_100_000), "larger than the limit"),
    ],
)
def test_what_is_not_an_article_is_refused_with_its_reason(
    keyed: Pipeline, payload: object, said: str
) -> None:
    _, status = Articles(keyed).upload(payload, KEY)
    assert "Nicht geändert" in status and said in status, status
    assert len(keyed.documents()) == 2


def test_a_bug_is_logged_without_the_key(keyed: Pipeline, caplog: pytest.LogCaptureFixture) -> None:
    def broken(*_: object) -> None:
        raise RuntimeError("disk on fire")

    keyed.add_document = broken  # type: ignore[assignment,method-assign]
    with caplog.at_level(logging.ERROR):
        _, status = Articles(keyed).upload(_payload("x.txt", ARTICLE.encode()), KEY)
    assert "protokolliert" in status and "disk on fire" in caplog.text and KEY not in caplog.text


def test_the_upload_form_accepts_the_apis_file_types() -> None:
    assert accepted_suffixes() == (".txt", ".md", ".html", ".htm", ".pdf")  # the API's SUPPORTED_SUFFIXES


def test_the_export_names_each_citations_title_date_offsets_and_quote(fake_pipeline: Pipeline) -> None:
    fake_pipeline.warm_up()
    chat = Chat(fake_pipeline)
    _, _, conversation = chat.ask("Wann wurde Nordkorea gegründet?", Conversation())
    _, _, conversation = chat.ask("Wer ist der Bundeskanzler von Atlantis?", conversation)
    answered = fake_pipeline.ask("Wann wurde Nordkorea gegründet?")
    markdown = json.loads(chat.export("export:1", conversation))["markdown"]
    assert markdown.startswith("# Gespräch · Conversation")
    assert "## 1. Wann wurde Nordkorea gegründet?" in markdown and answered.answer in markdown
    for c in answered.citations:
        doc = fake_pipeline.document(c.doc_id)
        assert (
            f"[{c.n}] **{c.title}**, {c.date or 'ohne Datum'}; `{c.doc_id}`, Zeichen {c.start}–{c.end}"
            in markdown
        )
        assert f"  > {doc.text[c.start : c.end]}" in markdown  # verbatim
    second = markdown.split("## 2.", 1)[1]
    if conversation.exchanges[1].sources and next(iter(conversation.exchanges[1].sources.values())).near:
        assert "_Keine Antwort in den Artikeln._" in second and "**Nächstliegende Stellen**" in second


def test_the_export_keeps_multiline_quotes_verbatim_and_says_when_it_is_empty() -> None:
    now = datetime(2026, 1, 2, 3, 4, tzinfo=UTC)
    source = Source("d1", 5, 20, "Zeile eins\n\nZeile *zwei*", title="T <b>", date=None)
    conversation = Conversation().add("Was?\nWirklich?", "Zeile eins … [1]", "de", {"c1": source})
    markdown = conversation_markdown(conversation, now)
    assert "Exportiert am 2026-01-02 03:04 UTC" in markdown and "## 1. Was? Wirklich?" in markdown
    assert (
        "[1] **T <b>**, ohne Datum; `d1`, Zeichen 5–20\n\n  > Zeile eins\n  >\n  > Zeile *zwei*\n" in markdown
    )
    assert "Noch keine Fragen" in conversation_markdown(Conversation(), now)


def test_every_event_of_the_page_is_listed_and_in_the_readme(fake_pipeline: Pipeline) -> None:
    names = {fn.api_name for fn in build_ui(fake_pipeline).fns.values()}
    assert names == EVENTS
    security = (ROOT / "README.md").read_text().split("## Security", 1)[1].split("\n## ", 1)[0]
    for name in EVENTS:
        assert f"`{name}`" in security, f"README's Security section misses the event {name}"


def test_an_event_missing_from_the_list_stops_the_server(
    fake_pipeline: Pipeline, tmp_path: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = ui_app.build_ui

    def with_extra(pipeline: Pipeline) -> gr.Blocks:
        blocks = real(pipeline)
        with blocks:
            gr.Button("x").click(lambda: None, api_name="sneaky")
        return blocks

    monkeypatch.setattr(ui_app, "build_ui", with_extra)
    with pytest.raises(RuntimeError, match="sneaky"):
        mount(FastAPI(), fake_pipeline, tmp_path)  # type: ignore[arg-type]
