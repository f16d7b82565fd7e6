"""Build the index from the corpus, incrementally: unchanged files reuse their chunks and vectors.

A file counts as unchanged when its path and content hash match the previous build and that build used
the same model and chunking settings; changed files are re-chunked and re-embedded, deleted files leave
the index. The lexical index is rebuilt from all chunk texts each time (no model involved, milliseconds
per thousand chunks).
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from rag import __version__
from rag.embedding.base import Embedder, embedder_info
from rag.errors import IndexError_
from rag.indexing.bm25 import BM25Index
from rag.indexing.store import (
    Snapshot,
    build_lock,
    check_compatible,
    expected_config,
    load_snapshot,
    read_manifest,
    save_snapshot,
)
from rag.indexing.vectors import APPROXIMATE_ABOVE, build_vector_index
from rag.ingest.chunking import chunk_document
from rag.ingest.loading import Skipped, load_corpus
from rag.ingest.sentences import split_sentences
from rag.text.analysis import Analyzer
from rag.types import Chunk, Document, Sentence

log = logging.getLogger(__name__)
_EMBED_SLICE = 256  # texts per progress-bar step


@dataclass
class BuildReport:
    files: int = 0
    chunks: int = 0
    sentences: int = 0
    embedded_files: int = 0
    reused_files: int = 0
    removed_files: int = 0
    embedded_texts: int = 0
    skipped: list[Skipped] = field(default_factory=list)
    up_to_date: bool = False
    build_id: str = ""
    seconds: float = 0.0


@dataclass
class Part:
    """One document's share of a build."""

    doc: Document
    sentences: list[Sentence]
    chunks: list[Chunk]  # sentence indices local to ``sentences``
    chunk_vectors: np.ndarray | None = None
    sentence_vectors: np.ndarray | None = None


def corpus_language(documents: list[Document]) -> str:
    counts = Counter(d.meta.language for d in documents)
    return "en" if counts["en"] > counts["de"] else "de"


# Over 40 lines on purpose: the build's steps inside one lock: up to date, parts, assemble, save.
def build_index(
    corpus_dir: Path,
    index_dir: Path,
    embedder: Embedder,
    chunk_tokens: int,
    overlap: int,
    progress: bool = False,
    force: bool = False,
    approximate_above: int = APPROXIMATE_ABOVE,
) -> tuple[Snapshot, BuildReport]:
    """Bring the index in ``index_dir`` up to date with ``corpus_dir``; returns it loaded."""
    started = time.perf_counter()
    report = BuildReport()
    with build_lock(index_dir):
        loaded = load_corpus(corpus_dir, _indexed_files(index_dir))
        docs, report.skipped = loaded.documents, loaded.skipped
        language = corpus_language(docs)
        expected = expected_config(
            embedder.name, _dimension(index_dir, embedder), chunk_tokens, overlap, language
        )
        previous = None if force else _previous(index_dir, expected)
        files = {d.path: d.sha256 for d in docs}
        report.files = len(docs)
        if previous is not None and previous.manifest.get("files") == files and _same(previous, expected):
            report.up_to_date = True
            report.chunks, report.sentences = len(previous.chunks), len(previous.sentences)
            report.build_id = previous.build_id
            report.reused_files = len(docs)
            report.seconds = time.perf_counter() - started
            return previous, report
        parts = _parts(docs, previous, embedder, chunk_tokens, overlap, report, progress)
        snap = _assemble(parts, embedder.dimension, language, approximate_above)
        report.build_id = save_snapshot(index_dir, snap, _manifest(expected, files, snap, embedder))
        report.chunks, report.sentences = len(snap.chunks), len(snap.sentences)
        if previous is not None:
            report.removed_files = len(set(previous.manifest.get("files", {})) - set(files))
    report.seconds = time.perf_counter() - started
    log.info(
        "index %s: %d files, %d chunks (%d files embedded, %d reused, %d removed) in %.1fs",
        *(report.build_id, report.files, report.chunks),
        *(report.embedded_files, report.reused_files, report.removed_files, report.seconds),
    )
    return snap, report


def _manifest(expected: dict[str, Any], files: dict[str, str], snap: Snapshot, embedder: Embedder) -> dict:
    """How a build was made: the settings it must match, the corpus files' hashes, counts, the model."""
    return {
        **expected,
        "package_version": __version__,
        "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "files": files,
        "documents": len(files),
        "chunks": len(snap.chunks),
        "sentences": len(snap.sentences),
        "embedding": embedder_info(embedder),
    }


def _indexed_files(index_dir: Path) -> list[str]:
    """The corpus paths the current build holds (they keep their articles over later duplicates)."""
    try:
        return list((read_manifest(index_dir) or {}).get("files", {}))
    except IndexError_:
        return []


def _dimension(index_dir: Path, embedder: Embedder) -> int:
    """The model's dimension, from the manifest when it names the same model (no model load needed)."""
    try:
        model = (read_manifest(index_dir) or {}).get("model", {})
    except IndexError_:
        model = {}
    if model.get("name") == embedder.name and isinstance(model.get("dimension"), int):
        return int(model["dimension"])
    return embedder.dimension


def _same(previous: Snapshot, expected: dict[str, Any]) -> bool:
    return all(previous.manifest.get(k) == v for k, v in expected.items())


def _previous(index_dir: Path, expected: dict[str, Any]) -> Snapshot | None:
    """The previous build if its vectors can be reused (same model and chunking), else None."""
    try:
        if read_manifest(index_dir) is None:
            return None
        snap = load_snapshot(index_dir)
        reusable = {k: v for k, v in expected.items() if k != "lexical"}
        check_compatible(snap.manifest, reusable)
        return snap
    except IndexError_ as exc:
        log.warning("re-embedding the whole corpus now, because %s", exc.message)
        return None


def _parts(
    docs: list[Document],
    previous: Snapshot | None,
    embedder: Embedder,
    chunk_tokens: int,
    overlap: int,
    report: BuildReport,
    progress: bool,
) -> list[Part]:
    old = _old_parts(previous) if previous is not None else {}
    parts: list[Part] = []
    fresh: list[Part] = []
    for doc in docs:
        reuse = old.get(doc.path)
        if reuse is not None and reuse.doc.sha256 == doc.sha256 and reuse.doc.doc_id == doc.doc_id:
            parts.append(reuse)
            report.reused_files += 1
            continue
        sentences = split_sentences(doc.text, doc.blocks, doc.meta.language)
        sentences, chunks = chunk_document(doc, sentences, embedder.count_tokens, chunk_tokens, overlap)
        part = Part(doc, sentences, chunks)
        parts.append(part)
        fresh.append(part)
    report.embedded_files = len(fresh)
    embed_parts(fresh, embedder, report, progress)
    return parts


def embed_parts(fresh: list[Part], embedder: Embedder, report: BuildReport, progress: bool) -> None:
    """Embed every new sentence once; a chunk's vector is the normalised mean of its sentences' vectors.

    One pass over the text: the chunk vectors only choose the dense candidates, and retrieval scores a
    chunk by its best sentence (:mod:`rag.retrieval.hybrid`). Measured on XQuAD (dev half) against embedding
    every chunk text as well: German hit@1 0.956 against 0.959 (two questions), MRR@10 0.972 against 0.973,
    at half the model time.
    """
    texts = [p.doc.span_text(s) for p in fresh for s in p.sentences]
    report.embedded_texts = len(texts)
    vectors = np.zeros((len(texts), embedder.dimension), dtype=np.float32)
    bar = tqdm(total=len(texts), desc="embedding", unit="text", disable=not progress or not texts)
    with bar:
        for at in range(0, len(texts), _EMBED_SLICE):
            batch = texts[at : at + _EMBED_SLICE]
            vectors[at : at + len(batch)] = embedder.embed_documents(batch)
            bar.update(len(batch))
    at = 0
    for part in fresh:
        part.sentence_vectors = vectors[at : at + len(part.sentences)]
        part.chunk_vectors = _mean_rows(part.sentence_vectors, [c.sentences for c in part.chunks])
        at += len(part.sentences)


def _mean_rows(vectors: np.ndarray, groups: list[tuple[int, ...]]) -> np.ndarray:
    """The L2-normalised mean of ``vectors[group]`` for each group."""
    if not groups:
        return np.zeros((0, vectors.shape[1]), dtype=np.float32)
    means = np.stack([vectors[list(g)].mean(axis=0) for g in groups])
    norms = np.linalg.norm(means, axis=1, keepdims=True)
    return (means / np.where(norms > 0, norms, 1.0)).astype(np.float32)


def _old_parts(snap: Snapshot) -> dict[str, Part]:
    by_doc: dict[str, list[int]] = {}
    for i, doc_id in enumerate(snap.sentence_doc):
        by_doc.setdefault(doc_id, []).append(i)
    chunks_by_doc: dict[str, list[int]] = {}
    for i, c in enumerate(snap.chunks):
        chunks_by_doc.setdefault(c.doc_id, []).append(i)
    parts: dict[str, Part] = {}
    for doc in snap.documents.values():
        rows = by_doc.get(doc.doc_id, [])
        local = {g: i for i, g in enumerate(rows)}
        crow = chunks_by_doc.get(doc.doc_id, [])
        chunks = [
            Chunk(c.chunk_id, c.doc_id, c.start, c.end, c.text, tuple(local[g] for g in c.sentences))
            for c in (snap.chunks[i] for i in crow)
        ]
        parts[doc.path] = Part(
            doc,
            [snap.sentences[g] for g in rows],
            chunks,
            snap.chunk_vectors[crow],
            snap.sentence_vectors[rows],
        )
    return parts


def _assemble(
    parts: list[Part], dimension: int, language: str, approximate_above: int = APPROXIMATE_ABOVE
) -> Snapshot:
    sentences: list[Sentence] = []
    sentence_doc: list[str] = []
    chunks: list[Chunk] = []
    for part in parts:
        base = len(sentences)
        sentences.extend(part.sentences)
        sentence_doc.extend([part.doc.doc_id] * len(part.sentences))
        chunks.extend(
            Chunk(c.chunk_id, c.doc_id, c.start, c.end, c.text, tuple(base + i for i in c.sentences))
            for c in part.chunks
        )
    empty = np.zeros((0, dimension), dtype=np.float32)
    chunk_vectors = np.concatenate([p.chunk_vectors for p in parts if p.chunk_vectors is not None] or [empty])
    sentence_vectors = np.concatenate(
        [p.sentence_vectors for p in parts if p.sentence_vectors is not None] or [empty]
    )
    vectors = build_vector_index(chunk_vectors, approximate_above)
    shared = vectors.matrix()  # the exact index's own copy: the vectors are held once, not twice
    chunk_vectors = chunk_vectors if shared is None else shared
    bm25 = BM25Index(Analyzer(language))
    bm25.build([c.text for c in chunks], [p.doc.span_text(s) for p in parts for s in p.sentences])
    return Snapshot(
        manifest={},
        documents={p.doc.doc_id: p.doc for p in parts},
        sentences=sentences,
        sentence_doc=sentence_doc,
        chunks=chunks,
        chunk_vectors=chunk_vectors,
        sentence_vectors=sentence_vectors,
        vectors=vectors,
        bm25=bm25,
    )
