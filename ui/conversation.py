"""The chat's conversation as the server keeps it per browser session (in a ``gr.State``): compact text only.

Each exchange keeps the question, the plain answer (read back for follow-up questions) and, for each card
of the answer, the span it marks in its article, so that an article is opened on demand by a short
request (``"3:c1"``: turn 3, citation 1) instead of travelling with every message. The rendered HTML is
never kept: the page holds it, and no turn resends the ones before it. The page's filter controls are kept
beside it (:class:`PageFilters`), set by their own event, so a question still sends only its text.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from rag.http.schemas import MAX_HISTORY_TURNS, MAX_TURN_CHARS
from rag.retrieval.followup import Turn

# Exchanges kept: follow-ups read the last MAX_HISTORY_TURNS messages (25 exchanges); the sources of older
# ones stay openable a while longer. An exchange holds at most ~8,000 characters (a 2,001-character
# question, an answer of at most three sentences of at most 1,000 characters each, and the three quotes
# its cards mark), so a session's conversation stays under ~400,000.
KEPT = 50
_REQUEST_CHARS = 40


@dataclass(frozen=True)
class Source:
    """The span a card marks in its article; ``quote`` is the text expected there (else it changed)."""

    doc_id: str
    start: int
    end: int
    quote: str
    near: bool = False  # a closest passage of a decline, not a citation
    title: str = ""  # the article's, as answered: the export names it even after the article is deleted
    date: str | None = None


@dataclass(frozen=True)
class Exchange:
    number: int  # the turn's number on the page, from 1
    question: str
    answer: str
    language: str
    sources: dict[str, Source] = field(default_factory=dict)


@dataclass(frozen=True)
class PageFilters:
    """The page's filter controls as last set, as text (read into :class:`rag.types.Filters` when a
    question is asked, so a half-typed date is no error until then)."""

    date_from: str = ""
    date_to: str = ""
    sources: tuple[str, ...] = ()


@dataclass(frozen=True)
class Conversation:
    exchanges: tuple[Exchange, ...] = ()
    count: int = 0  # turns asked so far, also those no longer kept
    filters: PageFilters = PageFilters()

    def add(self, question: str, answer: str, language: str, sources: dict[str, Source]) -> Conversation:
        exchange = Exchange(self.count + 1, question, answer, language, sources)
        return replace(self, exchanges=(*self.exchanges, exchange)[-KEPT:], count=self.count + 1)

    def turns(self) -> list[Turn]:
        """The chat for follow-up questions: the last ``MAX_HISTORY_TURNS`` messages, each at most
        ``MAX_TURN_CHARS`` (the API's limits)."""
        messages = [
            Turn(role, text[:MAX_TURN_CHARS])
            for e in self.exchanges
            for role, text in (("user", e.question), ("assistant", e.answer))
            if text.strip()
        ]
        return messages[-MAX_HISTORY_TURNS:]

    def source(self, request: str) -> tuple[Exchange | None, Source | None]:
        """The exchange and the source a page request such as ``"3:c1"`` names (``None`` where it names
        nothing kept); anything after a second ``:`` (the page's request counter) is ignored."""
        turn, _, rest = request[:_REQUEST_CHARS].partition(":")
        key = rest.partition(":")[0]
        if not turn.isdecimal():
            return None, None
        exchange = next((e for e in self.exchanges if e.number == int(turn)), None)
        return exchange, exchange.sources.get(key) if exchange else None
