"""The composition root: one :class:`Pipeline` assembled from settings, shared by the CLI, API and UI.

Queries read one immutable :class:`IndexSnapshot` reference; an index update builds a new snapshot and swaps
the reference, so a query never sees half an index and never waits for a build.

At ~310 lines it is a little over the house's ~300: the one place the pipeline is assembled and kept
current (its lifecycle, questions, corpus writes, store choice) reads best whole.
"""

from __future__ import annotations

import functools
import logging
import os
import threading
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from rag.answering.compose import compose
from rag.answering.config import ComposerConfig
from rag.answering.features import QUESTION_FEATURES, RANK_FEATURES
from rag.answering.model import read_model
from rag.embedding.base import Embedder, create_embedder
from rag.errors import BadRequestError, ConfigError, DocumentExistsError, DocumentNotFoundError, IndexError_
from rag.indexing.build import BuildReport
from rag.indexing.local import LocalStore
from rag.indexing.protocol import IndexSnapshot, IndexStore
from rag.ingest.corpus import CorpusWriter
from rag.ingest.loading import doc_id_for, text_hash
from rag.retrieval.filters import resolve as resolve_filters
from rag.retrieval.followup import Turn, resolve_question
from rag.retrieval.hybrid import RetrievalConfig, retrieve
from rag.retrieval.query import Query
from rag.retrieval.terms import translated_query
from rag.settings import Settings
from rag.text.language import detect_language, other_language
from rag.text.lexicon import Lexicon, NoLexicon, Translate, load_lexicon
from rag.types import (
    MAX_QUESTION_CHARS,
    MAX_TOP_K,
    Answer,
    Document,
    DocumentMeta,
    FilterReport,
    Filters,
    Hit,
)

log = logging.getLogger(__name__)


class Pipeline:
    def __init__(self, settings: Settings, embedder: Embedder | None = None) -> None:
        self.settings = settings
        self.embedder = embedder or embedder_for(settings)
        off = frozenset(settings.ablate)
        self.retrieval = RetrievalConfig(**settings.retrieval.model_dump(), words="grams" in off)
        model = None
        if settings.answering.composer_model is not None:
            model = read_model(settings.answering.composer_model, RANK_FEATURES, QUESTION_FEATURES)
        self.composer = ComposerConfig(
            **settings.answering.model_dump(), off=off, model=model, untranslated_model=model
        )
        self.corpus = CorpusWriter(Path(settings.index.corpus_dir))
        self.store = create_store(settings)
        self.lexicon: Lexicon = (
            NoLexicon() if "dictionary" in off else load_lexicon(settings.retrieval.lexicon)
        )
        self._snap: IndexSnapshot | None = None
        self._by_text: tuple[IndexSnapshot, dict[str, Document]] | None = None  # its articles by text
        self._update_lock = threading.Lock()
        self._model_loaded = False
        self.last_build: BuildReport | None = None

    # --- lifecycle
    def warm_up(self, progress: bool = False) -> BuildReport:
        """Load the model and bring the index up to date with the corpus (built if missing); on a shared
        database, the folder's articles are added and updated, and none is removed (:meth:`update_index`)."""
        self.load_model()
        return self.update_index(progress=progress)

    def prepare_lexicon(self) -> None:
        """Compile the word list for questions in the other language than the articles, if it is not yet
        (seconds, once per machine): the server does it in the background at start."""
        corpus = self.snapshot.analyzer.language
        self.lexicon.prepare(other_language(corpus), corpus)

    def load_model(self) -> None:
        self.embedder.warm_up()
        self._model_loaded = True

    def update_index(
        self, progress: bool = False, force: bool = False, workers: int = 1, whole: bool = False
    ) -> BuildReport:
        """Bring the index up to date; ``workers`` > 1 embeds in that many processes (postgres store).
        On a database named by ``RAG_DATABASE_URL`` (:meth:`_scope`), only ``whole`` (``rag index``) removes
        the documents this folder lacks."""
        with self._update_lock:
            if workers > 1:
                return self._parallel_locked(workers, force)
            return self._rebuild_locked(progress=progress, force=force, only=self._scope(whole))

    def _scope(self, whole: bool) -> list[str] | None:
        """The corpus paths an update is about. None, all of them, where the folder owns the index (the
        local store, the embedded database); on a database named by ``RAG_DATABASE_URL``, which servers with
        folders of their own may share, this folder's files unless ``whole``: they are added and updated,
        and the documents the folder lacks (another server's uploads) stay."""
        shared = self.settings.index.store == "postgres" and self.settings.index.database_url is not None
        return self.corpus.paths() if shared and not whole else None

    def _parallel_locked(self, workers: int, force: bool) -> BuildReport:
        update = getattr(self.store, "update_parallel", None)
        if update is None:
            raise ConfigError("parallel indexing (--workers) needs RAG_STORE=postgres")
        # the cores shared out among the workers (RAG_THREADS=0: one thread per core in all)
        threads = self.settings.embedding.threads or max(1, (os.cpu_count() or 1) // workers)
        factory = functools.partial(embedder_for, self.settings, threads)
        corpus = Path(self.settings.index.corpus_dir)
        self._snap, self.last_build = update(corpus, self.embedder, factory, workers, force)
        return self.last_build

    @property
    def snapshot(self) -> IndexSnapshot:
        """The state to answer from: the last loaded one, unless another process sharing the store has
        committed since (checked on every call: one query for the postgres store, nothing locally)."""
        snap = self._snap
        if snap is None:
            self.update_index()
            snap = self._snap
        if snap is None:  # pragma: no cover - update_index always sets it or raises
            raise IndexError_("the index is not loaded")
        fresh = self.store.current(snap)
        if fresh is not snap:
            self._snap = snap = fresh
        return snap

    def close(self) -> None:
        """Release the store (its connections, and the embedded database server if it started one)."""
        self.store.close()

    @property
    def ready(self) -> bool:
        """An index snapshot is loaded (the model may not be: see :attr:`model_loaded`)."""
        return self._snap is not None

    @property
    def model_loaded(self) -> bool:
        return self._model_loaded

    # --- questions
    def ask(
        self,
        question: str,
        top_k: int | None = None,
        history: Sequence[Turn] = (),
        filters: Filters | None = None,
    ) -> Answer:
        """Answer ``question`` from the articles ``filters`` leave (all without).

        Raises:
            NothingMatchesError: the filters leave no article (422), rather than an abstention.
        """
        question = _clean_question(question)
        k = top_k or self.settings.retrieval.top_k
        if not 1 <= k <= MAX_TOP_K:
            raise BadRequestError(f"top_k must be between 1 and {MAX_TOP_K}")
        snap = self.snapshot
        started = time.perf_counter()
        query, hits = self.search(snap, question, max(k, self.composer.context_chunks), history, filters)
        retrieved = time.perf_counter()
        answer = compose(snap, query, hits, k, self.composer)
        done = time.perf_counter()
        timings = {
            "retrieve": round((retrieved - started) * 1000, 2),
            "compose": round((done - retrieved) * 1000, 2),
            "total": round((done - started) * 1000, 2),
        }
        scope = query.scope
        report = FilterReport(scope.documents, scope.undated_excluded) if scope else None
        return replace(answer, timings_ms=timings, resolved_question=query.text, filters=report)

    def search(
        self,
        snap: IndexSnapshot,
        question: str,
        depth: int,
        history: Sequence[Turn] = (),
        filters: Filters | None = None,
    ) -> tuple[Query, list[Hit]]:
        """The question as every later stage reads it, and its best ``depth`` chunks in ``snap``."""
        query = self.query(snap, question, history, filters)
        return query, retrieve(snap, query, depth, self.retrieval)

    def query(
        self,
        snap: IndexSnapshot,
        question: str,
        history: Sequence[Turn] = (),
        filters: Filters | None = None,
    ) -> Query:
        """The question resolved against the chat, embedded, its language told and its words translated,
        with the articles its filters leave (resolved first: a filter that leaves none fails at once)."""
        scope = resolve_filters(snap, filters) if filters and filters.active else None
        text = resolve_question(question, history, snap.analyzer)
        vector = self.embedder.embed_queries([text])[0]
        corpus = snap.analyzer.language  # chosen at build time, not recounted per question
        language = detect_language(question, default=corpus)
        translate = self.translator(language, corpus)
        lexical = translated_query(snap, text, translate) if translate else text
        return Query(question, text, vector, language, corpus, lexical, translate, scope)

    def translator(self, source: str, target: str) -> Translate | None:
        """Word translations from the question's language into the articles', when the two differ; a new one
        per question."""
        if source == target or isinstance(self.lexicon, NoLexicon):
            return None
        lexicon = self.lexicon

        @functools.cache  # one question's words: retrieval and the composer both look them up
        def translate(word: str) -> tuple[str, ...]:
            return lexicon.translations(word, source, target)

        return translate

    # --- the corpus
    def documents(self) -> list[Document]:
        return list(self.snapshot.documents.values())

    def document(self, doc_id: str) -> Document:
        return _find(self.snapshot, doc_id)

    def document_entry(self, doc_id: str) -> tuple[Document, int]:
        """A document and its number of chunks, both from the same snapshot."""
        snap = self.snapshot
        return _find(snap, doc_id), sum(1 for d in snap.chunk_doc if d == doc_id)

    def add_document(self, filename: str, data: bytes, meta: DocumentMeta | None = None) -> Document:
        """Store an uploaded article in the corpus and index it; returns it as indexed."""
        with self._update_lock:
            if self._snap is None:  # the duplicate check reads the index
                self._rebuild_locked(only=self._scope(False))
            path = self.corpus.add(
                filename, data, meta, self.settings.server.max_upload_bytes, self._same_text, self._taken
            )
            doc_id = doc_id_for(path)
            try:
                self._rebuild_locked(only=[path])
            except Exception:
                self.corpus.remove(doc_id)
                raise
            if doc_id not in self.snapshot.documents:  # the loader skipped it: the same text is there
                skipped = self.last_build.skipped if self.last_build else []
                reason = next((k.reason for k in skipped if doc_id_for(k.path) == doc_id), "it was skipped")
                self.corpus.remove(doc_id)  # the index never had it, so corpus and index agree again
                raise DocumentExistsError(f"the article was not added: {reason}")
        return self.document(doc_id)

    def _same_text(self, key: str) -> Document | None:
        """The indexed article whose :func:`~rag.ingest.loading.text_hash` is ``key``, if there is one
        (the caller
        holds the update lock, so the snapshot is read directly)."""
        snap = self._snap
        if snap is None:
            return None
        if self._by_text is None or self._by_text[0] is not snap:  # once per snapshot
            self._by_text = (snap, {text_hash(d.text): d for d in snap.documents.values()})
        return self._by_text[1].get(key)

    def _taken(self, doc_id: str) -> bool:
        """An indexed article has this id (on a shared database, maybe another server's upload); the caller
        holds the update lock, as for :meth:`_same_text`."""
        return self._snap is not None and doc_id in self._snap.documents

    def delete_document(self, doc_id: str) -> None:
        """Remove an article from the index and its file from the folder (on a shared database another
        server's folder may hold the file instead: that server's next ``rag index`` would bring it back)."""
        with self._update_lock:
            doc = self.document(doc_id)
            self.corpus.remove(doc_id, missing_ok=True)
            self._rebuild_locked(only=[doc.path])

    def _rebuild_locked(
        self, progress: bool = False, force: bool = False, only: list[str] | None = None
    ) -> BuildReport:
        """Bring the index up to date with the corpus (``only``: these paths of it) and swap it in; the
        caller holds the update lock."""
        corpus = Path(self.settings.index.corpus_dir)
        snap, report = self.store.update(corpus, self.embedder, progress, force, only)
        self._snap = snap
        self.last_build = report
        return report


def _find(snap: IndexSnapshot, doc_id: str) -> Document:
    doc = snap.documents.get(doc_id)
    if doc is None:
        raise DocumentNotFoundError(f"no document with id {doc_id!r}; GET /documents lists them")
    return doc


def _clean_question(question: str) -> str:
    if not isinstance(question, str):
        raise BadRequestError("the question must be text")
    cleaned = "".join(ch if ch.isprintable() or ch in "\t\n" else " " for ch in question)
    cleaned = cleaned.encode("utf-8", "replace").decode("utf-8").strip()
    if not cleaned:
        raise BadRequestError("the question is empty")
    if len(cleaned) > MAX_QUESTION_CHARS:
        raise BadRequestError(f"the question is longer than {MAX_QUESTION_CHARS} characters")
    return cleaned


def embedder_for(settings: Settings, threads: int | None = None) -> Embedder:
    """The embedder the settings name (``threads`` overrides ``RAG_THREADS``, for ingest workers)."""
    e = settings.embedding
    return create_embedder(
        e.model,
        e.device,
        e.batch_size,
        e.offline,
        e.threads if threads is None else threads,
        e.backend,
        Path(settings.index.index_dir) / "models",
    )


def create_store(settings: Settings) -> IndexStore:
    """The index store the settings name (``RAG_STORE``; see :mod:`rag.indexing.protocol`)."""
    ix = settings.index
    if ix.store == "postgres":
        from rag.indexing.postgres import PostgresStore  # psycopg is imported only by those who use it

        url = ix.database_url.get_secret_value() if ix.database_url else None
        return PostgresStore(Path(ix.index_dir), url, ix.chunk_tokens, ix.chunk_overlap, ix.approximate_above)
    return LocalStore(Path(ix.index_dir), ix.chunk_tokens, ix.chunk_overlap, ix.approximate_above)


def build_pipeline(settings: Settings, embedder: Embedder | None = None) -> Pipeline:
    """The one place the pipeline is assembled (the API, the UI and the CLI all call this)."""
    return Pipeline(settings, embedder)
