"""The HTTP edge's request and response models; the pipeline's dataclasses never leave through anything else.

``AskResponse`` is the JSON contract of :meth:`rag.types.Answer.to_dict`, field for field.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from rag.types import MAX_QUESTION_CHARS, MAX_TOP_K, Filters

MAX_HISTORY_TURNS = 50
MAX_TURN_CHARS = 10_000  # an answer quotes at most three sentences; a question is at most 2,000
_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


class _Request(BaseModel):
    # A misspelt field ("topk") is an error the client hears about, not a silently ignored option; and
    # nothing is coerced ("top_k": true is not 1), so what the schema says is exactly what is accepted.
    model_config = ConfigDict(extra="forbid", strict=True)


class TurnIn(_Request):
    role: Literal["user", "assistant"]
    content: str = Field(max_length=MAX_TURN_CHARS)


MAX_FILTER_VALUES = 200  # sources or document ids in one filter


class FiltersIn(_Request):
    """Which articles to answer from; every field optional, the given ones combined with AND."""

    date_from: date | None = Field(
        None,
        description="First day (YYYY-MM-DD), inclusive. An article dated only by month or year is kept "
        "when any day of that period is in the range; an article without a date is left out by a date "
        "filter (counted in the response's filters.undated_excluded).",
        examples=["2024-07-01"],
    )
    date_to: date | None = Field(
        None, description="Last day (YYYY-MM-DD), inclusive.", examples=["2024-12-31"]
    )
    sources: list[Annotated[str, Field(min_length=1, max_length=200)]] = Field(
        default_factory=list,
        max_length=MAX_FILTER_VALUES,
        description="Articles from any of these sources (case-insensitive); empty: any source.",
    )
    doc_ids: list[Annotated[str, Field(min_length=1, max_length=200)]] = Field(
        default_factory=list, max_length=MAX_FILTER_VALUES, description="Only these articles; empty: all."
    )

    @field_validator("date_from", "date_to", mode="before")
    @classmethod
    def _day(cls, value: object) -> object:
        # strict mode takes no string for a date: read exactly YYYY-MM-DD here, and say so when it is not
        if isinstance(value, str):
            if not _DAY.fullmatch(value):
                raise ValueError("a date is written YYYY-MM-DD, such as 2024-07-01")
            try:
                return date.fromisoformat(value)
            except ValueError:
                raise ValueError(f"{value} is not a day of the calendar") from None
        if value is None:
            return None
        raise ValueError("a date is written YYYY-MM-DD, such as 2024-07-01")

    @model_validator(mode="after")
    def _ordered(self) -> FiltersIn:
        if self.date_from and self.date_to and self.date_from > self.date_to:
            raise ValueError("date_from is after date_to")
        return self

    def to_filters(self) -> Filters:
        return Filters(self.date_from, self.date_to, tuple(self.sources), tuple(self.doc_ids))


class AskRequest(_Request):
    question: str = Field(
        min_length=1, max_length=MAX_QUESTION_CHARS, examples=["Wann wurde Nordkorea gegründet?"]
    )
    top_k: int | None = Field(
        None, ge=1, le=MAX_TOP_K, description="Passages to return (default: RAG_TOP_K)."
    )
    history: list[TurnIn] = Field(
        default_factory=list,
        max_length=MAX_HISTORY_TURNS,
        description="Earlier turns of the conversation, oldest first, so that follow-ups are understood.",
    )
    filters: FiltersIn | None = Field(
        None, description="Answer only from the articles these filters leave (none given: all articles)."
    )

    @field_validator("question")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("the question is blank: ask something")
        return value


class CitationOut(BaseModel):
    n: int = Field(description="The number of the [n] marker in the answer.")
    doc_id: str
    title: str
    date: str | None
    quote: str = Field(description="The cited sentence, exactly document.text[start:end].")
    start: int
    end: int
    passage: str = Field(description="The passage around the quote, text[passage_start:passage_end].")
    passage_start: int
    passage_end: int
    score: float
    page: int | None = Field(
        None, description="The PDF page the quote starts on (from 1); null for HTML and text articles."
    )


class PassageOut(BaseModel):
    doc_id: str
    title: str
    start: int
    end: int
    text: str
    score: float = Field(
        description="Relevance in [0, 1], best first: RAG_RETRIEVAL_SHARE (0.7) of the fused retrieval score "
        "relative to the best passage, plus, for the passages the answer was composed from, the rest times "
        "their best sentence's score relative to the best one."
    )
    focus_start: int | None = Field(
        description="Where the passage's best sentence for the question starts in the document (null for a "
        "passage the answer was not composed from)."
    )
    focus_end: int | None = Field(description="Where that sentence ends: text[focus_start:focus_end].")


class Timings(BaseModel):
    retrieve: float
    compose: float
    total: float


class FilterReportOut(BaseModel):
    documents: int = Field(description="Articles the filters left, which were searched.")
    undated_excluded: int = Field(
        description="Articles left out only because a date filter was given and they have no date."
    )


class AskResponse(BaseModel):
    answer: str = Field(description="Quoted sentences, each followed by its [n] marker; or the abstention.")
    abstained: bool
    confidence: float = Field(
        ge=0.0,
        le=1.0,
        description="Estimated probability that the articles answer the question; below the abstention "
        "threshold (RAG_ABSTAIN_THRESHOLD) the bot abstains.",
    )
    language: str = Field(description='"de" or "en": the language of the question.')
    resolved_question: str = Field(
        description="What was searched for: the question itself, or a follow-up question together with the "
        "earlier question it depends on."
    )
    citations: list[CitationOut]
    passages: list[PassageOut] = Field(description="The closest passages, best first (also on abstention).")
    timings_ms: Timings
    filters: FilterReportOut | None = Field(
        None, description="What the request's filters left of the corpus; null without filters."
    )
    citation_order: Literal["relevance", "newest_first"] = Field(
        "relevance",
        description="newest_first when the cited articles have different dates: the citations (and the "
        "answer's sentences, numbered [1], [2], ... in that order) go from the newest article to the oldest, "
        "undated ones last.",
    )


class DocumentSummary(BaseModel):
    doc_id: str
    path: str = Field(description="The article's file, relative to the corpus folder.")
    title: str
    date: str | None
    source: str | None
    language: str
    url: str | None
    author: str | None = None
    length: int = Field(description="Characters of text (what citation offsets count).")
    chunks: int = Field(description="Passages the article is indexed as.")


class DocumentList(BaseModel):
    count: int
    documents: list[DocumentSummary]


class DocumentDetail(DocumentSummary):
    text: str = Field(description="The original text that citation offsets point into.")
    sha256: str = Field(description="Hash of the stored file's bytes.")


class Deleted(BaseModel):
    doc_id: str
    deleted: bool = True


class Health(BaseModel):
    status: Literal["ready", "starting"]
    model: str
    documents: int
    chunks: int
    index_build: str | None = Field(description="Id of the index build being served.")
    index_built_at: str | None = Field(description="When that build was written (UTC).")
    word_list: str | None = Field(
        None,
        description="The German-English word list that translates questions in the other language than "
        "the articles (RAG_LEXICON), or null without one.",
    )


class ErrorOut(BaseModel):
    detail: str = Field(description="What went wrong, and what to do about it.")
