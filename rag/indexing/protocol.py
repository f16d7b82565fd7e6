"""The storage seam: what retrieval and answering read of an index, and how the pipeline keeps it current.

Retrieval (:mod:`rag.retrieval`) and the composer (:mod:`rag.answering`) see only :class:`IndexSnapshot`,
one consistent state of the index that never changes under a question; the pipeline sees only
:class:`IndexStore`. The local store (:mod:`rag.indexing.local`: FAISS, bm25s and a build folder) is the
embedded default, the postgres store (:mod:`rag.indexing.postgres`) the one that scales out;
``tests/indexing/test_store_contract.py`` holds every implementation to the same rules.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from rag.embedding.base import Embedder
from rag.indexing.build import BuildReport
from rag.text.analysis import Analyzer
from rag.types import Chunk, Document, Sentence


class IndexSnapshot(Protocol):
    """One consistent state of the index. Rows are positions: chunk ``i`` is ``chunks[i]``, sentence ``r``
    is ``sentences[r]`` of document ``sentence_doc[r]``, and a chunk lists its sentences' rows."""

    @property
    def documents(self) -> Mapping[str, Document]:
        """The articles by id. Their ``blocks`` may be empty (the postgres store's are): reading goes by
        ``sentences``, and blocks are only cut into sentences when a document is indexed."""
        ...

    @property
    def chunks(self) -> Sequence[Chunk]: ...

    @property
    def sentences(self) -> Sequence[Sentence]: ...

    @property
    def sentence_doc(self) -> Sequence[str]: ...

    @property
    def chunk_doc(self) -> Sequence[str]:
        """Each chunk row's document id, ``chunks[i].doc_id``, without making the chunks."""
        ...

    @property
    def extras(self) -> dict[str, Any]:
        """Caches a stage keeps for this snapshot (the composer's sentence analyses)."""
        ...

    @property
    def manifest(self) -> dict[str, Any]:
        """How this state was built: model, chunking, lexical method, build id (it describes itself)."""
        ...

    @property
    def build_id(self) -> str: ...

    @property
    def analyzer(self) -> Analyzer:
        """The analyser the lexical index was built with (its language is the articles')."""
        ...

    def dense_search(self, vector: np.ndarray, k: int, rows: np.ndarray | None = None) -> np.ndarray:
        """The rows of the ``k`` chunks whose vectors are nearest ``vector``, best first.

        ``rows`` is a filter (:mod:`rag.retrieval.filters`): the chunk rows a question may be answered
        from, ascending. With it, a store searches among those rows only and returns the ``k`` nearest of
        them (fewer only when fewer are given), never the ``k`` nearest overall with the others dropped
        afterwards; equal scores go to the lower row. Without it, every chunk is a candidate.
        """
        ...

    def lexical_scores(
        self, text: str, words: bool = False, top: int = 0, rows: np.ndarray | None = None
    ) -> np.ndarray:
        """Every chunk's BM25 score for ``text``: over character n-grams, or stemmed ``words``. Statistics
        (idf, lengths) are the whole index's, filtered or not, so a filter changes which chunks compete,
        never their scores; retrieval reads the scores of a filter's rows only. With ``top`` > 0 a store
        may give exact scores only to the ``top`` best chunks and to ``rows``, and 0 to the rest (the
        postgres store prunes its n-gram query so above 25,000 chunks: PgSnapshot._pruned)."""
        ...

    def sentence_vectors_for(self, rows: Sequence[int] | np.ndarray) -> np.ndarray:
        """The vectors of sentence ``rows``, in that order."""
        ...

    def chunk_vectors_for(self, rows: Sequence[int] | np.ndarray) -> np.ndarray:
        """The vectors of chunk ``rows``, in that order."""
        ...

    def gram_frequencies(self, grams: Sequence[str]) -> np.ndarray:
        """In how many chunks each character n-gram occurs."""
        ...

    def sentence_frequency(self, stem: str) -> tuple[int, int]:
        """``(sentences holding the stemmed word, all sentences)``."""
        ...


class IndexStore(Protocol):
    """Where the index lives. ``update`` brings it in line with the corpus folder (adding, replacing and
    removing documents by content hash) and returns the new snapshot; a reader keeps the snapshot it has
    until it asks again, and never sees half an update."""

    def update(
        self,
        corpus_dir: Path,
        embedder: Embedder,
        progress: bool = False,
        force: bool = False,
        only: Collection[str] | None = None,
    ) -> tuple[IndexSnapshot, BuildReport]:
        """``only``: the corpus paths this update is about (an upload, a delete, a server's own folder); the
        postgres store, whose database servers with folders of their own may share, leaves every other
        document as it is; the local store, whose index is its folder's alone, syncs the whole folder."""
        ...

    def load(self) -> IndexSnapshot:
        """The current snapshot, as last committed."""
        ...

    def current(self, snapshot: Any) -> IndexSnapshot:
        """What to answer the next question from: ``snapshot`` while no other writer has committed since
        (a cheap check, once per question), else the newly committed state."""
        ...

    def close(self) -> None:
        """Release connections and any server the store started."""
        ...
