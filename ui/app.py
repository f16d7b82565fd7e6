"""The Gradio chat: an adapter over the same :class:`~rag.pipeline.Pipeline` object the API serves.

The page keeps the rendered conversation; each question sends only its text, and each answer comes back
as one new turn of HTML (:mod:`ui.render`), which the page adds below the others (``ui/js/log.js``). The
conversation the follow-up questions need lives in Gradio's per-session state, as compact text
(:class:`ui.conversation.Conversation`); articles are opened on demand. Fully offline: system fonts, no
analytics, nothing fetched from a CDN.
"""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import gradio as gr
from fastapi import FastAPI
from starlette.routing import Mount

from rag.errors import BadRequestError, DocumentNotFoundError, RagError
from rag.pipeline import Pipeline
from rag.text.language import detect_language
from rag.types import MAX_QUESTION_CHARS, Document, Filters
from ui import render
from ui.conversation import Conversation, PageFilters
from ui.export import conversation_markdown
from ui.guard import GradioGuard, page_events
from ui.manage import Articles, accepted_suffixes, status_html

log = logging.getLogger(__name__)

HERE = Path(__file__).parent
CSS_PATH = HERE / "style.css"
EXAMPLES = [
    "Wann wurde Nordkorea gegründet?",
    "Wogegen hat Russland sein Veto eingelegt?",
    "Was hat Putin mit Kim in Pjöngjang unterzeichnet?",
    "Who is Nebensja?",
    "Who is Maria Zakharova?",
]
_CONCURRENCY = 4  # questions answered at once; reads share one immutable index snapshot
_DATE_CHARS = 10  # YYYY-MM-DD
_SOURCES, _SOURCE_CHARS = 200, 200  # a filter's sources, and each one's length (the API's limits)
_FAILED = {
    "de": "Die Frage konnte nicht beantwortet werden; der Fehler wurde protokolliert.",
    "en": "The question could not be answered; the error was logged.",
}
# The conversation's frame: the turns are added inside it by log.js, so Gradio never redraws them.
_LOG_FRAME = (
    '<div class="rag-log"><div class="rag-empty"><p><b>Fragen Sie die Artikel.</b> '
    '<span lang="en">Ask the articles, in German or English.</span></p></div>'
    '<div class="rag-turns" role="log" aria-label="Gespräch · Conversation"></div>'
    '<p id="rag-status" class="rag-visually-hidden" role="status"></p></div>'
)
# Shows the question at once, before the server answers (the values go on to Chat.ask unchanged).
_PENDING_JS = "(question, state) => { window.ragPending?.(question); return [question, state]; }"


def _js(name: str) -> str:
    return (HERE / "js" / f"{name}.js").read_text(encoding="utf-8")


class Chat:
    """The chat's event handlers over ``pipeline``. The conversation is Gradio's per-session state; the
    client sends only the question, which is cut to the API's limit before anything reads it, and the
    history read for follow-ups is bounded like the API's (:meth:`Conversation.turns`)."""

    def __init__(self, pipeline: Pipeline) -> None:
        self.pipeline = pipeline

    def ask(self, message: Any, conversation: Any) -> tuple[str, Any, Conversation]:
        """Answer ``message``: clears the box, returns the new turn's HTML and the conversation with it."""
        if not isinstance(conversation, Conversation):
            conversation = Conversation()
        # one character over the limit is kept, so that the answer says the question is too long
        question = (message if isinstance(message, str) else "")[: MAX_QUESTION_CHARS + 1].strip()
        if not question:
            return "", gr.skip(), conversation
        turn = conversation.count + 1
        language = detect_language(question)
        try:
            filters = read_filters(conversation.filters)
            answer = self.pipeline.ask(question, history=conversation.turns(), filters=filters)
        except RagError as exc:
            return self._failed(turn, question, exc.message, language, conversation)
        except Exception:  # a bug, not the user's doing: logged, and the chat goes on
            log.exception("answering %r failed", question[:200])
            return self._failed(turn, question, _FAILED[language], language, conversation)
        html = render.turn_html(turn, question, answer, self._lookup)
        sources = render.sources(answer, self._lookup)
        return "", html, conversation.add(question, answer.answer, answer.language, sources)

    @staticmethod
    def _failed(
        turn: int, question: str, message: str, language: str, conversation: Conversation
    ) -> tuple[str, str, Conversation]:
        html = render.error_html(turn, question, message, language)
        return "", html, conversation.add(question, "", language, {})

    def open_article(self, request: Any, conversation: Any) -> str:
        """The article panel for a page request ``"turn:card:counter"`` (see :meth:`Conversation.source`)."""
        request = request[:40] if isinstance(request, str) else ""
        if not isinstance(conversation, Conversation):
            conversation = Conversation()
        exchange, source = conversation.source(request)
        doc = self._lookup(source.doc_id) if source else None
        return render.article_html(doc, source, exchange.language if exchange else "de", request)

    def corpus(self) -> str:
        return render.corpus_html(self.pipeline.documents())

    def export(self, request: Any, conversation: Any) -> str:
        """The conversation as Markdown for the page to save, with the page's request (``"export:n"``)."""
        request = request[:40] if isinstance(request, str) else ""
        if not isinstance(conversation, Conversation):
            conversation = Conversation()
        markdown = conversation_markdown(conversation, datetime.now(UTC))
        return json.dumps({"request": request, "markdown": markdown}, ensure_ascii=False)

    def on_load(self) -> tuple[str, Any]:
        """The page as it opens: the list of articles, and their sources as the filter's choices."""
        documents = self.pipeline.documents()
        sources = sorted({d.meta.source for d in documents if d.meta.source}, key=str.casefold)
        return render.corpus_html(documents), gr.update(choices=sources)

    @staticmethod
    def set_filters(date_from: Any, date_to: Any, sources: Any, conversation: Any) -> Conversation:
        """Keep the filter controls' values with the conversation (read when the next question is asked)."""
        if not isinstance(conversation, Conversation):
            conversation = Conversation()
        picked = sources if isinstance(sources, list) else []
        kept = tuple(s[:_SOURCE_CHARS] for s in picked if isinstance(s, str))[:_SOURCES]
        page = PageFilters(_short(date_from), _short(date_to), kept)
        return replace(conversation, filters=page)

    def _lookup(self, doc_id: str) -> Document | None:
        try:
            return self.pipeline.document(doc_id)
        except DocumentNotFoundError:
            return None


def read_filters(page: PageFilters) -> Filters | None:
    """The page's filter controls as :class:`~rag.types.Filters` (None when none is set).

    Raises:
        BadRequestError: a date that is not a day written YYYY-MM-DD, or a range that ends before it starts.
    """
    first, last = _day(page.date_from, "from"), _day(page.date_to, "to")
    if first and last and first > last:
        raise BadRequestError(f"the filter's dates are the wrong way round: {first} is after {last}")
    filters = Filters(first, last, page.sources)
    return filters if filters.active else None


def _day(text: str, which: str) -> date | None:
    text = text.strip()
    if not text:
        return None
    try:
        if len(text) != len("2024-07-01"):
            raise ValueError
        return date.fromisoformat(text)
    except ValueError:
        raise BadRequestError(
            f"the filter's {which} date {text!r} is not a day written YYYY-MM-DD (JJJJ-MM-TT), "
            "such as 2024-07-01"
        ) from None


def _short(value: Any) -> str:
    return value[:_DATE_CHARS] if isinstance(value, str) else ""


# Over 40 lines on purpose: the page's components in the order they appear.
def build_ui(pipeline: Pipeline) -> gr.Blocks:
    """The chat page, wired to ``pipeline``."""
    chat = Chat(pipeline)
    with gr.Blocks(title="Nachrichten-Assistent · News Q&A", analytics_enabled=False) as demo:
        state = gr.State(Conversation())
        gr.HTML(
            render.static_html("header"), elem_id="rag-header", padding=False, apply_default_css=False,
            js_on_load=None,
        )  # fmt: skip
        with gr.Row(equal_height=False, elem_id="rag-main"):
            with gr.Column(scale=3, min_width=420, elem_id="rag-chat-column"):
                turns = gr.HTML(
                    "", html_template=_LOG_FRAME, js_on_load=_js("log"), elem_id="rag-log",
                    padding=False, apply_default_css=False,
                )  # fmt: skip
                box = gr.Textbox(
                    elem_id="rag-question", label="Frage · Question", show_label=False,
                    placeholder="Frage stellen … / Ask a question …", max_length=MAX_QUESTION_CHARS,
                    submit_btn="Fragen", autofocus=True, render=False,
                )  # fmt: skip
                examples = gr.Examples(
                    EXAMPLES, inputs=[box], label="Beispielfragen · Example questions", elem_id="rag-examples"
                )
                box.render()
            with gr.Column(scale=1, min_width=260, elem_id="rag-side"):
                panel = gr.HTML("", elem_id="rag-panel", js_on_load=_js("panel"), padding=False,
                                apply_default_css=False)  # fmt: skip
                opener = gr.HTML("", html_template="", js_on_load=_js("opener"), elem_id="rag-opener",
                                 padding=False, apply_default_css=False)  # fmt: skip
                with gr.Accordion("Filter · Filters", open=False, elem_id="rag-filters"):
                    date_from = gr.Textbox(label="Von · From (JJJJ-MM-TT)", placeholder="2024-07-01",
                                           max_length=_DATE_CHARS, elem_id="rag-from")  # fmt: skip
                    date_to = gr.Textbox(label="Bis · To (JJJJ-MM-TT)", placeholder="2024-12-31",
                                         max_length=_DATE_CHARS, elem_id="rag-to")  # fmt: skip
                    picker = gr.CheckboxGroup([], label="Quellen · Sources", elem_id="rag-sources")
                _export(chat, state)
                gr.HTML(render.static_html("about"), padding=False, apply_default_css=False, js_on_load=None)
                corpus_list = _articles(pipeline)

        quiet: dict[str, Any] = {"show_progress": "hidden", "js": _PENDING_JS}
        box.submit(chat.ask, [box, state], [box, turns, state], api_name="ask", **quiet)
        examples.load_input_event.then(
            chat.ask, [box, state], [box, turns, state], api_name="ask_example", **quiet
        )
        opener.open(  # the custom event that opener.js triggers (gr.HTML makes it from its js_on_load)
            chat.open_article, [opener, state], [panel], api_name="open_article", show_progress="hidden"
        )
        gr.on(  # one event for the three controls: their values are kept with the conversation
            [date_from.change, date_to.change, picker.change],
            chat.set_filters,
            [date_from, date_to, picker, state],
            [state],
            api_name="filters",
            show_progress="hidden",
        )
        demo.load(chat.on_load, None, [corpus_list, picker], api_name="corpus", show_progress="hidden")
    return demo


def _export(chat: Chat, state: gr.State) -> None:
    """The "export the chat" button and the event that brings the Markdown for the browser to save."""
    gr.HTML(render.static_html("export"), padding=False, apply_default_css=False, js_on_load=None)
    exporter = gr.HTML("", html_template="", js_on_load=_js("exporter"), elem_id="rag-exporter",
                       padding=False, apply_default_css=False)  # fmt: skip
    exporter.download(  # the custom event exporter.js triggers
        chat.export, [exporter, state], [exporter], api_name="export_conversation", show_progress="hidden"
    )


def _articles(pipeline: Pipeline) -> gr.HTML:
    """The article list with its management: the API key, the upload form, one status line; returns the
    list, which the page also fills when it loads."""
    articles = Articles(pipeline)
    plain: dict[str, Any] = {"padding": False, "apply_default_css": False}
    gr.HTML(render.static_html("manage"), js_on_load=None, **plain)
    key = gr.Textbox(
        type="password", label="API-Schlüssel · API key", elem_id="rag-key", max_lines=1,
        placeholder="RAG_API_KEY des Servers · the server's RAG_API_KEY",
    )  # fmt: skip
    upload_form = render.static_html(
        "upload", accept=accepted_suffixes(), max_bytes=pipeline.settings.server.max_upload_bytes
    )
    gr.HTML(upload_form, elem_id="rag-upload", js_on_load=None, **plain)
    status = gr.HTML(status_html("", "idle"), elem_id="rag-manage-status", js_on_load=None, **plain)
    courier = gr.HTML("", html_template="", js_on_load=_js("articles"), elem_id="rag-articles-io", **plain)
    corpus_list = gr.HTML(elem_id="rag-corpus", js_on_load=None, **plain)
    outputs: dict[str, Any] = {"outputs": [corpus_list, status], "show_progress": "hidden"}
    courier.upload(articles.upload, [courier, key], api_name="upload_article", **outputs)
    courier.delete(articles.delete, [courier, key], api_name="delete_article", **outputs)
    return corpus_list


def theme() -> gr.themes.Base:
    """A calm theme on system fonts only (the default theme would load fonts from Google), its muted text
    dark enough to read (Soft's slate-400 on white is 2.6:1; slate-600 is 7.6:1)."""
    sans = ["system-ui", "-apple-system", "Segoe UI", "Roboto", "Helvetica Neue", "Arial", "sans-serif"]
    mono = ["ui-monospace", "SFMono-Regular", "Menlo", "Consolas", "monospace"]
    return gr.themes.Soft(
        primary_hue="indigo", secondary_hue="amber", neutral_hue="slate", font=sans, font_mono=mono
    ).set(
        body_text_color_subdued="*neutral_600",
        body_text_color_subdued_dark="*neutral_300",
        block_label_text_color="*neutral_700",
        block_label_text_color_dark="*neutral_200",
        block_title_text_color="*neutral_700",
        block_title_text_color_dark="*neutral_200",
        input_placeholder_color="*neutral_500",
        input_placeholder_color_dark="*neutral_400",
    )


# Over 40 lines on purpose: every route and guard of the mounted page in one place, so none is missed.
def mount(app: FastAPI, pipeline: Pipeline, cache_dir: Path, path: str = "/") -> FastAPI:
    """Mount the chat on ``app`` at ``path``: offline, without Gradio's extras, behind :class:`GradioGuard`.

    Gradio's file cache is ``cache_dir`` (the server puts it under the index folder and points
    ``GRADIO_TEMP_DIR`` there before Gradio is imported); it is emptied now and when the app shuts down.
    """
    blocks = build_ui(pipeline).queue(default_concurrency_limit=_CONCURRENCY)
    blocks.GRADIO_CACHE = str(cache_dir)
    app = gr.mount_gradio_app(
        app,
        blocks,
        path=path,
        footer_links=[],
        run_history=False,
        ssr_mode=False,
        mcp_server=False,
        pwa=False,
        enable_monitoring=False,
        show_error=False,  # an unexpected error is logged, not shown (its text can name paths)
        allowed_paths=[],
        max_file_size="1kb",  # the chat takes no files (and the guard routes no upload)
        theme=theme(),
        css_paths=[CSS_PATH],
        js=_js("page"),
    )
    # Gradio checks the paths of files in a payload (only what a user uploaded may be read) once its app
    # is launched; a mounted app is never launched, so without this the checks return early and any file
    # the server can read could be copied into the cache and served back.
    blocks.has_launched = True
    _empty(cache_dir)  # after mounting: Gradio makes folders for features this page does not route
    gradio = app.router.routes[-1]
    assert isinstance(gradio, Mount), "mount_gradio_app adds its app as the last route"
    gradio.app = GradioGuard(gradio.app, page_events(blocks.fns))
    started = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(instance: FastAPI) -> AsyncIterator[Any]:
        try:
            async with started(instance) as state:
                yield state
        finally:
            _empty(cache_dir)

    app.router.lifespan_context = lifespan
    return app


def _empty(folder: Path) -> None:
    """``folder`` exists and is empty (nothing Gradio cached outlives a server)."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True, exist_ok=True)
