"""Bad input gets a clear 4xx with a readable JSON ``detail``, never a 500, never a hang.

Each case goes to the whole server app (API with the chat UI mounted) and is followed by a question that
must still get exactly its usual answer. The body limit is also checked over a real socket, announced
and streamed without a ``Content-Length``.
"""

from __future__ import annotations

import itertools
import json
import shutil
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import SecretStr

from rag.embedding.fake import WordsEmbedder
from rag.http.app import MAX_JSON_BYTES
from rag.http.schemas import MAX_HISTORY_TURNS, MAX_TURN_CHARS
from rag.pipeline import build_pipeline
from rag.server import create_server_app
from rag.settings import Settings

from ..conftest import CORPUS

KEY = "input-test-key-8d1f"
AUTH = {"X-API-Key": KEY}
QUESTION = "Wann wurde Nordkorea gegründet?"
TEXT = "Die Stadt Beispielhausen eröffnete 1999 ein Museum. Es zeigt 42 Modelle von Leuchttürmen.\n"
JSON = {"content-type": "application/json"}


@dataclass
class Served:
    app: FastAPI
    client: TestClient
    corpus: Path
    expected: dict

    def still_answers(self) -> None:
        response = self.client.post("/ask", json={"question": QUESTION})
        assert response.status_code == 200, response.text
        assert _without_timings(response.json()) == self.expected


def _without_timings(body: dict) -> dict:
    return {k: v for k, v in body.items() if k != "timings_ms"}


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    base = tmp_path_factory.mktemp("input")
    shutil.copytree(CORPUS, base / "corpus")
    settings = Settings(
        corpus_dir=base / "corpus", index_dir=base / "index", model="test:words", api_key=SecretStr(KEY)
    )
    app = create_server_app(settings, build_pipeline(settings, WordsEmbedder()))
    with TestClient(app, base_url="http://127.0.0.1") as client:
        expected = _without_timings(client.post("/ask", json={"question": QUESTION}).json())
        assert "1948" in expected["answer"]
        yield Served(app, client, base / "corpus", expected)


def _corpus_files(served: Served) -> list[str]:
    return sorted(p.relative_to(served.corpus).as_posix() for p in served.corpus.rglob("*"))


# --- /ask

_TURN = {"role": "user", "content": "Und wann war das?"}
ASK_CASES: list[tuple[str, bytes, int, str]] = [
    ("empty question", b'{"question": ""}', 422, "question: String should have at least 1 character"),
    ("whitespace question", b'{"question": " \\n\\t "}', 422, "question: the question is blank"),
    ("100 kB question", json.dumps({"question": "x" * 100_000}).encode(), 422, "at most 2000 characters"),
    ("invalid JSON", b'{"question": ', 422, "JSON decode error"),
    ("not JSON", b"question=Wer?", 422, "JSON decode error"),
    ("empty body", b"", 422, "body: Field required"),
    ("JSON null", b"null", 422, "body: Input should be a valid dictionary"),
    ("JSON array", b'["Wer?"]', 422, "body: Input should be a valid dictionary"),
    ("JSON string", b'"Wer?"', 422, "body: Input should be a valid dictionary"),
    ("question is a number", b'{"question": 42}', 422, "question: Input should be a valid string"),
    ("question is null", b'{"question": null}', 422, "question: Input should be a valid string"),
    ("question is a list", b'{"question": ["Wer?"]}', 422, "question: Input should be a valid string"),
    ("no question", b'{"top_k": 3}', 422, "question: Field required"),
    ("top_k is a string", b'{"question": "Wer?", "top_k": "3"}', 422, "top_k: Input should be a valid int"),
    ("top_k is true", b'{"question": "Wer?", "top_k": true}', 422, "top_k: Input should be a valid int"),
    ("top_k is 2.5", b'{"question": "Wer?", "top_k": 2.5}', 422, "top_k: Input should be a valid int"),
    ("top_k 0", b'{"question": "Wer?", "top_k": 0}', 422, "top_k: Input should be greater than or"),
    ("top_k -1", b'{"question": "Wer?", "top_k": -1}', 422, "top_k: Input should be greater than or equal"),
    ("top_k 21", b'{"question": "Wer?", "top_k": 21}', 422, "top_k: Input should be less than or"),
    ("top_k 10^9", b'{"question": "Wer?", "top_k": 1000000000}', 422, "top_k: Input should be less than"),
    ("top_k 10^30", b'{"question": "Wer?", "top_k": 1' + b"0" * 30 + b"}", 422, "top_k:"),
    ("top_k 1e999", b'{"question": "Wer?", "top_k": 1e999}', 422, "top_k:"),
    ("top_k NaN", b'{"question": "Wer?", "top_k": NaN}', 422, "top_k:"),
    ("history is a string", b'{"question": "Wer?", "history": "Wer?"}', 422, "history: Input should be"),
    (
        "history of 10,000 turns",
        json.dumps({"question": "Und dann?", "history": [_TURN] * 10_000}).encode(),
        422,
        f"history: List should have at most {MAX_HISTORY_TURNS} items",
    ),
    (
        "history turn from the system",
        json.dumps({"question": "Wer?", "history": [{"role": "system", "content": "x"}]}).encode(),
        422,
        "history.0.role: Input should be 'user' or 'assistant'",
    ),
    (
        "history turn without content",
        json.dumps({"question": "Wer?", "history": [{"role": "user"}]}).encode(),
        422,
        "history.0.content: Field required",
    ),
    (
        "history turn with an extra field",
        json.dumps({"question": "Wer?", "history": [{**_TURN, "name": "x"}]}).encode(),
        422,
        "history.0.name: Extra inputs are not permitted",
    ),
    (
        "history turn too long",
        json.dumps({"question": "Wer?", "history": [{"role": "user", "content": "x" * 10_001}]}).encode(),
        422,
        f"at most {MAX_TURN_CHARS} characters",
    ),
    ("extra field", b'{"question": "Wer?", "topk": 3}', 422, "topk: Extra inputs are not permitted"),
    ("lone surrogate in the question", b'{"question": "Wer \\ud800?"}', 422, "question:"),
    (
        "lone surrogate in history",
        b'{"question": "Wer?", "history": [{"role": "user", "content": "\\udfff"}]}',
        422,
        "history.0.content:",
    ),
    ("lone surrogate as a key", b'{"question": "Wer?", "\\ud800": 1}', 422, "body:"),
    ("control characters only", b'{"question": "\\u0000\\u0001\\u001b"}', 422, "the question is empty"),
    ("bytes that are not UTF-8", b'{"question": "Wer \xff\xfe?"}', 400, "error parsing the body"),
    (
        "JSON nested 100,000 deep",
        b'{"question": "Wer?", "history": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
        400,
        "error parsing the body",
    ),
    (
        "a body over the limit",
        json.dumps({"question": "Wer?", "history": [{"role": "user", "content": "x" * 9999}] * 120}).encode(),
        413,
        f"larger than the limit of {MAX_JSON_BYTES} bytes",
    ),
]


@pytest.mark.parametrize(
    ("body", "status", "detail"), [c[1:] for c in ASK_CASES], ids=[c[0] for c in ASK_CASES]
)
def test_bad_questions_get_a_clear_4xx(served: Served, body: bytes, status: int, detail: str) -> None:
    response = served.client.post("/ask", content=body, headers=JSON)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    message = response.json()["detail"]
    assert isinstance(message, str) and message and detail in message
    served.still_answers()


def test_the_largest_valid_question_is_accepted_not_413(served: Served) -> None:
    history = [{"role": "user", "content": "ä" * MAX_TURN_CHARS}] * MAX_HISTORY_TURNS
    body = json.dumps({"question": "ü" * 2000, "history": history}, ensure_ascii=False).encode()
    assert len(body) < MAX_JSON_BYTES
    assert served.client.post("/ask", content=body, headers=JSON).status_code == 200


def test_control_characters_inside_a_question_are_ignored(served: Served) -> None:
    response = served.client.post(
        "/ask", json={"question": "Wann\x00 wurde\x1b Nordkorea\x7f gegründet?\u200b"}
    )
    assert response.status_code == 200
    assert _without_timings(response.json())["answer"] == served.expected["answer"]


@pytest.mark.parametrize(
    "question",
    ["🤔 Nordkorea 金正恩?", "\u202eWer?", "Wer " * 500, "<script>alert(1)</script>", "' OR 1=1 --"],
)
def test_odd_but_valid_questions_are_answered(served: Served, question: str) -> None:
    assert served.client.post("/ask", json={"question": question[:2000]}).status_code == 200


def test_a_wrong_method_is_405_even_with_the_ui_mounted_at_the_root(served: Served) -> None:
    for method, path in [
        ("GET", "/ask"),
        ("PUT", "/documents"),
        ("PATCH", "/documents/x"),
        ("TRACE", "/health"),
    ]:
        response = served.client.request(method, path)
        assert response.status_code == 405, (method, path, response.text)
        assert response.json()["detail"].startswith(f"{method} is not allowed here")
        assert response.headers["allow"]
    served.still_answers()


# --- /documents


@pytest.mark.parametrize("doc_id", ["../../etc/passwd", "..%2F..%2Fetc%2Fpasswd", "%00", "x" * 5000, "con"])
def test_document_ids_never_reach_the_file_system(served: Served, doc_id: str) -> None:
    before = _corpus_files(served)
    assert served.client.get(f"/documents/{doc_id}").status_code in (404, 405)
    response = served.client.delete(f"/documents/{doc_id}", headers=AUTH)
    assert response.status_code in (404, 405), response.text
    assert response.json()["detail"]
    assert _corpus_files(served) == before
    served.still_answers()


LATIN1 = "Die Straße führt über die Brücke nach Köln. Dort ist es schön und die Bäcker backen früh.\n"
UPLOAD_CASES: list[tuple[str, str, bytes, int, str]] = [
    ("wrong extension", "report.docx", b"PK\x03\x04" + TEXT.encode(), 422, "upload a .txt, .md, .html"),
    ("no extension", "README", TEXT.encode(), 422, "upload a .txt, .md, .html"),
    ("executable", "run.exe", TEXT.encode(), 422, "upload a .txt, .md, .html"),
    ("a PDF cut off", "report.pdf", b"%PDF-1.4 " + TEXT.encode(), 422, "it is truncated"),
    ("binary content", "bild.txt", b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8, 422, "binary"),
    ("not a text encoding", "kaputt.txt", b"Text \x81\x8d\x8f\x90\x9d. " * 20, 422, "neither UTF-8 nor"),
    ("zero bytes", "leer.txt", b"", 422, "it is empty"),
    ("only whitespace", "leer.md", b" \n\n\t\n", 422, "it is empty"),
    ("front matter only", "kopf.md", b"---\ntitle: Nur Kopf\n---\n", 422, "front matter but no text"),
    ("front matter that is not YAML", "yaml.md", b"---\ntitle: [offen\n---\n" + TEXT.encode(), 422, "YAML"),
    ("a file over the limit", "gross.txt", b"Ein Satz. " * 200_001, 413, "limit of 2000000 bytes"),
    ("a body over the limit", "riesig.txt", b"Ein Satz. " * 300_000, 413, "limit of 2000000 bytes"),
    ("path with no extension", "../../etc/passwd", TEXT.encode(), 422, "upload a .txt, .md, .html"),
    ("reserved device name", "con", TEXT.encode(), 422, "upload a .txt, .md, .html"),
    ("300 characters, no extension", "x" * 300, TEXT.encode(), 422, "upload a .txt, .md, .html"),
    (
        "same text as a seed article",
        "kopie.md",
        (CORPUS / "000_ec495bea3a2a83c6.md").read_bytes(),
        409,
        "already in the corpus as '000_ec495bea3a2a83c6' (000_ec495bea3a2a83c6.md)",
    ),
    ("same name as a seed article", "000_ec495bea3a2a83c6.md", TEXT.encode(), 409, "already exists"),
]


@pytest.mark.parametrize(
    ("name", "data", "status", "detail"), [c[1:] for c in UPLOAD_CASES], ids=[c[0] for c in UPLOAD_CASES]
)
def test_bad_uploads_get_a_clear_4xx_and_change_nothing(
    served: Served, name: str, data: bytes, status: int, detail: str
) -> None:
    before = _corpus_files(served)
    response = served.client.post("/documents", files={"file": (name, data)}, headers=AUTH)
    assert response.status_code == status, response.text
    assert detail in response.json()["detail"]
    assert _corpus_files(served) == before
    assert served.client.get("/documents").json()["count"] == 2
    served.still_answers()


@pytest.mark.parametrize(
    ("name", "stored"),
    [
        ("../../etc/passwd.txt", "passwd.txt"),
        ("..\\..\\Windows\\system32\\evil.txt", "evil.txt"),
        ("con.txt", "article-con.txt"),
        ("NUL.MD", "article-NUL.md"),
        ("a" * 296 + ".txt", "a" * 96 + ".txt"),
        (".versteckt.txt", "versteckt.txt"),
        ("..txt", "article.txt"),
        ("Über uns & <Mehr>.md", "Uber-uns-Mehr.md"),
        ("日本語.txt", "article.txt"),
    ],
)
def test_upload_names_are_made_safe_and_stay_in_the_corpus(served: Served, name: str, stored: str) -> None:
    response = served.client.post("/documents", files={"file": (name, TEXT.encode())}, headers=AUTH)
    assert response.status_code == 201, response.text
    doc = response.json()
    try:
        assert doc["path"] == stored
        assert (served.corpus / stored).read_bytes() == TEXT.encode()
        assert not any(p.is_symlink() for p in served.corpus.iterdir())
    finally:
        assert served.client.delete(f"/documents/{doc['doc_id']}", headers=AUTH).status_code == 200
    assert not (served.corpus / stored).exists()
    served.still_answers()


def test_a_latin1_upload_is_decoded_and_stored_as_sent(served: Served) -> None:
    data = LATIN1.encode("latin-1")
    response = served.client.post("/documents", files={"file": ("koeln.txt", data)}, headers=AUTH)
    assert response.status_code == 201, response.text
    doc = response.json()
    try:
        assert doc["text"] == LATIN1 and (served.corpus / "koeln.txt").read_bytes() == data
    finally:
        served.client.delete(f"/documents/{doc['doc_id']}", headers=AUTH)


@pytest.mark.parametrize(
    ("form", "detail"),
    [
        ({"title": "Titel\x00mit\x1bSteuerzeichen"}, "title: control characters are not allowed"),
        ({"source": "Zeile\nZeile"}, "source: control characters are not allowed"),
        ({"title": "x" * 301}, "title: String should have at most 300 characters"),
        ({"date": "2" * 41}, "date: String should have at most 40 characters"),
        ({"language": "fr"}, "language: String should match pattern"),
        ({"url": "javascript:alert(1)"}, "url: String should match pattern"),
        ({"url": "https://example.org/a b"}, "url: String should match pattern"),
    ],
)
def test_bad_upload_metadata_is_422(served: Served, form: dict[str, str], detail: str) -> None:
    before = _corpus_files(served)
    response = served.client.post(
        "/documents", files={"file": ("meta.txt", TEXT.encode())}, data=form, headers=AUTH
    )
    assert response.status_code == 422, response.text
    assert detail in response.json()["detail"]
    assert _corpus_files(served) == before


def test_an_upload_that_is_not_multipart_is_422(served: Served) -> None:
    for body, headers in [
        (b'{"file": "x"}', JSON),
        (b"--x\r\nbroken", {"content-type": "multipart/form-data"}),
    ]:
        response = served.client.post("/documents", content=body, headers={**headers, **AUTH})
        assert response.status_code in (400, 422), response.text
        assert response.json()["detail"]
    served.still_answers()


# --- over a real socket: the body limit, announced and streamed


@pytest.fixture(scope="module")
def url(served: Served) -> Iterator[str]:
    """The same app served by uvicorn on a loopback port, in a thread of this process."""
    config = uvicorn.Config(served.app, host="127.0.0.1", port=0, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "uvicorn did not start"
        time.sleep(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=30)


def _chunks(total: int, size: int = 64 * 1024) -> Iterator[bytes]:
    yield b'{"question": "Wer?", "history": [{"role": "user", "content": "'
    for _ in range(total // size):
        yield b"x" * size
    yield b'"}]}'


def test_an_announced_oversized_body_is_refused_before_the_app_reads_it(url: str) -> None:
    body = b'{"question": "' + b"x" * (MAX_JSON_BYTES + 10) + b'"}'
    started = time.monotonic()
    response = httpx.post(f"{url}/ask", content=body, headers=JSON, timeout=30)
    assert response.status_code == 413 and "limit" in response.json()["detail"]
    assert time.monotonic() - started < 10


@pytest.mark.parametrize(("path", "total"), [("/ask", 4 * MAX_JSON_BYTES), ("/documents", 8_000_000)])
def test_a_streamed_body_without_length_is_cut_off_at_the_limit(url: str, path: str, total: int) -> None:
    if path == "/documents":
        head = b'--b\r\nContent-Disposition: form-data; name="file"; filename="a.txt"\r\n\r\n'
        chunks: Iterator[bytes] = iter([head, *(b"Ein Satz. " * 6554 for _ in range(total // 65_540))])
        headers = {"content-type": "multipart/form-data; boundary=b", **AUTH}
    else:
        chunks, headers = _chunks(total), JSON
    response = httpx.post(f"{url}{path}", content=chunks, headers=headers, timeout=30)
    assert "content-length" not in response.request.headers  # sent chunked
    assert response.status_code == 413, response.text
    assert "larger than the limit" in response.json()["detail"]


def test_the_server_still_answers_over_the_socket(url: str, served: Served) -> None:
    response = httpx.post(f"{url}/ask", json={"question": QUESTION}, timeout=30)
    assert response.status_code == 200 and _without_timings(response.json()) == served.expected


# --- readiness and snapshots


def test_health_is_ready_only_once_the_model_is_loaded(fake_settings: Settings) -> None:
    pipeline = build_pipeline(fake_settings, WordsEmbedder())
    pipeline.update_index()  # an index can be loaded without the model (dimension from the manifest)
    app = create_server_app(fake_settings, pipeline)
    app.state.started = True
    client = TestClient(app, base_url="http://127.0.0.1")  # no lifespan: nothing loads the model
    assert pipeline.ready and not pipeline.model_loaded
    assert client.get("/health").status_code == 503
    pipeline.load_model()
    assert client.get("/health").json()["status"] == "ready"


def test_a_document_and_its_chunk_count_come_from_one_snapshot(
    served: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    pipeline = served.app.state.pipeline
    now = pipeline.snapshot
    doc_id = next(iter(now.documents))
    chunks = sum(1 for c in now.chunks if c.doc_id == doc_id)
    # every read of the snapshot sees another one, as when an upload swaps it between two reads
    changed = replace(now.documents[doc_id], text="Neu. Ganz neu.")
    without = [c for c in now.chunks if c.doc_id != doc_id]
    other = replace(now, documents={**now.documents, doc_id: changed}, chunks=without)
    swapping = itertools.cycle([now, other])
    monkeypatch.setattr(type(pipeline), "snapshot", property(lambda self: next(swapping)))
    seen = [served.client.get(f"/documents/{doc_id}").json() for _ in range(4)]
    pairs = {(b["text"], b["chunks"]) for b in seen}
    assert pairs == {(now.documents[doc_id].text, chunks), (changed.text, 0)}  # never mixed


# --- the corpus stays whole, and metadata stays small (F3, F4)


def test_an_upload_with_the_text_of_an_article_is_refused_and_the_original_stays(served: Served) -> None:
    before = _corpus_files(served)
    original = (served.corpus / "001_280cdb7c2d6d85fb.md").read_bytes()
    for form in ({}, {"title": "Ein anderer Titel"}):  # metadata beside it make no other article
        response = served.client.post(
            "/documents", files={"file": ("000_aaa.md", original)}, data=form, headers=AUTH
        )
        assert response.status_code == 409, response.text
        assert "already in the corpus as '001_280cdb7c2d6d85fb'" in response.json()["detail"]
    assert _corpus_files(served) == before
    assert served.client.get("/documents/001_280cdb7c2d6d85fb").status_code == 200
    served.still_answers()


def test_a_yaml_alias_bomb_is_refused(served: Served) -> None:
    from .test_hardening_corpus import BOMB

    before = _corpus_files(served)
    data = f"---\n{BOMB}---\nEin Satz hier. Noch ein Satz.\n".encode()
    response = served.client.post("/documents", files={"file": ("bombe.md", data)}, headers=AUTH)
    assert response.status_code == 422 and "aliases are not allowed" in response.json()["detail"]
    assert _corpus_files(served) == before
    assert len(served.client.get("/documents").content) < 10_000
