"""Vector search behind a small protocol: exact FAISS inner product, approximate (HNSW) for big indexes.

Vectors are L2-normalised, so an inner product is a cosine similarity in [-1, 1].

Why the switch sits where it does (``bench/scale.py``, 2 cores): an exact query scans every vector,
n x 384 floats = 1.5 KB per chunk, so its cost grows linearly; it is ~1 ms at 10^4 chunks, ~12 ms at
10^5 and ~120 ms at 10^6, where it would be the biggest cost of a query. HNSW answers in ~1 ms at any of
these sizes but costs build time (minutes at 10^6) and ~260 bytes of links per vector; below
``APPROXIMATE_ABOVE`` chunks exact search is as fast as the embedding of the question, and free of any
recall loss. Above it, ``ef_search`` is set so that recall@10 against exact search stays >= 0.98 on real
MiniLM vectors of the XQuAD corpus.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

import faiss
import numpy as np

APPROXIMATE_ABOVE = 200_000  # chunks; see the module docstring and bench/scale.py
# Share of cells scanned per query, measured for recall@10 >= 0.98 vs exact (bench/scale.py).
IVF_PROBE_SHARE = 0.03
IVF_MIN_PROBE = 16
_TRAIN_PER_CELL = 40  # k-means sample size per cell (FAISS warns below 39)


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
        self._index = index
        self.dimension = int(index.d)

    def add(self, vectors: np.ndarray) -> None:
        if len(vectors):
            self._index.add(np.ascontiguousarray(vectors, dtype=np.float32))

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        n = len(self)
        if n == 0 or k <= 0:
            empty = np.zeros((len(queries), 0))
            return empty.astype(np.float32), empty.astype(np.int64)
        return self._search(np.ascontiguousarray(queries, dtype=np.float32), min(k, n))

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


class IvfIndex(_Faiss):
    """Approximate search (``IndexIVFFlat``, inner product): k-means cells, ``nprobe`` nearest cells scanned.

    Chosen over HNSW for its build time on a small machine, which every index update pays again (rows are
    renumbered when an article changes): at 10^5 vectors on 2 cores ~3 s to train and fill vs ~190 s for
    an HNSW graph. The vectors are kept exactly; only which ones are compared is approximate.
    """

    kind = "ivf"

    def __init__(self, index: Any, nprobe: int | None = None) -> None:
        super().__init__(index)
        index.nprobe = nprobe or default_nprobe(int(index.nlist))

    @classmethod
    def train(cls, vectors: np.ndarray, nlist: int | None = None, seed: int = 0) -> IvfIndex:
        """Cells from k-means over (a sample of) ``vectors``, then all of them added."""
        n, dimension = vectors.shape
        nlist = nlist or default_nlist(n)
        index = faiss.IndexIVFFlat(faiss.IndexFlatIP(dimension), dimension, nlist, faiss.METRIC_INNER_PRODUCT)
        rows = np.random.default_rng(seed).permutation(n)[: _TRAIN_PER_CELL * nlist]
        index.train(np.ascontiguousarray(vectors[np.sort(rows)], dtype=np.float32))
        ivf = cls(index)
        ivf.add(vectors)
        return ivf

    def matrix(self) -> np.ndarray | None:
        return None  # the vectors live in cells, in cell order


def default_nlist(n: int) -> int:
    """Cells for ``n`` vectors: ~4 sqrt(n), FAISS's rule of thumb (1,264 at 10^5, 4,000 at 10^6), and
    never so many that a cell trains on fewer than ``_TRAIN_PER_CELL`` vectors."""
    return max(1, min(int(4 * np.sqrt(n)), n // _TRAIN_PER_CELL))


def default_nprobe(nlist: int) -> int:
    """Cells scanned per query; see ``IVF_PROBE_SHARE``."""
    return max(IVF_MIN_PROBE, int(np.ceil(nlist * IVF_PROBE_SHARE)))


def build_vector_index(vectors: np.ndarray, approximate_above: int = APPROXIMATE_ABOVE) -> _Faiss:
    """An index over ``vectors`` (row i = id i): exact up to ``approximate_above`` rows, HNSW above."""
    dimension = int(vectors.shape[1])
    if len(vectors) > approximate_above:
        return IvfIndex.train(vectors)
    index = FaissIndex(dimension)
    index.add(vectors)
    return index


def load_vector_index(path: Path) -> _Faiss:
    """An index written by :meth:`save` (exact or HNSW, as it was built)."""
    index = faiss.read_index(str(path))
    if isinstance(index, faiss.IndexIVFFlat):
        return IvfIndex(index)
    return FaissIndex(index.d, index)
