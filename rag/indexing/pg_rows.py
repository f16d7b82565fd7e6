"""Rows of the postgres store: a document version written with its sentences, chunks, vectors and postings;
a generation's rows read back as a :class:`~rag.indexing.pg_snapshot.PgSnapshot`."""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import psycopg
from psycopg.types.json import Jsonb

from rag.indexing.build import Part
from rag.indexing.columns import ChunkColumns, Labels, SentenceColumns, aranges
from rag.indexing.pg_db import Database
from rag.indexing.pg_snapshot import Generation, PgSnapshot, as_array
from rag.indexing.vectors import HNSW_EF_CONSTRUCTION, HNSW_M
from rag.text.analysis import Analyzer
from rag.types import Chunk, Document, DocumentMeta, Sentence

_VISIBLE = "born <= %(g)s AND (died IS NULL OR died > %(g)s)"


def write_part(conn: psycopg.Connection, part: Part, generation: int, analyzer: Analyzer) -> None:
    """Insert one document version born in ``generation`` (the caller's transaction commits it)."""
    doc = part.doc
    meta, pages = Jsonb(asdict(doc.meta)), list(doc.pages)
    values = (doc.doc_id, doc.path, doc.sha256, doc.text, meta, _blocks(doc), pages)
    row = conn.execute(
        "INSERT INTO rag_documents (doc_id, path, sha256, text, meta, blocks, pages, born) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s, %s) RETURNING vid",
        (*values, generation),
    ).fetchone()
    assert row is not None
    vid = int(row[0])
    with conn.cursor() as cur:
        _write_sentences(cur, vid, part, analyzer)
        _write_chunks(cur, vid, part, generation, analyzer)


def _write_sentences(cur: psycopg.Cursor, vid: int, part: Part, analyzer: Analyzer) -> None:
    """The sentences with their vectors, and in how many of them each stemmed word occurs."""
    assert part.sentence_vectors is not None, "embed the part first"
    with cur.copy("COPY rag_sentences (vid, n, start_at, end_at, heading, vector) FROM STDIN") as copy:
        for n, (s, vector) in enumerate(zip(part.sentences, part.sentence_vectors, strict=True)):
            copy.write_row((vid, n, s.start, s.end, s.heading, vector))
    terms: Counter[str] = Counter()
    for s in part.sentences:
        terms.update(set(analyzer.terms(part.doc.span_text(s))))
    with cur.copy("COPY rag_sentence_terms (vid, term, sentences) FROM STDIN") as copy:
        for term, count in terms.items():
            copy.write_row((vid, term, count))


def _write_chunks(cur: psycopg.Cursor, vid: int, part: Part, generation: int, analyzer: Analyzer) -> None:
    """The chunks with their vectors and lengths, and their postings (term frequencies)."""
    assert part.chunk_vectors is not None, "embed the part first"
    ids = [r[0] for r in cur.execute(_NEXT_IDS, (len(part.chunks),)).fetchall()]
    postings: list[tuple[str, str, int, int, int]] = []
    columns = "id, vid, chunk_id, n, start_at, end_at, sentences, word_length, gram_length, born, vector"
    with cur.copy(f"COPY rag_chunks ({columns}) FROM STDIN") as copy:
        for n, (chunk, vector, cid) in enumerate(zip(part.chunks, part.chunk_vectors, ids, strict=True)):
            words = Counter(analyzer.terms(chunk.text))
            grams = Counter(analyzer.grams(chunk.text))
            word_length, gram_length = _length(words), _length(grams)
            postings += [(t, "w", cid, tf, word_length) for t, tf in words.items()]
            postings += [(t, "g", cid, tf, gram_length) for t, tf in grams.items()]
            offsets = (chunk.start, chunk.end, list(chunk.sentences))
            lengths = (word_length, gram_length)
            copy.write_row((cid, vid, chunk.chunk_id, n, *offsets, *lengths, generation, vector))
    with cur.copy("COPY rag_postings (term, kind, chunk, tf, length) FROM STDIN") as copy:
        for posting in postings:
            copy.write_row(posting)


_NEXT_IDS = "SELECT nextval('rag_chunks_id_seq') FROM generate_series(1, %s)"


def _length(terms: Counter[str]) -> int:
    """A chunk's length in terms; bm25s counts a chunk without terms as one (it indexes it as [""])."""
    return max(sum(terms.values()), 1)


def read_part(conn: psycopg.Connection, vid: int, doc: Document) -> Part:
    """A stored version's sentences, chunks and vectors, to be written again under another analyser."""
    with conn.cursor(binary=True) as cur:
        srows = cur.execute(
            "SELECT start_at, end_at, heading, vector FROM rag_sentences WHERE vid = %s ORDER BY n", (vid,)
        ).fetchall()
        crows = cur.execute(
            "SELECT chunk_id, start_at, end_at, sentences, vector FROM rag_chunks WHERE vid = %s ORDER BY n",
            (vid,),
        ).fetchall()
    sentences = [Sentence(r[0], r[1], r[2]) for r in srows]
    chunks = [Chunk(r[0], doc.doc_id, r[1], r[2], doc.text[r[1] : r[2]], tuple(r[3])) for r in crows]
    dimension = len(as_array(srows[0][3])) if srows else 0
    chunk_vectors = _matrix([r[4] for r in crows], dimension)
    return Part(doc, sentences, chunks, chunk_vectors, _matrix([r[3] for r in srows], dimension))


def _matrix(vectors: list[Any], dimension: int) -> np.ndarray:
    if not vectors:
        return np.zeros((0, dimension), dtype=np.float32)
    return np.stack([as_array(v) for v in vectors])


def commit_generation(conn: psycopg.Connection, generation: int, manifest: dict[str, Any]) -> Generation:
    """Record ``generation`` with its BM25 statistics, and drop the versions no reader can still need: those
    dead before it (the snapshot before this one still sees the versions that die now)."""
    params = {"g": generation}
    before = latest_generation(conn)
    if before is not None and before.number == generation - 1:  # the one before's, plus born, minus died
        row = conn.execute(_CHUNKS_CHANGED, params).fetchone()
        srow = conn.execute(_SENTENCES_CHANGED, params).fetchone()
        assert row is not None and srow is not None
        row = (before.chunks + row[0], before.word_length + row[1], before.gram_length + row[2])
        srow = (before.sentences + srow[0],)
    else:
        row = conn.execute(
            "SELECT count(*), coalesce(sum(word_length), 0), coalesce(sum(gram_length), 0) "
            f"FROM rag_chunks WHERE {_VISIBLE}",
            params,
        ).fetchone()
        srow = conn.execute(
            "SELECT count(*) FROM rag_sentences s JOIN rag_documents d ON d.vid = s.vid "
            "WHERE d.born <= %(g)s AND (d.died IS NULL OR d.died > %(g)s)",
            params,
        ).fetchone()
    assert row is not None and srow is not None
    manifest = {**manifest, "build_id": f"pg-{generation}", "generation": generation}
    manifest.update(chunks=int(row[0]), sentences=int(srow[0]))
    conn.execute(
        "INSERT INTO rag_generations (generation, manifest, chunks, word_length, gram_length, sentences) "
        "VALUES (%s, %s, %s, %s, %s, %s)",
        (generation, Jsonb(manifest), row[0], row[1], row[2], srow[0]),
    )
    conn.execute(_TERMS_CHANGED, params)
    conn.execute(_TERMS_FORGET, params)
    conn.execute("DELETE FROM rag_documents WHERE died <= %s", (generation - 1,))
    conn.execute("DELETE FROM rag_generations WHERE generation < %s", (generation - 1,))
    return Generation(generation, manifest, int(row[0]), int(row[1]), int(row[2]), int(srow[0]))


# A generation's BM25 statistics from the one before: the rows born in it, minus those dying in it (by the
# indexes on born and died), where counting every live chunk reads the whole chunks table, vectors included.
_SIGN = "CASE WHEN born = %(g)s THEN 1 ELSE -1 END"
_CHUNKS_CHANGED = f"""
SELECT coalesce(sum({_SIGN}), 0), coalesce(sum({_SIGN} * word_length), 0),
       coalesce(sum({_SIGN} * gram_length), 0)
FROM rag_chunks WHERE born = %(g)s OR died = %(g)s
"""
_SENTENCES_CHANGED = """
SELECT coalesce(sum(CASE WHEN d.born = %(g)s THEN 1 ELSE -1 END), 0)
FROM rag_sentences s JOIN rag_documents d ON d.vid = s.vid WHERE d.born = %(g)s OR d.died = %(g)s
"""
# The document frequencies of generation g: for every term whose count changes (postings of chunks born in
# g, minus those of chunks that die in g), a row (kind, term, g, df) = its latest df before g + the change.
# A reader pinned to g reads each term's latest row at or before g.
_TERMS_CHANGED = """
WITH changed AS (
    SELECT p.kind, p.term, sum(CASE WHEN c.born = %(g)s THEN 1 ELSE -1 END) AS delta
    FROM rag_chunks c JOIN rag_postings p ON p.chunk = c.id
    WHERE c.born = %(g)s OR c.died = %(g)s
    GROUP BY p.kind, p.term
)
INSERT INTO rag_terms (kind, term, generation, df)
SELECT ch.kind, ch.term, %(g)s, coalesce(
    (SELECT t.df FROM rag_terms t WHERE t.kind = ch.kind AND t.term = ch.term AND t.generation < %(g)s
     ORDER BY t.generation DESC LIMIT 1), 0) + ch.delta
FROM changed ch WHERE ch.delta <> 0
"""
# Rows no reader needs any more: a readable generation is g or g - 1 (the snapshot before), so a row before
# g - 1 is dead once a later row before g covers g - 1. A row is only ever superseded by a change of its
# term, so only the terms changed in g are looked at (each term keeps at most three rows).
_TERMS_FORGET = """
DELETE FROM rag_terms t USING rag_terms n
WHERE n.generation = %(g)s AND t.kind = n.kind AND t.term = n.term AND t.generation < %(g)s - 1
  AND EXISTS (SELECT 1 FROM rag_terms u WHERE u.kind = t.kind AND u.term = t.term
              AND u.generation > t.generation AND u.generation < %(g)s)
"""


# pgvector builds the HNSW graph in maintenance_work_mem (PostgreSQL's default: 64 MB) and, once the graph
# outgrows it, goes on building on disk, many times slower. An element took 2,760 bytes at 384 dimensions
# and m = 32 (16 MB held 6,076 of them: the notice "hnsw graph no longer fits"); the build asks for 1.5x
# the vector's bytes plus 24 bytes per m (3,072 bytes: 293 MB for 10^5 chunks, 2.9 GB for 10^6), at most
# HNSW_BUILD_MEMORY_MB, for its own transaction only.
HNSW_BUILD_MEMORY_MB = 4096


def hnsw_build_memory_mb(chunks: int, dimension: int) -> int:
    need = chunks * (1.5 * 4 * dimension + 24 * HNSW_M) / 2**20
    return int(min(max(need, 64), HNSW_BUILD_MEMORY_MB))


def ensure_hnsw(conn: psycopg.Connection, dimension: int, chunks: int) -> None:
    """The graph for approximate search (same M and efConstruction as the local store's FAISS HNSW), built
    in memory (:func:`hnsw_build_memory_mb`); a no-op when it exists."""
    conn.execute(f"SET LOCAL maintenance_work_mem = '{hnsw_build_memory_mb(chunks, dimension)}MB'")
    conn.execute(
        f"CREATE INDEX IF NOT EXISTS rag_chunks_hnsw_{dimension} ON rag_chunks "
        f"USING hnsw ((vector::vector({dimension})) vector_ip_ops) "
        f"WITH (m = {HNSW_M}, ef_construction = {HNSW_EF_CONSTRUCTION})"
    )


def latest_generation(conn: psycopg.Connection) -> Generation | None:
    row = conn.execute(
        "SELECT generation, manifest, chunks, word_length, gram_length, sentences "
        "FROM rag_generations ORDER BY generation DESC LIMIT 1"
    ).fetchone()
    if row is None:
        return None
    return Generation(int(row[0]), row[1], int(row[2]), int(row[3]), int(row[4]), int(row[5]))


def read_snapshot(
    db: Database, approximate_above: int, previous: PgSnapshot | None = None
) -> PgSnapshot | None:
    """The latest committed generation, read in one REPEATABLE READ transaction; None before the first.

    With ``previous``, an earlier snapshot of the same build settings, only the document versions it does
    not hold are read: a version's rows never change once written, so the others are taken from it (after
    an upload, a server reads one document, not the index; ``bench.pg_scale`` measures both)."""
    with db.connection() as conn:
        conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        try:
            with conn.transaction():
                generation = latest_generation(conn)
                if generation is None:
                    return None
                if previous is not None and previous.generation.number == generation.number:
                    return previous
                versions = _versions(conn, generation, previous)
        finally:
            conn.isolation_level = None
    return _assemble(db, generation, *versions, approximate_above)


def _versions(
    conn: psycopg.Connection, generation: Generation, previous: PgSnapshot | None
) -> tuple[PgSnapshot | None, list[_Held], list[_Version]]:
    """The live versions of ``generation``: those ``previous`` holds (same vid and content hash), as its
    rows, and the others read from the database."""
    live = conn.execute(f"SELECT vid, sha256 FROM rag_documents WHERE {_VISIBLE}", {"g": generation.number})
    held = _held(previous, generation) if previous is not None else {}
    kept, fresh = [], []
    for vid, sha256 in live.fetchall():
        version = held.get(vid)
        if version is not None and version.doc.sha256 == sha256:
            kept.append(version)
        else:
            fresh.append(vid)
    return (previous if kept else None), kept, _read_versions(conn, fresh)


@dataclass(frozen=True)
class _Held:
    """A version a snapshot holds: its document, sentence rows ``[s0, s1)`` and chunk rows ``[c0, c1)``."""

    vid: int
    doc: Document
    s0: int
    s1: int
    c0: int
    c1: int


@dataclass(frozen=True)
class _Version:
    """A version read from the database; its chunks number its sentences from 0."""

    vid: int
    doc: Document
    sentences: SentenceColumns
    sentence_ids: np.ndarray
    chunks: ChunkColumns
    chunk_ids: np.ndarray


def _held(previous: PgSnapshot, generation: Generation) -> dict[int, _Held]:
    """The versions ``previous`` holds, by vid; none when it was built with other settings (model,
    chunking, analyser) than ``generation``, whose rows it could not share, or of a later generation (a
    database made anew)."""
    if previous.generation.number > generation.number or any(
        previous.manifest.get(k) != generation.manifest.get(k) for k in ("model", "chunking", "lexical")
    ):
        return {}
    return {v[0]: _Held(v[0], previous.documents[v[1]], *v[2:]) for v in previous.versions}


def _read_versions(conn: psycopg.Connection, vids: list[int]) -> list[_Version]:
    """Versions read from the database, with their sentences and chunks in their own order."""
    columns = "vid, doc_id, path, sha256, text, meta, pages"  # not blocks: _document
    docs = conn.execute(f"SELECT {columns} FROM rag_documents WHERE vid = ANY(%s)", (vids,)).fetchall()
    chunk_rows = _by_vid(
        conn.execute(
            "SELECT vid, id, chunk_id, start_at, end_at, sentences FROM rag_chunks WHERE vid = ANY(%s) "
            "ORDER BY vid, n",
            (vids,),
        ).fetchall()
    )
    sentence_rows = _by_vid(
        conn.execute(
            "SELECT vid, id, start_at, end_at, heading FROM rag_sentences WHERE vid = ANY(%s) "
            "ORDER BY vid, n",
            (vids,),
        ).fetchall()
    )
    versions = []
    no_rows: tuple[list[Any], ...] = ([],) * 6
    for row in docs:
        vid, doc = _document(row)
        _, sids, starts, ends, headings = sentence_rows.get(vid, no_rows[:5])
        _, cids, chunk_ids, cstarts, cends, rows = chunk_rows.get(vid, no_rows)
        sentences = SentenceColumns(
            np.array(starts, dtype=np.int64), np.array(ends, dtype=np.int64), np.array(headings, dtype=bool)
        )
        chunks = ChunkColumns.of_rows(doc, chunk_ids, cstarts, cends, rows)
        sentence_ids, ids = np.array(sids, dtype=np.int64), np.array(cids, dtype=np.int64)
        versions.append(_Version(vid, doc, sentences, sentence_ids, chunks, ids))
    return versions


def _by_vid(rows: list[tuple[Any, ...]]) -> dict[int, tuple[list[Any], ...]]:
    """Rows ordered by their first column (a vid), as each vid's columns."""
    grouped: dict[int, list[tuple[Any, ...]]] = {}
    for row in rows:
        grouped.setdefault(row[0], []).append(row)
    return {vid: tuple(map(list, zip(*group, strict=True))) for vid, group in grouped.items()}


def _assemble(
    db: Database,
    generation: Generation,
    previous: PgSnapshot | None,
    held: list[_Held],
    fresh: list[_Version],
    approximate_above: int,
) -> PgSnapshot:
    """Rows in the local store's order: documents by path (as the corpus loader sorts them), each one's
    sentences and chunks in their own order, so that positions, and ties, match the local index.

    The rows are gathered from a pool, ``previous``'s rows then the fresh versions', in a few array
    operations whatever the number of documents (a server reads 20 chunks after an upload, not 10^6)."""
    pool = [previous] if previous is not None else []
    s_end = len(previous.sentences) if previous is not None else 0
    c_end = len(previous.chunks) if previous is not None else 0
    places, shifts = list(held), [0] * len(pool)
    for v in fresh:  # placed in the pool after previous's rows
        places.append(_Held(v.vid, v.doc, s_end, s_end + len(v.sentences), c_end, c_end + len(v.chunks)))
        shifts.append(s_end)
        s_end, c_end = s_end + len(v.sentences), c_end + len(v.chunks)
    places.sort(key=lambda p: p.doc.path)
    ranges = np.array([(p.s0, p.s1, p.c0, p.c1) for p in places], dtype=np.int64).reshape(-1, 4)
    zero = np.zeros(1, dtype=np.int64)
    s_counts = ranges[:, 1] - ranges[:, 0]
    s_bases = np.concatenate([zero, np.cumsum(s_counts)])  # where each document's rows now start
    c_bases = np.concatenate([zero, np.cumsum(ranges[:, 3] - ranges[:, 2])])
    documents = tuple(p.doc for p in places)
    sentences = SentenceColumns.concat([*(p.sentences for p in pool), *(v.sentences for v in fresh)])
    chunks = ChunkColumns.concat([*(p.chunks for p in pool), *(v.chunks for v in fresh)], shifts)
    empty = np.zeros(0, dtype=np.int64)
    sentence_ids = np.concatenate([empty, *(p.sentence_ids for p in pool), *(v.sentence_ids for v in fresh)])
    chunk_ids = np.concatenate([empty, *(p.chunk_ids for p in pool), *(v.chunk_ids for v in fresh)])
    sentence_rows, chunk_rows = aranges(ranges[:, 0], ranges[:, 1]), aranges(ranges[:, 2], ranges[:, 3])
    names = tuple(d.doc_id for d in documents)
    return PgSnapshot(
        db,
        generation,
        dict(zip(names, documents, strict=True)),
        chunks.gather(ranges[:, 2:], s_bases[:-1] - ranges[:, 0], documents),
        sentences.take(sentence_rows),
        Labels(names, np.repeat(np.arange(len(documents), dtype=np.int32), s_counts)),
        chunk_ids[chunk_rows],
        sentence_ids[sentence_rows],
        approximate=len(chunk_rows) > approximate_above,
        versions=[
            (p.vid, p.doc.doc_id, int(s_bases[i]), int(s_bases[i + 1]), int(c_bases[i]), int(c_bases[i + 1]))
            for i, p in enumerate(places)
        ],
    )


def _document(row: Any) -> tuple[int, Document]:
    """A snapshot's document, without its blocks: nothing reads them after the document is cut into
    sentences (which carry the heading flag), and as objects they were 22 of 53 MB at 10^5 chunks."""
    vid, doc_id, path, sha256, text, meta, pages = row
    doc = Document(doc_id, path, text, DocumentMeta(**meta), blocks=(), sha256=sha256, pages=tuple(pages))
    return int(vid), doc


def _blocks(doc: Document) -> Jsonb:
    return Jsonb([[b.start, b.end, b.kind] for b in doc.blocks])
