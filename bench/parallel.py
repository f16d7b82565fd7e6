"""Parallel ingest on the postgres store: a full `rag index --force` of the XQuAD-de dev articles with one
process and with worker processes (`--workers N`, rag/indexing/pg_ingest.py), in one run.

    .venv/bin/python -m bench.parallel                  # 1 and 2 workers, the shipped model
    .venv/bin/python -m bench.parallel --workers 1 2 4  # other counts

One embedded server under the work folder; the model is converted and the index built once before
anything is timed. Each timed build re-embeds every sentence (``force``) and commits a new generation;
the time includes the workers' start and model load. RAG_THREADS=0 shares the cores out among the workers
(2 cores, 2 workers: one thread each; one process: both). Every build's rows are compared with the first.
"""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from rag.evaluation.squad import load_squad, read_json, write_corpus
from rag.indexing.protocol import IndexSnapshot
from rag.pipeline import build_pipeline
from rag.settings import Settings

DEV = Path(__file__).parent / "data" / "xquad-de-dev.json"


def _vectors(snap: IndexSnapshot) -> np.ndarray:
    return snap.chunk_vectors_for(np.arange(len(snap.chunks)))


def run(work: Path, counts: list[int]) -> dict[str, Any]:
    corpus = work / "corpus"
    if not corpus.is_dir():
        write_corpus(load_squad(read_json(DEV)).articles, corpus)
    pipeline = build_pipeline(Settings(corpus_dir=corpus, index_dir=work / "pg", store="postgres"))
    try:
        pipeline.warm_up()  # server, model conversion, a first build: none of it timed
        first = pipeline.snapshot
        first_vectors = _vectors(first)  # read now: a generation's rows are dropped two commits later
        builds: dict[str, Any] = {}
        for n in counts:
            started = time.perf_counter()
            report = pipeline.update_index(force=True, workers=n)
            seconds = time.perf_counter() - started
            snap = pipeline.snapshot
            same_rows = list(snap.chunks) == list(first.chunks) and list(snap.sentences) == list(
                first.sentences
            )
            builds[str(n)] = {
                "seconds": round(seconds, 1),
                "sentences_per_second": round(len(snap.sentences) / seconds, 1),
                "embedded_files": report.embedded_files,
                "same_rows_as_first_build": same_rows,
                "max_vector_difference": float(np.abs(_vectors(snap) - first_vectors).max()),
            }
        return {
            "documents": len(first.documents),
            "chunks": len(first.chunks),
            "sentences": len(first.sentences),
            "builds_by_workers": builds,
        }
    finally:
        pipeline.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--work-dir", type=Path, default=None)
    parser.add_argument("--json", type=Path, default=None, help="also write the report here")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    with tempfile.TemporaryDirectory(prefix="rag-parallel-") as tmp:
        report = run(args.work_dir or Path(tmp), args.workers)
    print(json.dumps(report, indent=2))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
