"""The conversation as Markdown: every question, its answer, and each citation's title, date, offsets and
quoted sentence (for a decline, its closest passages), from the session's own state.

Quotes are copied verbatim into block quotes, never escaped or reflowed, so each one is still exactly
``text[start:end]`` of its article. The export holds the exchanges the session keeps (the last 50).
"""

from __future__ import annotations

from datetime import datetime

from ui.conversation import Conversation, Exchange, Source
from ui.render import labels

_TITLE = "Gespräch · Conversation"
_EXPORTED = {"de": "Exportiert am", "en": "Exported on"}
_EMPTY = "Noch keine Fragen. · No questions yet."


def conversation_markdown(conversation: Conversation, now: datetime) -> str:
    """The whole kept conversation as one Markdown document."""
    stamp = now.strftime("%Y-%m-%d %H:%M %Z").strip()
    head = f"# {_TITLE}\n\n{_EXPORTED['de']} {stamp}\n"
    if not conversation.exchanges:
        return f"{head}\n{_EMPTY}\n"
    return head + "".join(_exchange(e) for e in conversation.exchanges)


def _exchange(e: Exchange) -> str:
    lab = labels(e.language)
    question = " ".join(e.question.split())
    cited = {key.removeprefix("c"): s for key, s in e.sources.items() if not s.near}  # "c2" is [2]
    near = [s for s in e.sources.values() if s.near]
    if cited:
        listed = "\n".join(_source(f"[{n}]", s, lab) for n, s in cited.items())
        body = f"{e.answer}\n\n**{lab['sources']}**\n\n{listed}"
    elif near:
        listed = "\n".join(_source("-", s, lab) for s in near)
        body = f"_{lab['abstained']}._ {e.answer}\n\n**{lab['closest']}**\n\n{listed}"
    else:  # the question failed: its message is the answer
        body = e.answer or f"_{lab['error']}._"
    return f"\n## {e.number}. {question}\n\n{body}\n"


def _source(marker: str, s: Source, lab: dict[str, str]) -> str:
    where = f"`{s.doc_id}`, {lab['chars']} {s.start}–{s.end}"
    quoted = "\n".join(f"  > {line}" if line else "  >" for line in s.quote.split("\n"))
    return f"{marker} **{s.title or s.doc_id}**, {s.date or lab['no_date']}; {where}\n\n{quoted}\n"
