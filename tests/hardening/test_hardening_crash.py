"""Crashes lose nothing: the server killed with SIGKILL during uploads, and damaged index files at start.

After each kill the corpus folder holds the whole uploaded file or none of it, the index on disk loads
(checksums verified) and answers exactly as before or exactly as with the article, and what a restarted
server does at start leaves the index consistent with the corpus. A damaged index is rebuilt at start,
with a warning that names the file and the fix, instead of being served.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import psycopg
import pytest
from fastapi.testclient import TestClient

from bench.common import free_port, wait_ready
from rag.embedding.fake import WordsEmbedder
from rag.http.app import create_app
from rag.indexing.store import current_build, load_snapshot
from rag.ingest.loading import load_corpus
from rag.pipeline import Pipeline, build_pipeline
from rag.settings import Settings

from ..conftest import BENCH, BOTH_STORES, ROOT, WORDS_MODEL, on_store, store_env

KEY = "crash-test-key-31c5"
KILLS = 12
NAME = "langer-artikel.txt"
QUESTIONS = [
    "Wer ist der russische UN-Botschafter?",
    "Wann wurde Nordkorea gegründet?",
    "Wogegen hat Russland sein Veto eingelegt?",
    "Wie viele Punkte gab die Verteidigung der Panthers ab?",  # only the uploaded article answers it
]
# The API app alone under uvicorn: the same upload path as `rag serve`, without Gradio's import time,
# so that a server can be started for every kill.
_SERVE = (
    "import sys, uvicorn\n"
    "from rag.http.app import create_app\n"
    "from rag.settings import Settings\n"
    "uvicorn.run(create_app(Settings()), host='127.0.0.1', port=int(sys.argv[1]), log_level='warning')\n"
)


def _article() -> bytes:
    """Ten XQuAD-de articles as one long article: ~35,000 characters, ~300 texts to embed."""
    data = json.loads((BENCH / "xquad-de-dev.json").read_text(encoding="utf-8"))
    parts = ["\n\n".join(p["context"] for p in a["paragraphs"]) for a in data["data"][:10]]
    return "\n\n".join(parts).encode()


def _settings(corpus: Path, index: Path, url: str | None = None) -> Settings:
    """The local store, or with ``url`` the postgres store on that database."""
    settings = Settings(corpus_dir=corpus, index_dir=index, model="test:words", composer_model=WORDS_MODEL)
    return on_store(settings, url)


def _on_disk(settings: Settings) -> tuple[bool, list[str]]:
    """Whether the stored index holds the article, and its answers: exactly what the store holds, no
    rebuild (locally: the build folder, checksums verified on load; postgres: the last committed state)."""
    pipeline = build_pipeline(settings, WordsEmbedder())
    try:
        pipeline._snap = pipeline.store.load()
        return NAME in pipeline._snap.manifest["files"], [pipeline.ask(q).answer for q in QUESTIONS]
    finally:
        pipeline.close()


def _settled(url: str | None) -> None:
    """Wait until the killed server's database sessions are gone. A backend finishes the statement it is
    running, a COMMIT included, after its client died, so an upload's transaction may still commit just
    after the kill; the stored state is read once it cannot change any more."""
    if url is None:
        return
    others = (
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
        "AND backend_type = 'client backend' AND pid <> pg_backend_pid()"
    )
    deadline = time.monotonic() + 30
    with psycopg.connect(url, autocommit=True) as conn:
        while time.monotonic() < deadline:
            if conn.execute(others).fetchone() == (0,):
                return
            time.sleep(0.05)
    raise AssertionError("the killed server's database sessions did not end within 30 s")


def _restart(settings: Settings) -> Pipeline:
    """What a server does at start (warm-up: the index brought up to date with the corpus); close it."""
    pipeline = build_pipeline(settings, WordsEmbedder())
    pipeline.warm_up()
    return pipeline


def _serve(settings: Settings, log: Path, url: str | None) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    ix = settings.index
    env = {**os.environ, "RAG_MODEL": "test:words-slow", "RAG_CORPUS_DIR": str(ix.corpus_dir),
           "RAG_INDEX_DIR": str(ix.index_dir), "RAG_API_KEY": KEY,
           "RAG_COMPOSER_MODEL": str(WORDS_MODEL), **store_env(url)}  # fmt: skip
    with open(log, "ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-c", _SERVE, str(port)], cwd=ROOT, env=env, stdout=out, stderr=out
        )
    address = f"http://127.0.0.1:{port}"
    wait_ready(address, process, log, timeout=120)
    return process, address


def _upload(url: str, data: bytes, outcome: dict[str, object]) -> None:
    try:
        response = httpx.post(
            f"{url}/documents", files={"file": (NAME, data)}, headers={"X-API-Key": KEY}, timeout=120
        )
        outcome["status"] = response.status_code
    except httpx.TransportError as exc:
        outcome["error"] = exc


@pytest.mark.timeout(600)
@pytest.mark.parametrize("store_kind", BOTH_STORES)
def test_sigkill_during_uploads_loses_nothing(
    seed_corpus: Path, tmp_path: Path, store_kind: str, request: pytest.FixtureRequest
) -> None:
    corpus, index, log, data = seed_corpus, tmp_path / "index", tmp_path / "server.log", _article()
    db = request.getfixturevalue("pg_url") if store_kind == "postgres" else None
    settings = _settings(corpus, index, db)
    seeds = {p.name for p in corpus.iterdir()}
    _restart(settings).close()
    _, before = _on_disk(settings)

    # one whole upload, timed, gives the answers with the article; deleting it gives the first ones back
    process, url = _serve(settings, log, db)
    started = time.perf_counter()
    outcome: dict[str, object] = {}
    _upload(url, data, outcome)
    upload_seconds = time.perf_counter() - started
    assert outcome == {"status": 201}, (outcome, log.read_text()[-2000:])
    indexed, with_article = _on_disk(settings)
    assert indexed and with_article != before
    response = httpx.delete(f"{url}/documents/{NAME[:-4]}", headers={"X-API-Key": KEY}, timeout=60)
    assert response.status_code == 200
    assert _on_disk(settings) == (False, before)
    process.kill()
    process.wait()

    outcomes: Counter[str] = Counter()
    for i in range(KILLS):
        process, url = _serve(settings, log, db)
        outcome = {}
        upload = threading.Thread(target=_upload, args=(url, data, outcome))
        upload.start()
        time.sleep(upload_seconds * 1.2 * i / (KILLS - 1))  # from when it is sent to after its answer
        process.send_signal(signal.SIGKILL)
        process.wait()
        upload.join(timeout=60)
        _settled(db)

        stored = (corpus / NAME).exists()
        visible = {p.name for p in corpus.iterdir() if not p.name.startswith(".")}
        assert visible == seeds | ({NAME} if stored else set()), visible
        if stored:
            assert (corpus / NAME).read_bytes() == data  # the whole file, never a part of it
        # a kill while the file is written leaves atomic_path's temporary file, which the loader skips
        assert all(p.name.startswith(".tmp-") for p in corpus.iterdir() if p.name.startswith("."))
        assert {d.path for d in load_corpus(corpus).documents} == visible  # leftovers are not read

        indexed, answers = _on_disk(settings)
        assert answers == (with_article if indexed else before)  # the index there answers as before
        assert stored or not indexed
        assert indexed or outcome.get("status") != 201  # an answered upload is in the index
        if db is None:  # half-written builds are hidden .tmp-* folders the loader never reads
            build = current_build(index)
            assert build is not None and build.is_dir() and not build.name.startswith(".")
        outcomes[
            "completed" if outcome.get("status") == 201
            else "indexed, answer lost" if indexed
            else "stored, not yet indexed" if stored
            else "not stored"
        ] += 1  # fmt: skip

        restarted = _restart(settings)  # a restarted server catches up with the corpus
        assert set(restarted.snapshot.manifest["files"]) == visible
        assert [restarted.ask(q).answer for q in QUESTIONS] == (with_article if stored else before)
        restarted.close()
        if i < KILLS - 1:  # back to the seeds, as `rag index` does (on a shared database a server's start
            (corpus / NAME).unlink(missing_ok=True)  # leaves what its folder lacks: another's upload)
            reset = build_pipeline(settings, WordsEmbedder())
            reset.update_index(whole=True)
            reset.close()

    print(f"\n{KILLS} kills during uploads ({store_kind} store): {dict(outcomes)}")
    assert outcomes["completed"] < KILLS // 2, outcomes  # most kills landed inside the upload
    _check_rag_serve_agrees(corpus, index, tmp_path, with_article if stored else before, db)


def _check_rag_serve_agrees(
    corpus: Path, index: Path, tmp_path: Path, expected: list[str], db: str | None = None
) -> None:
    """The real `rag serve` started on what the last kill left: it serves exactly the corpus."""
    with _rag_serve(corpus, index, tmp_path / "serve.log", db) as url:
        paths = {d["path"] for d in httpx.get(f"{url}/documents", timeout=30).json()["documents"]}
        assert paths == {p.name for p in corpus.iterdir() if not p.name.startswith(".")}
        assert _ask_all(url) == expected


@contextmanager
def _rag_serve(corpus: Path, index: Path, log: Path, db: str | None = None) -> Iterator[str]:
    port = free_port()
    env = {**os.environ, "RAG_MODEL": "test:words", "GRADIO_ANALYTICS_ENABLED": "False",
           "RAG_COMPOSER_MODEL": str(WORDS_MODEL), **store_env(db)}  # fmt: skip
    cmd = [sys.executable, "-m", "rag.cli", "serve", "--port", str(port), "--corpus", str(corpus),
           "--index", str(index)]  # fmt: skip
    with open(log, "wb") as out:
        process = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=out)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url, process, log, timeout=180)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


def _ask_all(url: str) -> list[str]:
    return [httpx.post(f"{url}/ask", json={"question": q}, timeout=30).json()["answer"] for q in QUESTIONS]


# --- a damaged index at start


def _flip_a_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


DAMAGE = {
    "a flipped byte in the vectors": lambda build: _flip_a_byte(build / "chunks.npy"),
    "a truncated chunk store": lambda build: (build / "store.json").write_bytes(
        (build / "store.json").read_bytes()[:1000]
    ),
    "a missing lexical index file": lambda build: min((build / "bm25").iterdir()).unlink(),
    "a manifest that is not JSON": lambda build: (build / "manifest.json").write_text("{not json"),
    "CURRENT naming no build": lambda build: (build.parent.parent / "CURRENT").write_text("20990101-dead\n"),
    "an empty CURRENT": lambda build: (build.parent.parent / "CURRENT").write_text(""),
}


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_the_server_rebuilds_a_damaged_index_at_start(
    fake_settings: Settings, caplog: pytest.LogCaptureFixture, damage: str
) -> None:
    with TestClient(
        create_app(fake_settings, build_pipeline(fake_settings, WordsEmbedder())), base_url="http://127.0.0.1"
    ) as client:
        expected = [client.post("/ask", json={"question": q}).json()["answer"] for q in QUESTIONS]
    index = Path(fake_settings.index.index_dir)
    damaged = current_build(index)
    assert damaged is not None
    DAMAGE[damage](damaged)

    caplog.set_level(logging.WARNING)
    with TestClient(
        create_app(fake_settings, build_pipeline(fake_settings, WordsEmbedder())), base_url="http://127.0.0.1"
    ) as client:
        assert client.get("/health").json()["status"] == "ready"
        assert [client.post("/ask", json={"question": q}).json()["answer"] for q in QUESTIONS] == expected
    assert current_build(index) != damaged  # a new build, not the damaged one
    load_snapshot(index)  # and it verifies
    assert "run `rag index`" in caplog.text, caplog.text


def test_rag_serve_rebuilds_damaged_vectors_at_start(seed_corpus: Path, tmp_path: Path) -> None:
    index = tmp_path / "index"
    pipeline = _restart(_settings(seed_corpus, index))
    expected = [pipeline.ask(q).answer for q in QUESTIONS]
    damaged = current_build(index)
    assert damaged is not None
    _flip_a_byte(damaged / "chunks.npy")
    log = tmp_path / "serve.log"
    with _rag_serve(seed_corpus, index, log) as url:
        answers = _ask_all(url)
    assert answers == expected
    assert current_build(index) != damaged
    text = log.read_text()
    assert f"{damaged / 'chunks.npy'} is damaged: run `rag index`" in text, text[-2000:]
