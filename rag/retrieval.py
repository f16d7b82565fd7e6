"""Hybrid retrieval: dense (FAISS) and lexical (BM25) candidates, fused into one ranking of chunks.

Four scores are computed for every candidate chunk (the union of each retriever's best ``candidates``):

- lexical: word BM25 and character n-gram BM25 (:mod:`rag.lexical`), each divided by its best score, so
  the best match gets 1 and *how much* better it is than the rest survives (rank fusion throws that away,
  which is why equal-weight RRF is worse than BM25 alone on German text);
- dense: the cosine of the chunk's vector, and the best cosine of one of its sentences (a chunk is about
  several things; the sentence that answers the question is about one), each min-max scaled over the
  candidates, because an English model's cosines on German text are flat and only their order informs.

``convex`` fusion (the default) mixes them: lexical = 0.8 n-grams + 0.2 words, dense = 0.4 best sentence + 0.6
chunk, fused = w * dense + (1 - w) * lexical, where w depends on whether the question is in the corpus
language. For a German question over German articles the lexical scores lead (w = 0.3); for an English
question over German articles the lexical query is the question plus its words' (and two-word phrases') German
translations (:mod:`rag.lexicon`), which match less surely than the words of a German question, and the dense
scores weigh more (w = 0.45; 0.6 was best before the translations, 0.3 / 0.45 / 0.6 give MRR@10 0.871 / 0.875
/ 0.863 with single-word translations). Measured on XQuAD (dev half, 512-piece chunks, hit@1 / hit@5 /
MRR@10), German questions: lexical alone 0.918 / 0.985 / 0.949, dense alone 0.662 / 0.861 / 0.749,
equal-weight RRF 0.802 / 0.951 / 0.868, this fusion 0.935 / 0.990 / 0.958; English questions over the German
paragraphs, this fusion: 0.708 / 0.926 / 0.801 before the translations, 0.828 / 0.977 / 0.891 with single
words, 0.833 / 0.979 / 0.894 with phrases too. The best sentence's share was 0.6 until the translations came;
0.4 then was as good or better at every k for both languages, by one to three questions (German hit@5 0.989 ->
0.990, English hit@1 0.825 -> 0.828), which is within noise. The fusion is at least as good as the better
input at every k (``rag eval``). These are retrieval's own order; the answer lists the passages it read
reordered by their best sentence too (:func:`rag.answering.reorder`), which ``rag eval`` measures.

Other methods (``RAG_FUSION``): ``rrf`` (weighted reciprocal rank fusion of the lexical and dense mixes),
and ``dense`` / ``lexical`` (one retriever alone, for measuring).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rag.settings import FusionMethod
from rag.store import Snapshot
from rag.types import Hit


@dataclass(frozen=True)
class RetrievalConfig:
    fusion: FusionMethod = "convex"
    dense_weight: float = 0.3  # question in the corpus language
    cross_dense_weight: float = 0.45  # question in another language
    gram_share: float = 0.8  # share of n-gram BM25 in the lexical score (words get the rest)
    sentence_share: float = 0.4  # share of the best sentence's cosine in the dense score
    rrf_k: int = 60
    candidates: int = 50


@dataclass(frozen=True)
class Channels:
    """The candidates of one query and their four scores, aligned."""

    ids: np.ndarray  # chunk rows
    words: np.ndarray  # word BM25 / best word BM25
    grams: np.ndarray  # n-gram BM25 / best n-gram BM25
    chunk_cos: np.ndarray  # cosine of the chunk vector
    sentence_cos: np.ndarray  # best cosine of one of the chunk's sentences
    words_raw: np.ndarray


def retrieve(
    snap: Snapshot,
    query: str,
    query_vector: np.ndarray,
    k: int,
    cfg: RetrievalConfig,
    language: str | None = None,
    lexical_query: str | None = None,
) -> list[Hit]:
    """The ``k`` best chunks for one query, best first; ``language`` is the question's, ``lexical_query``
    what the lexical retrievers search for instead of ``query`` (a question with its translations)."""
    if not snap.chunks:
        return []
    ch = channels(snap, lexical_query or query, query_vector, max(cfg.candidates, k))
    cross = language is not None and language != snap.bm25.analyzer.language
    fused = fuse(cfg, ch, cross)
    order = np.lexsort((ch.ids, -fused))[:k]
    return [
        Hit(snap.chunks[ch.ids[i]], float(fused[i]), float(ch.chunk_cos[i]), float(ch.words_raw[i]))
        for i in order.tolist()
    ]


def channels(snap: Snapshot, query: str, query_vector: np.ndarray, pool: int) -> Channels:
    """Candidates from each retriever's ``pool`` best, with every score computed for all of them."""
    n = len(snap.chunks)
    pool = min(pool, n)
    q = query_vector.reshape(-1).astype(np.float32)
    _, dense_ids = snap.vectors.search(q.reshape(1, -1), pool)
    words = snap.bm25.scores(query)
    grams = snap.bm25.gram_scores(query)
    ids = np.unique(np.concatenate([dense_ids[0][dense_ids[0] >= 0], _top(words, pool), _top(grams, pool)]))
    chunk_cos = snap.chunk_vectors[ids] @ q
    rows = [snap.chunks[i].sentences for i in ids.tolist()]
    sizes = np.array([len(r) for r in rows])
    flat = np.fromiter((s for r in rows for s in r), dtype=np.int64, count=int(sizes.sum()))
    if len(flat) and sizes.all():
        sentence_cos = np.maximum.reduceat(snap.sentence_vectors[flat] @ q, np.cumsum(sizes) - sizes)
    else:  # a chunk without sentences cannot happen in a built index; fall back to the chunk's cosine
        sentence_cos = chunk_cos.copy()
    return Channels(ids, _by_max(words[ids]), _by_max(grams[ids]), chunk_cos, sentence_cos, words[ids])


def fuse(cfg: RetrievalConfig, ch: Channels, cross: bool = False) -> np.ndarray:
    """One score per candidate (higher is better) by ``cfg.fusion``."""
    g = cfg.gram_share
    lexical = (1 - g) * ch.words + g * ch.grams
    s = cfg.sentence_share
    dense = (1 - s) * _min_max(ch.chunk_cos) + s * _min_max(ch.sentence_cos)
    if cfg.fusion == "dense":
        return dense
    if cfg.fusion == "lexical":
        return lexical
    w = cfg.cross_dense_weight if cross else cfg.dense_weight
    if cfg.fusion == "rrf":
        return w / (cfg.rrf_k + _ranks(dense)) + (1 - w) / (cfg.rrf_k + _ranks(lexical))
    return w * dense + (1 - w) * lexical


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


def _ranks(scores: np.ndarray) -> np.ndarray:
    """1 for the best score; ties are broken by candidate order."""
    order = np.argsort(-scores, kind="stable")
    ranks = np.empty(len(scores))
    ranks[order] = np.arange(1, len(scores) + 1)
    return ranks
