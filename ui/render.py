"""HTML for the chat: answers with their sources, the cited span marked in its passage and in its article.

Everything that comes from an article (title, date, text) is HTML-escaped piece by piece; the only
markup is built here, so markup or script inside an article is shown as text and never runs. The output
holds no newline, so the chat's Markdown renderer passes it through as one HTML block untouched
(a blank line would end the block and let Markdown reinterpret article text).
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Iterable

from rag.types import Answer, Citation, Document, Passage

# An article longer than this is shown as a window of this many characters around the cited span, so
# that a 2 MB upload does not travel with every chat message (about 20 pages of a news article).
ARTICLE_WINDOW = 60_000
_NEAREST = 3  # closest passages shown with an abstention
_CONTEXT = 240  # characters of the passage shown either side of a cited sentence
_ANSWER_OPEN = '<p class="rag-answer-text">'
# An answer quotes at most three sentences: escaped and marked up, it ends well inside this many characters.
_ANSWER_SCAN = 64_000

LABELS = {
    "de": {
        "sources": "Quellen",
        "closest": "Nächstliegende Stellen",
        "abstained": "Keine Antwort in den Artikeln",
        "open": "Ganzen Artikel öffnen",
        "open_passage": "Stelle im Artikel zeigen",
        "gone": "Dieser Artikel ist nicht mehr im Korpus.",
        "excerpt": "Ausschnitt des langen Artikels",
        "chars": "Zeichen",
        "error": "Das hat nicht geklappt",
        "no_date": "ohne Datum",
        "empty": "Keine Artikel im Korpus.",
        "chunks": "Abschnitte",
    },
    "en": {
        "sources": "Sources",
        "closest": "Closest passages",
        "abstained": "The articles do not answer this",
        "open": "Open the whole article",
        "open_passage": "Show the passage in its article",
        "gone": "This article is no longer in the corpus.",
        "excerpt": "Excerpt of a long article",
        "chars": "characters",
        "error": "That did not work",
        "no_date": "undated",
        "empty": "No articles in the corpus.",
        "chunks": "passages",
    },
}

DocumentLookup = Callable[[str], Document | None]


def _labels(language: str) -> dict[str, str]:
    return LABELS.get(language, LABELS["de"])


def esc(text: str) -> str:
    """Escaped text with line breaks kept as ``<br>`` (no raw newline may reach the Markdown renderer)."""
    return html.escape(text, quote=True).replace("\r\n", "\n").replace("\r", "\n").replace("\n", "<br>")


def highlight(text: str, start: int, end: int, mark_class: str = "rag-cite") -> str:
    """``text`` escaped, with ``text[start:end]`` inside ``<mark>``; built from escaped pieces only."""
    start, end = max(0, min(start, len(text))), max(0, min(end, len(text)))
    return f'{esc(text[:start])}<mark class="{mark_class}">{esc(text[start:end])}</mark>{esc(text[end:])}'


def answer_html(answer: Answer, lookup: DocumentLookup) -> str:
    """One assistant message: the answer with its [n] markers, then the cited or the closest passages."""
    lab = _labels(answer.language)
    numbers = {c.n for c in answer.citations}
    text = re.sub(
        r"\[(\d+)\]",
        lambda m: f'<span class="rag-ref">{m.group(0)}</span>' if int(m.group(1)) in numbers else m.group(0),
        esc(answer.answer),
    )
    if answer.abstained:
        head = f'<div class="rag-abstain-head">{esc(lab["abstained"])}</div>'
        cards = "".join(_passage_card(p, lookup, lab) for p in answer.passages[:_NEAREST])
        sources = _section(lab["closest"], cards) if cards else ""
        return f'<div class="rag-msg rag-abstained">{head}{_answer_p(text)}{sources}</div>'
    cards = "".join(_citation_card(c, lookup, lab) for c in answer.citations)
    return f'<div class="rag-msg rag-answered">{_answer_p(text)}{_section(lab["sources"], cards)}</div>'


def _answer_p(inner_html: str) -> str:
    return f'<p class="rag-answer-text">{inner_html}</p>'


def error_html(message: str, language: str) -> str:
    lab = _labels(language)
    return (
        f'<div class="rag-msg rag-error"><div class="rag-error-head">{esc(lab["error"])}</div>'
        f"{_answer_p(esc(message))}</div>"
    )


def answer_text(message_html: str, limit: int = 10_000) -> str:
    """The plain answer back out of :func:`answer_html`'s markup (for the conversation history), at most
    ``limit`` characters.

    The message comes back from the client, so its size is the client's choice: only its first
    :data:`_ANSWER_SCAN` characters are read (the answer paragraph opens every message this module
    makes), and the markup is taken out by scanning forward once, never by a pattern that backtracks.
    """
    head = message_html[:_ANSWER_SCAN]
    start = head.find(_ANSWER_OPEN)
    end = head.find("</p>", start) if start >= 0 else -1
    inner = head[start + len(_ANSWER_OPEN) : end] if end >= 0 else head
    return html.unescape(strip_tags(inner.replace("<br>", "\n")))[:limit]


def strip_tags(markup: str) -> str:
    """``markup`` without its tags (``<`` up to the next ``>``), in one forward scan."""
    out: list[str] = []
    pos = 0
    while (lt := markup.find("<", pos)) >= 0:
        gt = markup.find(">", lt + 1)
        if gt < 0:  # no tag closes after this point, so there are no more tags
            break
        out.append(markup[pos:lt])
        pos = gt + 1
    out.append(markup[pos:])
    return "".join(out)


def corpus_html(documents: Iterable[Document], language: str = "de") -> str:
    lab = _labels(language)
    items = "".join(
        f'<li><span class="rag-doc-title">{esc(d.meta.title)}</span>'
        f'<span class="rag-doc-meta">{esc(d.meta.date or lab["no_date"])}'
        f"{' · ' + esc(d.meta.source) if d.meta.source else ''}</span></li>"
        for d in sorted(documents, key=lambda d: (d.meta.date or "", d.meta.title), reverse=True)
    )
    if not items:
        return f'<p class="rag-muted">{esc(lab["empty"])}</p>'
    return f'<ul class="rag-corpus">{items}</ul>'


def _section(title: str, cards: str) -> str:
    return f'<div class="rag-sources"><div class="rag-sources-head">{esc(title)}</div>{cards}</div>'


def _meta_line(badge: str, title: str, date: str | None, start: int, end: int, lab: dict[str, str]) -> str:
    date_part = f'<span class="rag-date">{esc(date or lab["no_date"])}</span>'
    return (
        f'<div class="rag-source-meta">{badge}<span class="rag-title">{esc(title)}</span>{date_part}'
        f'<span class="rag-offsets">{esc(lab["chars"])} {start}–{end}</span></div>'
    )


def passage_window(
    passage: str, start: int, end: int, context: int = _CONTEXT
) -> tuple[str, int, int, bool, bool]:
    """The part of ``passage`` around ``[start, end)``: about ``context`` characters either side, cut at
    spaces, so the cited sentence is in view in the card (a passage is up to ~140 words); returns the
    window, the span's offsets in it, and whether text was left out before and after."""
    a = max(0, start - context)
    b = min(len(passage), end + context)
    if a > 0:
        space = passage.find(" ", a, start)
        a = space + 1 if space >= 0 else start
    if b < len(passage):
        space = passage.rfind(" ", end, b)
        b = space if space >= 0 else end
    return passage[a:b], start - a, end - a, a > 0, b < len(passage)


def _citation_card(c: Citation, lookup: DocumentLookup, lab: dict[str, str]) -> str:
    in_passage = c.passage_start <= c.start <= c.end <= c.passage_end
    if in_passage:
        text, a, b, cut_before, cut_after = passage_window(
            c.passage, c.start - c.passage_start, c.end - c.passage_start
        )
        passage = ("… " if cut_before else "") + highlight(text, a, b) + (" …" if cut_after else "")
    else:
        passage = f'<mark class="rag-cite">{esc(c.quote)}</mark>'
    badge = f'<span class="rag-badge">{c.n}</span>'
    return (
        f'<div class="rag-source" data-n="{c.n}">{_meta_line(badge, c.title, c.date, c.start, c.end, lab)}'
        f'<blockquote class="rag-passage">{passage}</blockquote>'
        f"{_article(lookup(c.doc_id), c.start, c.end, c.quote, 'rag-cite', lab['open'], lab)}</div>"
    )


def _passage_card(p: Passage, lookup: DocumentLookup, lab: dict[str, str]) -> str:
    doc = lookup(p.doc_id)
    date = doc.meta.date if doc else None
    return (
        f'<div class="rag-source rag-near">{_meta_line("", p.title, date, p.start, p.end, lab)}'
        f'<blockquote class="rag-passage">{esc(p.text)}</blockquote>'
        f"{_article(doc, p.start, p.end, p.text, 'rag-near-mark', lab['open_passage'], lab)}</div>"
    )


def _article(
    doc: Document | None, start: int, end: int, expected: str, mark: str, label: str, lab: dict[str, str]
) -> str:
    """A closed ``<details>`` with the whole article, ``[start, end)`` marked; opened, it scrolls there."""
    if doc is None or doc.text[start:end] != expected:
        return f'<p class="rag-muted">{esc(lab["gone"])}</p>'
    text, offset, note = doc.text, 0, ""
    if len(text) > ARTICLE_WINDOW:
        offset = max(0, min(start - ARTICLE_WINDOW // 2, len(text) - ARTICLE_WINDOW))
        text = text[offset : offset + ARTICLE_WINDOW]
        note = f'<p class="rag-muted">{esc(lab["excerpt"])} ({offset}–{offset + len(text)})</p>'
    title = f'<div class="rag-article-title">{esc(doc.meta.title)}</div>'
    body = highlight(text, start - offset, end - offset, mark)
    return (
        f'<details class="rag-article"><summary>{esc(label)}</summary>'
        f'<div class="rag-article-text">{title}{note}<div class="rag-article-body">{body}</div></div>'
        "</details>"
    )
