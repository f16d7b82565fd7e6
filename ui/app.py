"""The Gradio chat: an adapter over the same :class:`~rag.pipeline.Pipeline` object the API serves.

No state of its own: the conversation lives in the chat component's history, which each turn reads back
for follow-up questions. Fully offline: system fonts, no analytics, nothing fetched from a CDN.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import gradio as gr
from fastapi import FastAPI
from starlette.routing import Mount

from rag.errors import DocumentNotFoundError, RagError
from rag.followup import Turn
from rag.language import detect_language
from rag.pipeline import MAX_QUESTION_CHARS, Pipeline
from rag.schemas import MAX_HISTORY_TURNS, MAX_TURN_CHARS
from rag.types import Document
from ui import render
from ui.guard import Event, GradioGuard

log = logging.getLogger(__name__)

CSS_PATH = Path(__file__).with_name("style.css")
EXAMPLES = [
    "Wann wurde Nordkorea gegründet?",
    "Wogegen hat Russland sein Veto eingelegt?",
    "Was hat Putin mit Kim in Pjöngjang unterzeichnet?",
    "Who is Nebensja?",
    "Who is Maria Zakharova?",
]
_CONCURRENCY = 4  # questions answered at once; reads share one immutable index snapshot
_FAILED = {
    "de": "Die Frage konnte nicht beantwortet werden; der Fehler wurde protokolliert.",
    "en": "The question could not be answered; the error was logged.",
}
_ANSWER_HEAD = 64_000  # characters of an answer's markup read back (its answer paragraph comes first)

# Opening an article scrolls its box to the marked span (inside the box only, the chat stays put).
_SCROLL_JS = """
() => {
  document.addEventListener("toggle", (event) => {
    const box = event.target;
    if (!(box instanceof HTMLDetailsElement) || !box.open || !box.classList.contains("rag-article")) return;
    const body = box.querySelector(".rag-article-text");
    const mark = box.querySelector("mark");
    if (!body || !mark) return;
    // the box is position: relative, so the mark's offsetTop is measured from the box's top
    body.scrollTop = Math.max(0, mark.offsetTop - body.clientHeight / 3);
  }, true);
}
"""

_HEADER = """
<div class="rag-header">
  <div>
    <h1>Nachrichten-Assistent <span class="rag-muted">· News Q&amp;A</span></h1>
    <p>Fragen Sie die Artikel – jede Antwort ist ein wörtliches Zitat mit Quelle, die Sie im Artikel prüfen
    können. <span class="rag-muted">Ask the articles in German or English; every answer is a quoted,
    cited sentence you can check in its article.</span></p>
  </div>
  <a class="rag-api-link" href="/docs" target="_blank">API</a>
</div>
"""

_ABOUT = """
<div class="rag-about">
  <h3>Was der Bot kann</h3>
  <ul>
    <li>antwortet nur mit wörtlich zitierten Sätzen aus den Artikeln, jeder mit Quelle [n]</li>
    <li>zeigt jede zitierte Stelle markiert im ganzen Artikel</li>
    <li>sagt, wenn die Artikel etwas nicht enthalten, und zeigt die nächstliegenden Stellen</li>
    <li>versteht Folgefragen wie „Und wann war das?“</li>
  </ul>
  <h3>Was er nicht kann</h3>
  <ul>
    <li>nichts zusammenfassen, bewerten oder dazuerfinden; kein Wissen außerhalb der Artikel</li>
  </ul>
  <p class="rag-muted">Answers are verbatim quotes from the articles below, never generated text; questions
  the articles do not answer get no answer. Nothing leaves this machine.</p>
</div>
"""


class Chat:
    """The chat's event handlers over ``pipeline``; it holds nothing else (the history is Gradio's).

    The history arrives from the client, so the API's limits are applied before anything reads it: the
    question is at most ``MAX_QUESTION_CHARS``, only the last ``MAX_HISTORY_TURNS`` turns are read, each
    at most ``MAX_TURN_CHARS`` (an answer is read back from the head of its markup only).
    """

    def __init__(self, pipeline: Pipeline) -> None:
        self.pipeline = pipeline

    def add_question(self, message: str, history: list[dict[str, Any]]) -> tuple[str, list[dict[str, Any]]]:
        """Clear the box and show the question at once; :meth:`answer` then replies to it."""
        # one character over the limit is kept, so that the answer says the question is too long
        message = (message if isinstance(message, str) else "")[: MAX_QUESTION_CHARS + 1].strip()
        if not message:
            return "", history
        return "", [*history, {"role": "user", "content": message}]

    def answer(self, history: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Answer the last user message, reading the earlier turns for follow-up questions."""
        if not history or not isinstance(history[-1], dict) or history[-1].get("role") != "user":
            return history
        question = _text(history[-1], MAX_QUESTION_CHARS + 1)
        try:
            earlier = to_turns(history[-1 - MAX_HISTORY_TURNS : -1])
            answer = self.pipeline.ask(question, history=earlier)
            reply = render.answer_html(answer, self._lookup)
        except RagError as exc:
            reply = render.error_html(exc.message, detect_language(question))
        except Exception:  # a bug, not the user's doing: logged, and the chat goes on
            log.exception("answering %r failed", question[:200])
            reply = render.error_html(_FAILED[detect_language(question)], detect_language(question))
        return [*history, {"role": "assistant", "content": reply}]

    def corpus(self) -> str:
        return render.corpus_html(self.pipeline.documents())

    def _lookup(self, doc_id: str) -> Document | None:
        try:
            return self.pipeline.document(doc_id)
        except DocumentNotFoundError:
            return None


def build_ui(pipeline: Pipeline) -> gr.Blocks:
    """The chat page, wired to ``pipeline``."""
    chat = Chat(pipeline)
    with gr.Blocks(title="Nachrichten-Assistent · News Q&A", analytics_enabled=False) as demo:
        gr.HTML(_HEADER, padding=False)
        with gr.Row(equal_height=False):
            with gr.Column(scale=3, min_width=420):
                chatbot = gr.Chatbot(
                    elem_id="rag-chat",
                    show_label=False,
                    height="68vh",
                    layout="panel",
                    latex_delimiters=[],
                    feedback_options=None,
                    buttons=["copy"],
                    placeholder=(
                        "<div class='rag-placeholder'><b>Fragen Sie die Artikel.</b><br>"
                        "Ask the articles, in German or English.</div>"
                    ),
                )
                box = gr.Textbox(
                    elem_id="rag-question",
                    show_label=False,
                    placeholder="Frage stellen … / Ask a question …",
                    max_length=2000,
                    submit_btn="Fragen",
                    autofocus=True,
                )
                examples = gr.Examples(EXAMPLES, inputs=[box], label="Beispielfragen · Example questions")
            with gr.Column(scale=1, min_width=260):
                gr.HTML(_ABOUT, padding=False)
                gr.HTML("<h3 class='rag-corpus-head'>Artikel im Korpus · Articles</h3>", padding=False)
                corpus_list = gr.HTML(elem_id="rag-corpus")

        for event in (box.submit, examples.load_input_event.then):
            event(chat.add_question, [box, chatbot], [box, chatbot], queue=False).then(
                chat.answer, chatbot, chatbot
            )
        demo.load(chat.corpus, None, corpus_list)
    return demo


def to_turns(history: Sequence[dict[str, Any]]) -> list[Turn]:
    """The chat history as the pipeline's turns: user questions, and the answers without their sources,
    each at most ``MAX_TURN_CHARS``."""
    turns = []
    for message in history:
        if not isinstance(message, dict) or message.get("role") not in ("user", "assistant"):
            continue
        if message["role"] == "assistant":  # its markup is long: read its head only
            text = render.answer_text(_text(message, _ANSWER_HEAD), MAX_TURN_CHARS)
        else:
            text = _text(message, MAX_TURN_CHARS)
        if text.strip():
            turns.append(Turn(message["role"], text))
    return turns


def _text(message: dict[str, Any], limit: int) -> str:
    """A message's text, whether its content is a string or Gradio's list of typed parts, cut at ``limit``
    characters; parts that are not text are ignored."""
    content = message.get("content")
    if isinstance(content, str):
        return content[:limit]
    if not isinstance(content, list):
        return ""
    parts: list[str] = []
    size = 0
    for part in content:
        if size > limit:
            break
        if isinstance(part, dict) and part.get("type") == "text" and isinstance(part.get("text"), str):
            parts.append(part["text"][: limit - size + 1])
            size += len(parts[-1]) + 1
    return "\n".join(parts)[:limit]


def theme() -> gr.themes.Base:
    """A calm theme on system fonts only (the default theme would load fonts from Google)."""
    sans = ["system-ui", "-apple-system", "Segoe UI", "Roboto", "Helvetica Neue", "Arial", "sans-serif"]
    mono = ["ui-monospace", "SFMono-Regular", "Menlo", "Consolas", "monospace"]
    return gr.themes.Soft(
        primary_hue="indigo", secondary_hue="amber", neutral_hue="slate", font=sans, font_mono=mono
    )


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
        js=_SCROLL_JS,
    )
    # Gradio checks the paths of files in a payload (only what a user uploaded may be read) once its app
    # is launched; a mounted app is never launched, so without this the checks return early and any file
    # the server can read could be copied into the cache and served back.
    blocks.has_launched = True
    _empty(cache_dir)  # after mounting: Gradio makes folders for features this page does not route
    gradio = app.router.routes[-1]
    assert isinstance(gradio, Mount), "mount_gradio_app adds its app as the last route"
    events = {i: Event(len(fn.inputs), bool(fn.queue)) for i, fn in blocks.fns.items()}
    gradio.app = GradioGuard(gradio.app, events)
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
