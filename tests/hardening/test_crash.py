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
from rag.indexing.store import current_build, load_snapshot
from rag.pipeline import build_pipeline
from rag.settings import Settings

from ..conftest import BENCH, ROOT

QUESTIONS = ["Wer ist der russische UN-Botschafter?", "Wann wurde Nordkorea gegründet?", "Wo liegt Fresno?"]
KILLS = 16


def _corpus(target: Path, seed_corpus: Path) -> Path:
    """The seed articles plus the 24 XQuAD-de dev articles (paragraphs separated by blank lines)."""
    data = json.loads((BENCH / "xquad-de-dev.json").read_text(encoding="utf-8"))
    for i, article in enumerate(data["data"]):
        text = "\n\n".join(p["context"] for p in article["paragraphs"])
        (seed_corpus / f"xquad-{i:02d}.txt").write_text(text, encoding="utf-8")
    return seed_corpus


def _answers(corpus: Path, index: Path) -> list[str]:
    pipeline = build_pipeline(
        Settings(corpus_dir=corpus, index_dir=index, model="test:words"), WordsEmbedder()
    )
    pipeline._snap = load_snapshot(index)  # exactly what is on disk, no rebuild
    return [pipeline.ask(q).answer for q in QUESTIONS]


def _rag_index(corpus: Path, index: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "RAG_MODEL": "test:words-slow",
        "RAG_CORPUS_DIR": str(corpus),
        "RAG_INDEX_DIR": str(index),
    }
    return subprocess.Popen(
        [sys.executable, "-m", "rag.cli", "index", "--force"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


@pytest.mark.timeout(600)
def test_sigkill_during_index_builds_loses_nothing(seed_corpus: Path, tmp_path: Path) -> None:
    corpus = _corpus(tmp_path, seed_corpus)
    index = tmp_path / "index"
    started = time.perf_counter()
    assert _rag_index(corpus, index).wait(timeout=300) == 0
    full_build = time.perf_counter() - started
    expected = _answers(corpus, index)
    outcomes = {"killed": 0, "finished": 0, "switched": 0}
    for i in range(KILLS):
        before = current_build(index)
        proc = _rag_index(corpus, index)
        time.sleep(full_build * (i + 0.5) / KILLS)  # spread over the whole build, start to finish
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            outcomes["killed"] += 1
        else:
            outcomes["finished"] += 1
        proc.wait(timeout=60)
        now = current_build(index)
        assert now is not None and now.is_dir() and not now.name.startswith(".")
        outcomes["switched"] += now != before
        assert _answers(corpus, index) == expected  # the index that is there answers exactly as before
    assert outcomes["killed"] >= KILLS // 2, outcomes
    assert _rag_index(corpus, index).wait(timeout=300) == 0  # and the next build completes
    snap = load_snapshot(index)
    assert set(snap.manifest["files"]) == {p.name for p in corpus.iterdir()}
    assert not list((index / "builds").glob(".tmp-*"))
    assert _answers(corpus, index) == expected
