"""Extractive answer composition: pick the sentences that answer the question, quote them, cite them.

No language model writes anything: every answer sentence is a verbatim slice ``text[start:end]`` of an
article. Each sentence of the best retrieved chunks is described by named features
(:mod:`rag.answering.features`).

A logistic ranker (:mod:`rag.answering.model`, fitted on the development data) turns them into the
probability that the sentence holds the answer. The best sentence opens the answer; up to two more follow
when their probability is close to its (the sentence right after it gets a bonus: answers often continue
there) and they do not repeat it. Whether to answer at all is decided on the whole question: a second
logistic model estimates from :data:`QUESTION_FEATURES` the probability that the candidates answer it
(``Answer.confidence``), and below ``abstain_threshold`` (``cross_abstain_threshold`` for a question in the
other language than the articles) the answer says the articles do not contain this.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from rag.answering.config import ComposerConfig
from rag.answering.features import (
    QUESTION_FEATURES,
    RANK_FEATURES,
    candidates,
    pool_features,
    question_features,
)
from rag.answering.model import SHIPPED, UNTRANSLATED, ComposerModel, read_model
from rag.indexing.protocol import IndexSnapshot
from rag.retrieval.filters import date_period
from rag.retrieval.query import Query
from rag.types import Answer, Citation, CitationOrder, Hit, Passage

ABSTAIN_TEXT = {
    "de": "Dazu steht nichts in den Artikeln. Die nächstliegenden Stellen sind unten aufgeführt.",
    "en": "The articles do not say. The closest passages are listed below.",
}


@dataclass(frozen=True)
class Scored:
    index: int  # row in the snapshot's sentence table
    hit: Hit
    score: float  # log-odds that the sentence holds the answer: ranks the sentences
    probability: float  # the same as a probability (the citation's score)
    terms: frozenset[str]


@dataclass(frozen=True)
class Ranking:
    """The candidate sentences, best first, and the probability that they answer the question."""

    sentences: list[Scored]
    confidence: float
    features: dict[str, float]  # the question-level features the confidence was estimated from
    cross: bool = False  # the question is in the other language than the articles


def compose(snap: IndexSnapshot, query: Query, hits: list[Hit], top_k: int, cfg: ComposerConfig) -> Answer:
    """The answer to ``query`` from the sentences of the best ``hits``, with ``top_k`` passages listed."""
    ranking = score_sentences(snap, query, hits, cfg)
    focus = _best_sentences(snap, ranking)
    passages = tuple(_passage(snap, h, focus) for h in reorder(hits, ranking, cfg)[:top_k])
    confidence = round(ranking.confidence, 4)
    chosen = select(ranking, cfg)
    language = query.language
    if not chosen:
        return Answer(query.question, ABSTAIN_TEXT[language], True, language, (), passages, confidence)
    chosen, order = newest_first(snap, chosen)
    citations = tuple(_citation(snap, n, s) for n, s in enumerate(chosen, start=1))
    text = " ".join(f"{c.quote} [{c.n}]" for c in citations)
    return Answer(
        query.question, text, False, language, citations, passages, confidence, citation_order=order
    )


def newest_first(snap: IndexSnapshot, chosen: list[Scored]) -> tuple[list[Scored], CitationOrder]:
    """The answer's sentences newest article first, when the cited articles carry at least two different
    dates (:func:`rag.retrieval.filters.date_period`: a partial date counts from its first day, so
    ``2024-07`` comes after ``2024-07-15``); an undated article's sentences go last, and sentences of
    equally dated articles keep the composer's order. Otherwise the composer's order stands."""
    periods = [date_period(snap.documents[snap.sentence_doc[s.index]].meta.date) for s in chosen]
    if len({p[0] for p in periods if p}) < 2:
        return chosen, "relevance"
    ranked = sorted(
        range(len(chosen)),
        key=lambda i: (periods[i] is None, -(p[0].toordinal() if (p := periods[i]) else 0), i),
    )
    return [chosen[i] for i in ranked], "newest_first"


def score_sentences(snap: IndexSnapshot, query: Query, hits: list[Hit], cfg: ComposerConfig) -> Ranking:
    """Every candidate sentence with its ranking score, best first, and the probability that they answer
    the question."""
    pool = candidates(snap, hits, cfg)
    if not pool:
        return Ranking([], 0.0, {})
    p = pool_features(snap, query, pool, cfg)
    untranslated = p.cross and query.translate is None
    model = (cfg.untranslated_model if untranslated else cfg.model) or shipped_model(untranslated)
    scores = model.ranker.scores(p.features.values())
    order = sorted(range(len(pool)), key=lambda i: (-scores[i], p.rows[i]))
    q = question_features(p, scores, order[0])
    out = [
        Scored(row, hit, float(s), _sigmoid(float(s)), info.stems)
        for row, hit, s, info in zip(p.rows, p.hits, scores.tolist(), p.infos, strict=True)
    ]
    ranked = [out[i] for i in order]
    return Ranking(ranked, model.abstention.probability(q), q, p.cross)


def shipped_model(untranslated: bool = False) -> ComposerModel:
    """The fitted ranker and abstention model that ship with the product (:mod:`rag.answering.model`); with
    ``untranslated``, the one for questions in the other language without a word list."""
    return read_model(UNTRANSLATED if untranslated else SHIPPED, RANK_FEATURES, QUESTION_FEATURES)


def reorder(hits: list[Hit], ranking: Ranking, cfg: ComposerConfig) -> list[Hit]:
    """The hits, best first, as the answer lists them: the ``context_chunks`` the composer read reordered by
    ``retrieval_share`` of their fused score and the rest their best sentence's probability, each relative
    to the best; the hits after them keep their order, scored by the first part alone, so the scores still
    fall. A chunk whose sentences answer the question moves ahead of one that only shares its words with
    it. The scores are the passages' ``score``."""
    share = 1.0 if "reorder" in cfg.off else cfg.retrieval_share
    read, rest = hits[: cfg.context_chunks], hits[cfg.context_chunks :]
    best_sentence: dict[str, float] = {}
    for s in ranking.sentences:
        key = s.hit.chunk.chunk_id
        best_sentence[key] = max(best_sentence.get(key, 0.0), s.probability)
    top_hit = max((h.score for h in hits), default=0.0) or 1.0
    top_sentence = max(best_sentence.values(), default=0.0) or 1.0

    def retrieval(hit: Hit) -> float:
        return share * max(hit.score, 0.0) / top_hit

    scored = [
        replace(h, score=retrieval(h) + (1 - share) * best_sentence.get(h.chunk.chunk_id, 0.0) / top_sentence)
        for h in read
    ]
    scored.sort(key=lambda h: -h.score)  # stable: ties keep the retrieval order
    return scored + [replace(h, score=retrieval(h)) for h in rest]


def select(ranking: Ranking, cfg: ComposerConfig) -> list[Scored]:
    """The best sentence, then up to ``max_sentences - 1`` close, non-repeating ones (none: abstain)."""
    threshold = cfg.cross_abstain_threshold if ranking.cross else cfg.abstain_threshold
    if not ranking.sentences or ranking.confidence < threshold:
        return []
    return _choose(ranking.sentences, cfg)


def _choose(scored: list[Scored], cfg: ComposerConfig) -> list[Scored]:
    """The answer sentences, whatever the confidence: the best, then close, non-repeating ones."""
    if not scored:
        return []
    best = scored[0]
    chosen = [best]
    rest = sorted(((_support(best, s, cfg), s) for s in scored[1:]), key=lambda p: (-p[0], p[1].index))
    for support, cand in rest:
        if len(chosen) >= cfg.max_sentences or support < cfg.keep_ratio * best.probability:
            break
        if all(_jaccard(cand.terms, c.terms) <= cfg.redundancy for c in chosen):
            chosen.append(cand)
    return chosen


def _support(best: Scored, s: Scored, cfg: ComposerConfig) -> float:
    """A further sentence's claim to a place in the answer: its probability, plus a bonus for following
    the best sentence."""
    follows = s.index == best.index + 1 and s.hit.chunk.doc_id == best.hit.chunk.doc_id
    return s.probability + cfg.follow_bonus * follows


def _jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    return len(a & b) / len(a | b) if a or b else 1.0


def _sigmoid(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-z)) if z > -500 else 0.0


def _citation(snap: IndexSnapshot, n: int, s: Scored) -> Citation:
    sentence = snap.sentences[s.index]
    doc = snap.documents[snap.sentence_doc[s.index]]
    chunk = s.hit.chunk
    return Citation(
        n=n,
        doc_id=doc.doc_id,
        title=doc.meta.title,
        date=doc.meta.date,
        quote=doc.text[sentence.start : sentence.end],
        start=sentence.start,
        end=sentence.end,
        passage=chunk.text,
        passage_start=chunk.start,
        passage_end=chunk.end,
        score=round(s.probability, 4),
        page=doc.page_at(sentence.start),
    )


def _best_sentences(snap: IndexSnapshot, ranking: Ranking) -> dict[str, tuple[int, int]]:
    """The document offsets of each read chunk's best-ranked sentence, by chunk id."""
    best: dict[str, tuple[int, int]] = {}
    for s in ranking.sentences:  # best first
        sentence = snap.sentences[s.index]
        best.setdefault(s.hit.chunk.chunk_id, (sentence.start, sentence.end))
    return best


def _passage(snap: IndexSnapshot, hit: Hit, focus: dict[str, tuple[int, int]]) -> Passage:
    c = hit.chunk
    start, end = focus.get(c.chunk_id, (None, None))
    title = snap.documents[c.doc_id].meta.title
    return Passage(c.doc_id, title, c.start, c.end, c.text, round(hit.score, 4), start, end)
