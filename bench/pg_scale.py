"""The postgres store against the local store at 10^4 and 10^5 chunks: query latency and memory, one run.

    .venv/bin/python -m bench.pg_scale                   # 1e4,1e5 chunks
    .venv/bin/python -m bench.pg_scale --sizes 1e4       # smaller
    .venv/bin/python -m bench.pg_scale --quick           # smoke run (seconds, the fake embedder)

The corpus is made cheaply, as ``bench.scale`` makes its: chunk texts are the XQuAD-de paragraphs, then
paragraphs of the Python standard library's docstrings (cycled when they run out); vectors are real for
the XQuAD-de paragraphs (embedded here by the product's embedder) and synthetic beyond, shaped like them
(``bench.scale.synthetic``). A document holds 20 chunks, a chunk one sentence. Both stores get the same
:class:`~rag.indexing.build.Part` objects with these precomputed vectors: the local store through its own
build (``rag.indexing.build._assemble``: FAISS and bm25s), the postgres store through its own writer
(``rag.indexing.pg_rows.write_part``, which computes the postings with the product's analyser exactly as
``PostgresStore.update`` does, then ``commit_generation`` and, above ``RAG_APPROXIMATE_ABOVE``, the HNSW
index), in an embedded server under a temporary folder. Queries are real XQuAD-de questions.

Per question, interleaved between the stores: dense search (the candidate pool of 50; exact, and HNSW
where the size is above ``RAG_APPROXIMATE_ABOVE``), the lexical scores (n-gram BM25, retrieval's default
channel) and a whole ``rag.retrieval.hybrid.retrieve`` through the ``IndexSnapshot`` seam. Memory: the bench
process's RSS growth while the snapshot is built or loaded, the local index's own arrays, and for
PostgreSQL the proportional set size (PSS) of the server's processes and the database's size on disk.
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import shutil
import tempfile
import time
import tracemalloc
from functools import partial
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from bench.common import RESULTS, Report, is_fake, median, model_name, note, parser, timed, xquad
from bench.scale import _docstring_paragraphs, synthetic

DOC_CHUNKS = 20  # chunks per document


def _embedded(model: str, paragraphs: list[str], questions: list[str]) -> tuple[np.ndarray, np.ndarray]:
    from rag.embedding.base import create_embedder

    embedder = create_embedder(model, cache_dir=RESULTS / "models")
    note(f"embedding {len(paragraphs)} paragraphs and {len(questions)} questions ...")
    return embedder.embed_documents(paragraphs), embedder.embed_queries(questions)


def _parts(n: int, texts: list[str], vectors: np.ndarray, language: str, prefix: str = "doc") -> list[Any]:
    """``n`` chunks in documents of DOC_CHUNKS (ids ``prefix`` and a number): chunk i has text
    ``texts[i % len]``, vector ``vectors[i]``."""
    from rag.indexing.build import Part
    from rag.types import Block, Chunk, Document, DocumentMeta, Sentence

    parts = []
    for d, at in enumerate(range(0, n, DOC_CHUNKS)):
        rows = list(range(at, min(n, at + DOC_CHUNKS)))
        paras = [texts[i % len(texts)] for i in rows]
        text = "\n\n".join(paras)
        doc_id = f"{prefix}{d:06d}"
        spans, pos = [], 0
        for para in paras:
            spans.append((pos, pos + len(para)))
            pos += len(para) + 2
        doc = Document(
            doc_id=doc_id,
            path=f"{doc_id}.txt",
            text=text,
            meta=DocumentMeta(title=doc_id, language=language),
            blocks=tuple(Block(s, e) for s, e in spans),
            sha256=hashlib.sha256(text.encode()).hexdigest(),
        )
        sentences = [Sentence(s, e) for s, e in spans]
        chunks = [Chunk(f"{doc_id}:{j}", doc_id, s, e, text[s:e], (j,)) for j, (s, e) in enumerate(spans)]
        vecs = vectors[rows[0] : rows[-1] + 1]
        parts.append(Part(doc, sentences, chunks, vecs, vecs))
    return parts


def _pg_pss_mb(pgdata: Path) -> float:
    """PSS of the server started on ``pgdata`` and its children (shared buffers counted once)."""
    import psutil

    total = 0.0
    for proc in psutil.process_iter(["cmdline"]):
        if str(pgdata) in " ".join(proc.info["cmdline"] or []) and "postgres" in proc.name():
            for p in [proc, *proc.children(recursive=True)]:
                with contextlib.suppress(psutil.Error):
                    total += p.memory_full_info().pss
    return total / 2**20


# --bulk: the postings' two indexes are dropped before the rows go in and built once after (a sort, in
# maintenance_work_mem), as a bulk load into PostgreSQL is usually done; the product's writer keeps them
# while it inserts. The query path and the schema it reads are the same; the indexes come out packed.
_BULK_DROP = "ALTER TABLE rag_postings DROP CONSTRAINT rag_postings_pkey; DROP INDEX rag_postings_chunk"
_BULK_BUILD = (
    "SET LOCAL maintenance_work_mem = '4GB'; SET LOCAL work_mem = '1GB'; "
    "ALTER TABLE rag_postings ADD CONSTRAINT rag_postings_pkey PRIMARY KEY (kind, term, chunk) "
    "INCLUDE (tf, length); CREATE INDEX rag_postings_chunk ON rag_postings (chunk)"
)


def _pg_load(store: Any, parts: list[Any], expected: dict[str, Any], language: str, bulk: bool) -> None:
    """Write ``parts`` as generation 1 through the store's own writer (postings by the product's analyser)."""
    from rag.indexing.pg_rows import commit_generation, ensure_hnsw, write_part
    from rag.text.analysis import Analyzer

    analyzer = Analyzer(language)
    if bulk:  # WAL between checkpoints (default 1 GB): fewer full-page writes during the load
        with store.db.connection() as conn:
            conn.autocommit = True
            conn.execute("ALTER SYSTEM SET max_wal_size = '4GB'")
            conn.execute("SELECT pg_reload_conf()")
            conn.autocommit = False
    with store.db.connection() as conn, conn.transaction():
        if bulk:
            conn.execute(_BULK_DROP)
        for i, part in enumerate(parts):
            write_part(conn, part, 1, analyzer)
            if (i + 1) % max(len(parts) // 10, 1) == 0:
                note(f"  written {i + 1} of {len(parts)} documents")
        if bulk:
            note("  building the postings' indexes ...")
            conn.execute(_BULK_BUILD)
        note("  committing the generation (document frequencies) ...")
        committed = commit_generation(conn, 1, {**expected, "store": "postgres"})
        if committed.chunks > store.approximate_above:
            note("  building the HNSW index ...")
            ensure_hnsw(conn, int(expected["model"]["dimension"]), committed.chunks)
    note("  VACUUM ANALYZE ...")
    with store.db.connection() as conn:
        conn.autocommit = True
        conn.execute("VACUUM ANALYZE")
        conn.autocommit = False


def _ms(fn: Any) -> float:
    return timed(fn, collect=False)[0] * 1000


def _summary(report: Report, key: str, values: list[float]) -> None:
    report.add(f"{key}.median", median(values), "ms")
    report.add(f"{key}.p95", float(np.percentile(values, 95)), "ms")


def _postings_read(pg: Any, text: str, full: np.ndarray, pool: int) -> tuple[int, int]:
    """The postings the n-gram BM25 query reads for ``text`` (every posting of its distinct n-grams), and
    how many of them a MaxScore top-``pool`` would read: the postings of the terms whose upper bounds
    (``qtf * idf``, as tf / (tf + K) < 1) are not all needed to stay below the pool's last exact score."""
    from collections import Counter

    from rag.indexing.pg_snapshot import term_bounds

    counts = Counter(pg.analyzer.grams(text))
    terms = list(counts)
    dfs = dict(zip(terms, pg.gram_frequencies(terms).tolist(), strict=True))
    bounds = [(b, dfs[t]) for t, b in term_bounds(counts, dfs, pg.generation.chunks)]
    theta = float(np.sort(full)[-pool]) if len(full) >= pool else 0.0
    rest, essential = 0.0, 0
    for i in range(len(bounds) - 1, -1, -1):  # the longest tail whose bounds sum below the threshold
        if rest + bounds[i][0] >= theta:
            essential = i + 1
            break
        rest += bounds[i][0]
    return sum(df for _, df in bounds), sum(df for _, df in bounds[:essential])


# Over 40 lines on purpose: one loop interleaves every timed operation of both stores, question by question.
def _measure(report: Report, label: str, local: Any | None, pg: Any, queries: list[Any], cfg: Any) -> None:
    """Per question, both stores interleaved; ``local`` None (--stores postgres) times the postgres store
    alone."""
    from rag.indexing.vectors import build_vector_index
    from rag.retrieval.hybrid import retrieve

    pool = cfg.candidates
    exact_local = None
    if local is not None:
        exact_local = (
            local.vectors
            if local.vectors.kind == "exact"
            else build_vector_index(local.chunk_vectors, approximate_above=len(local.chunks))
        )
    approx = pg.approximate
    times: dict[str, list[float]] = {}

    def add(key: str, fn: Any) -> None:
        if local is not None or not key.startswith("local."):
            times.setdefault(key, []).append(_ms(fn))

    for i, q in enumerate(queries):
        v = q.vector.reshape(1, -1).astype(np.float32)
        if i == 0:  # warm both (connections, caches)
            pg.lexical_scores(q.lexical), retrieve(pg, q, 10, cfg)
            _ = local.lexical_scores(q.lexical) if local is not None else None
        add("local.dense_exact", lambda v=v: exact_local.search(v, pool))  # type: ignore[union-attr]
        pg.approximate = False
        add("postgres.dense_exact", lambda v=v: pg.dense_search(v[0], pool))
        if approx:
            add("local.dense_hnsw", lambda v=v: local.vectors.search(v, pool))
            pg.approximate = True
            add("postgres.dense_hnsw", lambda v=v: pg.dense_search(v[0], pool))
        pg.approximate = approx
        add("local.lexical", lambda q=q: local.lexical_scores(q.lexical))
        add("postgres.lexical", lambda q=q: pg.lexical_scores(q.lexical))
        pooled = pg if local is None else local  # the dense pool, whose scores retrieval also needs
        rows = pooled.dense_search(v[0], pool)
        add("local.lexical_top", lambda q=q, r=rows: local.lexical_scores(q.lexical, top=pool, rows=r))
        add("postgres.lexical_top", lambda q=q, r=rows: pg.lexical_scores(q.lexical, top=pool, rows=r))
        add("local.retrieve", lambda q=q: retrieve(local, q, 10, cfg))
        add("postgres.retrieve", lambda q=q: retrieve(pg, q, 10, cfg))
    for key, values in times.items():
        _summary(report, f"{label}.{key}", values)
    for op in ("dense_exact", "dense_hnsw", "lexical", "lexical_top", "retrieve"):
        if f"local.{op}" in times:
            ratio = median(times[f"postgres.{op}"]) / median(times[f"local.{op}"])
            report.add(f"{label}.ratio.{op}", ratio, "x", "postgres / local, medians, same run")
    if approx:  # how many of the HNSW results the exact search also returns (top 10)
        hits = 0
        for q in queries:
            v = q.vector.reshape(-1).astype(np.float32)
            pg.approximate = False
            want = set(pg.dense_search(v, 10).tolist())
            pg.approximate = True
            hits += len(want & set(pg.dense_search(v, 10).tolist()))
        report.add(f"{label}.postgres.hnsw_overlap@10", hits / (10 * len(queries)))
    read = [_postings_read(pg, q.lexical, pg.lexical_scores(q.lexical), pool) for q in queries]
    report.add(f"{label}.postgres.postings_read.median", median([float(r[0]) for r in read]), "",
               "postings the n-gram BM25 query reads per question")  # fmt: skip
    report.add(f"{label}.postgres.maxscore_share.median", median([r[1] / max(r[0], 1) for r in read]), "",
               "share of them a MaxScore top-50 must read in full, knowing the threshold")  # fmt: skip
    pg.approximate = approx


def _local(report: Report, label: str, parts: list[Any], dimension: int, language: str, above: int) -> Any:
    """The local store's snapshot of ``parts``, built in this process, with its build time and memory."""
    from rag.indexing.build import _assemble

    gc.collect()
    tracemalloc.start()  # Python objects and numpy arrays; FAISS's own memory is added below
    seconds, local = timed(partial(_assemble, parts, dimension, language, above))
    held = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    local.manifest = {"build_id": "bench"}
    report.add(f"{label}.local.build_s", seconds, "s", "FAISS and bm25s, traced by tracemalloc")
    faiss_mb = faiss.serialize_index(local.vectors._index).nbytes / 2**20
    report.add(f"{label}.local.faiss_mb", faiss_mb, "MB", f"{local.vectors.kind} index")
    report.add(f"{label}.local.snapshot_mb", held / 2**20 + faiss_mb, "MB", "tracemalloc + the FAISS index")
    return local


def _one_size(
    report: Report,
    n: int,
    base: dict[str, Any],
    work: Path,
    approximate_above: int,
    bulk: bool,
    local_too: bool,
) -> None:
    from rag.indexing.postgres import PostgresStore
    from rag.indexing.store import expected_config

    label = f"n={n}"
    language, texts = base["language"], base["texts"]
    real = base["vectors"]
    vectors = real[:n] if n <= len(real) else np.concatenate([real, synthetic(real, n - len(real))])
    parts = _parts(n, texts, vectors, language)
    report.add(f"{label}.real_vector_share", min(1.0, len(real) / n))
    local = _local(report, label, parts, vectors.shape[1], language, approximate_above) if local_too else None

    store = PostgresStore(work / f"n{n}", None, 512, 1, approximate_above)
    try:
        expected = expected_config(base["model"], vectors.shape[1], 512, 1, language)
        seconds, _ = timed(partial(_pg_load, store, parts, expected, language, bulk))
        how = "bulk: postings' indexes built after the rows" if bulk else "indexes kept while writing"
        what = f"write_part of every document ({how}), commit, HNSW, VACUUM"
        report.add(f"{label}.postgres.write_s", seconds, "s", what)
        del parts
        gc.collect()
        tracemalloc.start()  # the snapshot's own allocations (an RSS difference reuses freed memory)
        seconds, pg = timed(store.load)
        held = tracemalloc.get_traced_memory()[0]
        tracemalloc.stop()
        report.add(f"{label}.postgres.load_s", seconds, "s")
        report.add(f"{label}.postgres.snapshot_mb", held / 2**20, "MB", "tracemalloc, bench process")
        with store.db.connection() as conn:
            size = conn.execute("SELECT pg_database_size(current_database())").fetchone()[0]
            tables = conn.execute(
                "SELECT relname, pg_total_relation_size(oid) FROM pg_class "
                "WHERE relname LIKE 'rag_%' AND relkind = 'r' ORDER BY 2 DESC"
            ).fetchall()
        report.add(f"{label}.postgres.database_mb", size / 2**20, "MB", "pg_database_size")
        for name, bytes_ in tables[:4]:
            report.add(f"{label}.postgres.table_mb.{name}", bytes_ / 2**20, "MB", "with its indexes")
        _measure(report, label, local, pg, base["queries"], base["cfg"])
        report.add(
            f"{label}.postgres.server_pss_mb", _pg_pss_mb(store.server.pgdata), "MB", "after the queries"
        )
    finally:
        store.close()
    del local
    gc.collect()


def main(argv: list[str] | None = None) -> Report:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--sizes", default="1e4,1e5", help="Comma-separated chunk counts.")
    p.add_argument("--queries", type=int, default=200, help="Questions timed per size.")
    p.add_argument(
        "--work-dir", type=Path, default=None, help="Where the databases go (default: a temp folder)."
    )
    p.add_argument(
        "--stores", default="local,postgres", help="local,postgres, or postgres alone (no local figures)."
    )
    p.add_argument(
        "--bulk", action="store_true", help="Build the postings' indexes after the rows (as for 10^6 chunks)."
    )
    args = p.parse_args(argv)
    from rag.indexing.vectors import APPROXIMATE_ABOVE
    from rag.retrieval.hybrid import RetrievalConfig
    from rag.retrieval.query import Query

    model = model_name()
    sizes = [300, 1000] if args.quick else [int(float(s)) for s in args.sizes.split(",")]
    approximate_above = 500 if args.quick else APPROXIMATE_ABOVE
    de = xquad()
    paragraphs = [para for a in de.articles for para in a.text.split("\n\n")]
    questions = [q.text for q in de.questions][: 10 if args.quick else args.queries]
    extra = _docstring_paragraphs(200 if args.quick else max(sizes))
    texts = paragraphs + [t for t in extra if "\x00" not in t]  # PostgreSQL text cannot hold NUL
    vectors, qvectors = _embedded(model, paragraphs, questions)
    queries = [Query(t, t, v, "de", "de", t) for t, v in zip(questions, qvectors, strict=True)]
    base = {"language": "de", "texts": texts, "vectors": vectors, "queries": queries, "model": model}
    base["cfg"] = RetrievalConfig()
    report = Report(
        f"postgres vs local store at scale ({model}); approximate above {approximate_above} chunks"
    )
    report.add("real_vectors", len(vectors))
    report.add("distinct_texts", len(texts))
    report.add("questions", len(queries))
    if is_fake(model):
        report.add("note", "fake embedder: figures only check that the script runs")
    work = args.work_dir or Path(tempfile.mkdtemp(prefix="rag-pgscale-"))
    try:
        for n in sizes:
            started = time.perf_counter()
            _one_size(report, n, base, work, approximate_above, args.bulk, "local" in args.stores)
            note(f"n={n} done in {time.perf_counter() - started:.0f} s")
    finally:
        if args.work_dir is None:
            shutil.rmtree(work, ignore_errors=True)
    report.save(args.json)
    return report


if __name__ == "__main__":
    main()
