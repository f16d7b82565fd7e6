"""Shared fixtures. Tests are offline: any connection outside loopback fails the test."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr

from rag.embedding.fake import WordsEmbedder
from rag.indexing.pg_server import EmbeddedServer, remove_server_user, server_user_exists, start_embedded
from rag.pipeline import Pipeline, build_pipeline
from rag.settings import Settings

# Gradio reads this at import: the tests' own Gradio apps cache into a folder of this run, never /tmp/gradio
# (the servers the tests start put theirs under their index folder; test_hardening_chat checks /tmp/gradio).
GRADIO_TMP = os.environ["GRADIO_TEMP_DIR"] = tempfile.mkdtemp(prefix="rag-tests-gradio-")

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "corpus"
DATA = Path(__file__).resolve().parent / "data"
SEEDS = DATA / "seeds"  # the seed articles as they arrived, before front matter was added
BENCH = ROOT / "bench" / "data"  # the XQuAD development half
# the composer model for the bag-of-words embedder (the shipped one is fitted on a real model's cosines)
WORDS_MODEL = DATA / "composer_model_words.json"
MINILM = "sentence-transformers/all-MiniLM-L6-v2"

_real_connect = socket.socket.connect


def _guarded_connect(self: socket.socket, address: object) -> None:
    host = address[0] if isinstance(address, tuple) else address
    if isinstance(host, str) and not (
        host.startswith("127.") or host in ("localhost", "::1", "0.0.0.0") or self.family == socket.AF_UNIX
    ):
        raise RuntimeError(f"a test tried to reach the network ({address!r})")
    _real_connect(self, address)  # type: ignore[arg-type]


@pytest.fixture(autouse=True)
def _block_network(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(socket.socket, "connect", _guarded_connect)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("GRADIO_ANALYTICS_ENABLED", "False")


@pytest.fixture(autouse=True, scope="session")
def _gradio_tmp() -> Iterator[None]:
    yield
    shutil.rmtree(GRADIO_TMP, ignore_errors=True)


@pytest.fixture(autouse=True, scope="session")
def _lexicon_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Word lists (rag.text.lexicon) compile into a folder of this session, not the user's cache."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("cache")))
        yield


@pytest.fixture
def seed_corpus(tmp_path: Path) -> Path:
    """A private copy of the default corpus (the two seed articles with their front matter)."""
    target = tmp_path / "corpus"
    shutil.copytree(CORPUS, target)
    return target


# Both stores, for tests that run on each:
# `@pytest.mark.parametrize("store_kind", BOTH_STORES, indirect=True)` makes ``fake_settings`` (and all
# built on it) use that store; postgres gets a fresh database on the session's embedded server (``pg_url``).
BOTH_STORES = [pytest.param("local"), pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture
def store_kind(request: pytest.FixtureRequest) -> str:
    """``RAG_STORE`` of ``fake_settings``: local unless a test is parametrised over ``BOTH_STORES``."""
    return str(getattr(request, "param", "local"))


def words_settings(corpus: Path, index: Path, **more: object) -> Settings:
    """Settings for the bag-of-words test embedder over ``corpus``, with its hand-set composer model and no
    word list (tests of the fake pipeline do not depend on a system package; test_lexicon gives one);
    ``more`` overrides any setting by its flat name."""
    fields = {"model": "test:words", "lexicon": "none", "composer_model": WORDS_MODEL, **more}
    return Settings(corpus_dir=corpus, index_dir=index, **fields)  # type: ignore[arg-type]


def on_store(settings: Settings, url: str | None, **more: object) -> Settings:
    """``settings`` on the postgres store at database ``url``, or with no url on the store they name;
    ``more`` changes other settings by their flat names."""
    if url:
        more = {"store": "postgres", "database_url": SecretStr(url), **more}
    return settings.updated(**more) if more else settings


def store_env(url: str | None) -> dict[str, str]:
    """The environment a ``rag`` subprocess needs for the postgres store at ``url`` (nothing without)."""
    return {"RAG_STORE": "postgres", "RAG_DATABASE_URL": url} if url else {}


@pytest.fixture
def fake_settings(
    seed_corpus: Path, tmp_path: Path, store_kind: str, request: pytest.FixtureRequest
) -> Settings:
    settings = words_settings(seed_corpus, tmp_path / "index")
    return on_store(settings, request.getfixturevalue("pg_url") if store_kind == "postgres" else None)


@pytest.fixture
def fake_pipeline(fake_settings: Settings) -> Iterator[Pipeline]:
    """The real pipeline over the seed corpus with the instant bag-of-words embedder."""
    pipeline = build_pipeline(fake_settings, WordsEmbedder())
    yield pipeline
    pipeline.close()


@pytest.fixture(scope="session")
def pg_server() -> Iterator[EmbeddedServer]:
    """One embedded PostgreSQL for the session's postgres tests (~4 s to create); stopped at the end, and
    the system user it runs as under root removed again if this session created it."""
    had_user = server_user_exists()
    with outside_pytest_tmp() as folder:
        server = start_embedded(folder)
        try:
            yield server
        finally:
            server.close()
            if not had_user:
                remove_server_user()


@contextlib.contextmanager
def outside_pytest_tmp() -> Iterator[Path]:
    """A folder for a server's data outside /tmp/pytest-of-<user>, removed afterwards: every pytest run
    resets that folder to mode 700, which would lock out the unprivileged user the server runs as under
    root (another session's pytest run on the same machine does it at any moment)."""
    folder = Path(tempfile.mkdtemp(prefix="rag-tests-pg-"))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@contextlib.contextmanager
def fresh_database(server: EmbeddedServer) -> Iterator[str]:
    """The URL of a new database on ``server``, dropped afterwards."""
    import psycopg

    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server.url(), autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    yield server.url(name)
    with psycopg.connect(server.url(), autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture
def pg_url(pg_server: EmbeddedServer) -> Iterator[str]:
    """A fresh database on the session's server, dropped after the test."""
    with fresh_database(pg_server) as url:
        yield url


@pytest.fixture(scope="session")
def e5_models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A models folder holding multilingual-e5-small's conversion, made once for the session's tests."""
    from rag.embedding.e5_convert import ensure_converted

    cache = tmp_path_factory.mktemp("e5-models")
    ensure_converted(cache)
    return cache


@pytest.fixture(scope="session")
def minilm_models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A models folder holding all-MiniLM-L6-v2's ONNX export, made once for the session's tests."""
    from rag.embedding.base import resolve_model_path
    from rag.embedding.onnx_export import ensure_export

    cache = tmp_path_factory.mktemp("minilm-models")
    ensure_export(Path(resolve_model_path(MINILM)), cache, quantize=False)
    return cache


@pytest.fixture(scope="session")
def real_pipeline(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pipeline]:
    """The product as shipped (multilingual-e5-small, converted into its index folder) over a copy of the
    seed corpus; built once per session."""
    base = tmp_path_factory.mktemp("real")
    shutil.copytree(CORPUS, base / "corpus")
    pipeline = build_pipeline(Settings(corpus_dir=base / "corpus", index_dir=base / "index"))
    pipeline.warm_up()
    yield pipeline
