"""Nobody gets in where they don't belong: the write key, CORS, security headers, markup kept as data."""

from __future__ import annotations

import hmac
import itertools
import logging
import re
import shutil
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from rag.embedding.fake import WordsEmbedder
from rag.http.middleware import API_POLICY, PAGE_POLICY
from rag.pipeline import build_pipeline
from rag.server import create_server_app
from rag.settings import Settings

from ..conftest import CORPUS

KEY = "sec-test-key-4f2a9c71"
EVIL_ORIGIN = "https://evil.example"
ALLOWED = "https://allowed.example"
TEXT = "Die Stadt Beispielhausen eröffnete 1999 ein Museum. Es zeigt 42 Modelle von Leuchttürmen.\n"
EVIL = (
    "Der Leuchtturm von Beispielhausen wurde 1888 gebaut und ist <b>40 Meter</b> hoch.\n\n"
    '<script>alert("x")</script><img src=x onerror="alert(1)"> [Klick](javascript:alert(1)) '
    "&amp; &lt;i&gt;kursiv&lt;/i&gt; &#60;b&#62; &quot;zitiert&quot;\n\n"
    "Der Leuchtturm von Beispielhausen steht seit 1975 unter Denkmalschutz.\n"
)
Factory = Callable[..., TestClient]


@pytest.fixture
def make_client(tmp_path: Path) -> Iterator[Factory]:
    """A client of the whole server app (API and UI) with the given settings on a fresh corpus copy."""
    numbers = itertools.count()
    with ExitStack() as running:

        def make(**overrides: object) -> TestClient:
            base = tmp_path / f"s{next(numbers)}"
            shutil.copytree(CORPUS, base / "corpus")
            settings = Settings(corpus_dir=base / "corpus", index_dir=base / "index", model="test:words")
            settings = settings.updated(**overrides)
            app = create_server_app(settings, build_pipeline(settings, WordsEmbedder()))
            return running.enter_context(TestClient(app, base_url="http://127.0.0.1"))

        yield make


def _upload(
    client: TestClient, headers: dict[str, str], name: str = "museum.txt", text: str = TEXT
) -> httpx.Response:
    return client.post("/documents", files={"file": (name, text.encode())}, headers=headers)


# --- the API key


def test_the_key_is_compared_in_constant_time(make_client: Factory, monkeypatch: pytest.MonkeyPatch) -> None:
    client = make_client(api_key=SecretStr(KEY))
    compared: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        compared.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    assert _upload(client, {"X-API-Key": KEY[:-1]}).status_code == 401  # one character short
    assert _upload(client, {"X-API-Key": KEY + "x" * 1000}).status_code == 401
    assert _upload(client, {"Authorization": f"Bearer {KEY}"}).status_code == 201
    # digests of equal size: neither where the first difference is nor the key's length can leak
    assert len(compared) == 3 and all(len(a) == len(b) == 32 for a, b in compared)


def test_the_key_never_appears_in_logs_or_responses(
    make_client: Factory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    client = make_client(api_key=SecretStr(KEY))
    wrong = "wrong-" + KEY[::-1]
    responses: list[httpx.Response] = [
        _upload(client, {"X-API-Key": wrong}),
        _upload(client, {"Authorization": f"Bearer {wrong}"}),
        _upload(client, {"X-API-Key": KEY + "x"}),
        _upload(client, {"Authorization": KEY}),  # no scheme
        client.post(f"/documents?key={KEY}", files={"file": ("a.txt", TEXT.encode())}),
        _upload(client, {"X-API-Key": KEY}, name="bild.txt", text="\x00" * 100),  # refused content
        _upload(client, {"X-API-Key": KEY}, name="museum.pdf"),
        client.delete("/documents/nope", headers={"X-API-Key": KEY}),
        client.post("/ask", json={"question": "Wann wurde Nordkorea gegründet?"}, headers={"X-API-Key": KEY}),
    ]
    added = _upload(client, {"X-API-Key": KEY})
    responses += [added, client.delete(f"/documents/{added.json()['doc_id']}", headers={"X-API-Key": KEY})]

    assert [r.status_code for r in responses] == [401, 401, 401, 401, 401, 422, 422, 404, 200, 201, 200]
    for response in responses:
        seen = response.text + repr(response.headers)
        assert KEY not in seen and wrong not in seen
    server_logs = "\n".join(r.getMessage() for r in caplog.records if not r.name.startswith("httpx"))
    assert server_logs and KEY not in server_logs and wrong not in server_logs  # (the test client logs URLs)
    settings = client.app.state.settings  # type: ignore[attr-defined]
    assert KEY not in repr(settings) and KEY not in str(settings) and KEY not in settings.model_dump_json()


@pytest.mark.parametrize("key", [None, SecretStr(""), SecretStr("   ")])
def test_no_key_configured_means_writes_are_off(make_client: Factory, key: SecretStr | None) -> None:
    client = make_client(api_key=key)
    for headers in ({}, {"X-API-Key": ""}, {"X-API-Key": "   "}, {"Authorization": "Bearer "}):
        upload = _upload(client, headers)
        delete = client.delete("/documents/000_ec495bea3a2a83c6", headers=headers)
        for response in (upload, delete):
            assert response.status_code == 403 and "RAG_API_KEY" in response.json()["detail"]
    assert client.get("/documents").json()["count"] == 2


# --- CORS


def test_cors_is_off_unless_configured(make_client: Factory) -> None:
    client = make_client()
    origin = {"Origin": EVIL_ORIGIN}
    preflight = {
        **origin,
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "x-api-key",
    }
    responses = [
        client.get("/health", headers=origin),
        client.post("/ask", json={"question": "Wer?"}, headers=origin),
        client.options("/ask", headers=preflight),
        client.options("/documents", headers=preflight),
        client.get("/", headers=origin),  # the chat page: Gradio itself would allow this origin here
        client.get("/config", headers=origin),
        client.options("/gradio_api/queue/join", headers=preflight),
    ]
    for response in responses:
        granted = {k for k in response.headers if k.lower().startswith("access-control-")}
        assert not granted, (response.request.url, dict(response.headers))


def test_configured_cors_allows_exactly_the_configured_origins(
    make_client: Factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RAG_CORS_ORIGINS", f'["{ALLOWED}"]')
    assert Settings().server.cors_origins == [ALLOWED]  # how an operator configures it
    client = make_client(cors_origins=[ALLOWED])
    preflight = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "x-api-key"}

    allowed = client.options("/ask", headers={"Origin": ALLOWED, **preflight})
    assert allowed.status_code == 200 and allowed.headers["access-control-allow-origin"] == ALLOWED
    simple = client.post("/ask", json={"question": "Wer?"}, headers={"Origin": ALLOWED})
    assert simple.headers["access-control-allow-origin"] == ALLOWED
    assert client.get("/", headers={"Origin": ALLOWED}).headers["access-control-allow-origin"] == ALLOWED

    for response in (
        client.options("/ask", headers={"Origin": EVIL_ORIGIN, **preflight}),
        client.post("/ask", json={"question": "Wer?"}, headers={"Origin": EVIL_ORIGIN}),
        client.get("/", headers={"Origin": EVIL_ORIGIN}),
    ):
        assert response.headers.get("access-control-allow-origin") in (None, ALLOWED)
        assert EVIL_ORIGIN not in repr(response.headers)


# --- response headers


def test_security_headers_are_set_on_every_api_and_ui_response(make_client: Factory) -> None:
    client = make_client(api_key=SecretStr(KEY), max_upload_bytes=1000)
    page = client.get("/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    script = re.findall(r'<script[^>]* src="\.?(/[^"]+)"', page.text)[0]
    responses = {
        "ask": client.post("/ask", json={"question": "Wann wurde Nordkorea gegründet?"}),
        "422": client.post("/ask", json={"question": ""}),
        "413": _upload(client, {"X-API-Key": KEY}, text="x" * 100_000),
        "401": _upload(client, {}),
        "404": client.get("/documents/nope"),
        "405": client.get("/ask"),
        "health": client.get("/health"),
        "openapi": client.get("/openapi.json"),
        "docs": client.get("/docs"),
        "ui page": page,
        "ui script": client.get(script),
        "ui config": client.get("/config"),
    }
    for name, response in responses.items():
        headers = response.headers
        assert headers["x-content-type-options"] == "nosniff", name
        assert headers["x-frame-options"] == "DENY", name
        assert headers["referrer-policy"] == "no-referrer", name
        assert "frame-ancestors 'none'" in headers["content-security-policy"], name
        html = headers.get("content-type", "").startswith("text/html")
        assert headers["content-security-policy"] == (PAGE_POLICY if html else API_POLICY), name
    assert responses["ui script"].status_code == 200
    statuses = [responses[n].status_code for n in ("ask", "422", "413", "401", "404", "405")]
    assert statuses == [200, 422, 413, 401, 404, 405]


# --- markup in articles is data


def test_markup_in_an_article_comes_back_unchanged_as_json_data(make_client: Factory) -> None:
    client = make_client(api_key=SecretStr(KEY))
    title = '<script>alert("t")</script> &amp; [x](javascript:alert(1))'
    added = client.post(
        "/documents",
        files={"file": ("leuchtturm.txt", EVIL.encode())},
        data={"title": title},
        headers={"X-API-Key": KEY},
    )
    assert added.status_code == 201, added.text
    doc = client.get(f"/documents/{added.json()['doc_id']}")
    assert doc.headers["content-type"] == "application/json"
    assert doc.json()["text"] == EVIL and doc.json()["title"] == title
    listed = {d["doc_id"]: d for d in client.get("/documents").json()["documents"]}
    assert listed[added.json()["doc_id"]]["title"] == title

    answer = client.post("/ask", json={"question": "Wann wurde der Leuchtturm von Beispielhausen gebaut?"})
    body = answer.json()
    ours = added.json()["doc_id"]
    quotes = [c for c in body["citations"] if c["doc_id"] == ours]
    assert quotes and "<b>40 Meter</b>" in quotes[0]["quote"] and quotes[0]["title"] == title
    for c in quotes:
        assert EVIL[c["start"] : c["end"]] == c["quote"]
        assert EVIL[c["passage_start"] : c["passage_end"]] == c["passage"]
    passages = [p["text"] for p in body["passages"] if p["doc_id"] == ours]
    assert passages and all(p in EVIL for p in passages)
    assert any('<script>alert("x")</script>' in p and "&lt;i&gt;" in p for p in passages)
