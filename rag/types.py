"""The typed values passed between pipeline stages: documents, spans, chunks, hits and answers."""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import asdict, dataclass, field
from datetime import date
from typing import Any, Literal

BlockKind = Literal["paragraph", "heading"]

MAX_QUESTION_CHARS = 2000  # the longest question accepted, on every way in (API, chat page, CLI)
MAX_TOP_K = 20  # the most passages an answer lists (RAG_TOP_K, the API's and the CLI's top_k)


@dataclass(frozen=True)
class Span:
    """A half-open character range ``[start, end)`` of a document's original text."""

    start: int
    end: int

    def __post_init__(self) -> None:
        if not 0 <= self.start <= self.end:
            raise ValueError(f"invalid span [{self.start}, {self.end})")


@dataclass(frozen=True)
class Block(Span):
    """A paragraph or a heading line of a document; answerable text lives only in blocks."""

    kind: BlockKind = "paragraph"


@dataclass(frozen=True)
class Sentence(Span):
    """One sentence of a document, by offsets; ``heading`` sentences are never quoted as answers."""

    heading: bool = False


@dataclass(frozen=True)
class DocumentMeta:
    title: str
    date: str | None = None
    source: str | None = None
    language: str = "de"
    url: str | None = None
    author: str | None = None


@dataclass(frozen=True)
class Document:
    """An article: its original text (what citation offsets point into) and where its answerable text is.

    ``path`` is relative to the corpus folder; ``sha256`` is the hash of the file's bytes. For a PDF,
    ``text`` is the text extracted from it and ``pages`` the offset at which each page starts.
    """

    doc_id: str
    path: str
    text: str
    meta: DocumentMeta
    blocks: tuple[Block, ...]
    sha256: str
    pages: tuple[int, ...] = ()

    def span_text(self, span: Span) -> str:
        return self.text[span.start : span.end]

    def page_at(self, offset: int) -> int | None:
        """The page (from 1) that the character at ``offset`` is on; None for a document without pages."""
        return bisect_right(self.pages, offset) if self.pages else None


@dataclass(frozen=True)
class Chunk:
    """A run of whole sentences of one document; ``text == document.text[start:end]`` always holds.

    ``sentences`` are the indices of the chunk's sentences in the index-wide sentence table.
    """

    chunk_id: str
    doc_id: str
    start: int
    end: int
    text: str
    sentences: tuple[int, ...] = field(default=())


@dataclass(frozen=True)
class Hit:
    """A retrieved chunk with its fused score and the per-retriever scores behind it."""

    chunk: Chunk
    score: float
    dense: float = 0.0
    lexical: float = 0.0


@dataclass(frozen=True)
class Citation:
    n: int
    doc_id: str
    title: str
    date: str | None
    quote: str
    start: int
    end: int
    passage: str
    passage_start: int
    passage_end: int
    score: float
    page: int | None = None  # the PDF page the quote starts on; None for other formats


@dataclass(frozen=True)
class Passage:
    """A retrieved passage, ``text == document.text[start:end]``; ``focus_start``/``focus_end`` are the
    document offsets of its best sentence for the question (None for a passage the composer did not read)."""

    doc_id: str
    title: str
    start: int
    end: int
    text: str
    score: float
    focus_start: int | None = None
    focus_end: int | None = None


@dataclass(frozen=True)
class Filters:
    """Which articles a question may be answered from; every field optional, all given ones must hold (AND).

    ``date_from`` and ``date_to`` are inclusive days; an empty ``sources`` or ``doc_ids`` does not restrict.
    How an article's date (perhaps only a month) compares: :mod:`rag.retrieval.filters`.
    """

    date_from: date | None = None
    date_to: date | None = None
    sources: tuple[str, ...] = ()
    doc_ids: tuple[str, ...] = ()

    @property
    def active(self) -> bool:
        return bool(self.date_from or self.date_to or self.sources or self.doc_ids)

    @property
    def by_date(self) -> bool:
        return self.date_from is not None or self.date_to is not None


@dataclass(frozen=True)
class FilterReport:
    """What a filter left of the corpus: the articles searched, and those left out only for having no date."""

    documents: int
    undated_excluded: int


CitationOrder = Literal["relevance", "newest_first"]


@dataclass(frozen=True)
class Answer:
    """The product's answer; :meth:`to_dict` is the JSON contract served by ``POST /ask``."""

    question: str
    answer: str
    abstained: bool
    language: str
    citations: tuple[Citation, ...]
    passages: tuple[Passage, ...]
    confidence: float = 0.0  # estimated probability that the articles answer the question
    timings_ms: dict[str, float] = field(default_factory=dict)
    resolved_question: str = ""  # what retrieval searched for: the question, or a follow-up with its chat
    filters: FilterReport | None = None  # None: the question was not filtered
    citation_order: CitationOrder = "relevance"  # newest_first: the cited articles have different dates

    def to_dict(self) -> dict[str, Any]:
        return {
            "answer": self.answer,
            "abstained": self.abstained,
            "confidence": self.confidence,
            "language": self.language,
            "resolved_question": self.resolved_question or self.question,
            "citations": [asdict(c) for c in self.citations],
            "passages": [asdict(p) for p in self.passages],
            "timings_ms": dict(self.timings_ms),
            "filters": asdict(self.filters) if self.filters else None,
            "citation_order": self.citation_order,
        }
