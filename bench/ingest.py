"""Ingest speed: texts per second of an index build, next to the raw model encoding the build's chunk texts.

    .venv/bin/python -m bench.ingest            # XQuAD-de dev (24 articles, 120 paragraphs), 3 runs
    .venv/bin/python -m bench.ingest --quick    # smoke run (seconds)

Each run, in this one process and in turn: a full build of a fresh index (``rag index --force`` minus
process start: load, sentences, chunks, embeddings, BM25, save), then the product's backend encoding
exactly the chunk texts that build produced (``embed_documents``: its own session, batches and prompt;
the raw encode), and for a sentence-transformers model other than multilingual-e5-small also raw
``SentenceTransformer.encode`` of them. The ratio the issue sets (>= 0.9) is the build's chunks per second
over the raw encode's: the raw encode's seconds over the build's. The build's texts per second count
whatever it embeds (today every chunk and every sentence), and where its time goes is broken down.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bench.common import Report, is_e5, is_fake, median, note, parser, timed, write_corpus, xquad


class _Timed:
    """Wraps an embedder and adds up the seconds and texts of each method (the build's own breakdown)."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self.name = inner.name
        self.seconds: dict[str, float] = {}
        self.texts: dict[str, int] = {}

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def _time(self, method: str, texts: Sequence[str]) -> Any:
        started = time.perf_counter()
        out = getattr(self._inner, method)(texts)
        self.seconds[method] = self.seconds.get(method, 0.0) + time.perf_counter() - started
        self.texts[method] = self.texts.get(method, 0) + len(texts)
        return out

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        return self._time("embed_documents", texts)

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._time("embed_queries", texts)

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        return self._time("count_tokens", texts)


def _raw_encoder(model: str) -> Any:
    """``SentenceTransformer.encode`` as its authors document it (None for the fake test model and for
    multilingual-e5-small, whose sentence-transformers folder exists only for ``RAG_BACKEND=torch``)."""
    if is_fake(model) or is_e5(model):
        return None
    from sentence_transformers import SentenceTransformer

    from rag.embedding.base import resolve_model_path

    st = SentenceTransformer(resolve_model_path(model), device="cpu")
    return lambda texts: st.encode(texts, batch_size=32, normalize_embeddings=True, convert_to_numpy=True)


def main(argv: list[str] | None = None) -> Report:
    p = parser(__doc__.splitlines()[0])
    args = p.parse_args(argv)
    from rag.embedding.base import create_embedder
    from rag.indexing.build import build_index
    from rag.settings import Settings

    settings = Settings()
    runs = args.runs or (1 if args.quick else 3)
    squad = xquad()
    chosen = squad.articles[:2] if args.quick else squad.articles
    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as tmp:
        corpus = write_corpus(Path(tmp) / "corpus", chosen)
        inner = create_embedder(
            settings.embedding.model, backend=settings.embedding.backend, cache_dir=Path(tmp) / "models"
        )
        inner.warm_up()  # the one-time ONNX export is not an ingest cost
        backend = str(getattr(inner, "backend", type(inner).__name__))
        raw = _raw_encoder(settings.embedding.model)
        report = Report(
            f"ingest: {len(chosen)} XQuAD-de articles, model {settings.embedding.model}, backend {backend}"
        )
        builds, raws, direct, direct_sentences = [], [], [], []
        for run in range(runs):
            embedder = _Timed(inner)
            seconds, (snap, _) = timed(
                lambda run=run, embedder=embedder: build_index(
                    corpus,
                    Path(tmp) / f"index-{run}",
                    embedder,
                    settings.index.chunk_tokens,
                    settings.index.chunk_overlap,
                    force=True,
                )
            )
            texts = [c.text for c in snap.chunks]
            builds.append((seconds, embedder))
            if raw is not None:
                raws.append(timed(lambda texts=texts: raw(texts))[0])
            direct.append(timed(lambda texts=texts: inner.embed_documents(texts))[0])
            sentence_texts = [
                snap.documents[d].text[x.start : x.end]
                for d, x in zip(snap.sentence_doc, snap.sentences, strict=True)
            ]
            direct_sentences.append(timed(lambda t=sentence_texts: inner.embed_documents(t))[0])
            raw_s = raws[-1] if raws else 0.0
            note(f"run {run + 1}: build {seconds:.2f}s, raw {raw_s:.2f}s, backend {direct[-1]:.2f}s")
        chunks, sentences = len(snap.chunks), len(snap.sentences)
        build_s = median([b[0] for b in builds])
        embedded = builds[0][1].texts.get("embed_documents", 0)
        report.add("chunks", chunks)
        report.add("sentences", sentences)
        report.add("build_s.median", build_s, "s")
        report.add("build.chunks_per_s", chunks / build_s, "chunks/s")
        report.add("build.texts_per_s", embedded / build_s, "texts/s", f"the {embedded} texts it embeds")
        report.add(f"raw_{backend}.chunk_texts_per_s", chunks / median(direct), "texts/s", "the chunk texts")
        if raws:
            report.add(
                "raw_st_encode_s.median", median(raws), "s", "SentenceTransformer.encode of the chunk texts"
            )
            report.add("raw_st.chunks_per_s", chunks / median(raws), "chunks/s")
            report.add("ratio_build_vs_raw_st", median(raws) / build_s, "", "target >= 0.9")
        report.add(
            f"raw_{backend}_encode_s.median", median(direct), "s", "the product's backend, chunks only"
        )
        report.add(
            f"ratio_build_vs_raw_{backend}",
            median(direct) / build_s,
            "",
            "chunks/s of the build over those of the raw encode of its chunk texts; target >= 0.9",
        )
        report.add(
            f"raw_{backend}_sentences_s.median",
            median(direct_sentences),
            "s",
            "the build also embeds every sentence",
        )
        embed = median([b[1].seconds.get("embed_documents", 0.0) for b in builds])
        count = median([b[1].seconds.get("count_tokens", 0.0) for b in builds])
        report.add(
            "build.embed_s",
            embed,
            "s",
            f"{builds[0][1].texts.get('embed_documents', 0)} texts: chunks + sentences",
        )
        report.add("build.count_tokens_s", count, "s")
        report.add("build.other_s", build_s - embed - count, "s", "load, sentences, chunking, BM25, save")
    report.save(args.json)
    return report


if __name__ == "__main__":
    main()
