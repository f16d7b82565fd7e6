"""Hybrid retrieval: dense (FAISS) and lexical (BM25) candidates, fused into one ranking of chunks.

Candidates are the union of each retriever's best ``candidates`` chunks: the chunks whose vectors are
nearest the question's, and those with the highest BM25 score over character n-grams
(:mod:`rag.text.analysis`). Each candidate then gets two scores:

- dense: the best cosine between the question and one of the chunk's sentences (a chunk is about several
  things; the sentence that answers is about one), min-max scaled over the candidates;
- lexical: its n-gram BM25 divided by the best candidate's, so the best match gets 1 and *how much*
  better it is than the rest survives (rank fusion throws that away).

``convex`` fusion (the default) mixes them as ``w * dense + (1 - w) * lexical``: w = 0.7 for a question
in the articles' language, 0.8 for one in the other language, whose n-grams meet the articles only
through names, numbers, cognates and the word list's translations. ``dense`` and ``lexical`` rank by one
retriever alone, for measuring (``RAG_FUSION``).

A filtered question (``Query.scope``, :mod:`rag.retrieval.filters`) draws both retrievers' candidates from
its chunk rows only, so it gets ``k`` passages whenever its articles have that many.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rag.indexing.protocol import IndexSnapshot
from rag.retrieval.query import Query
from rag.settings import RetrievalSettings
from rag.types import Hit


class RetrievalConfig(RetrievalSettings):
    """The retrieval settings (:class:`rag.settings.RetrievalSettings`) and the one channel switch."""

    words: bool = False  # lexical scores from stemmed words instead of n-grams (RAG_ABLATE=grams)


@dataclass(frozen=True)
class Channels:
    """The candidates of one query and their scores, aligned."""

    ids: np.ndarray  # chunk rows
    lexical: np.ndarray  # BM25 / best BM25 of the candidates
    dense: np.ndarray  # best cosine of one of the chunk's sentences
    lexical_raw: np.ndarray


def retrieve(snap: IndexSnapshot, query: Query, k: int, cfg: RetrievalConfig) -> list[Hit]:
    """The ``k`` best chunks for one query, best first."""
    rows = query.scope.rows if query.scope else None
    if not snap.chunks or (rows is not None and not len(rows)):
        return []
    ch = channels(snap, query.lexical, query.vector, max(cfg.candidates, k), cfg.words, rows)
    fused = fuse(cfg, ch, query.cross)
    order = np.lexsort((ch.ids, -fused))[:k]
    return [
        Hit(snap.chunks[ch.ids[i]], float(fused[i]), float(ch.dense[i]), float(ch.lexical_raw[i]))
        for i in order.tolist()
    ]


def channels(
    snap: IndexSnapshot,
    query: str,
    query_vector: np.ndarray,
    pool: int,
    words: bool = False,
    allowed: np.ndarray | None = None,
) -> Channels:
    """Candidates from each retriever's ``pool`` best, with both scores computed for all of them; with
    ``allowed`` (a filter's chunk rows), each retriever's ``pool`` best among those rows."""
    q = query_vector.reshape(-1).astype(np.float32)
    if allowed is None:
        pool = min(pool, len(snap.chunks))
        dense_ids = snap.dense_search(q, pool)
        lexical = snap.lexical_scores(query, words, top=pool, rows=dense_ids)
        ids = np.unique(np.concatenate([dense_ids, _top(lexical, pool)]))
    else:
        lexical = snap.lexical_scores(query, words)
        pool = min(pool, len(allowed))
        dense_ids = snap.dense_search(q, pool, allowed)
        ids = np.unique(np.concatenate([dense_ids, allowed[_top(lexical[allowed], pool)]]))
    rows = [snap.chunks[i].sentences for i in ids.tolist()]
    sizes = np.array([len(r) for r in rows])
    flat = np.fromiter((s for r in rows for s in r), dtype=np.int64, count=int(sizes.sum()))
    if len(flat) and sizes.all():
        dense = np.maximum.reduceat(snap.sentence_vectors_for(flat) @ q, np.cumsum(sizes) - sizes)
    else:  # a chunk without sentences cannot happen in a built index; fall back to the chunk's own vector
        dense = snap.chunk_vectors_for(ids) @ q
    return Channels(ids, _by_max(lexical[ids]), dense, lexical[ids])


def fuse(cfg: RetrievalConfig, ch: Channels, cross: bool = False) -> np.ndarray:
    """One score per candidate (higher is better) by ``cfg.fusion``."""
    dense = _min_max(ch.dense)
    if cfg.fusion == "dense":
        return dense
    if cfg.fusion == "lexical":
        return ch.lexical
    w = cfg.cross_dense_weight if cross else cfg.dense_weight
    return w * dense + (1 - w) * ch.lexical


def _top(scores: np.ndarray, pool: int) -> np.ndarray:
    top = np.argpartition(-scores, pool - 1)[:pool] if pool < len(scores) else np.arange(len(scores))
    return top[scores[top] > 0]


def _by_max(x: np.ndarray) -> np.ndarray:
    best = float(x.max()) if len(x) else 0.0
    return (x / best).astype(np.float64) if best > 0 else np.zeros(len(x))


def _min_max(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.float64)
    if len(x) == 0:
        return x
    span = float(x.max() - x.min())
    return (x - x.min()) / span if span > 1e-9 else np.ones_like(x)
