"""The postgres store: the index in PostgreSQL with pgvector, BM25 computed in SQL
(:mod:`rag.indexing.pg_snapshot`). Any number of processes can share one database.

An update is one transaction, serialised with other writers by an advisory lock: it compares the corpus
with the live document versions by content hash (unchanged ones keep their rows and vectors, as locally),
writes new versions born in the next generation, marks replaced and removed ones dead in it, and records
the generation with its BM25 statistics; a crash or a lost connection at any point rolls all of it back.
Readers notice a commit by the generation number, checked once per question (:meth:`PostgresStore.current`).
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from rag import __version__
from rag.embedding.base import Embedder, embedder_info
from rag.errors import IndexError_
from rag.indexing.build import BuildReport, Part, corpus_language, embed_parts
from rag.indexing.pg_db import Database
from rag.indexing.pg_rows import (
    commit_generation,
    ensure_hnsw,
    latest_generation,
    read_part,
    read_snapshot,
    write_part,
)
from rag.indexing.pg_server import EmbeddedServer, start_embedded
from rag.indexing.pg_snapshot import PgSnapshot
from rag.indexing.store import expected_config
from rag.ingest.chunking import chunk_document
from rag.ingest.loading import load_corpus
from rag.ingest.sentences import split_sentences
from rag.text.analysis import Analyzer
from rag.types import Document

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Live:
    """A live document version in the database."""

    vid: int
    doc_id: str
    sha256: str


class PostgresStore:
    """:class:`~rag.indexing.protocol.IndexStore` on PostgreSQL; ``url`` None = an embedded server under
    ``index_dir`` (started on first use, stopped on :meth:`close` or at exit)."""

    def __init__(
        self, index_dir: Path, url: str | None, chunk_tokens: int, overlap: int, approximate_above: int
    ) -> None:
        self.index_dir = Path(index_dir)
        self.url = url
        self.chunk_tokens = chunk_tokens
        self.overlap = overlap
        self.approximate_above = approximate_above
        self.server: EmbeddedServer | None = None
        self._db: Database | None = None
        self._lock = threading.Lock()

    @property
    def db(self) -> Database:
        with self._lock:
            if self._db is None:
                url = self.url
                if url is None:
                    self.server = start_embedded(self.index_dir)
                    url = self.server.url()
                self._db = Database(url)
            return self._db

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
        if self.server is not None:
            self.server.close()
            self.server = None
            self._db = None

    # --- reading
    def load(self) -> PgSnapshot:
        snap = read_snapshot(self.db, self.approximate_above)
        if snap is None:
            raise IndexError_("the index database holds no index yet: run `rag index`")
        return snap

    def current(self, snapshot: Any) -> Any:
        """``snapshot`` while it is still the latest generation, else the latest (one query per call)."""
        with self.db.connection() as conn:
            row = conn.execute("SELECT max(generation) FROM rag_generations").fetchone()
        latest = row[0] if row else None
        if isinstance(snapshot, PgSnapshot) and latest == snapshot.generation.number:
            return snapshot
        return self.load()

    # --- writing
    def update(
        self, corpus_dir: Path, embedder: Embedder, progress: bool = False, force: bool = False
    ) -> tuple[PgSnapshot, BuildReport]:
        started = time.perf_counter()
        report = BuildReport()
        with self.db.connection() as conn, conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(hashtext('rag_update'))")
            changed = self._update_locked(conn, corpus_dir, embedder, progress, force, report)
        report.seconds = time.perf_counter() - started
        snap = self.load()
        report.build_id, report.chunks, report.sentences = (
            snap.build_id,
            len(snap.chunks),
            len(snap.sentences),
        )
        if changed:
            log.info(
                "index %s: %d files, %d chunks (%d embedded, %d reused, %d removed) in %.1fs",
                report.build_id,
                report.files,
                report.chunks,
                report.embedded_files,
                report.reused_files,
                report.removed_files,
                report.seconds,
            )
        return snap, report

    # Over 40 lines on purpose: one transaction: its steps must read together.
    def _update_locked(
        self,
        conn: psycopg.Connection,
        corpus_dir: Path,
        embedder: Embedder,
        progress: bool,
        force: bool,
        report: BuildReport,
    ) -> bool:
        """Bring the database in line with the corpus inside the caller's transaction; False when it
        already was."""
        live = _live(conn)
        loaded = load_corpus(corpus_dir, list(live))
        docs, report.skipped, report.files = loaded.documents, loaded.skipped, len(loaded.documents)
        stored = _config(conn)
        expected = expected_config(
            embedder.name,
            _dimension(stored, embedder),
            self.chunk_tokens,
            self.overlap,
            corpus_language(docs),
        )
        vectors_ok = not force and stored is not None and _same(stored, expected, ("model", "chunking"))
        keep = _unchanged(docs, live) if vectors_ok and _same(stored or {}, expected, ("lexical",)) else set()
        generation = latest_generation(conn)
        if generation is not None and len(keep) == len(docs) == len(live):
            report.up_to_date, report.reused_files = True, len(docs)
            return False
        number = (generation.number if generation else 0) + 1
        dead = [v.vid for path, v in live.items() if path not in keep]
        conn.execute("UPDATE rag_documents SET died = %s WHERE vid = ANY(%s)", (number, dead))
        conn.execute("UPDATE rag_chunks SET died = %s WHERE vid = ANY(%s)", (number, dead))
        analyzer = Analyzer(expected["lexical"]["language"])
        for part in self._new_parts(conn, docs, keep, live, vectors_ok, embedder, report, progress):
            write_part(conn, part, number, analyzer)
        conn.execute(
            "INSERT INTO rag_config VALUES ('build', %s) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (Jsonb(expected),),
        )
        committed = commit_generation(conn, number, _manifest(expected, docs, embedder))
        if committed.chunks > self.approximate_above:
            ensure_hnsw(conn, int(expected["model"]["dimension"]))
        report.removed_files = len(set(live) - {d.path for d in docs})
        return True

    def _new_parts(
        self,
        conn: psycopg.Connection,
        docs: list[Document],
        keep: set[str],
        live: dict[str, _Live],
        vectors_ok: bool,
        embedder: Embedder,
        report: BuildReport,
        progress: bool,
    ) -> list[Part]:
        """The versions to write: re-analysed ones whose vectors are reused, and new ones, embedded."""
        parts: list[Part] = []
        fresh: list[Part] = []
        for doc in docs:
            old = live.get(doc.path)
            if doc.path in keep:
                report.reused_files += 1
            elif vectors_ok and old is not None and old.sha256 == doc.sha256 and old.doc_id == doc.doc_id:
                parts.append(read_part(conn, old.vid, doc))  # the lexical method changed: same vectors
                report.reused_files += 1
            else:
                sentences = split_sentences(doc.text, doc.blocks, doc.meta.language)
                sentences, chunks = chunk_document(
                    doc, sentences, embedder.count_tokens, self.chunk_tokens, self.overlap
                )
                fresh.append(Part(doc, sentences, chunks))
        report.embedded_files = len(fresh)
        embed_parts(fresh, embedder, report, progress)
        return parts + fresh


def _unchanged(docs: list[Document], live: dict[str, _Live]) -> set[str]:
    """Paths whose live version has the same content hash and id: their rows stay as they are."""
    return {
        d.path
        for d in docs
        if d.path in live and (live[d.path].sha256, live[d.path].doc_id) == (d.sha256, d.doc_id)
    }


def _manifest(expected: dict[str, Any], docs: list[Document], embedder: Embedder) -> dict[str, Any]:
    return {
        **expected,
        "store": "postgres",
        "package_version": __version__,
        "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "files": {d.path: d.sha256 for d in docs},
        "documents": len(docs),
        "embedding": embedder_info(embedder),
    }


def _live(conn: psycopg.Connection) -> dict[str, _Live]:
    rows = conn.execute("SELECT path, vid, doc_id, sha256 FROM rag_documents WHERE died IS NULL").fetchall()
    return {r[0]: _Live(int(r[1]), r[2], r[3]) for r in rows}


def _config(conn: psycopg.Connection) -> dict[str, Any] | None:
    row = conn.execute("SELECT value FROM rag_config WHERE key = 'build'").fetchone()
    return row[0] if row else None


def _dimension(stored: dict[str, Any] | None, embedder: Embedder) -> int:
    """The model's dimension, from the database when it names the same model (no model load needed)."""
    model = (stored or {}).get("model", {})
    if model.get("name") == embedder.name and isinstance(model.get("dimension"), int):
        return int(model["dimension"])
    return embedder.dimension


def _same(stored: dict[str, Any], expected: dict[str, Any], keys: tuple[str, ...]) -> bool:
    return all(stored.get(k) == expected[k] for k in keys)
