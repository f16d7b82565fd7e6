"""How long a server on the postgres store takes to see a commit: the whole snapshot read against reading
only what changed (``rag.indexing.pg_rows.read_snapshot`` with the snapshot before), one run.

    .venv/bin/python -m bench.pg_refresh                          # 10^4 chunks, written here
    .venv/bin/python -m bench.pg_refresh --size 1e5               # larger
    .venv/bin/python -m bench.pg_refresh --index-dir DIR          # an embedded database kept by
                                                                  # `bench.pg_scale --work-dir` (DIR/n1000000)
    .venv/bin/python -m bench.pg_refresh --quick                  # smoke run (seconds)

The database is written as ``bench.pg_scale`` writes its (documents of 20 one-sentence chunks, random
vectors: the read does not look at them). Per run: a whole read of the latest generation (seconds, and the
snapshot's memory by tracemalloc), then one commit adding a new 20-chunk document, then the read a server
does next, from the snapshot it has. The first run also checks that this snapshot equals a whole read.
"""

from __future__ import annotations

import shutil
import tempfile
import tracemalloc
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from bench.common import Report, median, note, parser, timed
from bench.pg_scale import DOC_CHUNKS, _parts, _pg_load
from bench.scale import _docstring_paragraphs

DIMENSION = 384  # the default model's; the reads never look at vectors


def _texts(n: int) -> list[str]:
    return [t for t in _docstring_paragraphs(n) if "\x00" not in t]


def _vectors(n: int, seed: int) -> np.ndarray:
    v = np.random.default_rng(seed).standard_normal((n, DIMENSION)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def _commit_one(store: Any, texts: list[str], run: int) -> None:
    """A new document of DOC_CHUNKS chunks, committed as the next generation with the latest's settings."""
    from rag.indexing.pg_rows import commit_generation, latest_generation, write_part
    from rag.text.analysis import Analyzer

    with store.db.connection() as conn, conn.transaction():
        latest = latest_generation(conn)
        assert latest is not None
        manifest = latest.manifest
        fresh = [f"Refresh run {run}: {t}" for t in texts[:DOC_CHUNKS]]
        language = manifest["lexical"]["language"]
        prefix = f"refresh-g{latest.number + 1}-"  # new on every run, also of a database kept from before
        part = _parts(DOC_CHUNKS, fresh, _vectors(DOC_CHUNKS, run), language, prefix=prefix)[0]
        write_part(conn, part, latest.number + 1, Analyzer(language))
        commit_generation(conn, latest.number + 1, manifest)


def _same(a: Any, b: Any) -> bool:
    return bool(
        a.generation == b.generation
        and a.documents.keys() == b.documents.keys()
        and a.chunks == b.chunks
        and a.sentences == b.sentences
        and a.chunk_ids.tolist() == b.chunk_ids.tolist()
        and a.sentence_ids.tolist() == b.sentence_ids.tolist()
    )


def _measure(report: Report, store: Any, runs: int) -> None:
    from rag.indexing.pg_rows import read_snapshot

    texts = _texts(DOC_CHUNKS)
    whole, commit, changed = [], [], []
    for run in range(runs):
        tracemalloc.start()
        seconds, snap = timed(partial(read_snapshot, store.db, store.approximate_above))
        held = tracemalloc.get_traced_memory()[0]
        tracemalloc.stop()
        whole.append(seconds)
        if run == 0:
            report.add("chunks", len(snap.chunks))
            report.add("documents", len(snap.documents))
            report.add("snapshot_mb", held / 2**20, "MB", "tracemalloc, the whole read")
        seconds, _ = timed(partial(_commit_one, store, texts, run))
        commit.append(seconds)
        seconds, fresh = timed(partial(read_snapshot, store.db, store.approximate_above, snap))
        changed.append(seconds)
        if run == 0:
            report.add("equals_whole_read", _same(fresh, read_snapshot(store.db, store.approximate_above)))
        note(f"run {run + 1}: whole {whole[-1]:.2f} s, commit {commit[-1]:.2f} s, then {changed[-1]:.3f} s")
        del snap, fresh
    report.add("whole_read_s.median", median(whole), "s", "a server's first read")
    report.add("commit_one_document_s.median", median(commit), "s", "20 chunks, one transaction")
    report.add("read_after_commit_s.median", median(changed), "s", "reading only the new document")
    report.add("ratio", median(whole) / median(changed), "x", "whole / only what changed, same run")


def main(argv: list[str] | None = None) -> Report:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--size", default="1e4", help="Chunks to write when no --index-dir is given.")
    p.add_argument("--index-dir", type=Path, default=None, help="An index folder with an embedded database.")
    args = p.parse_args(argv)
    from rag.indexing.postgres import PostgresStore
    from rag.indexing.store import expected_config

    report = Report("postgres store: a server's read after a commit, whole vs only what changed")
    work = None if args.index_dir else Path(tempfile.mkdtemp(prefix="rag-pgrefresh-"))
    # no HNSW index: the reads never search
    store = PostgresStore(args.index_dir or work, None, 512, 1, 10**12)  # type: ignore[arg-type]
    try:
        if work is not None:
            n = 300 if args.quick else int(float(args.size))
            texts = _texts(n)
            expected = expected_config("bench", DIMENSION, 512, 1, "de")
            note(f"writing {n} chunks ...")
            _pg_load(store, _parts(n, texts, _vectors(n, 0), "de"), expected, "de", bulk=False)
        _measure(report, store, 1 if args.quick else args.runs or 3)
    finally:
        store.close()
        if work is not None:
            shutil.rmtree(work, ignore_errors=True)
    report.save(args.json)
    return report


if __name__ == "__main__":
    main()
