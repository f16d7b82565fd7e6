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
from collections.abc import Callable, Collection
from pathlib import Path
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from rag import __version__
from rag.embedding.base import Embedder, embedder_info
from rag.errors import IndexError_
from rag.indexing.build import BuildReport, Part, embed_parts
from rag.indexing.pg_db import Database
from rag.indexing.pg_ingest import WorkerJob, check_jobs_done, mark_dead, plan_jobs, run_workers
from rag.indexing.pg_plan import Live, Plan, live_vid, plan_update
from rag.indexing.pg_rows import (
    commit_generation,
    ensure_hnsw,
    read_part,
    read_snapshot,
    write_part,
)
from rag.indexing.pg_server import EmbeddedServer, start_embedded
from rag.indexing.pg_snapshot import PgSnapshot
from rag.ingest.chunking import chunk_document
from rag.ingest.sentences import split_sentences
from rag.text.analysis import Analyzer
from rag.types import Document

log = logging.getLogger(__name__)


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
        self._latest: PgSnapshot | None = None  # the last snapshot read: the next one reads what changed
        self._reading = threading.Lock()  # one read at a time; questions arriving meanwhile wait for it

    @property
    def _chunking(self) -> tuple[int, int]:
        return self.chunk_tokens, self.overlap

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
        """The latest generation; only the document versions the last snapshot read lacks are read."""
        with self._reading:
            snap = read_snapshot(self.db, self.approximate_above, self._latest)
            if snap is None:
                raise IndexError_("the index database holds no index yet: run `rag index`")
            self._latest = snap
            return snap

    def current(self, snapshot: Any) -> Any:
        """``snapshot`` while it is still the latest generation, else the latest (one query per call; after
        a commit, the first question reads the change and the others arriving meanwhile wait for it)."""
        with self.db.connection() as conn:
            row = conn.execute("SELECT max(generation) FROM rag_generations").fetchone()
        latest = row[0] if row else None
        if isinstance(snapshot, PgSnapshot) and latest == snapshot.generation.number:
            return snapshot
        return self.load()

    # --- writing
    def _finished(
        self, report: BuildReport, started: float, changed: bool = True
    ) -> tuple[PgSnapshot, BuildReport]:
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

    def update(
        self,
        corpus_dir: Path,
        embedder: Embedder,
        progress: bool = False,
        force: bool = False,
        only: Collection[str] | None = None,
    ) -> tuple[PgSnapshot, BuildReport]:
        """Bring the database in line with the corpus folder, or with ``only`` its paths named there (the
        other documents stay, whether or not this folder holds them: see :func:`plan_update`)."""
        started = time.perf_counter()
        report = BuildReport()
        with self.db.connection() as conn, conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(hashtext('rag_update'))")
            changed = self._update_locked(conn, corpus_dir, embedder, progress, force, report, only)
        return self._finished(report, started, changed)

    def update_parallel(
        self,
        corpus_dir: Path,
        embedder: Embedder,
        make_embedder: Callable[[], Embedder],
        workers: int,
        force: bool = False,
    ) -> tuple[PgSnapshot, BuildReport]:
        """:meth:`update` with ``workers`` processes embedding and writing the documents in parallel
        (:mod:`rag.indexing.pg_ingest`); the result equals a one-process update's."""
        started = time.perf_counter()
        report = BuildReport()
        with self.db.connection() as lock:
            lock.execute("SELECT pg_advisory_lock(hashtext('rag_update'))")  # writers wait for the whole run
            try:
                with lock.transaction():
                    plan = plan_update(
                        lock, corpus_dir, embedder, (self.chunk_tokens, self.overlap), force, report
                    )
                    if plan is not None and not plan.reanalyse:
                        jobs = [(d.path, d.sha256, live_vid(plan.live.get(d.path))) for d in plan.fresh]
                        dead = [
                            v.vid for p, v in plan.live.items() if p not in plan.keep and p not in plan.paths
                        ]
                        plan_jobs(lock, plan.number, jobs, dead)
                if plan is not None and not plan.reanalyse:
                    report.embedded_files, report.reused_files = len(plan.fresh), len(plan.keep)
                    job = WorkerJob(self.db.url, Path(corpus_dir), plan.number, plan.language,
                                    self.chunk_tokens, self.overlap, make_embedder)  # fmt: skip
                    run_workers(job, workers)
                    with lock.transaction():
                        check_jobs_done(lock, plan.number)
                        self._commit(lock, plan, embedder)
            finally:
                lock.execute("SELECT pg_advisory_unlock(hashtext('rag_update'))")
        if plan is not None and plan.reanalyse:  # the lexical method alone changed: nothing to embed
            return self.update(corpus_dir, embedder, force=force)
        return self._finished(report, started)

    def _update_locked(
        self,
        conn: psycopg.Connection,
        corpus_dir: Path,
        embedder: Embedder,
        progress: bool,
        force: bool,
        report: BuildReport,
        only: Collection[str] | None = None,
    ) -> bool:
        """Bring the database in line with the corpus inside the caller's transaction; False when it
        already was."""
        plan = plan_update(conn, corpus_dir, embedder, self._chunking, force, report, only)
        if plan is None:
            return False
        dead = [v.vid for path, v in plan.live.items() if path not in plan.keep]
        mark_dead(conn, dead, plan.number)
        analyzer = Analyzer(plan.language)
        parts = self._new_parts(
            conn, plan.docs, plan.keep, plan.live, plan.vectors_ok, embedder, report, progress
        )
        for part in parts:
            write_part(conn, part, plan.number, analyzer)
        self._commit(conn, plan, embedder)
        return True

    def _commit(self, conn: psycopg.Connection, plan: Plan, embedder: Embedder) -> None:
        conn.execute(
            "INSERT INTO rag_config VALUES ('build', %s) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (Jsonb(plan.expected),),
        )
        committed = commit_generation(conn, plan.number, _manifest(plan.expected, plan.files, embedder))
        if committed.chunks > self.approximate_above:
            ensure_hnsw(conn, int(plan.expected["model"]["dimension"]), committed.chunks)

    def _new_parts(
        self,
        conn: psycopg.Connection,
        docs: list[Document],
        keep: set[str],
        live: dict[str, Live],
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
            elif vectors_ok and old is not None and old.holds(doc):
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


def _manifest(expected: dict[str, Any], files: dict[str, str], embedder: Embedder) -> dict[str, Any]:
    return {
        **expected,
        "store": "postgres",
        "package_version": __version__,
        "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "files": files,
        "documents": len(files),
        "embedding": embedder_info(embedder),
    }
