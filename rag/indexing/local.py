"""The local store: the index as build folders on disk (:mod:`rag.indexing.store`), FAISS for vectors and
bm25s for BM25, made by :func:`rag.indexing.build.build_index`. The embedded default of
:class:`rag.indexing.protocol.IndexStore`."""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path

from rag.embedding.base import Embedder
from rag.indexing.build import BuildReport, build_index
from rag.indexing.store import Snapshot, load_snapshot


class LocalStore:
    def __init__(self, index_dir: Path, chunk_tokens: int, overlap: int, approximate_above: int) -> None:
        self.index_dir = Path(index_dir)
        self.chunk_tokens = chunk_tokens
        self.overlap = overlap
        self.approximate_above = approximate_above

    def update(
        self,
        corpus_dir: Path,
        embedder: Embedder,
        progress: bool = False,
        force: bool = False,
        only: Collection[str] | None = None,
    ) -> tuple[Snapshot, BuildReport]:
        """The whole folder, whatever ``only`` names: the index is the folder's alone."""
        return build_index(
            corpus_dir,
            self.index_dir,
            embedder,
            self.chunk_tokens,
            self.overlap,
            progress=progress,
            force=force,
            approximate_above=self.approximate_above,
        )

    def load(self) -> Snapshot:
        return load_snapshot(self.index_dir)

    def current(self, snapshot: Snapshot) -> Snapshot:
        """The folder has one writer, the process holding ``snapshot``, which swaps it on its own updates."""
        return snapshot

    def close(self) -> None:
        """Nothing to release: the index is files."""
