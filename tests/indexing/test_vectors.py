"""Vector indexes: one contract for exact and approximate search, the switch between them, and the store."""

from __future__ import annotations

import gc
from pathlib import Path

import numpy as np
import pytest

from rag.embedding.fake import WordsEmbedder
from rag.indexing.build import build_index
from rag.indexing.store import current_build, load_snapshot
from rag.indexing.vectors import (
    APPROXIMATE_ABOVE,
    FaissIndex,
    HnswIndex,
    build_vector_index,
    load_vector_index,
)
from rag.pipeline import build_pipeline
from rag.settings import Settings


def _unit(rows: int, dim: int = 32, seed: int = 0) -> np.ndarray:
    """Clustered unit vectors (like text embeddings, unlike uniform noise): 20 centres plus spread."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((20, dim))
    v = centres[rng.integers(0, 20, rows)] + 0.5 * rng.standard_normal((rows, dim))
    return (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)


def _exact(vectors: np.ndarray) -> FaissIndex:
    index = FaissIndex(vectors.shape[1])
    index.add(vectors)
    return index


def _hnsw(vectors: np.ndarray) -> HnswIndex:
    index = HnswIndex(vectors.shape[1])
    index.add(vectors)
    return index


MAKERS = {"exact": _exact, "hnsw": _hnsw}


@pytest.fixture(params=sorted(MAKERS))
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


class TestContract:
    """What every VectorIndex does, exact or approximate."""

    def test_search_returns_scores_and_ids_best_first(self, kind: str) -> None:
        vectors = _unit(2000)
        index = MAKERS[kind](vectors)
        assert len(index) == 2000 and index.kind == kind
        scores, ids = index.search(vectors[:5], 10)
        assert scores.shape == ids.shape == (5, 10)
        assert (ids[:, 0] == np.arange(5)).all()  # each vector finds itself first
        np.testing.assert_allclose(scores[:, 0], 1.0, atol=1e-5)
        assert (np.diff(scores, axis=1) <= 1e-6).all()
        np.testing.assert_allclose(scores, np.einsum("qd,qkd->qk", vectors[:5], vectors[ids]), atol=1e-5)

    def test_a_question_is_searched_on_one_thread_and_the_setting_restored(self, kind: str) -> None:
        import faiss

        index = MAKERS[kind](_unit(300))
        before = faiss.omp_get_max_threads()
        calls: list[int] = []
        search = index._search

        def spy(queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
            calls.append(faiss.omp_get_max_threads())
            return search(queries, k)

        index._search = spy  # type: ignore[method-assign]
        index.search(_unit(1), 5)
        index.search(_unit(50), 5)
        assert calls == [1, before] and faiss.omp_get_max_threads() == before

    def test_k_is_capped_by_the_size(self, kind: str) -> None:
        index = MAKERS[kind](_unit(50))
        _, ids = index.search(_unit(2, seed=1), 500)
        assert ids.shape == (2, 50) and set(ids[0][ids[0] >= 0]) <= set(range(50))

    def test_save_and_load_round_trip(self, kind: str, tmp_path: Path) -> None:
        vectors = _unit(800)
        index = MAKERS[kind](vectors)
        index.save(tmp_path / "v.faiss")
        loaded = load_vector_index(tmp_path / "v.faiss")
        assert loaded.kind == kind and len(loaded) == 800
        for a, b in zip(index.search(vectors[:3], 7), loaded.search(vectors[:3], 7), strict=True):
            np.testing.assert_array_equal(a, b)


def test_empty_exact_index() -> None:
    index = build_vector_index(np.zeros((0, 16), dtype=np.float32))
    scores, ids = index.search(np.ones((1, 16), dtype=np.float32), 5)
    assert len(index) == 0 and scores.shape == ids.shape == (1, 0)
    assert index.matrix() is not None and index.matrix().shape == (0, 16)


def test_the_switch_to_approximate_search() -> None:
    vectors = _unit(300)
    assert build_vector_index(vectors, approximate_above=300).kind == "exact"
    assert build_vector_index(vectors, approximate_above=299).kind == "hnsw"
    assert (
        Settings().index.approximate_above == APPROXIMATE_ABOVE
    )  # one default, documented in rag/indexing/vectors.py


@pytest.mark.parametrize("above", [APPROXIMATE_ABOVE, 0])
def test_the_index_shares_its_vectors_without_a_copy(above: int) -> None:
    vectors = _unit(100)
    index = build_vector_index(vectors, above)
    view = index.matrix()
    assert view is not None and not view.flags.writeable and not view.flags.owndata
    del index
    gc.collect()  # the view keeps the index alive
    np.testing.assert_array_equal(view, vectors)


def test_hnsw_search_width_trades_recall() -> None:
    vectors, queries = _unit(5000), _unit(200, seed=7)
    exact, hnsw = _exact(vectors), _hnsw(vectors)
    want, _ = exact.search(queries, 50)

    def recall(ef: int) -> float:
        hnsw.ef_search = ef
        got, _ = hnsw.search(queries, 10)
        return float((got >= want[:, 9:10] - 1e-6).mean())

    assert recall(10) < recall(256) and recall(256) >= 0.98


def test_an_approximate_index_is_saved_recorded_and_loaded(seed_corpus: Path, tmp_path: Path) -> None:
    index_dir = tmp_path / "ix"
    built, _ = build_index(seed_corpus, index_dir, WordsEmbedder(), 200, 1, approximate_above=0)
    assert built.vectors.kind == "hnsw" and built.manifest["vectors"] == {
        "kind": "hnsw",
        "count": len(built.chunks),
    }
    assert (current_build(index_dir) / "vectors.faiss").is_file()
    assert "vectors.faiss" in built.manifest["checksums"]
    loaded = load_snapshot(index_dir)
    assert loaded.vectors.kind == "hnsw"
    np.testing.assert_array_equal(loaded.chunk_vectors, built.chunk_vectors)
    query = built.chunk_vectors[:1]
    np.testing.assert_array_equal(loaded.vectors.search(query, 5)[1], built.vectors.search(query, 5)[1])


def test_the_pipeline_answers_the_same_with_approximate_search(seed_corpus: Path, tmp_path: Path) -> None:
    def ask(folder: str, above: int) -> list[str]:
        settings = Settings(
            corpus_dir=seed_corpus, index_dir=tmp_path / folder, model="test:words", approximate_above=above
        )
        answer = build_pipeline(settings, WordsEmbedder()).ask("Wer ist der russische UN-Botschafter?")
        return [c.quote for c in answer.citations]

    # the seed corpus has a few dozen chunks: a graph walk of width 256 visits them all
    assert ask("exact", APPROXIMATE_ABOVE) == ask("hnsw", 0)
