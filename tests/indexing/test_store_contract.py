"""The storage seam's contract (:mod:`rag.indexing.protocol`): every index store, held to the same rules.

Retrieval and answering read only :class:`IndexSnapshot`; the pipeline writes only through
:class:`IndexStore`. A new store (PostgreSQL: issue 15) joins ``STORES`` and must pass all of this.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from rag.embedding.fake import WordsEmbedder
from rag.indexing.local import LocalStore
from rag.indexing.postgres import PostgresStore
from rag.indexing.protocol import IndexStore

StoreFactory = Callable[[Path, pytest.FixtureRequest], IndexStore]
STORES: dict[str, StoreFactory] = {
    "local": lambda folder, _: LocalStore(folder / "index", 200, 1, approximate_above=25_000),
    # a fresh database on the session's embedded PostgreSQL (tests/conftest.py)
    "postgres": lambda folder, request: PostgresStore(
        folder / "index", request.getfixturevalue("pg_url"), 200, 1, approximate_above=25_000
    ),
}
_MARKS = {"postgres": [pytest.mark.postgres]}


@pytest.fixture(params=[pytest.param(name, marks=_MARKS.get(name, [])) for name in sorted(STORES)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[IndexStore]:
    made = STORES[request.param](tmp_path, request)
    yield made
    made.close()


class TestIndexStoreContract:
    def test_a_snapshot_holds_the_corpus_with_positions_that_agree(
        self, store: IndexStore, seed_corpus: Path
    ):
        snap, _ = store.update(seed_corpus, WordsEmbedder())
        assert set(snap.documents) == {"000_ec495bea3a2a83c6", "001_280cdb7c2d6d85fb"}
        assert snap.build_id and snap.manifest["model"]["name"] == "test:words"
        assert snap.analyzer.language == "de"
        for chunk in snap.chunks:
            doc = snap.documents[chunk.doc_id]
            assert doc.text[chunk.start : chunk.end] == chunk.text and chunk.sentences
            for row in chunk.sentences:
                s = snap.sentences[row]
                assert snap.sentence_doc[row] == chunk.doc_id and chunk.start <= s.start < s.end <= chunk.end
        assert list(snap.chunk_doc) == [c.doc_id for c in snap.chunks]
        assert len(snap.sentence_doc) == len(snap.sentences) and len(snap.chunk_doc) == len(snap.chunks)
        rows = [r for c in snap.chunks for r in c.sentences]
        vectors = snap.sentence_vectors_for(rows)
        assert vectors.shape == (len(rows), 64) and np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-5)
        assert snap.chunk_vectors_for([0]).shape == (1, 64)

    def test_a_filtered_dense_search_returns_the_nearest_of_the_given_rows(
        self, store: IndexStore, seed_corpus: Path
    ):
        """A filter's rows (rag.retrieval.filters) are searched among themselves: the k nearest of them."""
        snap, _ = store.update(seed_corpus, WordsEmbedder())
        vector = WordsEmbedder().embed_queries(["Veto Expertengremium Sanktionen"])[0]
        everything = snap.dense_search(vector, len(snap.chunks)).tolist()
        rows = np.array(sorted(everything[1:]), dtype=np.int64)  # all but the nearest
        assert snap.dense_search(vector, 2, rows).tolist() == everything[1:3]
        assert snap.dense_search(vector, 99, rows[:1]).tolist() == rows[:1].tolist()
        assert snap.dense_search(vector, 3, np.zeros(0, dtype=np.int64)).tolist() == []

    def test_search_finds_the_chunk_that_holds_the_words(self, store: IndexStore, seed_corpus: Path):
        snap, _ = store.update(seed_corpus, WordsEmbedder())
        want = next(i for i, c in enumerate(snap.chunks) if "Präzisionswaffen" in c.text)
        vector = WordsEmbedder().embed_queries(["Präzisionswaffen Nordkorea"])[0]
        dense = snap.dense_search(vector, 3)
        assert 1 <= len(dense) <= 3 and len(set(dense.tolist())) == len(dense)
        lexical = snap.lexical_scores("Präzisionswaffen")
        assert lexical.shape == (len(snap.chunks),) and int(np.argmax(lexical)) == want
        assert snap.lexical_scores("Präzisionswaffen", words=True)[want] > 0
        assert snap.lexical_scores("Xqzvw").max() == 0 == snap.lexical_scores("Xqzvw", words=True).max()
        assert snap.gram_frequencies([" pra", "zzzzz"]).tolist()[1] == 0
        found, total = snap.sentence_frequency(snap.analyzer.terms("Nordkorea")[0])
        assert 0 < found <= total == len(snap.sentences)

    def test_updates_add_and_remove_documents_and_old_snapshots_stay_whole(
        self, store: IndexStore, seed_corpus: Path
    ):
        before, _ = store.update(seed_corpus, WordsEmbedder())
        (seed_corpus / "neu.md").write_text("Ein neuer Artikel über Wale. Wale sind groß.", encoding="utf-8")
        embedder = WordsEmbedder()
        added, _ = store.update(seed_corpus, embedder)
        assert "neu" in added.documents and embedder.calls == 2  # only the new article's two sentences
        assert "neu" not in before.documents and len(before.chunks) < len(added.chunks)
        whale = WordsEmbedder().embed_queries(["Wale"])[0]
        assert before.lexical_scores("Wale").shape == (len(before.chunks),)  # searched as it was
        assert (
            before.lexical_scores("Wale", words=True).max()
            == 0
            < added.lexical_scores("Wale", words=True).max()
        )
        assert before.dense_search(whale, 50).max() < len(before.chunks)
        assert store.load().build_id == added.build_id
        (seed_corpus / "neu.md").unlink()
        removed, _ = store.update(seed_corpus, WordsEmbedder())
        assert set(removed.documents) == set(before.documents)
        assert [c.text for c in removed.chunks] == [c.text for c in before.chunks]

    def test_an_unchanged_corpus_is_not_rebuilt(self, store: IndexStore, seed_corpus: Path):
        first, _ = store.update(seed_corpus, WordsEmbedder())
        embedder = WordsEmbedder()
        again, _ = store.update(seed_corpus, embedder)
        assert embedder.calls == 0 and again.build_id == first.build_id
