"""The local and the postgres store side by side: the same questions through both, answers compared one by
one, and each store's latency per question (``Pipeline.ask``, in process).

    .venv/bin/python -m bench.stores                          # XQuAD-de dev half, the shipped model
    .venv/bin/python -m bench.stores --work-dir /tmp/stores   # keep (and reuse) corpus, index and database

Both stores index the same corpus folder with the same embedder instance (embedded once per store); the
postgres store runs its own embedded server under the work folder, with exact search (fewer chunks than
RAG_APPROXIMATE_ABOVE). An answer counts as identical when its text, abstention and cited spans are equal.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from rag.evaluation.squad import load_squad, read_json, write_corpus
from rag.pipeline import Pipeline, build_pipeline
from rag.settings import Settings
from rag.types import Answer

log = logging.getLogger(__name__)
DEV = Path(__file__).parent / "data" / "xquad-de-dev.json"


def _key(answer: Answer) -> tuple[Any, ...]:
    return answer.answer, answer.abstained, tuple((c.doc_id, c.start, c.end) for c in answer.citations)


def _ask_all(pipeline: Pipeline, questions: list[str]) -> tuple[list[Answer], list[float]]:
    answers, ms = [], []
    for question in questions:
        started = time.perf_counter()
        answers.append(pipeline.ask(question, top_k=10))
        ms.append((time.perf_counter() - started) * 1000)
    return answers, ms


def _latency(ms: list[float], answers: list[Answer]) -> dict[str, float]:
    """Median and p95 of the whole question, and the medians of its retrieval and composition (where the
    time goes; the rest is embedding the question)."""
    ordered = sorted(ms)
    return {
        "median": round(statistics.median(ordered), 1),
        "p95": round(ordered[int(0.95 * len(ordered))], 1),
        "retrieve_median": round(statistics.median(a.timings_ms["retrieve"] for a in answers), 1),
        "compose_median": round(statistics.median(a.timings_ms["compose"] for a in answers), 1),
    }


def run(work: Path) -> dict[str, Any]:
    squad = load_squad(read_json(DEV))
    corpus = work / "corpus"
    if not corpus.is_dir():
        write_corpus(squad.articles, corpus)
    questions = [q.text for q in squad.questions]
    local = build_pipeline(Settings(corpus_dir=corpus, index_dir=work / "local"))
    local.warm_up()
    pg = build_pipeline(
        Settings(corpus_dir=corpus, index_dir=work / "pg", store="postgres"), embedder=local.embedder
    )
    try:
        pg.warm_up()
        local_answers, local_ms = _ask_all(local, questions)
        pg_answers, pg_ms = _ask_all(pg, questions)
    finally:
        pg.close()
    same = sum(_key(a) == _key(b) for a, b in zip(local_answers, pg_answers, strict=True))
    return {
        "questions": len(questions),
        "chunks": len(local.snapshot.chunks),
        "identical_answers": same,
        "latency_ms": {"local": _latency(local_ms, local_answers), "postgres": _latency(pg_ms, pg_answers)},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--work-dir", type=Path, default=None)
    parser.add_argument("--json", type=Path, default=None, help="also write the report here")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    with tempfile.TemporaryDirectory(prefix="rag-stores-") as tmp:
        report = run(args.work_dir or Path(tmp))
    print(json.dumps(report, indent=2))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
