"""Incremental indexing: add one article to an index of ~1,000, against a full build of the same corpus.

    .venv/bin/python -m bench.incremental                 # 1,000 articles (~20 min with the real model)
    .venv/bin/python -m bench.incremental --articles 300  # smaller
    .venv/bin/python -m bench.incremental --quick         # smoke run (seconds)

The corpus is the 24 XQuAD-de dev articles and variants of them (paragraphs rotated, each led by a
sentence naming the copy; see ``bench.common.variant``), so every file and every chunk text is distinct
and embedded on its own. Steps, all through ``rag.indexing.build.build_index`` as ``rag index`` runs it:

1. a full build of ``articles - 1`` articles (timed: the full-build figure);
2. ``--runs`` times: one more article is written and the index updated (timed: the incremental figure);
3. a full build (``--force``) of the final corpus into a second folder, compared with the incremental
   result: same chunks in the same order, same texts, vectors equal to 1e-5, same BM25 scores and the
   same answers to sample questions.
"""

from __future__ import annotations

import cProfile
import io
import pstats
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from bench.common import Report, articles, median, note, parser, timed, write_corpus, xquad

if TYPE_CHECKING:
    from rag.indexing.build import BuildReport
    from rag.indexing.store import Snapshot


def _profile_top(profiler: cProfile.Profile, lines: int = 12) -> str:
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("cumulative").print_stats(r"rag/", lines)
    return out.getvalue()


def main(argv: list[str] | None = None) -> Report:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--articles", type=int, default=1000, help="Articles in the final corpus.")
    p.add_argument(
        "--profile", action="store_true", help="Print where an incremental update spends its time."
    )
    args = p.parse_args(argv)
    from rag.embedding.base import create_embedder
    from rag.indexing.build import build_index
    from rag.pipeline import build_pipeline
    from rag.settings import Settings

    settings = Settings()
    total = 12 if args.quick else args.articles
    runs = args.runs or (1 if args.quick else 3)
    squad = xquad()
    chosen = articles(squad, total + runs - 1)
    first, added = chosen[: total - 1], chosen[total - 1 :]
    report = Report(f"incremental: +1 article on {total - 1}, model {settings.embedding.model}")
    with tempfile.TemporaryDirectory(prefix="bench-incremental-") as tmp:
        root = Path(tmp)
        corpus = write_corpus(root / "corpus", first)
        embedder = create_embedder(
            settings.embedding.model, backend=settings.embedding.backend, cache_dir=root / "models"
        )
        embedder.warm_up()

        def build(index: str, force: bool = False) -> tuple[Snapshot, BuildReport]:
            return build_index(
                corpus,
                root / index,
                embedder,
                settings.index.chunk_tokens,
                settings.index.chunk_overlap,
                force=force,
            )

        note(f"full build of {len(first)} articles ...")
        full_s, (snap, _) = timed(lambda: build("index", force=True))
        report.add("articles_before", len(first))
        report.add("chunks_before", len(snap.chunks))
        report.add("full_build_s", full_s, "s", f"{len(first)} articles")
        times = []
        profiler = cProfile.Profile() if args.profile else None
        for n, article in enumerate(added, start=1):
            write_corpus(corpus, [article])
            if profiler is not None and n == len(added):
                profiler.enable()
            seconds, (inc, rep) = timed(lambda: build("index"))
            if profiler is not None:
                profiler.disable()
            assert rep.embedded_files == 1 and rep.reused_files == len(first) + n - 1, rep
            times.append(seconds)
        report.add("incremental_s.median", median(times), "s", f"{len(times)} runs, +1 article each")
        report.add("incremental_share_of_full", median(times) / full_s, "", "target <= 0.05")
        note("full rebuild of the final corpus for comparison ...")
        rebuild_s, (full, _) = timed(lambda: build("index-full", force=True))
        report.add("full_rebuild_s", rebuild_s, "s", f"{len(first) + len(added)} articles")
        report.add("incremental_share_of_full_rebuild", median(times) / rebuild_s)
        from rag.indexing.store import load_snapshot

        verified = median([timed(lambda: load_snapshot(root / "index"))[0] for _ in range(3)])
        trusted = median([timed(lambda: load_snapshot(root / "index", verify=False))[0] for _ in range(3)])
        report.add("load_index_s.median", verified, "s", "what every start pays; checksums verified")
        report.add("load_index_unverified_s.median", trusted, "s", "the same without hashing the files")
        same = _compare(inc, full, [q.text for q in squad.questions[:: max(1, len(squad.questions) // 40)]])
        for name, value in same.items():
            report.add(f"equals_full_rebuild.{name}", value)
        pipelines = [
            build_pipeline(settings.updated(corpus_dir=corpus, index_dir=root / ix), embedder)
            for ix in ("index", "index-full")
        ]
        questions = [q.text for q in squad.questions[:: max(1, len(squad.questions) // 40)]]
        answers = [
            [(a.answer, [c.start for c in a.citations]) for a in map(pl.ask, questions)] for pl in pipelines
        ]
        report.add("equals_full_rebuild.answers", answers[0] == answers[1], "", f"{len(questions)} questions")
    if profiler is not None:
        print(_profile_top(profiler))
    report.save(args.json)
    return report


def _compare(a: Snapshot, b: Snapshot, queries: list[str]) -> dict[str, bool]:
    """Whether the incremental index ``a`` equals the full rebuild ``b``, part by part."""

    def chunks(snap: Snapshot) -> list[tuple[object, ...]]:
        return [(c.chunk_id, c.doc_id, c.start, c.end, c.text, c.sentences) for c in snap.chunks]

    return {
        "chunks": chunks(a) == chunks(b),
        "sentences": a.sentences == b.sentences and a.sentence_doc == b.sentence_doc,
        "chunk_vectors": bool(np.allclose(a.chunk_vectors, b.chunk_vectors, atol=1e-5)),
        "sentence_vectors": bool(np.allclose(a.sentence_vectors, b.sentence_vectors, atol=1e-5)),
        "bm25_scores": all(np.allclose(a.bm25.scores(q), b.bm25.scores(q)) for q in queries),
    }


if __name__ == "__main__":
    main()
