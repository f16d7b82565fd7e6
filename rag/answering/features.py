"""What the composer knows of each candidate sentence and of the question as a whole, by name.

Each sentence of the best retrieved chunks is described by :class:`Features`:

- ``cover``: the idf-weighted share of the question's words the sentence has (:mod:`rag.retrieval.terms`);
- ``grams``: the idf-weighted share of the question's character n-grams it has;
- ``similarity``: the cosine between question and sentence vectors, as a z-score over the candidates (the
  embedding model's cosines sit in a narrow band, so only how far a sentence stands out informs);
- ``passage``: the fused retrieval score of its chunk, relative to the best chunk;
- ``carried``: the cover a sentence that refers back ("Sie sagte ...") takes over from the one before it
  (:mod:`rag.text.discourse`).

The question as a whole is described by :data:`QUESTION_FEATURES`, which the abstention model reads.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from rag.answering.config import ComposerConfig
from rag.indexing.protocol import IndexSnapshot
from rag.retrieval.query import Query
from rag.retrieval.terms import QuestionTerms, SentenceTerms, question_terms, sentence_terms
from rag.text.discourse import carried
from rag.types import Hit


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


def candidates(snap: IndexSnapshot, hits: list[Hit], cfg: ComposerConfig) -> list[tuple[int, Hit]]:
    """The non-heading sentences of the best ``context_chunks`` hits, each once, with the hit it came from."""
    seen: set[int] = set()
    out: list[tuple[int, Hit]] = []
    for hit in hits[: cfg.context_chunks]:
        for row in hit.chunk.sentences:
            if row not in seen and not snap.sentences[row].heading:
                seen.add(row)
                out.append((row, hit))
    return out


def pool_features(
    snap: IndexSnapshot, query: Query, pool: list[tuple[int, Hit]], cfg: ComposerConfig
) -> Pool:
    """How each candidate compares with the question (see :class:`Features`)."""
    off = cfg.off
    rows = [row for row, _ in pool]
    infos = [sentence_terms(snap, row) for row in rows]
    terms = question_terms(snap, query.text, infos, query.cross, query.translate, off)
    weights = np.array([w.weight for w in terms.words])
    found = np.array([terms.found(info) for info in infos]).reshape(len(infos), len(weights))
    total = float(weights.sum()) or 1.0
    cosine = snap.sentence_vectors_for(rows) @ query.vector.reshape(-1) if rows else np.zeros(0)
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
    return Pool(rows, hits, features, cosine, found, terms, infos, query.cross)


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


def _z(x: np.ndarray) -> np.ndarray:
    return (x - x.mean()) / (x.std() + 1e-6) if len(x) else x
