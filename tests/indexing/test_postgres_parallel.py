"""Parallel ingest (`rag index --workers N`, rag/indexing/pg_ingest.py): the index two worker processes build
equals a one-process build, row for row and answer for answer, on a first build and on an update."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import partial
from pathlib import Path

import numpy as np
import pytest

from rag.embedding.fake import WordsEmbedder
from rag.errors import ConfigError, IndexError_
from rag.indexing.pg_server import EmbeddedServer
from rag.indexing.postgres import PostgresStore
from rag.pipeline import Pipeline, build_pipeline
from rag.settings import Settings

from ..conftest import BENCH, DATA, ROOT, fresh_database, on_store, store_env

pytestmark = pytest.mark.postgres
QUESTIONS = json.loads((DATA / "seed_questions.json").read_text(encoding="utf-8"))["answerable"][:10]
XQUAD = json.loads((BENCH / "xquad-de-dev.json").read_text(encoding="utf-8"))["data"]


@pytest.fixture
def other_url(pg_server: EmbeddedServer) -> Iterator[str]:
    """A second fresh database on the session's server."""
    with fresh_database(pg_server) as url:
        yield url


def _write(corpus: Path, i: int) -> None:
    text = "\n\n".join(p["context"] for p in XQUAD[i]["paragraphs"])
    (corpus / f"xquad-{i:02d}.txt").write_text(text, encoding="utf-8")


def _pipeline(settings: Settings, url: str, name: str) -> Pipeline:
    on = on_store(settings, url, index_dir=Path(settings.index.index_dir) / name)
    return build_pipeline(on, WordsEmbedder())


@contextmanager
def _pipelines(settings: Settings, url: str, other: str) -> Iterator[tuple[Pipeline, Pipeline]]:
    """Two pipelines over the same corpus: one indexing in parallel on ``url``, one in one process on
    ``other``; closed afterwards."""
    parallel, single = _pipeline(settings, url, "a"), _pipeline(settings, other, "b")
    try:
        yield parallel, single
    finally:
        parallel.close()
        single.close()


def _same_index(parallel: Pipeline, single: Pipeline) -> None:
    a, b = parallel.snapshot, single.snapshot
    assert {k: (d.path, d.text, d.sha256) for k, d in a.documents.items()} == {
        k: (d.path, d.text, d.sha256) for k, d in b.documents.items()
    }
    assert list(a.chunks) == list(b.chunks) and list(a.sentences) == list(b.sentences)
    assert list(a.sentence_doc) == list(b.sentence_doc)
    rows = np.arange(len(a.chunks))
    assert np.array_equal(a.chunk_vectors_for(rows), b.chunk_vectors_for(rows))
    for q in QUESTIONS:
        assert np.allclose(a.lexical_scores(q["question"]), b.lexical_scores(q["question"]), atol=1e-6)
        assert (
            parallel.ask(q["question"]).to_dict()["citations"]
            == single.ask(q["question"]).to_dict()["citations"]
        )


def test_two_workers_build_the_index_one_process_builds(
    fake_settings: Settings, pg_url: str, other_url: str
) -> None:
    corpus = Path(fake_settings.index.corpus_dir)
    for i in range(6):
        _write(corpus, i)
    with _pipelines(fake_settings, pg_url, other_url) as (parallel, single):
        report = parallel.update_index(workers=2)
        assert report.embedded_files == 8 and report.files == 8
        single.update_index(whole=True)
        _same_index(parallel, single)

        (corpus / "xquad-00.txt").unlink()  # removed, changed, added: an update in parallel
        (corpus / "xquad-01.txt").write_text("Ein neuer Text über Wale. Wale schwimmen.", encoding="utf-8")
        _write(corpus, 7)
        report = parallel.update_index(workers=2)
        assert (report.embedded_files, report.reused_files, report.removed_files) == (2, 6, 1)
        single.update_index(whole=True)
        _same_index(parallel, single)
        assert parallel.update_index(workers=2).up_to_date


class _FailsOnWhales(WordsEmbedder):
    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        if any("Wale" in t for t in texts):
            raise RuntimeError("the model crashed on the whales")
        return super().embed_documents(texts)


def _failing_embedder() -> WordsEmbedder:
    return _FailsOnWhales()


def test_a_failed_worker_leaves_the_previous_state_and_the_next_update_cleans_up(
    fake_settings: Settings, pg_url: str, other_url: str
) -> None:
    corpus = Path(fake_settings.index.corpus_dir)
    for i in range(4):
        _write(corpus, i)
    with _pipelines(fake_settings, pg_url, other_url) as (parallel, single):
        parallel.update_index(whole=True)
        before = parallel.store.load()
        (corpus / "wale.txt").write_text("Ein Text über Wale. Wale schwimmen.", encoding="utf-8")
        for i in range(4, 8):
            _write(corpus, i)  # written by the workers, committed per document, never made visible
        store = parallel.store
        assert isinstance(store, PostgresStore)
        with pytest.raises(IndexError_, match="not indexed"):
            store.update_parallel(corpus, WordsEmbedder(), _failing_embedder, 2)
        after = store.load()
        assert after.build_id == before.build_id and list(after.chunks) == list(before.chunks)
        parallel.update_index(whole=True)  # discards the failed run's rows, then builds as one process would
        single.update_index(whole=True)
        _same_index(parallel, single)


class _KilledOnWhalesOnce(WordsEmbedder):
    """SIGKILLs its own worker process the first time any worker embeds the whales (``marker`` says it
    happened): a worker lost in the middle of a document, its claim held and its transaction open."""

    def __init__(self, marker: Path) -> None:
        super().__init__()
        self.marker = marker

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        if any("Wale" in t for t in texts) and not self.marker.exists():
            self.marker.write_text(str(os.getpid()))
            os.kill(os.getpid(), signal.SIGKILL)
        return super().embed_documents(texts)


def _killed_once_embedder(marker: Path) -> WordsEmbedder:
    return _KilledOnWhalesOnce(marker)


def test_a_worker_killed_mid_document_is_covered_by_the_other(
    fake_settings: Settings, pg_url: str, other_url: str, tmp_path: Path
) -> None:
    """SIGKILL of one of two workers while it holds a claim: the database rolls its transaction back and
    frees the claim, the other worker takes the document, and the run commits what one process builds."""
    corpus = Path(fake_settings.index.corpus_dir)
    for i in range(2):
        _write(corpus, i)
    with _pipelines(fake_settings, pg_url, other_url) as (parallel, single):
        parallel.update_index(whole=True)
        (corpus / "wale.txt").write_text("Ein Text über Wale. Wale schwimmen.", encoding="utf-8")
        for i in range(2, 6):
            _write(corpus, i)
        store = parallel.store
        assert isinstance(store, PostgresStore)
        marker = tmp_path / "killed"
        _, report = store.update_parallel(corpus, WordsEmbedder(), partial(_killed_once_embedder, marker), 2)
        assert marker.exists() and report.embedded_files == 5
        single.update_index(whole=True)
        _same_index(parallel, single)


def test_rag_index_workers(fake_settings: Settings, pg_url: str) -> None:
    ix = fake_settings.index
    env = {**os.environ, **store_env(pg_url), "RAG_MODEL": "test:words",
           "RAG_CORPUS_DIR": str(ix.corpus_dir), "RAG_INDEX_DIR": str(ix.index_dir)}  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-m", "rag.cli", "index", "--workers", "2"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        timeout=120,
    )
    assert done.returncode == 0 and b"2 files" in done.stdout and b"2 embedded" in done.stdout, done


def test_workers_need_the_postgres_store(fake_pipeline: Pipeline) -> None:
    with pytest.raises(ConfigError, match="RAG_STORE=postgres"):
        fake_pipeline.update_index(workers=2)
