"""Connections to the index database and its schema, migrated on start.

Every statement runs through :meth:`Database.connection`, which translates the driver's errors once, here:
a server that is down, restarting or refusing connections becomes :class:`~rag.errors.StoreUnavailableError`
(HTTP 503, one line on the CLI), and the failed connection and all idle ones are dropped, so the next call
connects afresh and service resumes by itself when the server is back.
"""

from __future__ import annotations

import logging
import queue
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from pgvector.psycopg import register_vector

from rag.errors import IndexError_, StoreUnavailableError

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 5  # a server that does not answer in 5 s is reported down, not waited for
_IDLE = 8  # connections kept open for reuse: one per concurrent question on a 2-core machine and then some

# Versioned migrations, applied in order on start; each runs once, in one transaction with its version row.
# Rows are versions of documents: a document version is visible in generation g when born <= g < died
# (died NULL while current), so a reader pinned to g sees one whole state while writers go on.
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE EXTENSION IF NOT EXISTS vector;
    CREATE TABLE rag_config (key text PRIMARY KEY, value jsonb NOT NULL);
    CREATE TABLE rag_generations (
        generation bigint PRIMARY KEY,
        manifest jsonb NOT NULL,
        chunks bigint NOT NULL,
        word_length bigint NOT NULL,
        gram_length bigint NOT NULL,
        sentences bigint NOT NULL,
        committed_at timestamptz NOT NULL DEFAULT now()
    );
    CREATE TABLE rag_documents (
        vid bigserial PRIMARY KEY,
        doc_id text NOT NULL,
        path text NOT NULL,
        sha256 text NOT NULL,
        text text NOT NULL,
        meta jsonb NOT NULL,
        blocks jsonb NOT NULL,
        born bigint NOT NULL,
        died bigint
    );
    CREATE UNIQUE INDEX rag_documents_live ON rag_documents (doc_id) WHERE died IS NULL;
    CREATE TABLE rag_sentences (
        id bigserial PRIMARY KEY,
        vid bigint NOT NULL REFERENCES rag_documents ON DELETE CASCADE,
        n int NOT NULL,
        start_at int NOT NULL,
        end_at int NOT NULL,
        heading boolean NOT NULL,
        vector vector NOT NULL
    );
    CREATE INDEX rag_sentences_vid ON rag_sentences (vid);
    CREATE TABLE rag_chunks (
        id bigserial PRIMARY KEY,
        vid bigint NOT NULL REFERENCES rag_documents ON DELETE CASCADE,
        chunk_id text NOT NULL,
        n int NOT NULL,
        start_at int NOT NULL,
        end_at int NOT NULL,
        sentences int[] NOT NULL,
        word_length int NOT NULL,
        gram_length int NOT NULL,
        born bigint NOT NULL,
        died bigint,
        vector vector NOT NULL
    );
    CREATE INDEX rag_chunks_vid ON rag_chunks (vid);
    CREATE TABLE rag_postings (
        term text NOT NULL,
        kind "char" NOT NULL,
        chunk bigint NOT NULL REFERENCES rag_chunks ON DELETE CASCADE,
        tf int NOT NULL,
        PRIMARY KEY (kind, term, chunk)
    );
    CREATE INDEX rag_postings_chunk ON rag_postings (chunk);
    CREATE TABLE rag_sentence_terms (
        vid bigint NOT NULL REFERENCES rag_documents ON DELETE CASCADE,
        term text NOT NULL,
        sentences int NOT NULL,
        PRIMARY KEY (term, vid)
    );
    CREATE INDEX rag_sentence_terms_vid ON rag_sentence_terms (vid);
    """,
    # parallel ingest (rag/indexing/pg_ingest.py): the files of one run, claimed by its workers
    """
    CREATE TABLE rag_ingest_jobs (
        generation bigint NOT NULL,
        path text NOT NULL,
        sha256 text NOT NULL,
        dead bigint,
        done boolean NOT NULL DEFAULT false,
        PRIMARY KEY (generation, path)
    );
    """,
    # BM25 from the postings' index alone (rag/indexing/pg_snapshot.py): each posting carries its chunk's
    # length and the primary key covers tf and length (an index-only scan, no join with the chunks), and
    # document frequencies are kept per generation in rag_terms instead of counted per question.
    """
    ALTER TABLE rag_postings ADD COLUMN length int;
    UPDATE rag_postings p SET length = CASE WHEN p.kind = 'w' THEN c.word_length ELSE c.gram_length END
    FROM rag_chunks c WHERE c.id = p.chunk;
    ALTER TABLE rag_postings ALTER COLUMN length SET NOT NULL;
    ALTER TABLE rag_postings DROP CONSTRAINT rag_postings_pkey,
        ADD CONSTRAINT rag_postings_pkey PRIMARY KEY (kind, term, chunk) INCLUDE (tf, length);
    CREATE INDEX rag_chunks_born ON rag_chunks (born);
    CREATE INDEX rag_chunks_died ON rag_chunks (died) WHERE died IS NOT NULL;
    CREATE TABLE rag_terms (
        kind "char" NOT NULL,
        term text NOT NULL,
        generation bigint NOT NULL,
        df int NOT NULL,
        PRIMARY KEY (kind, term, generation)
    );
    CREATE INDEX rag_terms_generation ON rag_terms (generation);
    INSERT INTO rag_terms (kind, term, generation, df)
    SELECT p.kind, p.term, g.generation, count(*)
    FROM rag_postings p JOIN rag_chunks c ON c.id = p.chunk,
         (SELECT max(generation) AS generation FROM rag_generations) g
    WHERE c.born <= g.generation AND (c.died IS NULL OR c.died > g.generation)
    GROUP BY p.kind, p.term, g.generation;
    """,
    # where each page of a PDF starts (Document.pages: the page a citation names); schema 3 did not keep it,
    # so the PDFs it holds get an empty content hash, and the next update reads them again with their pages
    """
    ALTER TABLE rag_documents ADD COLUMN pages int[] NOT NULL DEFAULT '{}';
    UPDATE rag_documents SET sha256 = '' WHERE died IS NULL AND lower(path) LIKE '%.pdf';
    """,
)


class Database:
    """Connections to one database, opened lazily and reused; errors translated on the way out."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._idle: queue.LifoQueue[psycopg.Connection] = queue.LifoQueue()
        self._migrated = False

    @contextmanager
    def connection(self) -> Iterator[psycopg.Connection]:
        """A connection in autocommit mode (open ``conn.transaction()`` for more than one statement)."""
        conn = self._take()
        try:
            yield conn
        except psycopg.OperationalError as exc:
            conn.close()
            self.close()  # the server went away: its other idle connections are dead too
            raise StoreUnavailableError(f"the index database is unavailable: {_first_line(exc)}") from exc
        except psycopg.Error as exc:
            conn.close()
            raise IndexError_(f"the index database refused a query: {_first_line(exc)}") from exc
        except BaseException:
            conn.close()
            raise
        if conn.closed or conn.broken or self._idle.qsize() >= _IDLE:
            conn.close()
        else:
            self._idle.put(conn)

    def _take(self) -> psycopg.Connection:
        while True:
            try:
                conn = self._idle.get_nowait()
            except queue.Empty:
                return self._connect()
            if not conn.closed and not conn.broken:
                return conn

    def _connect(self) -> psycopg.Connection:
        try:
            conn = psycopg.connect(self.url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S)
        except psycopg.Error as exc:
            raise StoreUnavailableError(f"the index database is unavailable: {_first_line(exc)}") from exc
        try:
            if not self._migrated:
                _migrate(conn)
                self._migrated = True
            register_vector(conn)
        except psycopg.Error as exc:
            conn.close()
            raise IndexError_(f"the index database cannot be prepared: {_first_line(exc)}") from exc
        return conn

    def close(self) -> None:
        while True:
            try:
                self._idle.get_nowait().close()
            except queue.Empty:
                return


def _migrate(conn: psycopg.Connection) -> None:
    """Apply the migrations this database lacks; concurrent starters wait on one advisory lock. An
    up-to-date schema is only read (a read replica cannot write)."""
    row = conn.execute("SELECT CASE WHEN to_regclass('rag_schema') IS NULL THEN 0 ELSE 1 END").fetchone()
    if row and row[0]:
        current = conn.execute("SELECT coalesce(max(version), 0) FROM rag_schema").fetchone()
        if current and int(current[0]) == len(MIGRATIONS):
            return
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(hashtext('rag_migrate'))")
        conn.execute(
            "CREATE TABLE IF NOT EXISTS rag_schema (version int PRIMARY KEY, applied_at timestamptz)"
        )
        row = conn.execute("SELECT coalesce(max(version), 0) FROM rag_schema").fetchone()
        have = int(row[0]) if row else 0
        if have > len(MIGRATIONS):
            raise IndexError_(
                f"the index database has schema version {have}, newer than this version of the product knows "
                f"({len(MIGRATIONS)}): upgrade the product"
            )
        for version, sql in enumerate(MIGRATIONS[have:], start=have + 1):
            conn.execute(sql)
            conn.execute("INSERT INTO rag_schema VALUES (%s, now())", (version,))
            log.info("index database migrated to schema version %d", version)


def schema_version(db: Database) -> int:
    with db.connection() as conn:
        row = conn.execute("SELECT max(version) FROM rag_schema").fetchone()
    return int(row[0]) if row and row[0] is not None else 0


def _first_line(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
