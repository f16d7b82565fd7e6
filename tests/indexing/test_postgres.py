"""The postgres store beyond the shared contract: the same answers as the local store, transactions, two
servers on one database, a database that goes down and comes back, HNSW, migrations.

All run against real embedded PostgreSQL servers (tests/conftest.py ``pg_server``: one per session)."""

from __future__ import annotations

import json
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import astuple
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from rag import cli
from rag.embedding.fake import WordsEmbedder
from rag.errors import DocumentExistsError, StoreUnavailableError
from rag.http.app import create_app
from rag.indexing import pg_rows
from rag.indexing.local import LocalStore
from rag.indexing.pg_db import MIGRATIONS, Database, schema_version
from rag.indexing.pg_server import EmbeddedServer, start_replica
from rag.indexing.pg_snapshot import PgSnapshot
from rag.indexing.postgres import PostgresStore
from rag.pipeline import Pipeline, build_pipeline
from rag.retrieval.followup import Turn
from rag.settings import Settings
from rag.types import Answer

from ..conftest import BENCH, DATA, on_store, outside_pytest_tmp
from ..formats import news_pdf

pytestmark = pytest.mark.postgres
QUESTIONS = json.loads((DATA / "seed_questions.json").read_text(encoding="utf-8"))


def _on_postgres(settings: Settings, url: str | None, index_dir: Path) -> Settings:
    """On the database at ``url``, or without one on an embedded server under ``index_dir``."""
    return on_store(settings, url, store="postgres", index_dir=index_dir)


def _same_answer(a: Answer, b: Answer) -> None:
    assert (a.answer, a.abstained, a.language, a.resolved_question) == (
        b.answer,
        b.abstained,
        b.language,
        b.resolved_question,
    )
    assert [astuple(c)[:-1] for c in a.citations] == [astuple(c)[:-1] for c in b.citations]
    assert [(p.doc_id, p.start, p.end, p.focus_start) for p in a.passages] == [
        (p.doc_id, p.start, p.end, p.focus_start) for p in b.passages
    ]
    assert a.confidence == pytest.approx(b.confidence, abs=1e-5)
    assert [p.score for p in a.passages] == pytest.approx([p.score for p in b.passages], abs=1e-5)


def test_seed_questions_get_the_same_answers_from_both_stores(
    fake_settings: Settings, pg_url: str, tmp_path: Path
) -> None:
    local = build_pipeline(fake_settings, WordsEmbedder())
    pg = build_pipeline(_on_postgres(fake_settings, pg_url, tmp_path / "pg-index"), WordsEmbedder())
    try:
        asked = 0
        for group in ("answerable", "unanswerable"):
            for q in QUESTIONS[group]:
                _same_answer(local.ask(q["question"]), pg.ask(q["question"]))
                asked += 1
        for q in QUESTIONS["followups"]:
            history = [Turn("user", h) for h in q["history"]]
            _same_answer(local.ask(q["question"], history=history), pg.ask(q["question"], history=history))
            asked += 1
        assert asked == 93
    finally:
        pg.close()


def test_a_failed_update_leaves_the_previous_state(seed_corpus: Path, pg_url: str, tmp_path: Path) -> None:
    store = PostgresStore(tmp_path / "index", pg_url, 200, 1, 25_000)
    try:
        before, _ = store.update(seed_corpus, WordsEmbedder())
        (seed_corpus / "neu.md").write_text("Wale sind groß. Wale schwimmen.", encoding="utf-8")
        (seed_corpus / "000_ec495bea3a2a83c6.md").unlink()  # a removal in the same update

        class Failing(WordsEmbedder):
            def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
                raise RuntimeError("the model crashed mid-update")

        with pytest.raises(RuntimeError):
            store.update(seed_corpus, Failing())
        after = store.load()
        assert after.build_id == before.build_id and set(after.documents) == set(before.documents)
        assert [c.text for c in after.chunks] == [c.text for c in before.chunks]
    finally:
        store.close()


def test_a_new_corpus_language_reanalyses_without_re_embedding(
    seed_corpus: Path, pg_url: str, tmp_path: Path
) -> None:
    store = PostgresStore(tmp_path / "index", pg_url, 200, 1, 25_000)
    try:
        store.update(seed_corpus, WordsEmbedder())
        for n in range(3):  # English articles outnumber the two German ones: the analyser turns English
            text = f"---\nlanguage: en\n---\nThe whale number {n} swims in the cold ocean.\n"
            (seed_corpus / f"en{n}.md").write_text(text, encoding="utf-8")
        embedder = WordsEmbedder()
        snap, report = store.update(seed_corpus, embedder)
        assert snap.analyzer.language == "en" and embedder.calls == 3 and report.reused_files == 2
        want = next(i for i, c in enumerate(snap.chunks) if "Präzisionswaffen" in c.text)
        assert int(np.argmax(snap.lexical_scores("Präzisionswaffen"))) == want
    finally:
        store.close()


def test_two_servers_on_one_database_answer_each_others_uploads(fake_settings: Settings, pg_url: str) -> None:
    settings = _on_postgres(fake_settings, pg_url, fake_settings.index.index_dir)
    first = build_pipeline(settings, WordsEmbedder())
    second = build_pipeline(settings, WordsEmbedder())
    try:
        first.update_index()
        second.update_index()
        build = second.snapshot.build_id
        text = "---\ntitle: Wale\n---\nDer Blauwal ist das größte Tier der Erde. Er frisst Krill.\n"
        doc = first.add_document("wale.md", text.encode())
        assert doc.doc_id in second.snapshot.documents and second.snapshot.build_id != build
        answer = second.ask("Welches Tier ist das größte der Erde?")
        assert answer.citations and answer.citations[0].doc_id == doc.doc_id
        first.delete_document(doc.doc_id)
        assert doc.doc_id not in {d.doc_id for d in second.documents()}
    finally:
        first.close()
        second.close()


def test_servers_with_folders_of_their_own_keep_each_others_uploads(
    fake_settings: Settings, pg_url: str, tmp_path: Path
) -> None:
    """On a database named by RAG_DATABASE_URL, an upload, a delete and a server's start change only the
    documents they name or hold: a server whose folder lacks another's upload keeps it, answers from it and
    can delete it; `rag index` (whole) makes the database its own folder's."""
    other = tmp_path / "other-corpus"
    shutil.copytree(fake_settings.index.corpus_dir, other)
    one = _on_postgres(fake_settings, pg_url, tmp_path / "one")
    two = one.updated(corpus_dir=other, index_dir=tmp_path / "two")
    first, second = build_pipeline(one, WordsEmbedder()), build_pipeline(two, WordsEmbedder())
    whale = "---\ntitle: Wale\n---\nDer Blauwal ist das größte Tier der Erde. Er frisst Krill.\n"
    ice = "---\ntitle: Eis\n---\nDas Eis der Arktis schmilzt jeden Sommer schneller.\n"
    try:
        first.warm_up()
        second.warm_up()
        assert first.add_document("wale.md", whale.encode()).doc_id == "wale"
        assert second.add_document("eis.md", ice.encode()).doc_id == "eis"
        second.close()
        second = build_pipeline(two, WordsEmbedder())  # a restart: its folder lacks wale.md
        second.warm_up()
        assert {"wale", "eis"} <= set(second.snapshot.documents) and not (other / "wale.md").exists()
        assert second.ask("Welches Tier ist das größte der Erde?").citations[0].doc_id == "wale"
        with pytest.raises(DocumentExistsError):  # the id is the other server's article's
            second.add_document("wale.md", b"Wale singen.\n")
        second.delete_document("wale")  # held in the other server's folder only
        assert "wale" not in first.snapshot.documents and "eis" in first.snapshot.documents
        first.update_index(whole=True)  # `rag index` on the first server: its folder, nothing else
        assert "eis" not in second.snapshot.documents
        assert set(second.snapshot.documents) == {p.stem for p in Path(one.index.corpus_dir).iterdir()}
    finally:
        first.close()
        second.close()


def _same_snapshot(a: PgSnapshot, b: PgSnapshot) -> None:
    assert a.generation == b.generation and a.documents == b.documents and a.versions == b.versions
    assert a.chunks == b.chunks and a.sentences == b.sentences and a.sentence_doc == b.sentence_doc
    assert a.chunk_ids.tolist() == b.chunk_ids.tolist() and a.sentence_ids.tolist() == b.sentence_ids.tolist()


def test_a_server_reads_only_the_documents_that_changed(
    fake_settings: Settings, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After another process commits, a server's next snapshot reads the new document versions alone and
    takes the rest from the snapshot it has; it equals a snapshot read whole, whatever moved (a document
    added before the others, one changed, one removed, two commits at once)."""
    corpus = Path(fake_settings.index.corpus_dir)
    settings = _on_postgres(fake_settings, pg_url, fake_settings.index.index_dir)
    writer, reader = build_pipeline(settings, WordsEmbedder()), build_pipeline(settings, WordsEmbedder())
    read: list[int] = []
    read_versions = pg_rows._read_versions

    def counted(conn: object, vids: list[int]) -> object:
        read.append(len(vids))
        return read_versions(conn, vids)  # type: ignore[arg-type]

    monkeypatch.setattr(pg_rows, "_read_versions", counted)
    whale, ice, seed = corpus / "0-wale.md", corpus / "z-eis.md", sorted(corpus.iterdir())[0]
    steps: list[tuple[list[Callable[[], object]], int]] = [  # the changes, each a commit; versions to read
        ([lambda: whale.write_text("# Wale\n\nWale sind Säugetiere. Blauwale sind groß.\n")], 1),
        ([lambda: whale.write_text("# Wale\n\nWale schwimmen im Meer.\n")], 1),
        ([seed.unlink], 0),
        ([lambda: ice.write_text("# Eis\n\nEis schmilzt in der Sonne.\n"), whale.unlink], 1),
    ]
    try:
        writer.update_index()
        assert reader.snapshot.build_id == writer.snapshot.build_id
        for changes, fresh in steps:
            for change in changes:
                change()
                writer.update_index(whole=True)  # as `rag index` does
            read.clear()
            snap = reader.snapshot
            assert read == [fresh]
            whole = PostgresStore(Path(settings.index.index_dir), pg_url, 200, 1, 25_000)
            try:
                _same_snapshot(snap, whole.load())
            finally:
                whole.close()
        answer = reader.ask("Was schmilzt in der Sonne?")
        assert answer.citations and answer.citations[0].doc_id == "z-eis"
    finally:
        writer.close()
        reader.close()


def test_a_database_that_is_down_answers_503_and_one_cli_line_then_resumes(
    fake_settings: Settings,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The product's own embedded server (no URL), stopped and started under a running API."""
    with outside_pytest_tmp() as folder:
        _down_and_up(_on_postgres(fake_settings, None, folder / "index"), capsys, monkeypatch)


def _down_and_up(
    settings: Settings, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    pipeline = build_pipeline(settings, WordsEmbedder())
    try:
        pipeline.update_index()
        store = pipeline.store
        assert isinstance(store, PostgresStore) and store.server is not None
        assert store.server.pgdata == (settings.index.index_dir / "pgdata").resolve()
        url = store.server.url()
        with TestClient(create_app(settings, pipeline), base_url="http://127.0.0.1") as client:
            question = {"question": "Wer ist der russische UN-Botschafter?"}
            assert client.post("/ask", json=question).status_code == 200
            store.server.stop()
            down = client.post("/ask", json=question)
            assert down.status_code == 503 and "database is unavailable" in down.json()["detail"]
            assert "Traceback" not in down.text
            _cli_fails_in_one_line(url, capsys, monkeypatch)
            store.server.start()
            assert client.post("/ask", json=question).status_code == 200
    finally:
        pipeline.close()


def _cli_fails_in_one_line(
    url: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RAG_STORE", "postgres")
    monkeypatch.setenv("RAG_DATABASE_URL", url)
    monkeypatch.setenv("RAG_MODEL", "test:words")
    monkeypatch.setattr(sys, "argv", ["rag", "ask", "Wer ist der russische UN-Botschafter?"])
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_:
        cli.main()
    err = capsys.readouterr().err.strip()
    assert exit_.value.code == 1 and len(err.splitlines()) == 1
    assert err.startswith("error: the index database is unavailable")


def test_approximate_search_above_the_threshold_uses_hnsw(
    seed_corpus: Path, pg_url: str, tmp_path: Path
) -> None:
    exact = LocalStore(tmp_path / "local", 200, 1, approximate_above=25_000)
    store = PostgresStore(tmp_path / "index", pg_url, 200, 1, approximate_above=0)
    try:
        snap, _ = store.update(seed_corpus, WordsEmbedder())
        want, _ = exact.update(seed_corpus, WordsEmbedder())
        assert snap.approximate
        with store.db.connection() as conn:
            assert conn.execute(
                "SELECT count(*) FROM pg_indexes WHERE indexname LIKE 'rag_chunks_hnsw%'"
            ).fetchone()
        for question in ("Präzisionswaffen Nordkorea", "Wer ist der russische UN-Botschafter?"):
            vector = WordsEmbedder().embed_queries([question])[0]
            assert snap.dense_search(vector, 3)[0] == want.dense_search(vector, 3)[0]
    finally:
        store.close()


def test_a_read_replica_answers_and_sees_uploads_on_the_primary(
    fake_settings: Settings, pg_server: EmbeddedServer, pg_url: str
) -> None:
    """A streaming replica made with pg_basebackup serves questions; an upload on the primary reaches it."""
    primary = build_pipeline(
        _on_postgres(fake_settings, pg_url, fake_settings.index.index_dir), WordsEmbedder()
    )
    with outside_pytest_tmp() as folder:
        primary.update_index()
        replica_server = start_replica(pg_server, folder)
        replica_url = replica_server.url(pg_url.split("@/", 1)[1].split("?")[0])
        replica = build_pipeline(_on_postgres(fake_settings, replica_url, folder / "index"), WordsEmbedder())
        try:
            replica.update_index()  # up to date: nothing to write, which a replica could not
            assert replica.ask("Wer ist der russische UN-Botschafter?").citations
            text = "---\ntitle: Wale\n---\nDer Blauwal ist das größte Tier der Erde. Er frisst Krill.\n"
            doc = primary.add_document("wale.md", text.encode())
            deadline = time.monotonic() + 10
            while doc.doc_id not in replica.snapshot.documents and time.monotonic() < deadline:
                time.sleep(0.05)  # replication lag
            assert replica.ask("Welches Tier ist das größte der Erde?").citations[0].doc_id == doc.doc_id
        finally:
            replica.close()
            primary.close()
            replica_server.close()


def test_migrations_are_versioned_and_run_once(pg_url: str) -> None:
    first, second = Database(pg_url), Database(pg_url)
    try:
        assert schema_version(first) == len(MIGRATIONS) == schema_version(second)
    finally:
        first.close()
        second.close()


_COUNTED_DF = """
SELECT p.kind, p.term, count(*) FROM rag_postings p JOIN rag_chunks c ON c.id = p.chunk
WHERE c.born <= %(g)s AND (c.died IS NULL OR c.died > %(g)s) GROUP BY p.kind, p.term
"""
_KEPT_DF = """
SELECT DISTINCT ON (kind, term) kind, term, df FROM rag_terms WHERE generation <= %(g)s
ORDER BY kind, term, generation DESC
"""


def _document_frequencies(db: Database, generation: int) -> tuple[dict[tuple[str, str], int], ...]:
    """Each term's document frequency in ``generation``: counted from the postings, and as kept."""
    with db.connection() as conn:
        counted = {(k, t): n for k, t, n in conn.execute(_COUNTED_DF, {"g": generation}).fetchall()}
        kept = {(k, t): n for k, t, n in conn.execute(_KEPT_DF, {"g": generation}).fetchall() if n}
    return counted, kept


def _statistics(db: Database, g: int, counted: bool = False) -> tuple[int, ...]:
    """A generation's BM25 statistics as its commit kept them (from the one before), or counted anew."""
    sql = (
        "SELECT (SELECT row(count(*), sum(word_length), sum(gram_length)) FROM rag_chunks c WHERE {live}), "
        "(SELECT count(*) FROM rag_sentences s JOIN rag_documents c ON c.vid = s.vid WHERE {live})"
    ).format(live="c.born <= %(g)s AND (c.died IS NULL OR c.died > %(g)s)")
    if not counted:
        sql = "SELECT row(chunks, word_length, gram_length), sentences FROM rag_generations "
        sql += "WHERE generation = %(g)s"
    with db.connection() as conn:
        row = conn.execute(sql, {"g": g}).fetchone()
    assert row is not None
    return (*(int(v) for v in row[0]), int(row[1]))


def test_document_frequencies_are_kept_per_generation(fake_settings: Settings, pg_url: str) -> None:
    """rag_terms, which BM25 reads instead of counting postings, equals the count in the latest generation
    and in the one before (a reader may still be pinned to it) through additions, changes and removals,
    and keeps at most three rows a term."""
    corpus = Path(fake_settings.index.corpus_dir)
    settings = _on_postgres(fake_settings, pg_url, fake_settings.index.index_dir)
    pipeline = build_pipeline(settings, WordsEmbedder())
    store = pipeline.store
    assert isinstance(store, PostgresStore)
    try:
        pipeline.update_index()
        steps = [
            lambda: (corpus / "wale.md").write_text("# Wale\n\nWale sind Säugetiere. Blauwale sind groß.\n"),
            lambda: (corpus / "wale.md").write_text("# Wale\n\nWale schwimmen im Meer.\n"),
            lambda: next(p for p in sorted(corpus.iterdir()) if p.name != "wale.md").unlink(),
            lambda: (corpus / "wale.md").unlink(),
        ]
        for step in steps:
            step()
            pipeline.update_index(whole=True)  # as `rag index` does: removals too
            generation = store.load().generation.number
            for g in (generation, generation - 1):
                counted, kept = _document_frequencies(store.db, g)
                assert counted == kept, g
            assert _statistics(store.db, generation) == _statistics(store.db, generation, counted=True)
        with store.db.connection() as conn:
            rows = "SELECT max(n) FROM (SELECT count(*) AS n FROM rag_terms GROUP BY kind, term)"
            most = conn.execute(rows).fetchone()
            assert most is not None and most[0] <= 3
    finally:
        pipeline.close()


def test_a_schema_2_database_migrates_and_scores_the_same(fake_settings: Settings, pg_url: str) -> None:
    """Migration 3 (postings with lengths under a covering key, document frequencies per generation) on a
    database written by schema 2 keeps every BM25 score."""
    settings = _on_postgres(fake_settings, pg_url, fake_settings.index.index_dir)
    pipeline = build_pipeline(settings, WordsEmbedder())
    questions = [q["question"] for q in QUESTIONS["answerable"][:8]]
    old = pipeline.store
    assert isinstance(old, PostgresStore)
    try:
        pipeline.update_index()
        snap = old.load()
        before = [(snap.lexical_scores(q), snap.lexical_scores(q, words=True)) for q in questions]
        with old.db.connection() as conn, conn.transaction():  # back to what schema 2 wrote
            conn.execute("ALTER TABLE rag_postings DROP CONSTRAINT rag_postings_pkey")
            conn.execute("ALTER TABLE rag_postings ADD PRIMARY KEY (kind, term, chunk)")
            conn.execute("ALTER TABLE rag_postings DROP COLUMN length")
            conn.execute("DROP TABLE rag_terms")
            conn.execute("DROP INDEX rag_chunks_born, rag_chunks_died")
            conn.execute("ALTER TABLE rag_documents DROP COLUMN pages")
            conn.execute("DELETE FROM rag_schema WHERE version >= 3")
    finally:
        pipeline.close()
    db, store = Database(pg_url), PostgresStore(fake_settings.index.index_dir, pg_url, 200, 1, 25_000)
    try:
        assert schema_version(db) == len(MIGRATIONS)
        snap = store.load()
        after = [(snap.lexical_scores(q), snap.lexical_scores(q, words=True)) for q in questions]
        for (grams, words), (grams2, words2) in zip(before, after, strict=True):
            assert grams.any() and np.allclose(grams, grams2) and np.allclose(words, words2)
    finally:
        db.close()
        store.close()


def test_a_schema_3_database_reads_its_pdfs_again_for_their_pages(
    fake_settings: Settings, pg_url: str
) -> None:
    """Schema 3 kept no page starts; migration 4 makes the next update read the PDFs again, so that their
    citations name the page as on the local store (tests/http/test_formats_api.py runs on both)."""
    (Path(fake_settings.index.corpus_dir) / "hafen.pdf").write_bytes(news_pdf())
    settings = _on_postgres(fake_settings, pg_url, fake_settings.index.index_dir)
    question = "Wann wurde der Leuchtturm auf Neuwerk fertiggestellt?"
    first = build_pipeline(settings, WordsEmbedder())
    try:
        first.update_index()
        assert first.ask(question).citations[0].page == 2
        with first.store.db.connection() as conn, conn.transaction():  # type: ignore[attr-defined]
            conn.execute("ALTER TABLE rag_documents DROP COLUMN pages")  # back to what schema 3 wrote
            conn.execute("DELETE FROM rag_schema WHERE version >= 4")
    finally:
        first.close()
    second = build_pipeline(settings, WordsEmbedder())
    try:
        report = second.update_index()
        assert (report.embedded_files, report.reused_files) == (1, 2)  # the PDF; the seed articles kept
        cited = second.ask(question).citations[0]
        assert (cited.doc_id, cited.page) == ("hafen", 2)
    finally:
        second.close()


def test_pruned_bm25_gives_the_exact_scores_of_the_best_chunks(
    fake_settings: Settings, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """MaxScore pruning (``lexical_scores(…, top=k, rows=…)``) returns exactly the full query's scores
    for the k best chunks and for the rows asked for, whichever round it ends in, and 0 elsewhere."""
    corpus = Path(fake_settings.index.corpus_dir)
    data = json.loads((BENCH / "xquad-de-dev.json").read_text(encoding="utf-8"))["data"]
    for i, article in enumerate(data[:12]):
        text = "\n\n".join(p["context"] for p in article["paragraphs"])
        (corpus / f"xquad-{i:02d}.txt").write_text(text, encoding="utf-8")
    settings = _on_postgres(fake_settings, pg_url, fake_settings.index.index_dir).updated(chunk_tokens=64)
    pipeline = build_pipeline(settings, WordsEmbedder())
    try:
        pipeline.update_index()
        snap = pipeline.snapshot
        assert isinstance(snap, PgSnapshot) and len(snap.chunks) > 200
        snap.prune_above = 0  # prune at this size too (the default starts at 25,000 chunks)
        questions = [q["question"] for a in data[:12] for p in a["paragraphs"] for q in p["qas"]][::9]
        rng = np.random.default_rng(7)
        queries: list[int] = []
        query = PgSnapshot._query
        monkeypatch.setattr(PgSnapshot, "_query", lambda *a: (queries.append(1), query(*a))[1])
        rounds = set()
        for top in (1, 5, 50):
            for question in questions:
                full = snap.lexical_scores(question)
                rows = rng.choice(len(snap.chunks), 20, replace=False)
                queries.clear()
                pruned = snap.lexical_scores(question, top=top, rows=rows)
                rounds.add(len(queries))
                best = np.argsort(-full, kind="stable")[:top]
                assert np.allclose(pruned[best], full[best], rtol=1e-6), (top, question)
                assert np.allclose(pruned[rows], full[rows], rtol=1e-6), (top, question)
                assert np.all((pruned == 0) | np.isclose(pruned, full, rtol=1e-6))
        assert {2, 3} <= rounds  # one round and the lookup, or two rounds and the lookup
    finally:
        pipeline.close()


def test_an_unreachable_url_is_a_clear_error(tmp_path: Path) -> None:
    store = PostgresStore(tmp_path, f"postgresql://postgres@/postgres?host={tmp_path}", 200, 1, 25_000)
    with pytest.raises(StoreUnavailableError, match="database is unavailable"):
        store.load()


def test_pipelines_close_their_store(fake_pipeline: Pipeline) -> None:
    fake_pipeline.close()  # the local store has nothing to release, and says so by not failing
