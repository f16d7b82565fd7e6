"""Hybrid retrieval: dense (FAISS) and lexical (BM25) candidates, fused into one ranking of chunks.

Fusion methods (``RAG_FUSION``):

- ``convex`` (default): each retriever's scores are scaled to [0, 1] over the candidate set (BM25 divided
  by its best score, cosine min-max scaled), then ``w * dense + (1 - w) * lexical``. Unlike rank fusion it
  keeps *how much* better the best BM25 match is, which is what makes BM25 strong on German text where an
  English model's cosines are flat.
- ``rrf``: weighted reciprocal rank fusion, ``w / (k + rank_dense) + (1 - w) / (k + rank_lexical)``.
- ``dense`` / ``lexical``: one retriever alone (for measuring).
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
    dense_weight: float = 0.3
    rrf_k: int = 60
    candidates: int = 50


def retrieve(snap: Snapshot, query: str, query_vector: np.ndarray, k: int, cfg: RetrievalConfig) -> list[Hit]:
    """The ``k`` best chunks for one query, best first."""
    n = len(snap.chunks)
    if n == 0:
        return []
    pool = min(max(cfg.candidates, k), n)
    dense = np.full(n, np.nan, dtype=np.float32)
    if cfg.fusion != "lexical":
        scores, ids = snap.vectors.search(query_vector.reshape(1, -1), pool)
        valid = ids[0] >= 0
        dense[ids[0][valid]] = scores[0][valid]
    lexical = snap.bm25.scores(query) if cfg.fusion != "dense" else np.zeros(n, dtype=np.float32)
    lex_top = np.argsort(-lexical, kind="stable")[:pool]
    lex_top = lex_top[lexical[lex_top] > 0]
    candidates = np.union1d(np.flatnonzero(~np.isnan(dense)), lex_top)
    if cfg.fusion != "lexical" and len(candidates):
        missing = candidates[np.isnan(dense[candidates])]
        if len(missing):  # exact cosines for lexical-only candidates, from the stored vectors
            dense[missing] = snap.chunk_vectors[missing] @ query_vector.reshape(-1)
    dense = np.nan_to_num(dense, nan=0.0)
    fused = _fuse(cfg, candidates, dense, lexical)
    order = candidates[np.lexsort((candidates, -fused))][:k]
    score_of = dict(zip(candidates.tolist(), fused.tolist(), strict=True))
    return [
        Hit(snap.chunks[i], float(score_of[i]), float(dense[i]), float(lexical[i])) for i in order.tolist()
    ]


def _fuse(cfg: RetrievalConfig, cand: np.ndarray, dense: np.ndarray, lexical: np.ndarray) -> np.ndarray:
    d, lex = dense[cand].astype(np.float64), lexical[cand].astype(np.float64)
    if cfg.fusion == "dense":
        return d
    if cfg.fusion == "lexical":
        return lex
    w = cfg.dense_weight
    if cfg.fusion == "rrf":
        return w / (cfg.rrf_k + _ranks(d)) + (1 - w) / (cfg.rrf_k + _ranks(lex))
    lex_n = lex / lex.max() if len(lex) and lex.max() > 0 else np.zeros_like(lex)
    span = d.max() - d.min() if len(d) else 0.0
    d_n = (d - d.min()) / span if span > 1e-9 else np.ones_like(d) * (1.0 if len(d) == 1 else 0.0)
    return w * d_n + (1 - w) * lex_n


def _ranks(scores: np.ndarray) -> np.ndarray:
    """1 for the best score; ties share the better rank."""
    order = np.argsort(-scores, kind="stable")
    ranks = np.empty(len(scores))
    ranks[order] = np.arange(1, len(scores) + 1)
    return ranks
