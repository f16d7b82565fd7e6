"""Crashes lose nothing on PostgreSQL: `rag index` killed with SIGKILL while it embeds or while it writes,
and the database server stopped without a shutdown (``pg_ctl stop -m immediate``) during an update, leave
the index answering exactly as before the update; the next update completes."""

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
from rag.indexing.pg_server import start_embedded
from rag.pipeline import build_pipeline
from rag.settings import Settings

from ..conftest import BENCH, ROOT, on_store, outside_pytest_tmp, store_env, words_settings

pytestmark = pytest.mark.postgres
QUESTIONS = [
    "Wer ist der russische UN-Botschafter?",
    "Wann wurde Nordkorea gegründet?",
    "Wie viele Punkte gab die Verteidigung der Panthers ab?",  # only the article the update adds answers it
]
# `rag index --force` with a pause at a point of the update: the first batch of embeddings ("embedding")
# or the first document version written ("writing"); the marker file says the pause has begun.
_INDEX = """
import sys, time, pathlib
marker, pause, point = pathlib.Path(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
def _pause():
    if not marker.exists():
        marker.touch()
        time.sleep(pause)
if point == "embedding":
    from rag.embedding import fake
    embed = fake.WordsEmbedder.embed_documents
    fake.WordsEmbedder.embed_documents = lambda self, texts: (_pause(), embed(self, texts))[1]
else:
    import rag.indexing.postgres as pg
    write = pg.write_part
    pg.write_part = lambda *args: (write(*args), _pause())[0]
from rag import cli
sys.argv = ["rag", "index", "--force"]
cli.main()
"""


def _article(i: int) -> str:
    data = json.loads((BENCH / "xquad-de-dev.json").read_text(encoding="utf-8"))
    return "\n\n".join(p["context"] for p in data["data"][i]["paragraphs"])


def _settings(corpus: Path, index: Path, url: str) -> Settings:
    return on_store(words_settings(corpus, index), url)


def _answers(settings: Settings) -> tuple[set[str], list[str]]:
    """What a fresh pipeline reads from the database as it is (no update first): paths and answers."""
    pipeline = build_pipeline(settings, WordsEmbedder())
    try:
        pipeline._snap = pipeline.store.load()
        paths = {d.path for d in pipeline._snap.documents.values()}
        return paths, [pipeline.ask(q).answer for q in QUESTIONS]
    finally:
        pipeline.close()


def _start_index(settings: Settings, marker: Path, pause: float, point: str) -> subprocess.Popen[bytes]:
    url = settings.index.database_url
    assert url is not None
    env = {**os.environ, **store_env(url.get_secret_value()), "RAG_MODEL": "test:words",
           "RAG_LEXICON": "none", "RAG_CORPUS_DIR": str(settings.index.corpus_dir),
           "RAG_INDEX_DIR": str(settings.index.index_dir)}  # fmt: skip
    return subprocess.Popen(
        [sys.executable, "-c", _INDEX, str(marker), str(pause), point],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip


def _wait_for(marker: Path, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while not marker.exists():
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "the update never reached its pause"
        time.sleep(0.02)


def _prepare(seed_corpus: Path, url: str, index: Path) -> tuple[Settings, tuple[set[str], list[str]]]:
    """An index of the seeds and three XQuAD articles; then the corpus changes (one article in, one out)."""
    for i in (1, 2, 3):
        (seed_corpus / f"xquad-{i:02d}.txt").write_text(_article(i), encoding="utf-8")
    settings = _settings(seed_corpus, index, url)
    pipeline = build_pipeline(settings, WordsEmbedder())
    pipeline.update_index()
    pipeline.close()
    before = _answers(settings)
    (seed_corpus / "xquad-00.txt").write_text(_article(0), encoding="utf-8")  # Super Bowl 50: the Panthers
    (seed_corpus / "xquad-01.txt").unlink()
    return settings, before


def _next_update_completes(settings: Settings, before: tuple[set[str], list[str]]) -> None:
    pipeline = build_pipeline(settings, WordsEmbedder())
    pipeline.update_index(whole=True)  # as `rag index` does: the removed article goes too
    pipeline.close()
    paths, answers = _answers(settings)
    assert paths == {p.name for p in Path(settings.index.corpus_dir).iterdir()}
    assert answers[:2] == before[1][:2] and answers[2] != before[1][2] and "Panthers" in answers[2]


@pytest.mark.parametrize("point", ["embedding", "writing"])
def test_sigkill_during_an_update_leaves_the_previous_state(
    seed_corpus: Path, pg_url: str, tmp_path: Path, point: str
) -> None:
    settings, before = _prepare(seed_corpus, pg_url, tmp_path / "index")
    process = _start_index(settings, tmp_path / "marker", 60, point)
    _wait_for(tmp_path / "marker", process)
    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=30)
    assert process.returncode == -signal.SIGKILL
    assert _answers(settings) == before  # the killed update's transaction is gone: nothing of it is seen
    _next_update_completes(settings, before)


def test_the_database_killed_during_an_update_comes_back_as_before(seed_corpus: Path, tmp_path: Path) -> None:
    """The product's own embedded server, stopped without a shutdown checkpoint (crash recovery at start)."""
    with outside_pytest_tmp() as folder:
        server = start_embedded(folder)
        try:
            settings, before = _prepare(seed_corpus, server.url(), tmp_path / "index")
            process = _start_index(settings, tmp_path / "marker", 2, "writing")
            _wait_for(tmp_path / "marker", process)
            server.stop(mode="immediate")
            _, err = process.communicate(timeout=60)
            assert process.returncode == 1 and b"database is unavailable" in err, err
            server.start()
            assert _answers(settings) == before
            _next_update_completes(settings, before)
        finally:
            server.close()
