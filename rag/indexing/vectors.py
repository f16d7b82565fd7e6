"""Vector search behind a small protocol: exact FAISS inner product, approximate (HNSW) for big indexes.

Vectors are L2-normalised, so an inner product is a cosine similarity in [-1, 1].

An exact query scans every vector (n x 384 floats = 1.5 KB per chunk), so its cost grows with the index:
on 2 cores, one thread, 0.27 ms at 10^4 chunks, 1.3 ms at 2.5x10^4, 5.9 ms at 10^5 and 59 ms at 10^6,
where it would dwarf the question's embedding (~5 ms). HNSW walks a graph instead: 0.45, 0.83 and 1.1 ms
at 10^4, 2.5x10^4 and 10^5, for build time (25 s at 10^5 on an idle machine, 20 min at 10^6 on a busy
one; the graph is saved with the build) and ~270 bytes of links per vector. The two cross near 2x10^4
chunks; below ``APPROXIMATE_ABOVE`` search is exact, above it recall@10 against exact search is >= 0.98
on real data (figures at the constants below; ``bench/scale.py`` measures them).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

import faiss
import numpy as np

# Exact up to here: at 2.5x10^4 chunks an exact scan (1.3 ms) costs a quarter of embedding the question.
APPROXIMATE_ABOVE = 25_000
# Recall@10 against exact search, on real MiniLM vectors (XQuAD paragraphs and Python docstrings) with
# the 1,224 XQuAD questions, efConstruction 200 / efSearch 512: 0.9985 at 10^4, 0.9975 at 2.5x10^4, 0.994
# at 6x10^4; 0.984 at 10^5 (60% real). efSearch 256 gives 0.990 at 2.5x10^4 and 0.967 at 10^5, and
# efConstruction 80 0.955 at 6x10^4: questions sit apart from passages and MiniLM's cosines on German
# text are close together, so the graph is built and walked wider than typical benchmarks need.
HNSW_M = 32
HNSW_EF_CONSTRUCTION = 200
HNSW_EF_SEARCH = 512  # raised to k when a search asks for more
_FEW_QUERIES = 4  # searches of up to this many queries run on the calling thread alone
_FAISS: Any = faiss  # the SWIG module, for names its type stubs lack


class VectorIndex(Protocol):
    kind: str  # "exact" or "hnsw", recorded in the manifest

    def add(self, vectors: np.ndarray) -> None: ...

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Scores and row ids, each ``(len(queries), k)``; missing results have id -1."""
        ...

    def __len__(self) -> int: ...

    def save(self, path: Path) -> None: ...

    def matrix(self) -> np.ndarray | None:
        """The stored vectors, row i = id i, as a read-only view that keeps the index alive; None when the
        index does not hold them as one matrix (then the caller keeps its own array)."""
        ...


class _Faiss:
    """What both FAISS-backed indexes share: search over float32 rows, save, and a zero-copy view."""

    kind = "exact"

    def __init__(self, index: faiss.Index) -> None:
        self._index: Any = index  # FAISS's SWIG classes are not typed; its subclasses differ
        self.dimension = int(index.d)

    def add(self, vectors: np.ndarray) -> None:
        if len(vectors):
            self._index.add(np.ascontiguousarray(vectors, dtype=np.float32))

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        n = len(self)
        if n == 0 or k <= 0:
            empty = np.zeros((len(queries), 0))
            return empty.astype(np.float32), empty.astype(np.int64)
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        if len(queries) > _FEW_QUERIES:
            return self._search(queries, min(k, n))
        # A question is searched on one thread (OpenMP's setting is per calling thread, so this touches
        # no other search or build): with other work on 2 cores, a two-thread scan of 60,000 vectors
        # took 32-36 ms against 8 ms on one, and concurrent questions use the cores side by side anyway.
        threads = faiss.omp_get_max_threads()
        faiss.omp_set_num_threads(1)
        try:
            return self._search(queries, min(k, n))
        finally:
            faiss.omp_set_num_threads(threads)

    def _search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        scores, ids = self._index.search(queries, k)
        return scores, ids

    def __len__(self) -> int:
        return int(self._index.ntotal)

    def save(self, path: Path) -> None:
        faiss.write_index(self._index, str(path))

    def _flat(self) -> Any:
        return self._index

    def matrix(self) -> np.ndarray | None:
        flat: Any = faiss.downcast_index(self._flat())
        n, d = len(self), self.dimension
        if n == 0:
            return np.zeros((0, d), dtype=np.float32)
        raw = faiss.rev_swig_ptr(flat.get_xb(), n * d)
        view = np.asarray(_Owner(self, raw)).reshape(n, d)
        view.flags.writeable = False
        return view


class _Owner:
    """Hands a FAISS buffer to numpy with a reference to its index, so the index outlives the view."""

    def __init__(self, owner: object, raw: np.ndarray) -> None:
        self.owner = owner
        self.__array_interface__ = raw.__array_interface__


class FaissIndex(_Faiss):
    """Exact search (``IndexFlatIP``): every query scans all vectors, ~12 ms per 10^5 chunks on 2 cores."""

    def __init__(self, dimension: int, index: faiss.Index | None = None) -> None:
        super().__init__(index if index is not None else faiss.IndexFlatIP(dimension))

    @classmethod
    def load(cls, path: Path) -> FaissIndex:
        index = faiss.read_index(str(path))
        return cls(index.d, index)


class HnswIndex(_Faiss):
    """Approximate search (``IndexHNSWFlat``, inner product): a graph walk instead of a scan.

    The vectors are kept exactly (the graph only decides which ones are compared), so scores are exact
    cosines and :meth:`matrix` shares them like the exact index does.
    """

    kind = "hnsw"

    def __init__(self, dimension: int, index: Any = None, ef_search: int = HNSW_EF_SEARCH) -> None:
        if index is None:
            index = faiss.IndexHNSWFlat(dimension, HNSW_M, faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
        super().__init__(index)
        self.ef_search = ef_search

    def _search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        params = _FAISS.SearchParametersHNSW(efSearch=max(self.ef_search, k))
        scores, ids = self._index.search(queries, k, params=params)
        return scores, ids

    def _flat(self) -> Any:
        return self._index.storage


def build_vector_index(vectors: np.ndarray, approximate_above: int = APPROXIMATE_ABOVE) -> _Faiss:
    """An index over ``vectors`` (row i = id i): exact up to ``approximate_above`` rows, HNSW above."""
    dimension = int(vectors.shape[1])
    index: _Faiss = HnswIndex(dimension) if len(vectors) > approximate_above else FaissIndex(dimension)
    index.add(vectors)
    return index


def load_vector_index(path: Path) -> _Faiss:
    """An index written by :meth:`save` (exact or HNSW, as it was built)."""
    index = faiss.read_index(str(path))
    if isinstance(index, faiss.IndexHNSWFlat):
        return HnswIndex(index.d, index)
    return FaissIndex(index.d, index)
