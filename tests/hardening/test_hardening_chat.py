"""The chat page's Gradio app, attacked as an outsider would: files, huge turns, foreign hosts, odd routes.

Each finding of the security review is a test with its exact payload, against ``rag serve`` started with
an API key (a real server in its own process, so that a stalled event loop shows in another client's
timings), or against the server app in this process where only its answers matter.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import SecretStr
from starlette.routing import Mount, Route

from bench.common import rag_serve
from rag.embedding.fake import WordsEmbedder
from rag.pipeline import Pipeline, build_pipeline
from rag.server import create_server_app
from rag.settings import Settings
from ui.app import Chat
from ui.conversation import Conversation, Exchange
from ui.guard import GradioGuard, holds_file, routed

from ..conftest import CORPUS, ROOT

KEY = "chat-test-key-5e1b"
QUESTION = "Wann wurde Nordkorea gegründet?"
SYSTEM_TMP = Path("/tmp/gradio")
FILE = {"path": "/proc/self/environ", "meta": {"_type": "gradio.FileData"}}
FILE_PART = {"type": "file", "file": FILE}


def _text(text: str) -> list[dict[str, str]]:
    return [{"type": "text", "text": text}]


@dataclass
class Live:
    url: str
    index: Path
    fn: dict[str, int]  # event name -> fn_index, from the page's config

    def event(self, name: str, data: list[Any], session: str = "s") -> httpx.Response:
        body = {"data": data, "fn_index": self.fn[name], "session_hash": session, "trigger_id": None}
        return httpx.post(f"{self.url}/gradio_api/queue/join", json=body, timeout=30)

    def result(self, name: str, data: list[Any], session: str) -> dict[str, Any]:
        """Send an event through the queue as the page does and wait for its outcome."""
        response = self.event(name, data, session)
        assert response.status_code == 200, response.text
        stream = f"{self.url}/gradio_api/queue/data"
        with httpx.stream("GET", stream, params={"session_hash": session}, timeout=60) as events:
            for line in events.iter_lines():
                if line.startswith("data:"):
                    message = json.loads(line[5:])
                    if message.get("msg") == "process_completed":
                        return message
        raise AssertionError("the event never completed")


def _listing(folder: Path) -> set[str] | None:
    return {p.as_posix() for p in folder.rglob("*")} if folder.exists() else None


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    base = tmp_path_factory.mktemp("chat")
    shutil.copytree(CORPUS, base / "corpus")
    env = {**os.environ, "RAG_MODEL": "test:words", "RAG_LEXICON": "none", "RAG_API_KEY": KEY}
    env.pop("GRADIO_TEMP_DIR", None)  # the server chooses its own cache folder
    with rag_serve(base / "corpus", base / "index", base / "serve.log", env, timeout=120) as (url, _):
        config = httpx.get(f"{url}/config", timeout=10).json()
        fn = {d["api_name"]: d["id"] for d in config["dependencies"] if d.get("api_name")}
        yield Live(url, base / "index", fn)


# --- F1: any file the server can read, copied into Gradio's cache and served back


def test_the_reported_payload_is_refused_and_nothing_is_copied(live: Live) -> None:
    before = _listing(SYSTEM_TMP)
    call = httpx.post(f"{live.url}/gradio_api/call/ask", json={"data": [FILE, None]}, timeout=10)
    assert call.status_code == 404 and call.json() == {"detail": "not found"}
    # a file object in any value the page's events take: the question, the request for an article, the
    # place of the conversation (which the server keeps itself), or deep inside a list
    payloads = {
        "ask": [[FILE, None], ["Wer?", FILE], [[{"role": "user", "content": [FILE_PART]}], None]],
        "open_article": [[FILE, None], ["1:c1:1", {"x": [FILE]}]],
        # the page's upload sends the file as text; a file object is refused, with or without the key
        "upload_article": [[FILE, KEY], [{"name": "a.txt", "data": [FILE]}, KEY]],
        "delete_article": [["000_x", FILE]],
        "export_conversation": [[FILE, None]],
    }
    for event, cases in payloads.items():
        for data in cases:
            response = live.event(event, data)
            assert response.status_code == 400, (event, data, response.text)
            assert "no files" in response.json()["detail"]
    legacy = {"data": [FILE, None], "fn_index": live.fn["ask"]}
    assert httpx.post(f"{live.url}/gradio_api/run/predict", json=legacy, timeout=10).status_code == 400
    assert httpx.get(f"{live.url}/gradio_api/file=/proc/self/environ", timeout=10).status_code == 404
    cached = [p for p in (live.index / "gradio-cache").rglob("*") if p.is_file()]
    assert cached == [] and _listing(SYSTEM_TMP) == before  # nothing copied, /tmp/gradio untouched


def test_gradio_checks_file_paths_itself_too(fake_settings: Settings) -> None:
    """Behind the guard, Gradio's own check refuses a path no user uploaded (it skips it unlaunched)."""
    from gradio import processing_utils
    from gradio.context import LocalContext
    from gradio.exceptions import InvalidPathError

    app = create_server_app(fake_settings, build_pipeline(fake_settings, WordsEmbedder()))
    mount = app.router.routes[-1]
    assert isinstance(mount, Mount) and isinstance(mount.app, GradioGuard)
    blocks = mount.app.app.get_blocks()  # type: ignore[attr-defined]
    assert blocks.has_launched and blocks.allowed_paths == [] and not blocks.show_error
    token = LocalContext.blocks.set(blocks)
    try:
        with pytest.raises(InvalidPathError, match="not uploaded by a user"):
            processing_utils._check_allowed("/etc/passwd", check_in_upload_folder=True)
    finally:
        LocalContext.blocks.reset(token)


def test_gradio_uploads_are_refused_without_storing_anything(live: Live) -> None:
    files = [("files", (f"f{i}.txt", b"x" * 100_000)) for i in range(20)]
    response = httpx.post(f"{live.url}/gradio_api/upload", files=files, timeout=30)
    assert response.status_code == 404 and response.json() == {"detail": "not found"}
    assert not [p for p in (live.index / "gradio-cache").rglob("*") if p.is_file()]


def test_the_cache_is_under_the_index_and_emptied_at_exit(tmp_path: Path) -> None:
    shutil.copytree(CORPUS, tmp_path / "corpus")
    cache = tmp_path / "index" / "gradio-cache"
    cache.mkdir(parents=True)
    (cache / "left-over.txt").write_text("from an earlier server")
    env = {**os.environ, "RAG_MODEL": "test:words", "RAG_LEXICON": "none"}
    with rag_serve(tmp_path / "corpus", tmp_path / "index", tmp_path / "log", env, timeout=120) as (url, _):
        assert cache.is_dir() and not any(cache.iterdir())  # emptied at start
        assert httpx.get(f"{url}/", timeout=10).status_code == 200
        (cache / "made-while-serving.txt").write_text("x")
    assert cache.is_dir() and not any(cache.iterdir())  # and at exit


# --- F2: one huge turn stalled the whole server (a backtracking regex over it). The page now sends only
# its question (the server keeps the conversation), so the huge value a client can send is the question.


@pytest.mark.parametrize("char", ["<", "‹"])
def test_a_300_kb_question_is_answered_at_once_and_other_questions_stay_fast(live: Live, char: str) -> None:
    def ask() -> float:
        started = time.perf_counter()
        assert httpx.post(f"{live.url}/ask", json={"question": QUESTION}, timeout=60).status_code == 200
        return time.perf_counter() - started

    solo = statistics.median(ask() for _ in range(7))
    during: list[float] = []
    stop = threading.Event()

    def keep_asking() -> None:
        while not stop.is_set():
            during.append(ask())

    other = threading.Thread(target=keep_asking)
    other.start()
    try:
        session = f"big-{ord(char)}"
        asked = live.result("ask", [QUESTION, None], session=session)  # a conversation to follow up on
        started = time.perf_counter()
        outcome = live.result("ask", [char * 300_000, None], session=session)
        took = time.perf_counter() - started
    finally:
        stop.set()
        other.join()
    assert asked["success"] and outcome["success"], outcome
    assert "2000" in outcome["output"]["data"][1]  # said to be too long, not read
    assert took < 1.0, f"the 300 KB question took {took:.2f} s"
    assert during and statistics.median(during) < 10 * max(solo, 0.005), (solo, during)


def test_the_chat_applies_the_apis_limits_before_reading_anything(fake_pipeline: Pipeline) -> None:
    fake_pipeline.warm_up()
    chat = Chat(fake_pipeline)
    seen: list[Any] = []
    real = fake_pipeline.ask
    fake_pipeline.ask = lambda q, top_k=None, history=(), filters=None: (  # type: ignore[method-assign]
        seen.append(history) or real(q, top_k, history, filters)
    )
    long = Exchange(1, "Frage " + "x" * 50_000, "Antwort " + "y" * 50_000, "de")
    conversation = Conversation(tuple(replace(long, number=i) for i in range(200)), 200)
    _, reply, _ = chat.ask(QUESTION, conversation)
    assert "rag-answered" in reply
    assert len(seen[0]) == 50 and all(len(t.content) <= 10_000 for t in seen[0])
    _, too_long, after = chat.ask("Wer? " + "x" * 300_000, Conversation())
    assert "rag-error" in too_long and "2000" in too_long
    assert len(after.exchanges[0].question) == 2001  # kept one over, so the answer says so
    assert "nicht mehr im Korpus" in chat.open_article("1" * 300_000, conversation)


# --- F6: foreign host names, and Gradio's error pages


@pytest.mark.parametrize("path", ["/health", "/", "/gradio_api/queue/data", "/documents"])
def test_a_foreign_host_name_is_refused(live: Live, path: str) -> None:
    response = httpx.get(f"{live.url}{path}", headers={"Host": "evil.example"}, timeout=10)
    assert response.status_code == 400 and "host name" in response.json()["detail"]
    for host in ("127.0.0.1", "localhost"):
        ok = httpx.get(f"{live.url}/health", headers={"Host": f"{host}:80"}, timeout=10)
        assert ok.status_code == 200


def test_gradio_errors_are_json_without_paths(live: Live) -> None:
    attempts = [
        httpx.get(f"{live.url}/gradio_api/file=/etc", timeout=10),
        httpx.get(f"{live.url}/gradio_api/file=/work/main/rag/http/app.py", timeout=10),
        httpx.post(f"{live.url}/gradio_api/queue/join", content=b"{not json", timeout=10),
        httpx.post(f"{live.url}/gradio_api/queue/join", json={"data": [], "fn_index": 999}, timeout=10),
        httpx.post(f"{live.url}/gradio_api/run/predict", json={"data": [1], "fn_index": 1}, timeout=10),
        httpx.get(f"{live.url}/gradio_api/info", timeout=10),
        httpx.post(f"{live.url}/gradio_api/vibe-edit", json={}, timeout=10),
    ]
    for response in attempts:
        assert 400 <= response.status_code < 500, (response.request.url, response.text)
        assert response.headers["content-type"] == "application/json"
        detail = response.json()["detail"]
        assert "/" not in detail and "Errno" not in detail and "Traceback" not in detail, detail


# --- every route the server has, asked without a key

OPEN_API = {
    ("GET", "/health"),
    ("POST", "/ask"),
    ("GET", "/documents"),
    ("GET", "/documents/{doc_id}"),
    ("GET", "/openapi.json"),
    ("GET", "/docs"),
    ("GET", "/docs-assets/{path}"),
    ("GET", "/v1/models"),
    ("GET", "/v1/models/{model}"),
    ("POST", "/v1/chat/completions"),
}
KEYED_API = {("POST", "/documents"), ("DELETE", "/documents/{doc_id}")}
OPENAI_API = {(m, p) for m, p in OPEN_API if p.startswith("/v1/")}  # keyed with RAG_OPENAI_KEY_REQUIRED


def _routes(app: Any, prefix: str = "") -> Iterator[tuple[str, str]]:
    for route in app.routes:
        if isinstance(route, Mount):
            inner = route.app.app if isinstance(route.app, GradioGuard) else route.app
            if hasattr(inner, "routes"):
                yield from _routes(inner, prefix + route.path)
            else:
                yield "GET", prefix + route.path + "/{path}"
        elif hasattr(route, "include_context"):  # FastAPI's included router
            context = route.include_context  # type: ignore[attr-defined]
            yield from _routes(context.included_router, prefix + context.prefix)
        elif isinstance(route, Route) and route.methods:
            for method in sorted(route.methods - {"HEAD"}):
                yield method, prefix + route.path


def _filled(path: str) -> str:
    out, depth = [], 0
    for ch in path:  # every {parameter} becomes "x"
        if ch == "{":
            depth += 1
            out.append("x") if depth == 1 else None
        elif ch == "}":
            depth -= 1
        elif not depth:
            out.append(ch)
    return "".join(out)


def test_every_route_is_open_keyed_or_closed(fake_settings: Settings) -> None:
    settings = fake_settings.updated(api_key=SecretStr(KEY))
    app = create_server_app(settings, build_pipeline(settings, WordsEmbedder()))
    routes = set(_routes(app))
    assert len(routes) > 60  # the API's and all of Gradio's
    chat = {(m, p) for m, p in routes if (m, p) not in OPEN_API | KEYED_API and routed(m, _filled(p))}
    assert chat == {
        ("GET", "/"),
        ("GET", "/config"),
        ("GET", "/theme.css"),
        ("GET", "/favicon.ico"),
        ("GET", "/robots.txt"),
        ("GET", "/assets/{path:path}"),
        ("GET", "/static/{path:path}"),
        ("GET", "/gradio_api/queue/data"),
        ("GET", "/gradio_api/heartbeat/{session_hash}"),
        ("POST", "/gradio_api/queue/join"),
        ("POST", "/gradio_api/cancel"),
    }
    assert routed("POST", "/gradio_api/run/predict") and not routed("POST", "/gradio_api/run/answer")
    readme = (ROOT / "README.md").read_text().split("## Security", 1)[1].split("\n## ", 1)[0]
    with TestClient(app, base_url="http://127.0.0.1") as client:
        for method, path in sorted(routes - chat):  # the page's own routes stream: other tests use them
            response = client.request(method, _filled(path))
            assert response.status_code < 500, (method, path, response.text)
            if (method, path) in KEYED_API:
                assert response.status_code == 401, (method, path)
            elif (method, path) not in OPEN_API and (method, path) not in chat:
                assert response.status_code in (404, 405), (method, path, response.status_code)
                assert response.headers["content-type"] == "application/json", (method, path)
            if (method, path) in OPEN_API | KEYED_API:
                assert f"`{method} {path}`" in readme, f"README's Security section misses {method} {path}"
    assert "`POST /gradio_api/queue/join`" in readme and "`POST /gradio_api/run/predict`" in readme


def test_mcp_takes_post_only_and_is_in_the_security_table(fake_settings: Settings) -> None:
    app = create_server_app(fake_settings, build_pipeline(fake_settings, WordsEmbedder()))
    readme = (ROOT / "README.md").read_text().split("## Security", 1)[1].split("\n## ", 1)[0]
    assert "`POST /mcp`" in readme
    with TestClient(app, base_url="http://127.0.0.1") as client:
        for method in ("GET", "DELETE", "PUT", "PATCH", "OPTIONS"):
            response = client.request(method, "/mcp")
            assert response.status_code == 405 and response.headers["allow"] == "POST", method
            assert response.json()["detail"]
        wrong = client.post("/mcp", content=b"{}", headers={"content-type": "text/plain"})
        assert 400 <= wrong.status_code < 500 and wrong.json()["detail"]  # the SDK's plain text, as JSON


def test_with_the_option_the_openai_routes_need_the_key(fake_settings: Settings) -> None:
    settings = fake_settings.updated(api_key=SecretStr(KEY), openai_key_required=True)
    app = create_server_app(settings, build_pipeline(settings, WordsEmbedder()))
    assert set(_routes(app)) >= OPENAI_API
    with TestClient(app, base_url="http://127.0.0.1") as client:
        for method, path in sorted(OPENAI_API):
            assert client.request(method, _filled(path)).status_code == 401, (method, path)
            keyed = client.request(method, _filled(path), headers={"X-API-Key": KEY})
            assert keyed.status_code in (200, 400, 404), (method, path, keyed.text)


# --- property tests over the routes the page uses: no payload makes a server error

_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=50),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=10), inner, max_size=5),
    max_leaves=30,
)
_part = st.fixed_dictionaries({"type": st.just("text"), "text": st.text(max_size=300)})
_message = st.fixed_dictionaries(
    {"role": st.sampled_from(["user", "assistant", "system", ""]), "content": st.lists(_part, max_size=3)}
)


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    base = tmp_path_factory.mktemp("prop")
    shutil.copytree(CORPUS, base / "corpus")
    settings = Settings(
        corpus_dir=base / "corpus", index_dir=base / "index", model="test:words", lexicon="none"
    )
    app = create_server_app(settings, build_pipeline(settings, WordsEmbedder()))
    with TestClient(app, base_url="http://127.0.0.1") as c:
        yield c


@settings(max_examples=150, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(
    path=st.sampled_from(["/gradio_api/queue/join", "/gradio_api/run/predict", "/gradio_api/cancel"]),
    body=st.one_of(
        _json,
        st.fixed_dictionaries(
            {
                "data": st.lists(_json, max_size=3),
                "fn_index": st.integers(-2, 8),
                "session_hash": st.text(max_size=8),
            }
        ),
        st.fixed_dictionaries(
            {"data": st.tuples(st.lists(_message, max_size=4)).map(list), "fn_index": st.integers(0, 5)}
        ),
    ),
)
def test_no_event_payload_makes_a_server_error(client: TestClient, path: str, body: Any) -> None:
    response = client.post(path, json=body)
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        assert response.headers["content-type"] == "application/json" and response.json()["detail"]
    assert holds_file(body) <= (response.status_code == 400)


@settings(max_examples=150, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(
    questions=st.lists(st.text(max_size=300), max_size=4),
    message=st.text(max_size=3000),
    request=st.text(max_size=60),
)
def test_the_handlers_answer_any_text(
    chat_for_properties: Chat, questions: list[str], message: str, request: str
) -> None:
    conversation = Conversation()
    for question in [*questions, message]:
        box, turn, after = chat_for_properties.ask(question, conversation)
        assert box == "" and after.count in (conversation.count, conversation.count + 1)
        assert (after.count > conversation.count) == isinstance(turn, str)
        conversation = after
    assert "rag-panel" in chat_for_properties.open_article(request, conversation)


@pytest.fixture(scope="module")
def chat_for_properties(client: TestClient) -> Chat:
    return Chat(client.app.state.pipeline)  # type: ignore[attr-defined]


def test_the_guard_finds_files_anywhere_in_a_payload() -> None:
    assert holds_file({"data": [[{"role": "user", "content": [{"type": "file", "file": {"path": "x"}}]}]]})
    assert holds_file([[[[{"path": 1}]]]])
    assert not holds_file({"data": [[{"role": "user", "content": _text("path")}]], "fn_index": 2})
