"""HTML and PDF articles through upload and the corpus folder: their citations quote the extracted text
verbatim and name the PDF page; bad files get a 4xx with the reason and change nothing."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from rag.embedding.fake import WordsEmbedder
from rag.http.app import create_app
from rag.pipeline import build_pipeline
from rag.settings import Settings

from ..conftest import BOTH_STORES, ROOT
from ..formats import PAGE_TWO, TITLE, front_page, news_page, news_pdf, scanned_pdf
from ..ingest.test_extract import BAD_FILES

KEY = "formats-key"
AUTH = {"X-API-Key": KEY}


@pytest.fixture
def settings(fake_settings: Settings) -> Settings:
    return fake_settings.updated(api_key=SecretStr(KEY))


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    app = create_app(settings, build_pipeline(settings, WordsEmbedder()))
    with TestClient(app, base_url="http://127.0.0.1") as c:
        yield c


def _verbatim(client: TestClient, body: dict) -> None:
    for c in body["citations"]:
        text = client.get(f"/documents/{c['doc_id']}").json()["text"]
        assert text[c["start"] : c["end"]] == c["quote"]
        assert text[c["passage_start"] : c["passage_end"]] == c["passage"]


@pytest.mark.parametrize("store_kind", BOTH_STORES, indirect=True)
def test_an_uploaded_pdf_answers_a_question_about_page_2_with_its_page(
    client: TestClient, settings: Settings
) -> None:
    response = client.post("/documents", files={"file": ("Hafen Bericht.pdf", news_pdf())}, headers=AUTH)
    assert response.status_code == 201, response.text
    doc = response.json()
    assert doc["doc_id"] == "Hafen-Bericht" and doc["author"] == "Max Muster"
    source = Path(settings.index.corpus_dir) / "Hafen-Bericht.pdf"
    assert source.read_bytes() == news_pdf()  # the source file is kept

    question = "Wann wurde der Leuchtturm auf Neuwerk fertiggestellt?"
    body = client.post("/ask", json={"question": question}).json()
    assert not body["abstained"] and "1310" in body["answer"], body
    first = body["citations"][0]
    assert first["doc_id"] == "Hafen-Bericht" and first["page"] == 2
    assert first["quote"] in PAGE_TWO[0]
    _verbatim(client, body)

    seed = client.post("/ask", json={"question": "Wann wurde Nordkorea gegründet?"}).json()
    assert seed["citations"] and all(c["page"] is None for c in seed["citations"])  # not a PDF: no page

    restarted = build_pipeline(settings, WordsEmbedder())  # the saved index, read back: same text, same pages
    assert restarted.update_index().up_to_date
    assert restarted.document("Hafen-Bericht").text == client.get("/documents/Hafen-Bericht").json()["text"]
    assert restarted.ask(question).citations[0].page == 2


def test_an_uploaded_html_page_is_cited_in_its_extracted_text(client: TestClient) -> None:
    response = client.post("/documents", files={"file": ("heizung.html", news_page())}, headers=AUTH)
    assert response.status_code == 201, response.text
    doc = response.json()
    assert (doc["title"], doc["date"], doc["source"]) == (TITLE, "2024-03-14", "Tagesblatt")
    assert "Startseite" not in doc["text"] and "Impressum" not in doc["text"]
    question = "Wie viele Abgeordnete stimmten für das Heizungsgesetz?"
    body = client.post("/ask", json={"question": question}).json()
    assert "399" in body["answer"] and body["citations"][0]["doc_id"] == "heizung", body
    assert body["citations"][0]["page"] is None
    _verbatim(client, body)


@pytest.mark.parametrize(("name", "data", "reason"), BAD_FILES, ids=[c[0] for c in BAD_FILES])
def test_a_bad_upload_gets_422_with_the_reason_and_nothing_is_stored(
    client: TestClient, settings: Settings, name: str, data: bytes, reason: str
) -> None:
    before = sorted(p.name for p in Path(settings.index.corpus_dir).iterdir())
    response = client.post("/documents", files={"file": (name, data)}, headers=AUTH)
    assert response.status_code == 422, response.text
    assert reason in response.json()["detail"]
    assert sorted(p.name for p in Path(settings.index.corpus_dir).iterdir()) == before
    assert client.post("/ask", json={"question": "Wann wurde Nordkorea gegründet?"}).status_code == 200


def test_metadata_fields_are_refused_for_html_and_pdf(client: TestClient) -> None:
    response = client.post(
        "/documents", files={"file": ("a.pdf", news_pdf())}, data={"title": "Mein Titel"}, headers=AUTH
    )
    assert response.status_code == 422 and ".txt and .md only" in response.json()["detail"]


def test_the_same_pdf_twice_is_a_duplicate(client: TestClient) -> None:
    assert client.post("/documents", files={"file": ("a.pdf", news_pdf())}, headers=AUTH).status_code == 201
    again = client.post("/documents", files={"file": ("b.pdf", news_pdf())}, headers=AUTH)
    assert again.status_code == 409 and "already in the corpus as 'a'" in again.json()["detail"]


def test_rag_index_reads_the_formats_and_names_each_skipped_file(seed_corpus: Path, tmp_path: Path) -> None:
    (seed_corpus / "hafen.pdf").write_bytes(news_pdf())
    (seed_corpus / "heizung.htm").write_bytes(news_page())
    (seed_corpus / "scan.pdf").write_bytes(scanned_pdf())
    (seed_corpus / "front.html").write_bytes(front_page())
    env = {**os.environ, "RAG_MODEL": "test:words", "RAG_INDEX_DIR": str(tmp_path / "ix")}
    out = subprocess.run(
        [sys.executable, "-m", "rag.cli", "index", "--corpus", str(seed_corpus)],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert "4 files" in out.stdout and "2 skipped" in out.stdout
    assert "skipped scan.pdf: it has no text layer (a scanned PDF?)" in out.stderr
    assert "skipped front.html: no article text was found in the page" in out.stderr
