"""The read side of the postgres store: one generation of the index, searched in the database.

A snapshot holds what answering reads row by row (documents, chunk and sentence offsets, the positions of
:class:`~rag.indexing.protocol.IndexSnapshot`) and pins a generation number; vectors and postings stay in the
database, and every query filters by that generation (a row version is visible when ``born <= g`` and it
has not died by ``g``). So a question sees one whole state however many updates commit meanwhile; a writer
keeps dead rows for one generation more (the snapshot before), as the local store keeps the build before.

BM25 is the local store's exactly (:mod:`rag.indexing.bm25`: bm25s's default ``lucene`` variant, k1 = 0.6,
b = 0.75): ``idf = ln(1 + (N - df + 0.5) / (df + 0.5))`` over all chunks of the generation, ``tf / (tf +
k1 * (1 - b + b * len / avglen))``, summed once per occurrence of a term in the query; one SQL query, an
index-only scan of the query terms' postings, with each term's document frequency read from ``rag_terms``
(kept per generation by the writer, :func:`rag.indexing.pg_rows.commit_generation`).
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np

from rag.indexing.bm25 import K1, B
from rag.indexing.columns import ChunkColumns, Labels, SentenceColumns
from rag.indexing.pg_db import Database
from rag.indexing.vectors import HNSW_EF_SEARCH
from rag.text.analysis import Analyzer
from rag.types import Document

_LIVE = "c.born <= %(g)s AND (c.died IS NULL OR c.died > %(g)s)"
# Each term's document frequency in generation g: its latest rag_terms row at or before g.
_DF = """
    SELECT DISTINCT ON (t.term) t.term, t.df::float8 AS df
    FROM rag_terms t JOIN q USING (term)
    WHERE t.kind = %(kind)s AND t.generation <= %(g)s
    ORDER BY t.term, t.generation DESC"""
# One index-only scan of the query terms' postings (the primary key covers tf and the chunk's length); the
# chunks a reader of g must not see (born after g, dead by g: the last update's, a few) are left out by id.
_BM25 = """
WITH q AS (SELECT term, count(*)::float8 AS qtf FROM unnest(%(terms)s::text[]) AS term GROUP BY term),
df AS ({df}),
w AS (SELECT q.term, q.qtf * ln(1 + (%(n)s - df.df + 0.5) / (df.df + 0.5)) AS idf
      FROM q JOIN df USING (term) WHERE df.df > 0),
s AS (
    SELECT p.chunk, sum(w.idf * p.tf / (p.tf + %(k1)s * (1 - %(b)s + %(b)s * p.length / %(avg)s))) AS score
    FROM w JOIN rag_postings p ON p.kind = %(kind)s AND p.term = w.term {which}
    GROUP BY p.chunk)
SELECT coalesce(array_agg(chunk), '{{}}'), coalesce(array_agg(score), '{{}}') FROM s
"""
_BM25_ALL = _BM25.format(
    df=_DF, which="WHERE p.chunk NOT IN (SELECT id FROM rag_chunks WHERE born > %(g)s OR died <= %(g)s)"
)
_BM25_OF = _BM25.format(df=_DF, which="AND p.chunk = ANY(%(ids)s::bigint[])")  # given (live) chunks only
# MaxScore (PgSnapshot._pruned) above 25,000 chunks: below, its two or three queries cost more than the one
# full query (2x at 10^3 chunks), above they save (half the median at 10^5; bench.pg_scale). The first
# round reads the rarest terms' postings up to 40% of all the question's (one round sufficed for 96 of 100
# questions at 10^5); when the second round would need over 60%, the full query runs instead.
PRUNE_ABOVE = 25_000
# The sum by chunk is a hash aggregation over every chunk a question's terms reach (~800,000 at 10^6 chunks):
# in PostgreSQL's default 4 MB it spilled to disk in 21 batches (~100 MB), and 64 MB kept it in memory,
# 2.7 -> 2.0 s, 2.0 -> 1.5 s and 2.4 -> 1.9 s for three questions (EXPLAIN ANALYZE; issue 15's note).
BM25_WORK_MEM = "64MB"
FIRST_ROUND_SHARE = 0.4
GIVE_UP_SHARE = 0.6
_FREQUENCIES = f"""
WITH q AS (SELECT DISTINCT term FROM unnest(%(terms)s::text[]) AS term)
SELECT term, df FROM ({_DF}) df
"""
_EXACT = f"SELECT c.id FROM rag_chunks c WHERE {_LIVE} ORDER BY c.vector <#> %(q)s, c.id LIMIT %(k)s"
# HNSW (built by the writer above RAG_APPROXIMATE_ABOVE chunks) is an index on the vector cast to its
# dimension; the query names the same expression so that the planner walks the graph.
_APPROX = (
    "SELECT c.id FROM rag_chunks c WHERE {live} "
    "ORDER BY (c.vector::vector({d})) <#> %(q)s::vector({d}) LIMIT %(k)s"
)


def term_bounds(counts: Mapping[str, int], dfs: Mapping[str, int], n: int) -> list[tuple[str, float]]:
    """Each query term's highest possible BM25 contribution, ``qtf * idf`` (``tf / (tf + K) < 1``), for
    the terms some chunk holds, highest (rarest) first; ties by term."""
    bounds = [
        (t, counts[t] * float(np.log(1 + (n - dfs[t] + 0.5) / (dfs[t] + 0.5)))) for t in counts if dfs.get(t)
    ]
    return sorted(bounds, key=lambda pair: (-pair[1], pair[0]))


def as_array(value: Any) -> np.ndarray:
    """A vector as the driver returns it (pgvector's ``Vector`` in binary results, else an array)."""
    return np.asarray(value.to_numpy() if hasattr(value, "to_numpy") else value, dtype=np.float32)


@dataclass(frozen=True)
class Generation:
    """One committed state: its number, manifest and the BM25 statistics over its chunks."""

    number: int
    manifest: dict[str, Any]
    chunks: int
    word_length: int
    gram_length: int
    sentences: int


@dataclass
class PgSnapshot:
    db: Database
    generation: Generation
    documents: dict[str, Document]
    chunks: ChunkColumns
    sentences: SentenceColumns
    sentence_doc: Labels
    chunk_ids: np.ndarray  # row -> database id
    sentence_ids: np.ndarray
    approximate: bool
    extras: dict[str, Any] = field(default_factory=dict)
    # each document version's place: (vid, doc_id, first sentence, end, first chunk, end), in row order
    versions: list[tuple[int, str, int, int, int, int]] = field(default_factory=list)
    prune_above: int = PRUNE_ABOVE
    _frequencies: dict[str, tuple[int, int]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self._id_order = np.argsort(self.chunk_ids, kind="stable")
        self._sorted_ids = self.chunk_ids[self._id_order]
        self._analyzer = Analyzer(self.manifest["lexical"]["language"])

    @property
    def manifest(self) -> dict[str, Any]:
        return self.generation.manifest

    @cached_property
    def chunk_doc(self) -> Labels:
        return self.chunks.doc_ids()

    @property
    def build_id(self) -> str:
        return str(self.manifest.get("build_id", ""))

    @property
    def analyzer(self) -> Analyzer:
        return self._analyzer

    def _params(self, **extra: Any) -> dict[str, Any]:
        return {"g": self.generation.number, **extra}

    def dense_search(self, vector: np.ndarray, k: int, rows: np.ndarray | None = None) -> np.ndarray:
        if not self.chunks or k <= 0:
            return np.zeros(0, dtype=np.int64)
        if rows is not None:  # a filter's rows, scanned exactly as the local store does
            allowed = np.asarray(rows, dtype=np.int64)
            if not len(allowed):
                return allowed
            scores = self.chunk_vectors_for(allowed) @ vector.reshape(-1).astype(np.float32)
            return allowed[np.lexsort((allowed, -scores))[:k]]
        q = np.ascontiguousarray(vector.reshape(-1), dtype=np.float32)
        params = self._params(q=q, k=min(k, len(self.chunks)))
        with self.db.connection() as conn, conn.transaction():
            if self.approximate:
                conn.execute(f"SET LOCAL hnsw.ef_search = {min(max(HNSW_EF_SEARCH, k), 1000)}")
                conn.execute("SET LOCAL hnsw.iterative_scan = strict_order")
                sql = _APPROX.format(live=_LIVE, d=len(q))
                found = conn.execute(sql, params).fetchall()
            else:
                found = conn.execute(_EXACT, params).fetchall()
        at, held = self._rows_of(np.array([r[0] for r in found], dtype=np.int64))
        return at[held]

    def lexical_scores(
        self, text: str, words: bool = False, top: int = 0, rows: np.ndarray | None = None
    ) -> np.ndarray:
        """BM25 of every chunk; with ``top`` and above ``prune_above`` chunks, the n-gram scores of the
        ``top`` best chunks and of ``rows`` only, found by MaxScore pruning (:meth:`_pruned`), the rest 0."""
        scores = np.zeros(len(self.chunks), dtype=np.float32)
        terms = self.analyzer.terms(text) if words else self.analyzer.grams(text)
        n = self.generation.chunks
        if not terms or not n:
            return scores
        length = self.generation.word_length if words else self.generation.gram_length
        params = self._params(terms=terms, kind="w" if words else "g", n=n, k1=K1, b=B, avg=length / n)
        if 0 < top < len(self.chunks) and len(self.chunks) > self.prune_above and not words:
            ids = self.chunk_ids[np.asarray(rows if rows is not None else [], dtype=np.int64)]
            found_ids, values = self._pruned(params, top, ids)
        else:
            found_ids, values = self._query(_BM25_ALL, params)
        at, found = self._rows_of(found_ids)
        scores[at[found]] = values[found]
        return scores

    def _query(self, sql: str, params: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
        with self.db.connection() as conn, conn.transaction(), conn.cursor(binary=True) as cur:
            cur.execute(f"SET LOCAL work_mem = '{BM25_WORK_MEM}'")
            row = cur.execute(sql, params).fetchone()
        assert row is not None
        return np.asarray(row[0], dtype=np.int64), np.asarray(row[1], dtype=np.float64)

    # Over 40 lines on purpose: the two rounds of one pruned query, each step depending on the one before.
    def _pruned(self, params: dict[str, Any], top: int, also: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The exact scores of the ``top`` best chunks and of the chunk ids ``also`` (MaxScore).

        A term adds at most ``qtf * idf`` to a chunk (``tf / (tf + K) < 1``). Terms are taken rarest first
        (highest bound) into the essential set E until the others' bounds sum below a threshold θ: a
        chunk without an E term then scores below θ. θ is the ``top``-th best score over E's terms alone
        (a lower bound of the ``top``-th best full score). The first round reads E up to
        FIRST_ROUND_SHARE of the postings; when its θ is too low, a second round grows E until the rest
        sums below that θ (a larger E only raises θ). Candidates are the chunks of E whose partial score
        plus the rest's bound reaches θ, and ``also``; the rest's terms are then looked up for them only."""
        counts = Counter(params["terms"])
        with self.db.connection() as conn:
            dfs = dict(conn.execute(_FREQUENCIES, {**params, "terms": list(counts)}).fetchall())
        bounds = term_bounds(counts, dfs, params["n"])
        if not bounds:
            return np.zeros(0, dtype=np.int64), np.zeros(0)
        terms = [t for t, _ in bounds]
        bound = np.array([b for _, b in bounds])
        rest = np.append(np.cumsum(bound[::-1])[::-1], 0.0)  # rest[e]: the bounds of terms[e:]
        postings = np.cumsum([dfs[t] for t in terms])
        essential = int(np.searchsorted(postings, FIRST_ROUND_SHARE * postings[-1], side="right")) or 1
        for _ in range(2):  # the second round always succeeds: a larger E only raises θ
            chosen = [t for t in terms[:essential] for _ in range(counts[t])]
            ids, partial = self._query(_BM25_ALL, {**params, "terms": chosen})
            if essential == len(terms):  # every term read: these are the full scores
                return ids, partial
            theta = float(np.partition(partial, -top)[-top]) if len(partial) >= top else 0.0
            if rest[essential] < theta:
                break
            needed = int(np.argmax(rest < theta)) if theta > 0 else len(terms)  # first e with rest[e] < θ
            if postings[needed - 1] > GIVE_UP_SHARE * postings[-1]:
                return self._query(_BM25_ALL, params)
            essential = needed
        else:  # float rounding left θ below the bound after all: no pruning is safe
            return self._query(_BM25_ALL, params)
        keep = partial + rest[essential] >= theta
        candidates = np.union1d(ids[keep], also)
        base = dict(zip(ids.tolist(), partial.tolist(), strict=True))
        others = [t for t in terms[essential:] for _ in range(counts[t])]
        more, scores = self._query(_BM25_OF, {**params, "terms": others, "ids": candidates.tolist()})
        extra = dict(zip(more.tolist(), scores.tolist(), strict=True))
        values = np.array([base.get(c, 0.0) + extra.get(c, 0.0) for c in candidates.tolist()])
        return candidates, values

    def _rows_of(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The snapshot rows of chunk database ids, and which of them the snapshot holds."""
        at = np.minimum(np.searchsorted(self._sorted_ids, ids), max(len(self._sorted_ids) - 1, 0))
        found = self._sorted_ids[at] == ids if len(self._sorted_ids) else np.zeros(len(ids), dtype=bool)
        return self._id_order[at], found

    def sentence_vectors_for(self, rows: Sequence[int] | np.ndarray) -> np.ndarray:
        return self._vectors("rag_sentences", self.sentence_ids[np.asarray(rows, dtype=np.int64)])

    def chunk_vectors_for(self, rows: Sequence[int] | np.ndarray) -> np.ndarray:
        return self._vectors("rag_chunks", self.chunk_ids[np.asarray(rows, dtype=np.int64)])

    def _vectors(self, table: str, ids: np.ndarray) -> np.ndarray:
        dimension = int(self.manifest["model"]["dimension"])
        if not len(ids):
            return np.zeros((0, dimension), dtype=np.float32)
        with self.db.connection() as conn, conn.cursor(binary=True) as cur:
            found = dict(cur.execute(f"SELECT id, vector FROM {table} WHERE id = ANY(%s)", (ids.tolist(),)))
        return np.stack([as_array(found[int(i)]) for i in ids.tolist()])

    def gram_frequencies(self, grams: Sequence[str]) -> np.ndarray:
        if not grams:
            return np.zeros(0, dtype=np.int64)
        with self.db.connection() as conn:
            params = self._params(terms=list(set(grams)), kind="g")
            found = dict(conn.execute(_FREQUENCIES, params).fetchall())
        return np.array([found.get(g, 0) for g in grams], dtype=np.int64)

    def sentence_frequency(self, stem: str) -> tuple[int, int]:
        cached = self._frequencies.get(stem)
        if cached is not None:
            return cached
        sql = (
            "SELECT coalesce(sum(t.sentences), 0) FROM rag_sentence_terms t "
            "JOIN rag_documents c ON c.vid = t.vid WHERE t.term = %(term)s AND " + _LIVE
        )
        with self.db.connection() as conn:
            row = conn.execute(sql, self._params(term=stem)).fetchone()
        result = (int(row[0]) if row else 0, self.generation.sentences)
        with self._lock:
            self._frequencies[stem] = result
        return result
