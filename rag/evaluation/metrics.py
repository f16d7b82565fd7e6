"""The evaluation metrics: per-question judgements and their aggregation, pure functions over plain values.

These functions are what the product's quality claims rest on, so each one does one checkable thing:

- retrieval: the rank of the first retrieved chunk whose span contains a gold answer span (same document,
  ``chunk.start <= answer.start`` and ``answer.end <= chunk.end``); hit@k and MRR@k follow from the ranks;
- answers: "contains the gold answer" is the SQuAD-style string test (lower-cased, white space folded,
  one gold string is a substring of the quoted sentences);
- citations: precision is over all citations (is the quoted sentence inside the gold paragraph?), recall
  over answered questions (does a cited sentence's span contain a gold answer span?);
- verbatim: every answer sentence, cut out of the answer text at its ``[n]`` marker, equals
  ``original[start:end]`` of its citation, where ``original`` is the text the evaluator itself wrote.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

_SPACE = re.compile(r"\s+")
_MARKER = re.compile(r" ?\[(\d+)\]")


@dataclass(frozen=True)
class Region:
    """A character range ``[start, end)`` of one document."""

    doc_id: str
    start: int
    end: int

    def contains(self, other: Region) -> bool:
        return self.doc_id == other.doc_id and self.start <= other.start and other.end <= self.end


@dataclass(frozen=True)
class Gold:
    """What a question's answer is: its paragraph, the answer spans and the answer strings."""

    paragraph: Region
    spans: tuple[Region, ...]
    texts: tuple[str, ...]


@dataclass(frozen=True)
class Cited:
    """One citation of an answer as the metrics see it: where it points and what it quotes."""

    n: int
    region: Region
    quote: str


@dataclass(frozen=True)
class Judged:
    """The per-question verdicts that :func:`summarize` aggregates."""

    rank: int | None  # 1-based rank of the first retrieved chunk containing a gold span; None = not found
    abstained: bool
    contains: bool  # the answer's quoted sentences contain a gold answer string
    first_contains: bool  # the first quoted sentence does
    citations: int
    citations_in_paragraph: int
    cited_answer: bool  # a cited sentence's span contains a gold answer span
    sentences: int
    verbatim: int  # answer sentences equal to original[start:end] of their citation
    words: int  # words in the quoted sentences
    latency_ms: float


def normalize(text: str) -> str:
    """Lower-cased, white space folded to single spaces, stripped."""
    return _SPACE.sub(" ", text.lower()).strip()


def contains_any(text: str, answers: Sequence[str]) -> bool:
    """Whether one of ``answers`` (non-empty after normalising) is a substring of ``text``."""
    haystack = normalize(text)
    return any(norm and norm in haystack for norm in (normalize(a) for a in answers))


def first_rank(retrieved: Sequence[Region], gold: Sequence[Region]) -> int | None:
    """1-based rank of the first retrieved region that contains any gold span, or None."""
    for rank, region in enumerate(retrieved, start=1):
        if any(region.contains(span) for span in gold):
            return rank
    return None


def hit_at(ranks: Sequence[int | None], k: int) -> float:
    """Share of questions whose first relevant chunk is among the top ``k``."""
    return _mean([r is not None and r <= k for r in ranks])


def mrr_at(ranks: Sequence[int | None], k: int) -> float:
    """Mean reciprocal rank, counting ranks beyond ``k`` (and misses) as 0."""
    return _mean([1.0 / r if r is not None and r <= k else 0.0 for r in ranks])


def split_answer(answer: str) -> list[tuple[int, str]]:
    """The ``(n, sentence)`` pairs of an answer text written as ``sentence [1] sentence [2]``.

    Text after the last marker (there should be none) is returned with ``n = 0`` so it counts as unverified.
    """
    out: list[tuple[int, str]] = []
    pos = 0
    for match in _MARKER.finditer(answer):
        out.append((int(match.group(1)), answer[pos : match.start()].lstrip(" ")))
        pos = match.end()
    if answer[pos:].strip():
        out.append((0, answer[pos:].strip()))
    return out


def verbatim_count(answer: str, cited: Sequence[Cited], originals: Mapping[str, str]) -> tuple[int, int]:
    """``(verbatim, total)`` answer sentences; verbatim means equal to the cited original span and quote."""
    by_n = {c.n: c for c in cited}
    pieces = split_answer(answer)
    ok = 0
    for n, sentence in pieces:
        c = by_n.get(n)
        if c is None or c.region.doc_id not in originals:
            continue
        original = originals[c.region.doc_id][c.region.start : c.region.end]
        ok += sentence == original == c.quote
    return ok, len(pieces)


def judge(
    gold: Gold,
    retrieved: Sequence[Region],
    abstained: bool,
    answer: str,
    cited: Sequence[Cited],
    originals: Mapping[str, str],
    latency_ms: float,
) -> Judged:
    """All verdicts for one question; an abstained answer quotes nothing, so it contains nothing."""
    quotes = [c.quote for c in cited]
    verbatim, sentences = verbatim_count(answer, cited, originals) if not abstained else (0, 0)
    return Judged(
        rank=first_rank(retrieved, gold.spans),
        abstained=abstained,
        contains=not abstained and contains_any(" ".join(quotes), gold.texts),
        first_contains=not abstained and bool(quotes) and contains_any(quotes[0], gold.texts),
        citations=len(cited),
        citations_in_paragraph=sum(gold.paragraph.contains(c.region) for c in cited),
        cited_answer=not abstained and any(c.region.contains(s) for c in cited for s in gold.spans),
        sentences=sentences,
        verbatim=verbatim,
        words=sum(len(q.split()) for q in quotes),
        latency_ms=latency_ms,
    )


def summarize(judged: Sequence[Judged], ks: Sequence[int] = (1, 3, 5, 10)) -> dict[str, dict[str, float]]:
    """The report's numbers. Rates over no questions are 0.0, except the verbatim rate over no sentences
    (nothing was quoted, so nothing was misquoted), which is 1.0."""
    ranks = [j.rank for j in judged]
    answered = [j for j in judged if not j.abstained]
    citations = sum(j.citations for j in judged)
    sentences = sum(j.sentences for j in judged)
    retrieval = {f"hit@{k}": hit_at(ranks, k) for k in ks}
    retrieval[f"mrr@{max(ks)}"] = mrr_at(ranks, max(ks))
    return {
        "retrieval": retrieval,
        "answers": {
            "contains_gold": _mean([j.contains for j in judged]),
            "first_sentence_contains_gold": _mean([j.first_contains for j in judged]),
            "answered_contains_gold": _mean([j.contains for j in answered]),
            "citation_precision": _ratio(sum(j.citations_in_paragraph for j in judged), citations, 0.0),
            "citation_recall": _mean([j.cited_answer for j in answered]),
            "verbatim_rate": _ratio(sum(j.verbatim for j in judged), sentences, 1.0),
            "abstention_rate": _mean([j.abstained for j in judged]),
            "mean_sentences": _mean([j.sentences for j in answered]),
            "mean_words": _mean([j.words for j in answered]),
        },
        "latency_ms": {"median": _percentile(judged, 50), "p95": _percentile(judged, 95)},
    }


def _percentile(judged: Sequence[Judged], q: float) -> float:
    return float(np.percentile([j.latency_ms for j in judged], q)) if judged else 0.0


def _ratio(part: int, whole: int, empty: float) -> float:
    return part / whole if whole else empty


def _mean(values: Sequence[float | bool | int]) -> float:
    return sum(float(v) for v in values) / len(values) if values else 0.0


@dataclass(frozen=True)
class Trial:
    """One question asked with abstention off: its confidence and whether the answer was right."""

    confidence: float  # the answer's confidence (abstained when below the threshold)
    answerable: bool
    correct: bool  # answerable, and the answer contains the expected answer


def abstention_rates(trials: Sequence[Trial], threshold: float) -> dict[str, float]:
    """What the answers would be at ``threshold``: a question is answered when its confidence reaches it."""
    answerable = [t for t in trials if t.answerable]
    unanswerable = [t for t in trials if not t.answerable]
    return {
        "threshold": threshold,
        "answerable_answered": _mean([t.confidence >= threshold for t in answerable]),
        "answerable_correct": _mean([t.confidence >= threshold and t.correct for t in answerable]),
        "unanswerable_abstained": _mean([t.confidence < threshold for t in unanswerable]),
    }


def sweep(trials: Sequence[Trial], thresholds: Sequence[float]) -> list[dict[str, float]]:
    return [abstention_rates(trials, t) for t in thresholds]
