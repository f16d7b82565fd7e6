"""Crashes lose nothing: `rag index` killed with SIGKILL at many points leaves a loadable, equal index."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rag.embedding.fake import WordsEmbedder
from rag.indexing.store import current_build
from rag.pipeline import build_pipeline
from rag.settings import Settings

from ..conftest import BENCH, BOTH_STORES, ROOT, on_store, store_env

QUESTIONS = ["Wer ist der russische UN-Botschafter?", "Wann wurde Nordkorea gegründet?", "Wo liegt Fresno?"]
KILLS = 16


def _corpus(target: Path, seed_corpus: Path) -> Path:
    """The seed articles plus the 24 XQuAD-de dev articles (paragraphs separated by blank lines)."""
    data = json.loads((BENCH / "xquad-de-dev.json").read_text(encoding="utf-8"))
    for i, article in enumerate(data["data"]):
        text = "\n\n".join(p["context"] for p in article["paragraphs"])
        (seed_corpus / f"xquad-{i:02d}.txt").write_text(text, encoding="utf-8")
    return seed_corpus


def _answers(corpus: Path, index: Path, db: str | None) -> tuple[set[str], list[str]]:
    """The stored index's files and answers, exactly as stored, no rebuild (locally the build folder, its
    checksums verified on load; postgres: the last committed generation)."""
    settings = on_store(Settings(corpus_dir=corpus, index_dir=index, model="test:words"), db)
    pipeline = build_pipeline(settings, WordsEmbedder())
    try:
        pipeline._snap = pipeline.store.load()
        return set(pipeline._snap.manifest["files"]), [pipeline.ask(q).answer for q in QUESTIONS]
    finally:
        pipeline.close()


def _rag_index(corpus: Path, index: Path, db: str | None) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "RAG_MODEL": "test:words-slow",
        "RAG_CORPUS_DIR": str(corpus),
        "RAG_INDEX_DIR": str(index),
        **store_env(db),
    }
    return subprocess.Popen(
        [sys.executable, "-m", "rag.cli", "index", "--force"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


@pytest.mark.timeout(600)
@pytest.mark.parametrize("store_kind", BOTH_STORES)
def test_sigkill_during_index_builds_loses_nothing(
    seed_corpus: Path, tmp_path: Path, store_kind: str, request: pytest.FixtureRequest
) -> None:
    """``rag index --force`` (every article embedded and written again) killed at 16 points spread over
    the build: the stored index answers exactly as before each time, and the next build completes."""
    corpus = _corpus(tmp_path, seed_corpus)
    index = tmp_path / "index"
    db = request.getfixturevalue("pg_url") if store_kind == "postgres" else None
    started = time.perf_counter()
    assert _rag_index(corpus, index, db).wait(timeout=300) == 0
    full_build = time.perf_counter() - started
    expected = _answers(corpus, index, db)
    outcomes = {"killed": 0, "finished": 0, "switched": 0}
    for i in range(KILLS):
        before = current_build(index) if db is None else None
        proc = _rag_index(corpus, index, db)
        time.sleep(full_build * (i + 0.5) / KILLS)  # spread over the whole build, start to finish
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            outcomes["killed"] += 1
        else:
            outcomes["finished"] += 1
        proc.wait(timeout=60)
        if db is None:
            now = current_build(index)
            assert now is not None and now.is_dir() and not now.name.startswith(".")
            outcomes["switched"] += now != before
        assert _answers(corpus, index, db) == expected  # the index that is there answers exactly as before
    assert outcomes["killed"] >= KILLS // 2, outcomes
    assert _rag_index(corpus, index, db).wait(timeout=300) == 0  # and the next build completes
    files, answers = _answers(corpus, index, db)
    assert files == {p.name for p in corpus.iterdir()} and (files, answers) == expected
    if db is None:
        assert not list((index / "builds").glob(".tmp-*"))
