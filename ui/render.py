"""HTML for the chat page from Jinja2 templates (``ui/templates``, autoescaped); the plain texts it copies.

Everything that comes from an article (title, date, text) reaches the templates as data and is escaped
there; the only markup is the templates' own, so markup or script inside an article is shown as text and
never runs. A turn carries its answer, a compact "Quellen (n)" list with a window of each passage around its
marked sentence, and no whole article: an article is rendered on demand (:func:`article_html`).

At ~330 lines it is over the house's ~300: each template's context is built here, beside the others.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from rag.types import Answer, Citation, Document, Passage
from ui.conversation import Source
from ui.emphasis import Kind, key_spans, pieces, question_kind

# An article longer than this is shown as a window of this many characters around the marked span, so
# that a 2 MB upload does not travel to the page (about 20 pages of a news article).
ARTICLE_WINDOW = 60_000
NEAREST = 3  # closest passages shown with a decline
# Characters of the passage shown either side of a marked sentence: about four lines of a 390 px phone
# screen either side, so the card is short and its highlight sits in its middle.
_CONTEXT = 160
_HIGH, _MEDIUM = 0.9, 0.75  # confidence levels of an answer: high from 0.9, medium from 0.75

LABELS = {
    "de": {
        "sources": "Quellen",
        "source": "Quelle",
        "closest": "Nächstliegende Stellen",
        "no_answer_there": "keine Antwort darin",
        "abstained": "Keine Antwort in den Artikeln",
        "understood": "Verstanden als:",
        "confidence": "Sicherheit",
        "high": "hoch",
        "medium": "mittel",
        "low": "gering",
        "too_low": "zu gering für eine Antwort",
        "open": "Im Artikel zeigen",
        "copy_quote": "Zitat kopieren",
        "copy_answer": "Antwort kopieren",
        "copied": "Kopiert",
        "close": "Schließen",
        "gone": "Dieser Artikel ist nicht mehr im Korpus, oder die Stelle hat sich geändert.",
        "excerpt": "Ausschnitt des langen Artikels",
        "chars": "Zeichen",
        "error": "Das hat nicht geklappt",
        "no_date": "ohne Datum",
        "filtered": "Gefiltert: {n} passende Artikel durchsucht",
        "undated_out": ", {n} ohne Datum ausgelassen",
        "newest_first": "Quellen verschiedenen Datums, neueste zuerst",
        "empty": "Keine Artikel im Korpus.",
        "open_quote": "„",
        "close_quote": "“",
    },
    "en": {
        "sources": "Sources",
        "source": "Source",
        "closest": "Closest passages",
        "no_answer_there": "no answer in them",
        "abstained": "The articles do not answer this",
        "understood": "Understood as:",
        "confidence": "Confidence",
        "high": "high",
        "medium": "medium",
        "low": "low",
        "too_low": "too low to answer",
        "open": "Show in the article",
        "copy_quote": "Copy quote",
        "copy_answer": "Copy answer",
        "copied": "Copied",
        "close": "Close",
        "gone": "This article is no longer in the corpus, or the passage has changed.",
        "excerpt": "Excerpt of a long article",
        "chars": "characters",
        "error": "That did not work",
        "no_date": "undated",
        "filtered": "Filtered: {n} matching articles searched",
        "undated_out": ", {n} undated left out",
        "newest_first": "Sources of different dates, newest first",
        "empty": "No articles in the corpus.",
        "open_quote": "“",
        "close_quote": "”",
    },
}

DocumentLookup = Callable[[str], Document | None]
Runs = tuple[tuple[str, bool], ...]  # text as (piece, emphasised) runs

_ENV = Environment(
    loader=FileSystemLoader(Path(__file__).with_name("templates")),
    autoescape=True,
    trim_blocks=True,
    lstrip_blocks=True,
    undefined=StrictUndefined,
)


def labels(language: str) -> dict[str, str]:
    return LABELS.get(language, LABELS["de"])


@dataclass(frozen=True)
class Excerpt:
    """A window of a passage around its marked sentence."""

    before: str
    marked: Runs
    after: str
    cut_before: bool
    cut_after: bool


@dataclass(frozen=True)
class Card:
    """One source under an answer: a citation (``n``) or, with a decline, a closest passage."""

    key: str  # "c1" for citation 1, "p2" for the second closest passage: its element id and article request
    n: int | None
    title: str
    date: str
    doc_id: str
    start: int
    end: int
    excerpt: Excerpt
    copy: str


@dataclass(frozen=True)
class Quoted:
    """One sentence of an answer with its ``[n]``."""

    n: int
    pieces: Runs
    quote: str
    title: str
    date: str


@dataclass(frozen=True)
class Confidence:
    percent: int
    level: str  # high, medium, low
    label: str


def turn_html(turn: int, question: str, answer: Answer, lookup: DocumentLookup) -> str:
    """One turn: the question, the answer with its ``[n]`` links, how it was understood, the confidence,
    and its sources (or, with a decline, its closest passages) behind a closed disclosure."""
    lab = labels(answer.language)
    kind = question_kind(question)
    if answer.abstained:
        cards = [_passage_card(i, p, lookup, lab) for i, p in enumerate(answer.passages[:NEAREST], start=1)]
        sentences: list[Quoted] = []
    else:
        cards = [_citation_card(c, kind, lab) for c in answer.citations]
        sentences = [_quoted(c, kind, lab) for c in answer.citations]
    understood = answer.resolved_question if answer.resolved_question not in ("", question) else ""
    return _ENV.get_template("turn.html.j2").render(
        notes=notes(answer, lab),
        turn=turn,
        question=question,
        language=answer.language,
        status="abstained" if answer.abstained else "answered",
        lab=lab,
        understood=understood,
        sentences=sentences,
        text=answer.answer,
        confidence=_confidence(answer, lab),
        copy=answer_copy(question, answer, cards, lab),
        cards=cards,
    )


def notes(answer: Answer, lab: dict[str, str]) -> list[str]:
    """Lines under an answer: what a filter left of the corpus, and that its sources go newest first
    (with each one's date) when their articles have different dates."""
    out = []
    if answer.filters:
        f = answer.filters
        line = lab["filtered"].format(n=f.documents)
        out.append(line + (lab["undated_out"].format(n=f.undated_excluded) if f.undated_excluded else ""))
    if answer.citation_order == "newest_first" and not answer.abstained:
        dated = " · ".join(f"[{c.n}] {c.date or lab['no_date']}" for c in answer.citations)
        out.append(f"{lab['newest_first']}: {dated}")
    return out


def error_html(turn: int, question: str, message: str, language: str) -> str:
    lab = labels(language)
    return _ENV.get_template("turn.html.j2").render(
        notes=[], turn=turn, question=question, language=language, status="error", lab=lab, understood="",
        sentences=[], text=message, confidence=None, copy="", cards=[],
    )  # fmt: skip


def article_html(doc: Document | None, source: Source | None, language: str, request: str) -> str:
    """The article panel: ``doc`` with ``source``'s span marked, or a note that it is gone (the article
    was removed, or no longer holds the quoted text there)."""
    lab = labels(language)
    template = _ENV.get_template("article.html.j2")
    if doc is None or source is None or doc.text[source.start : source.end] != source.quote:
        return template.render(title=lab["source"], body=None, lab=lab, language=language, request=request)
    text, offset, note = doc.text, 0, ""
    if len(text) > ARTICLE_WINDOW:
        offset = max(0, min(source.start - ARTICLE_WINDOW // 2, len(text) - ARTICLE_WINDOW))
        text = text[offset : offset + ARTICLE_WINDOW]
        note = f"{lab['excerpt']} ({offset}–{offset + len(text)})"
    a, b = source.start - offset, source.end - offset
    return template.render(
        title=doc.meta.title,
        date=doc.meta.date or lab["no_date"],
        source=doc.meta.source,
        start=source.start,
        end=source.end,
        excerpt_note=note,
        body={"before": text[:a], "marked": text[a:b], "after": text[b:]},
        mark_class="rag-near-mark" if source.near else "rag-cite",
        lab=lab,
        language=language,
        request=request,
    )


def corpus_html(documents: Iterable[Document], language: str = "de") -> str:
    """The article list, each with a button that deletes it (which needs the API key)."""
    lab = labels(language)
    shown = [
        dict(id=d.doc_id, title=d.meta.title, date=d.meta.date or lab["no_date"], source=d.meta.source)
        for d in sorted(documents, key=lambda d: (d.meta.date or "", d.meta.title), reverse=True)
    ]
    return _ENV.get_template("corpus.html.j2").render(documents=shown, lab=lab)


def static_html(name: str, **values: object) -> str:
    """A template without answers in it: the page's header, its note on what the bot can do, the upload
    form (``values`` are its settings)."""
    return _ENV.get_template(f"{name}.html.j2").render(**values)


def sources(answer: Answer, lookup: DocumentLookup | None = None) -> dict[str, Source]:
    """What each card of ``answer`` marks in its article, by card key (what :func:`article_html` opens),
    with the article's title and date (``lookup`` finds a closest passage's date)."""
    if not answer.abstained:
        return {
            f"c{c.n}": Source(c.doc_id, c.start, c.end, c.quote, title=c.title, date=c.date)
            for c in answer.citations
        }
    out = {}
    for i, p in enumerate(answer.passages[:NEAREST], start=1):
        start, end = _focus(p)
        doc = lookup(p.doc_id) if lookup else None
        quote = p.text[start - p.start : end - p.start]
        date = doc.meta.date if doc else None
        out[f"p{i}"] = Source(p.doc_id, start, end, quote, near=True, title=p.title, date=date)
    return out


# --- plain texts for the clipboard


def quote_copy(
    quote: str, title: str, date: str, doc_id: str, start: int, end: int, lab: dict[str, str]
) -> str:
    """A quote with its source, as a reporter pastes it: the sentence, title and date, and where it is."""
    quoted = f"{lab['open_quote']}{quote}{lab['close_quote']}"
    return f"{quoted}\n— {title}, {date}; {_where(doc_id, start, end, lab)}"


def answer_copy(question: str, answer: Answer, cards: list[Card], lab: dict[str, str]) -> str:
    """The whole answer as plain text: question, answer, and a list of its sources (or closest passages)."""
    head = f"{question}\n\n"
    if answer.abstained:
        listed = [f"- {c.title}, {c.date}; {_where(c.doc_id, c.start, c.end, lab)}" for c in cards]
        body = f"{lab['abstained']}. {answer.answer}"
        return head + body + (f"\n\n{lab['closest']}:\n" + "\n".join(listed) if listed else "")
    listed = [f"[{c.n}] {c.title}, {c.date}; {_where(c.doc_id, c.start, c.end, lab)}" for c in cards]
    return f"{head}{answer.answer}\n\n{lab['sources']}:\n" + "\n".join(listed)


def _where(doc_id: str, start: int, end: int, lab: dict[str, str]) -> str:
    return f"{doc_id}, {lab['chars']} {start}–{end}"


# --- the pieces of a turn


def _quoted(c: Citation, kind: Kind, lab: dict[str, str]) -> Quoted:
    runs = tuple(pieces(c.quote, key_spans(c.quote, kind)))
    return Quoted(c.n, runs, c.quote, c.title, c.date or lab["no_date"])


def _citation_card(c: Citation, kind: Kind, lab: dict[str, str]) -> Card:
    date = c.date or lab["no_date"]
    if c.passage_start <= c.start <= c.end <= c.passage_end:
        excerpt = excerpt_around(c.passage, c.start - c.passage_start, c.end - c.passage_start, kind)
    else:
        excerpt = excerpt_around(c.quote, 0, len(c.quote), kind)
    copy = quote_copy(c.quote, c.title, date, c.doc_id, c.start, c.end, lab)
    return Card(f"c{c.n}", c.n, c.title, date, c.doc_id, c.start, c.end, excerpt, copy)


def _passage_card(i: int, p: Passage, lookup: DocumentLookup, lab: dict[str, str]) -> Card:
    doc = lookup(p.doc_id)
    date = (doc.meta.date if doc else None) or lab["no_date"]
    start, end = _focus(p)
    excerpt = excerpt_around(p.text, start - p.start, end - p.start, "")
    copy = quote_copy(p.text[start - p.start : end - p.start], p.title, date, p.doc_id, start, end, lab)
    return Card(f"p{i}", None, p.title, date, p.doc_id, start, end, excerpt, copy)


def _focus(p: Passage) -> tuple[int, int]:
    """The document offsets of a passage's best sentence; its start where it has none."""
    start, end = p.focus_start, p.focus_end
    if start is not None and end is not None and p.start <= start <= end <= p.end:
        return start, end
    return p.start, min(p.end, p.start + 2 * _CONTEXT)


def excerpt_around(passage: str, start: int, end: int, kind: Kind, context: int = _CONTEXT) -> Excerpt:
    """The part of ``passage`` around ``[start, end)``: about ``context`` characters either side, cut at
    spaces, the span marked and what a ``kind`` question asks for emphasised inside it."""
    start, end = max(0, min(start, len(passage))), max(0, min(end, len(passage)))
    a = max(0, start - context)
    b = min(len(passage), end + context)
    if a > 0:
        space = passage.find(" ", a, start)
        a = space + 1 if space >= 0 else start
    if b < len(passage):
        space = passage.rfind(" ", end, b)
        b = space if space >= 0 else end
    marked = passage[start:end]
    runs = tuple(pieces(marked, key_spans(marked, kind)))
    return Excerpt(passage[a:start], runs, passage[end:b], a > 0, b < len(passage))


def _confidence(answer: Answer, lab: dict[str, str]) -> Confidence:
    c = answer.confidence
    if answer.abstained:
        level, label = "low", lab["too_low"]
    else:
        level = "high" if c >= _HIGH else "medium" if c >= _MEDIUM else "low"
        label = lab[level]
    return Confidence(round(100 * c), level, label)
