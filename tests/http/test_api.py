"""The HTTP API through FastAPI's TestClient with the lifespan running, over the bag-of-words embedder."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from rag.embedding.fake import WordsEmbedder
from rag.http.app import create_app
from rag.pipeline import Pipeline, build_pipeline
from rag.settings import Settings

from ..conftest import BOTH_STORES, ROOT

KEY = "s3cret-key"
# the tests of asking, reading, writing and health run on both stores (tests/conftest.py BOTH_STORES)
BOTH = pytest.mark.parametrize("store_kind", BOTH_STORES, indirect=True)
AUTH = {"Authorization": f"Bearer {KEY}"}
ANSWER_KEYS = {
    "answer",
    "abstained",
    "confidence",
    "language",
    "resolved_question",
    "citations",
    "passages",
    "timings_ms",
    "filters",
    "citation_order",
}
ARTICLE = (
    "Die Stadt Beispielhausen eröffnete im Jahr 1999 ein Museum für Leuchttürme.\n\n"
    "Das Leuchtturmmuseum zeigt 42 Modelle aus aller Welt und zieht jedes Jahr viele Besucher an.\n"
)


@pytest.fixture
def client(fake_pipeline: Pipeline, fake_settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(fake_settings, fake_pipeline), base_url="http://127.0.0.1") as c:
        yield c


@pytest.fixture
def keyed_settings(fake_settings: Settings) -> Settings:
    return fake_settings.updated(api_key=SecretStr(KEY))


@pytest.fixture
def keyed(keyed_settings: Settings) -> Iterator[TestClient]:
    pipeline = build_pipeline(keyed_settings, WordsEmbedder())
    with TestClient(create_app(keyed_settings, pipeline), base_url="http://127.0.0.1") as c:
        yield c
    pipeline.close()


def ask(client: TestClient, question: str, **extra: object) -> dict:
    response = client.post("/ask", json={"question": question, **extra})
    assert response.status_code == 200, response.text
    return response.json()


# --- /ask


@BOTH
def test_ask_answers_with_citations_whose_offsets_point_into_the_document(client: TestClient) -> None:
    body = ask(client, "Wann wurde Nordkorea gegründet?")
    assert set(body) == ANSWER_KEYS
    assert 0.0 <= body["confidence"] <= 1.0 and not body["abstained"]
    assert set(body["timings_ms"]) == {"retrieve", "compose", "total"}
    assert not body["abstained"] and "1948" in body["answer"] and "[1]" in body["answer"]
    for c in body["citations"]:
        text = client.get(f"/documents/{c['doc_id']}").json()["text"]
        assert text[c["start"] : c["end"]] == c["quote"]
        assert text[c["passage_start"] : c["passage_end"]] == c["passage"]
        assert f"{c['quote']} [{c['n']}]" in body["answer"]
    assert body["resolved_question"] == "Wann wurde Nordkorea gegründet?"
    for p in body["passages"]:
        assert client.get(f"/documents/{p['doc_id']}").json()["text"][p["start"] : p["end"]] == p["text"]
        # the passage's best sentence lies inside it
        assert p["start"] <= p["focus_start"] < p["focus_end"] <= p["end"]


@BOTH
def test_ask_is_the_pipelines_answer(client: TestClient, fake_pipeline: Pipeline) -> None:
    body = ask(client, "Wer ist der russische UN-Botschafter?", top_k=3)
    expected = fake_pipeline.ask("Wer ist der russische UN-Botschafter?", top_k=3).to_dict()
    body.pop("timings_ms"), expected.pop("timings_ms")
    assert body == expected
    assert len(body["passages"]) <= 3


@BOTH
def test_abstention_still_lists_the_closest_passages(client: TestClient) -> None:
    body = ask(client, "Wie hoch ist der Eiffelturm in Paris?")
    assert body["abstained"] and body["citations"] == [] and body["passages"]


@BOTH
def test_follow_up_question_uses_the_history(client: TestClient) -> None:
    first = "Wogegen hat Russland sein Veto im Sicherheitsrat eingelegt?"
    alone = ask(client, "Und wann war das?")
    history = [
        {"role": "user", "content": first},
        {"role": "assistant", "content": ask(client, first)["answer"]},
    ]
    follow = ask(client, "Und wann war das?", history=history)
    assert not follow["abstained"] and "Veto" in follow["citations"][0]["quote"]
    assert follow["answer"] != alone["answer"]
    assert follow["resolved_question"] == f"{first} Und wann war das?"
    assert alone["resolved_question"] == "Und wann war das?"


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({}, "question"),
        ({"question": ""}, "question"),
        ({"question": "   \n\t"}, "question"),
        ({"question": "x" * 2001}, "question"),
        ({"question": 42}, "question"),
        ({"question": "Wer?", "top_k": 0}, "top_k"),
        ({"question": "Wer?", "top_k": 21}, "top_k"),
        ({"question": "Wer?", "top_k": "viele"}, "top_k"),
        ({"question": "Wer?", "history": [{"role": "system", "content": "x"}]}, "history.0.role"),
        ({"question": "Wer?", "history": "Wogegen?"}, "history"),
        ({"question": "Wer?", "topk": 3}, "topk"),
        (["Wer?"], "body"),
    ],
)
def test_bad_ask_requests_are_422_with_a_readable_detail(
    client: TestClient, payload: object, field: str
) -> None:
    response = client.post("/ask", json=payload)
    assert response.status_code == 422
    body = response.json()
    assert isinstance(body["detail"], str) and body["detail"].startswith(f"{field}:")
    assert body["errors"][0]["field"] == field


def test_malformed_json_and_wrong_methods_are_json_4xx(client: TestClient) -> None:
    bad = client.post("/ask", content=b'{"question": ', headers={"content-type": "application/json"})
    assert bad.status_code == 422 and "JSON" in bad.json()["detail"]
    wrong = client.get("/ask")
    assert wrong.status_code == 405 and wrong.json()["detail"]


def test_control_characters_and_unicode_questions_do_not_fail(client: TestClient) -> None:
    for question in ("Wann\x00 wurde\x1b Nordkorea gegründet?", "🤔 Nordkorea 金正恩?", "\u202eWer?"):
        assert client.post("/ask", json={"question": question}).status_code == 200


# --- /documents


@BOTH
def test_documents_lists_the_corpus(client: TestClient) -> None:
    body = client.get("/documents").json()
    assert body["count"] == 2 == len(body["documents"])
    first = body["documents"][0]
    assert set(first) >= {"doc_id", "title", "date", "source", "language", "length", "chunks", "path"}
    assert first["title"] == "Russland will die UN-Sanktionen gegen Nordkorea aufweichen"
    assert (first["date"], first["source"], first["language"]) == ("2024-07", "dpa-AFX", "de")
    assert sum(d["chunks"] for d in body["documents"]) == client.get("/health").json()["chunks"]


@BOTH
def test_document_has_its_original_text(client: TestClient, fake_pipeline: Pipeline) -> None:
    doc_id = client.get("/documents").json()["documents"][1]["doc_id"]
    body = client.get(f"/documents/{doc_id}").json()
    assert body["text"] == fake_pipeline.document(doc_id).text and body["length"] == len(body["text"])


@BOTH
def test_unknown_document_is_404_with_a_clear_message(client: TestClient) -> None:
    response = client.get("/documents/no-such-article")
    assert response.status_code == 404
    assert "no-such-article" in response.json()["detail"] and "GET /documents" in response.json()["detail"]


# --- writes and the API key


def test_writes_are_disabled_without_a_configured_key(client: TestClient, seed_corpus: Path) -> None:
    before = sorted(seed_corpus.iterdir())
    upload = client.post("/documents", files={"file": ("a.txt", ARTICLE.encode())}, headers=AUTH)
    delete = client.delete("/documents/000_ec495bea3a2a83c6", headers=AUTH)
    for response in (upload, delete):
        assert response.status_code == 403 and "RAG_API_KEY" in response.json()["detail"]
    assert sorted(seed_corpus.iterdir()) == before


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong"},
        {"X-API-Key": "wrong"},
        {"Authorization": KEY},
        {"X-API-Key": ""},
    ],
)
def test_writes_need_the_right_key(keyed: TestClient, headers: dict[str, str]) -> None:
    upload = keyed.post("/documents", files={"file": ("a.txt", ARTICLE.encode())}, headers=headers)
    delete = keyed.delete("/documents/000_ec495bea3a2a83c6", headers=headers)
    for response in (upload, delete):
        assert response.status_code == 401 and response.json()["detail"]
        assert response.headers["www-authenticate"] == "Bearer"
    assert keyed.get("/documents").json()["count"] == 2


@BOTH
def test_upload_stores_the_article_exactly_and_indexes_it(keyed: TestClient, seed_corpus: Path) -> None:
    data = ("\ufeff" + ARTICLE.replace("\n", "\r\n")).encode()  # BOM and CRLF: stored byte for byte
    response = keyed.post("/documents", files={"file": ("../../Leucht türme.txt", data)}, headers=AUTH)
    assert response.status_code == 201, response.text
    doc = response.json()
    assert doc["path"] == "Leucht-turme.txt" and (seed_corpus / "Leucht-turme.txt").read_bytes() == data
    assert response.headers["location"] == f"/documents/{doc['doc_id']}"
    assert keyed.get(f"/documents/{doc['doc_id']}").json()["text"] == data.decode("utf-8-sig")
    assert keyed.get("/documents").json()["count"] == 3
    body = ask(keyed, "Wie viele Modelle zeigt das Leuchtturmmuseum?")
    assert body["citations"][0]["doc_id"] == doc["doc_id"] and "42 Modelle" in body["answer"]

    deleted = keyed.delete(f"/documents/{doc['doc_id']}", headers={"X-API-Key": KEY})
    assert deleted.status_code == 200 and deleted.json() == {"doc_id": doc["doc_id"], "deleted": True}
    assert not (seed_corpus / "Leucht-turme.txt").exists()
    assert keyed.get(f"/documents/{doc['doc_id']}").status_code == 404
    body = ask(keyed, "Wie viele Modelle zeigt das Leuchtturmmuseum?")
    assert all(c["doc_id"] != doc["doc_id"] for c in body["citations"])


def test_upload_metadata_goes_beside_the_unchanged_text(keyed: TestClient, seed_corpus: Path) -> None:
    form = {"title": "Ein <b>Museum</b>", "date": "2024-05-01", "source": "Lokalzeitung"}
    response = keyed.post(
        "/documents", files={"file": ("museum.md", ARTICLE.encode())}, data=form, headers=AUTH
    )
    assert response.status_code == 201, response.text
    doc = response.json()
    assert (doc["title"], doc["date"], doc["source"], doc["text"]) == (*form.values(), ARTICLE)
    assert doc["language"] == "de"  # not given: detected from the article, not forced
    assert (seed_corpus / "museum.md").read_bytes().endswith(ARTICLE.encode())


@pytest.mark.parametrize(
    ("name", "data", "status", "words"),
    [
        ("report.docx", b"PK\x03\x04 binary", 422, ".txt, .md, .html, .htm or .pdf"),
        ("report.pdf", b"%PDF-1.4 binary", 422, "truncated"),
        ("empty.txt", b"   \n", 422, "empty"),
        ("binary.txt", bytes(range(256)) * 4, 422, "binary"),
        ("000_ec495bea3a2a83c6.md", ARTICLE.encode(), 409, "already exists"),
        ("big.txt", b"Ein Satz. " * 300, 413, "limit"),
    ],
)
def test_bad_uploads_are_refused_with_a_reason(
    keyed_settings: Settings, name: str, data: bytes, status: int, words: str
) -> None:
    settings = keyed_settings.updated(max_upload_bytes=2000)
    with TestClient(
        create_app(settings, build_pipeline(settings, WordsEmbedder())), base_url="http://127.0.0.1"
    ) as c:
        before = sorted(Path(settings.index.corpus_dir).iterdir())
        response = c.post("/documents", files={"file": (name, data)}, headers=AUTH)
        assert response.status_code == status, response.text
        assert words in response.json()["detail"]
        assert sorted(Path(settings.index.corpus_dir).iterdir()) == before


def test_an_oversized_body_is_refused_before_it_is_read(keyed: TestClient, keyed_settings: Settings) -> None:
    huge = b"x" * (keyed_settings.server.max_upload_bytes + 100_000)
    response = keyed.post("/documents", files={"file": ("huge.txt", huge)}, headers=AUTH)
    assert response.status_code == 413 and "limit" in response.json()["detail"]


def test_upload_without_a_file_is_422(keyed: TestClient) -> None:
    response = keyed.post("/documents", data={"title": "no file"}, headers=AUTH)
    assert response.status_code == 422 and response.json()["detail"].startswith("file:")


@BOTH
def test_deleting_an_unknown_document_is_404(keyed: TestClient) -> None:
    response = keyed.delete("/documents/nope", headers=AUTH)
    assert response.status_code == 404 and "nope" in response.json()["detail"]


@BOTH
def test_ask_never_fails_while_the_index_changes(keyed: TestClient) -> None:
    """Readers keep answering from whole snapshots while articles are added and removed."""
    stop = threading.Event()
    results: list[tuple[int, dict]] = []

    def reader() -> None:
        while not stop.is_set():
            for question in (
                "Wann wurde Nordkorea gegründet?",
                "Wie viele Modelle zeigt das Leuchtturmmuseum?",
            ):
                response = keyed.post("/ask", json={"question": question})
                results.append((response.status_code, response.json()))

    threads = [threading.Thread(target=reader) for _ in range(3)]
    for t in threads:
        t.start()
    try:
        for i in range(4):
            text = ARTICLE.replace("42", str(40 + i))
            added = keyed.post("/documents", files={"file": (f"museum-{i}.txt", text.encode())}, headers=AUTH)
            assert added.status_code == 201, added.text
            if i % 2:
                assert keyed.delete(f"/documents/{added.json()['doc_id']}", headers=AUTH).status_code == 200
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert len(results) > 10
    for status, body in results:
        assert status == 200, body
        assert set(body) == ANSWER_KEYS
        for c in body["citations"]:
            assert c["passage"][c["start"] - c["passage_start"] : c["end"] - c["passage_start"]] == c["quote"]
    assert keyed.get("/documents").json()["count"] == 4


# --- health, startup, OpenAPI


@BOTH
def test_health_reports_the_index(client: TestClient) -> None:
    body = client.get("/health").json()
    assert body["status"] == "ready" and body["model"] == "test:words"
    assert body["documents"] == 2 and body["chunks"] > 0 and body["index_build"] and body["index_built_at"]
    assert body["word_list"] is None  # the fake pipeline runs without one (test_lexicon has one)


def test_before_startup_the_service_says_it_is_starting(fake_settings: Settings) -> None:
    pipeline = build_pipeline(fake_settings, WordsEmbedder())
    client = TestClient(
        create_app(fake_settings, pipeline), base_url="http://127.0.0.1"
    )  # no `with`: the lifespan has not run
    health = client.get("/health")
    assert health.status_code == 503 and health.json()["status"] == "starting"
    response = client.post("/ask", json={"question": "Wann wurde Nordkorea gegründet?"})
    assert response.status_code == 503 and response.headers["retry-after"]
    assert "loading" in response.json()["detail"]
    assert not pipeline.ready  # the request did not trigger a build in the request thread


@BOTH
def test_the_lifespan_builds_the_index_and_loads_the_model(fake_settings: Settings) -> None:
    pipeline = build_pipeline(fake_settings, WordsEmbedder())
    assert not pipeline.ready
    with TestClient(create_app(fake_settings, pipeline), base_url="http://127.0.0.1") as c:
        assert pipeline.ready and c.get("/health").status_code == 200
    pipeline.close()


def test_openapi_describes_every_route_and_docs_work_offline(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    assert {"/ask", "/documents", "/documents/{doc_id}", "/health"} <= set(spec["paths"])
    ask_schema = spec["components"]["schemas"]["AskRequest"]["properties"]
    assert ask_schema["question"]["maxLength"] == 2000 and ask_schema["top_k"]["anyOf"][0]["maximum"] == 20
    assert "200" in spec["paths"]["/ask"]["post"]["responses"]
    docs = client.get("/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()
    assert "http://" not in docs.text and "https://" not in docs.text  # no CDN
    assert client.get("/docs-assets/swagger-ui-bundle.js").status_code == 200


# --- `rag serve` as a user runs it


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_rag_serve_prints_the_url_and_answers(seed_corpus: Path, tmp_path: Path) -> None:
    port = _free_port()
    env = {**os.environ, "RAG_MODEL": "test:words", "GRADIO_ANALYTICS_ENABLED": "False"}
    cmd = [sys.executable, "-m", "rag.cli", "serve", "--port", str(port), "--corpus", str(seed_corpus),
           "--index", str(tmp_path / "ix")]  # fmt: skip
    proc = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.3)
        answer = httpx.post(f"{url}/ask", json={"question": "Wann wurde Nordkorea gegründet?"}, timeout=30)
        assert answer.status_code == 200 and "1948" in answer.json()["answer"]
        assert httpx.get(url, timeout=10).text.lstrip().lower().startswith("<!doctype html>")
        busy = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, timeout=60)
        assert busy.returncode != 0 and "address already in use" in busy.stderr.lower()
    finally:
        proc.terminate()
        _, stderr = proc.communicate(timeout=30)
    assert f"at {url} " in stderr and "/docs" in stderr
    assert json.dumps(stderr).count("Traceback") == 0
