"""Parallel ingest into the postgres store (``rag index --workers N``): worker processes claim files with
``SELECT … FOR UPDATE SKIP LOCKED``, embed them in parallel and commit each document on its own.

The coordinator (:meth:`rag.indexing.postgres.PostgresStore.update_parallel`) holds the writers' advisory
lock for the whole run, plans it (one job row per file to embed, in ``rag_ingest_jobs``) and commits the
generation at the end. Every row a worker writes is born in that next generation, so readers, pinned to a
committed generation, see none of it until the coordinator commits: the whole update appears at once, as
with one process. Rows of a run that never committed (a crash) are discarded by the next update
(:func:`discard_unfinished`).
"""

from __future__ import annotations

import logging
import multiprocessing
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psycopg

from rag.embedding.base import Embedder
from rag.errors import IndexError_
from rag.indexing.build import BuildReport, Part, embed_parts
from rag.indexing.pg_db import Database
from rag.indexing.pg_rows import write_part
from rag.ingest.chunking import chunk_document
from rag.ingest.loading import parse_document
from rag.ingest.sentences import split_sentences
from rag.text.analysis import Analyzer

log = logging.getLogger(__name__)

_CLAIM = (
    "SELECT path, sha256, dead FROM rag_ingest_jobs WHERE generation = %s AND NOT done "
    "ORDER BY path LIMIT 1 FOR UPDATE SKIP LOCKED"
)


@dataclass(frozen=True)
class WorkerJob:
    """What one worker process needs: where the database and the files are, the generation being built,
    and how to chunk, analyse and embed (``make_embedder`` must pickle: a module-level function or a
    ``functools.partial`` of one)."""

    url: str
    corpus_dir: Path
    generation: int
    language: str
    chunk_tokens: int
    overlap: int
    make_embedder: Callable[[], Embedder]


def run_workers(job: WorkerJob, workers: int) -> None:
    """Run ``workers`` processes on ``job`` and wait for all of them (fresh interpreters: ``spawn``)."""
    context = multiprocessing.get_context("spawn")
    processes = [
        context.Process(target=run_worker, args=(job,), name=f"rag-ingest-{n}") for n in range(workers)
    ]
    for process in processes:
        process.start()
    for process in processes:
        process.join()
    failed = [f"{p.name} (exit code {p.exitcode})" for p in processes if p.exitcode != 0]
    if failed:  # its open transaction was rolled back and its claim freed: the others took the document
        log.warning("ingest workers %s failed", ", ".join(failed))


def run_worker(job: WorkerJob) -> int:
    """Claim, embed and commit documents until no job of ``job.generation`` is left; the number done."""
    logging.basicConfig(level=logging.WARNING)
    embedder = job.make_embedder()
    db = Database(job.url)
    analyzer = Analyzer(job.language)
    done = 0
    try:
        while _one(db, job, embedder, analyzer):
            done += 1
    finally:
        db.close()
    log.info("ingest worker embedded %d documents", done)
    return done


def _one(db: Database, job: WorkerJob, embedder: Embedder, analyzer: Analyzer) -> bool:
    """One document in one transaction: the claim's row lock is held while it is embedded, so the other
    workers skip it; False when every job is claimed or done."""
    with db.connection() as conn, conn.transaction():
        row = conn.execute(_CLAIM, (job.generation,)).fetchone()
        if row is None:
            return False
        path, sha256, dead = row
        part = _part(job, path, sha256, embedder)
        if dead is not None:
            mark_dead(conn, [dead], job.generation)
        write_part(conn, part, job.generation, analyzer)
        conn.execute(
            "UPDATE rag_ingest_jobs SET done = true WHERE path = %s AND generation = %s",
            (path, job.generation),
        )
    return True


def _part(job: WorkerJob, path: str, sha256: str, embedder: Embedder) -> Part:
    """The file read again, checked against the plan, split, chunked and embedded."""
    doc = parse_document((job.corpus_dir / path).read_bytes(), path)
    if doc.sha256 != sha256:
        raise IndexError_(f"{path} changed while it was being indexed: run `rag index` again")
    sentences = split_sentences(doc.text, doc.blocks, doc.meta.language)
    sentences, chunks = chunk_document(doc, sentences, embedder.count_tokens, job.chunk_tokens, job.overlap)
    part = Part(doc, sentences, chunks)
    embed_parts([part], embedder, BuildReport(), progress=False)
    return part


def mark_dead(conn: psycopg.Connection, vids: list[int], generation: int) -> None:
    """Versions ``vids`` (documents and their chunks) die in ``generation``."""
    conn.execute("UPDATE rag_documents SET died = %s WHERE vid = ANY(%s)", (generation, vids))
    conn.execute("UPDATE rag_chunks SET died = %s WHERE vid = ANY(%s)", (generation, vids))


def plan_jobs(
    conn: psycopg.Connection, generation: int, jobs: list[tuple[str, str, int | None]], dead: list[int]
) -> None:
    """Record a run's jobs (path, content hash, the live version it replaces) and mark the removed
    versions dead in ``generation``, inside the caller's transaction."""
    conn.execute("DELETE FROM rag_ingest_jobs")
    with (
        conn.cursor() as cur,
        cur.copy("COPY rag_ingest_jobs (path, sha256, dead, generation) FROM STDIN") as copy,
    ):
        for path, sha256, replaces in jobs:
            copy.write_row((path, sha256, replaces, generation))
    mark_dead(conn, dead, generation)


def check_jobs_done(conn: psycopg.Connection, generation: int) -> None:
    row = conn.execute(
        "SELECT count(*) FROM rag_ingest_jobs WHERE generation = %s AND NOT done", (generation,)
    ).fetchone()
    if row and row[0]:
        raise IndexError_(f"{row[0]} documents were not indexed (a worker failed; see its log): run again")
    conn.execute("DELETE FROM rag_ingest_jobs")


def discard_unfinished(conn: psycopg.Connection, latest: int) -> None:
    """Undo what a run that never committed its generation left (rows born, or marked dead, after the
    latest committed generation), inside the caller's transaction."""
    row = conn.execute(
        "SELECT EXISTS (SELECT 1 FROM rag_documents WHERE born > %(g)s OR died > %(g)s) "
        "OR EXISTS (SELECT 1 FROM rag_chunks WHERE died > %(g)s)",
        {"g": latest},
    ).fetchone()
    if not (row and row[0]):
        return  # the usual case; and a read replica cannot write even a statement that changes nothing
    log.warning("discarding what an update that never committed left (after generation %d)", latest)
    conn.execute("DELETE FROM rag_documents WHERE born > %s", (latest,))
    conn.execute("UPDATE rag_documents SET died = NULL WHERE died > %s", (latest,))
    conn.execute("UPDATE rag_chunks SET died = NULL WHERE died > %s", (latest,))
