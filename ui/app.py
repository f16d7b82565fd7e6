"""The Gradio chat: an adapter over the same :class:`~rag.pipeline.Pipeline` object the API serves.

No state of its own: the conversation lives in the chat component's history, which each turn reads back
for follow-up questions. Fully offline: system fonts, no analytics, nothing fetched from a CDN.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import gradio as gr
from fastapi import FastAPI

from rag.errors import DocumentNotFoundError, RagError
from rag.followup import Turn
from rag.language import detect_language
from rag.pipeline import Pipeline
from rag.types import Document
from ui import render

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
    """The chat's event handlers over ``pipeline``; it holds nothing else (the history is Gradio's)."""

    def __init__(self, pipeline: Pipeline) -> None:
        self.pipeline = pipeline

    def add_question(self, message: str, history: list[dict[str, Any]]) -> tuple[str, list[dict[str, Any]]]:
        """Clear the box and show the question at once; :meth:`answer` then replies to it."""
        message = (message or "").strip()
        if not message:
            return "", history
        return "", [*history, {"role": "user", "content": message}]

    def answer(self, history: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Answer the last user message, reading the earlier turns for follow-up questions."""
        if not history or history[-1].get("role") != "user":
            return history
        question = _text(history[-1])
        try:
            answer = self.pipeline.ask(question, history=to_turns(history[:-1]))
            reply = render.answer_html(answer, self._lookup)
        except RagError as exc:
            reply = render.error_html(exc.message, detect_language(question))
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
    """The chat history as the pipeline's turns: user questions, and the answers without their sources."""
    turns = []
    for message in history:
        text = _text(message)
        if message.get("role") == "assistant":
            text = render.answer_text(text)
        if message.get("role") in ("user", "assistant") and text.strip():
            turns.append(Turn(message["role"], text))
    return turns


def _text(message: dict[str, Any]) -> str:
    """A message's text, whether its content is a string or Gradio's list of typed parts."""
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [p for p in content if isinstance(p, dict) and p.get("type") == "text"]
        return "\n".join(str(p.get("text", "")) for p in parts)
    return ""


def theme() -> gr.themes.Base:
    """A calm theme on system fonts only (the default theme would load fonts from Google)."""
    sans = ["system-ui", "-apple-system", "Segoe UI", "Roboto", "Helvetica Neue", "Arial", "sans-serif"]
    mono = ["ui-monospace", "SFMono-Regular", "Menlo", "Consolas", "monospace"]
    return gr.themes.Soft(
        primary_hue="indigo", secondary_hue="amber", neutral_hue="slate", font=sans, font_mono=mono
    )


def mount(app: FastAPI, pipeline: Pipeline, path: str = "/") -> FastAPI:
    """Mount the chat on ``app`` at ``path``, offline and without Gradio's own extras."""
    return gr.mount_gradio_app(
        app,
        build_ui(pipeline).queue(default_concurrency_limit=_CONCURRENCY),
        path=path,
        footer_links=[],
        run_history=False,
        ssr_mode=False,
        mcp_server=False,
        pwa=False,
        enable_monitoring=False,
        show_error=True,
        max_file_size="100kb",  # the chat has no file inputs: keep Gradio's own upload route small
        theme=theme(),
        css_paths=[CSS_PATH],
        js=_SCROLL_JS,
    )
