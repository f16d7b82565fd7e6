"""Extractive answer composition: pick the sentences that answer the question, quote them, cite them.

No language model writes anything: every answer sentence is a verbatim slice ``text[start:end]`` of an
article. Each sentence of the best retrieved chunks is described by named features (:class:`Features`):

- ``cover``: the idf-weighted share of the question's words the sentence has (:mod:`rag.evidence`);
- ``grams``: the idf-weighted share of the question's character n-grams it has;
- ``similarity``: the cosine between question and sentence vectors, as a z-score over the candidates (the
  embedding model's cosines sit in a narrow band, so only how far a sentence stands out informs);
- ``passage``: the fused retrieval score of its chunk, relative to the best chunk;
- ``carried``: the cover a sentence that refers back ("Sie sagte ...") takes over from the one before it
  (:mod:`rag.discourse`).

A logistic ranker (:mod:`rag.composer_model`, fitted on the development data) turns them into the
probability that the sentence holds the answer. The best sentence opens the answer; up to two more follow
when their probability is close to its (the sentence right after it gets a bonus: answers often continue
there) and they do not repeat it. Whether to answer at all is decided on the whole question: a second
logistic model estimates from :data:`QUESTION_FEATURES` the probability that the candidates answer it
(``Answer.confidence``), and below ``abstain_threshold`` (``cross_abstain_threshold`` for a question in the
other language than the articles) the answer says the articles do not contain this.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, fields, replace

import numpy as np

from rag.composer_model import SHIPPED, UNTRANSLATED, ComposerModel, read_model
from rag.discourse import carried
from rag.evidence import QuestionTerms, SentenceTerms, question_terms, sentence_terms
from rag.lexicon import Translate
from rag.store import Snapshot
from rag.types import Answer, Citation, Hit, Passage

ABSTAIN_TEXT = {
    "de": "Dazu steht nichts in den Artikeln. Die nächstliegenden Stellen sind unten aufgeführt.",
    "en": "The articles do not say. The closest passages are listed below.",
}


@dataclass(frozen=True)
class ComposerConfig:
    max_sentences: int = 3
    abstain_threshold: float = 0.5  # on the probability that the candidates answer the question
    cross_abstain_threshold: float = 0.5  # the same for a question in the other language than the articles
    context_chunks: int = 5  # the chunks whose sentences are candidates (~35 sentences)
    carry_share: float = 0.85  # of the question words a sentence that refers back takes from the one before
    # The passages the composer read are listed in the order of this share of their fused retrieval score
    # and the rest their best sentence's probability (both relative to the best); see :func:`reorder`.
    retrieval_share: float = 0.7
    follow_bonus: float = 0.2  # added to the probability of the sentence right after the best one
    keep_ratio: float = 0.4  # a further sentence needs at least this share of the best one's probability
    redundancy: float = 0.6  # term-set Jaccard above which a sentence repeats one already chosen
    off: frozenset[str] = frozenset()  # channels switched off for measuring (RAG_ABLATE)
    model: ComposerModel | None = None  # fitted ranker and abstention model; None: the shipped one
    # the same for questions in the other language when no word list translates them (RAG_LEXICON=none)
    untranslated_model: ComposerModel | None = None


@dataclass(frozen=True)
class Features:
    """The candidates' sentence features by name, aligned (one value per candidate)."""

    cover: np.ndarray
    grams: np.ndarray
    similarity: np.ndarray
    passage: np.ndarray
    carried: np.ndarray

    def values(self) -> dict[str, np.ndarray]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


RANK_FEATURES = tuple(f.name for f in fields(Features))
QUESTION_FEATURES = (
    "score_best",  # the best sentence's ranking score (log-odds)
    "similarity_max",  # how far the most similar candidate stands out (z-score)
    "cosine_best",  # the best sentence's cosine with the question
    "pool_cover",  # weighted share of the question's words found in any candidate
    "cover_max",  # ... in the candidate that has most of them
    "names_missing",  # weight share of names and numbers found nowhere
    "words",  # content words in the question
)


@dataclass(frozen=True)
class Pool:
    """The candidates as the composer compares them with the question."""

    rows: list[int]  # sentence rows
    hits: list[Hit]  # the chunk each came from
    features: Features
    cosine: np.ndarray  # raw question-sentence cosines
    found: np.ndarray  # how well each candidate has each question word, in [0, 1]
    terms: QuestionTerms
    infos: list[SentenceTerms]
    cross: bool  # the question is in the other language than the articles


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


def compose(
    snap: Snapshot,
    question: str,
    query_text: str,
    query_vector: np.ndarray,
    hits: list[Hit],
    top_k: int,
    language: str,
    cfg: ComposerConfig,
    translate: Translate | None = None,
    exclude: Callable[[int], bool] | None = None,
) -> Answer:
    """Build the answer for ``question``; ``query_text`` is what retrieval used (it may add history),
    ``translate`` gives a word of a question in another language its translations (:mod:`rag.lexicon`),
    ``exclude`` leaves sentence rows out of the candidates (``rag eval --without-gold``)."""
    ranking = score_sentences(snap, query_text, query_vector, hits, cfg, language, exclude, translate)
    focus = _best_sentences(snap, ranking)
    passages = tuple(_passage(snap, h, focus) for h in reorder(hits, ranking, cfg)[:top_k])
    confidence = round(ranking.confidence, 4)
    chosen = select(ranking, cfg)
    if not chosen:
        return Answer(question, ABSTAIN_TEXT[language], True, language, (), passages, confidence)
    citations = tuple(_citation(snap, n, s) for n, s in enumerate(chosen, start=1))
    text = " ".join(f"{c.quote} [{c.n}]" for c in citations)
    return Answer(question, text, False, language, citations, passages, confidence)


def candidates(
    snap: Snapshot, hits: list[Hit], cfg: ComposerConfig, exclude: Callable[[int], bool] | None = None
) -> list[tuple[int, Hit]]:
    """The non-heading sentences of the best ``context_chunks`` hits, each once, with the hit it came from;
    ``exclude`` leaves out sentence rows (a question's gold paragraph: ``rag eval --without-gold``)."""
    seen: set[int] = set()
    out: list[tuple[int, Hit]] = []
    for hit in hits[: cfg.context_chunks]:
        for row in hit.chunk.sentences:
            if row not in seen and not snap.sentences[row].heading and not (exclude and exclude(row)):
                seen.add(row)
                out.append((row, hit))
    return out


def pool_features(
    snap: Snapshot,
    query_text: str,
    query_vector: np.ndarray,
    pool: list[tuple[int, Hit]],
    language: str,
    cfg: ComposerConfig,
    translate: Translate | None = None,
) -> Pool:
    """How each candidate compares with the question (see :class:`Features`)."""
    off = cfg.off
    cross = language != snap.bm25.analyzer.language
    rows = [row for row, _ in pool]
    infos = [sentence_terms(snap, row) for row in rows]
    terms = question_terms(snap, query_text, infos, cross, translate, off)
    weights = np.array([w.weight for w in terms.words])
    found = np.array([terms.found(info) for info in infos]).reshape(len(infos), len(weights))
    total = float(weights.sum()) or 1.0
    cosine = snap.sentence_vectors[rows] @ query_vector.reshape(-1) if rows else np.zeros(0)
    best_hit = max((h.score for _, h in pool), default=1.0) or 1.0
    docs = [snap.sentence_doc[row] for row in rows]
    context = found
    if "carry" not in off:
        context = carried(found, rows, docs, [info.refers_back for info in infos], cfg.carry_share)
    zero = np.zeros(len(pool))
    features = Features(
        cover=found @ weights / total,
        grams=np.array([terms.gram_share(info) for info in infos]) if "grams" not in off else zero,
        similarity=_z(cosine) if "similarity" not in off else zero,
        passage=np.array([max(hit.score, 0.0) / best_hit for _, hit in pool]),
        carried=(context - found) @ weights / total,
    )
    hits = [hit for _, hit in pool]
    return Pool(rows, hits, features, cosine, found, terms, infos, cross)


def score_sentences(
    snap: Snapshot,
    query_text: str,
    query_vector: np.ndarray,
    hits: list[Hit],
    cfg: ComposerConfig,
    language: str = "de",
    exclude: Callable[[int], bool] | None = None,
    translate: Translate | None = None,
) -> Ranking:
    """Every candidate sentence with its ranking score, best first, and the probability that they answer
    the question."""
    pool = candidates(snap, hits, cfg, exclude)
    if not pool:
        return Ranking([], 0.0, {})
    p = pool_features(snap, query_text, query_vector, pool, language, cfg, translate)
    model = cfg.untranslated_model if p.cross and translate is None else cfg.model
    model = model or shipped_model(untranslated=p.cross and translate is None)
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
    """The fitted ranker and abstention model that ship with the product (:mod:`rag.composer_model`); with
    ``untranslated``, the one for questions in the other language without a word list."""
    return read_model(UNTRANSLATED if untranslated else SHIPPED, RANK_FEATURES, QUESTION_FEATURES)


def question_features(pool: Pool, scores: np.ndarray, best: int) -> dict[str, float]:
    """The :data:`QUESTION_FEATURES` of one question, from its pool, the ranking scores and the row of the
    best-ranked candidate."""
    weights = np.array([w.weight for w in pool.terms.words])
    total = float(weights.sum()) or 1.0
    has = pool.found.max(axis=0) if len(weights) and len(pool.found) else np.zeros(len(weights))
    nowhere = (has == 0) * weights
    names = np.array([w.name for w in pool.terms.words], dtype=bool)
    f = pool.features
    return {
        "score_best": float(scores[best]),
        "similarity_max": float(f.similarity.max()),
        "cosine_best": float(pool.cosine[best]),
        "pool_cover": float(has @ weights) / total,
        "cover_max": float(f.cover.max()),
        "names_missing": float((nowhere * names).sum()) / total,
        "words": float(max(pool.terms.asked, len(pool.terms.words))),
    }


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


def _z(x: np.ndarray) -> np.ndarray:
    return (x - x.mean()) / (x.std() + 1e-6) if len(x) else x


def _sigmoid(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-z)) if z > -500 else 0.0


def _citation(snap: Snapshot, n: int, s: Scored) -> Citation:
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


def _best_sentences(snap: Snapshot, ranking: Ranking) -> dict[str, tuple[int, int]]:
    """The document offsets of each read chunk's best-ranked sentence, by chunk id."""
    best: dict[str, tuple[int, int]] = {}
    for s in ranking.sentences:  # best first
        sentence = snap.sentences[s.index]
        best.setdefault(s.hit.chunk.chunk_id, (sentence.start, sentence.end))
    return best


def _passage(snap: Snapshot, hit: Hit, focus: dict[str, tuple[int, int]]) -> Passage:
    c = hit.chunk
    start, end = focus.get(c.chunk_id, (None, None))
    title = snap.documents[c.doc_id].meta.title
    return Passage(c.doc_id, title, c.start, c.end, c.text, round(hit.score, 4), start, end)
