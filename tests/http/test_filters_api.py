"""``POST /ask`` with ``filters``: only matching articles are searched and cited; bad filters are 422s."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from rag.embedding.fake import WordsEmbedder
from rag.http.app import create_app
from rag.pipeline import build_pipeline

from ..conftest import DATA, words_settings

BERTHS = "Wie viele Liegeplätze hat der Hafen von Beispielstadt?"


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    base = tmp_path_factory.mktemp("dated-api")
    shutil.copytree(DATA / "dated", base / "corpus")
    settings = words_settings(base / "corpus", base / "index")
    with TestClient(
        create_app(settings, build_pipeline(settings, WordsEmbedder())), base_url="http://127.0.0.1"
    ) as c:
        yield c


def _ids(client: TestClient) -> dict[str, str]:
    """Document ids by file name (a, b, c)."""
    return {Path(d["path"]).stem: d["doc_id"] for d in client.get("/documents").json()["documents"]}


def test_without_filters_the_answer_says_so_and_dates_order_the_citations(client: TestClient) -> None:
    body = client.post("/ask", json={"question": BERTHS}).json()
    assert body["filters"] is None and body["citation_order"] == "newest_first"
    assert [c["date"] for c in body["citations"][:2]] == ["2024-08-20", "2024-07"]
    assert body["answer"].startswith(body["citations"][0]["quote"] + " [1]")


def test_a_date_filter_searches_the_dated_articles_in_range_and_counts_the_undated(
    client: TestClient,
) -> None:
    ids = _ids(client)
    response = client.post("/ask", json={"question": BERTHS, "filters": {"date_to": "2024-07-31"}})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["filters"] == {"documents": 1, "undated_excluded": 1}
    assert body["citations"] and {c["doc_id"] for c in body["citations"]} == {ids["a"]}
    assert {p["doc_id"] for p in body["passages"]} == {ids["a"]}
    assert body["citation_order"] == "relevance"


def test_sources_and_documents_combine_with_and(client: TestClient) -> None:
    ids = _ids(client)
    filters = {"sources": ["dpa-afx"], "doc_ids": [ids["a"], ids["b"]]}
    body = client.post("/ask", json={"question": BERTHS, "filters": filters}).json()
    assert body["filters"] == {"documents": 1, "undated_excluded": 0}
    assert {c["doc_id"] for c in body["citations"]} == {ids["a"]}
    everything = {"date_from": None, "date_to": None, "sources": [], "doc_ids": []}
    assert client.post("/ask", json={"question": BERTHS, "filters": everything}).json()["filters"] is None


def test_a_filter_that_matches_nothing_is_a_422_that_says_why(client: TestClient) -> None:
    response = client.post(
        "/ask", json={"question": BERTHS, "filters": {"date_from": "2030-01-01", "sources": ["dpa-AFX"]}}
    )
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert detail.startswith("no article matches the filters (dates 2030-01-01 to any; sources dpa-AFX)")
    assert "1 of the others has no date" in detail


@pytest.mark.parametrize(
    ("filters", "message"),
    [
        ({"date_from": "2024-07"}, "YYYY-MM-DD"),
        ({"date_from": "15.07.2024"}, "YYYY-MM-DD"),
        ({"date_to": "2024-02-30"}, "not a day of the calendar"),
        ({"date_from": 20240701}, "YYYY-MM-DD"),
        ({"date_from": "2024-08-01", "date_to": "2024-07-01"}, "date_from is after date_to"),
        ({"sources": "dpa"}, "sources"),
        ({"sources": [""]}, "sources"),
        ({"doc_ids": ["x"] * 201}, "doc_ids"),
        ({"source": ["dpa"]}, "source"),
    ],
)
def test_bad_filters_are_422_with_the_field_named(client: TestClient, filters: dict, message: str) -> None:
    response = client.post("/ask", json={"question": BERTHS, "filters": filters})
    assert response.status_code == 422, response.text
    assert message in response.json()["detail"]
