"""The OpenAI-compatible endpoint, used by the official ``openai`` client against a real ``rag serve``.

The server runs the instant test embedder in its own process (uvicorn, as shipped); every answer is
compared with what ``POST /ask`` says for the same question and history on the same server.
"""

from __future__ import annotations

import os
import shutil
import statistics
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import openai
import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from bench.common import rag_serve
from rag.embedding.fake import WordsEmbedder
from rag.http.app import create_app
from rag.http.openai import MODEL_ID, answer_text
from rag.pipeline import build_pipeline
from rag.settings import Settings
from rag.types import Answer, Citation, Passage

from ..conftest import CORPUS, WORDS_MODEL

KEY = "openai-test-key-7c1d"
BASE = "http://127.0.0.1"
QUESTION = "Wann wurde Nordkorea gegründet?"
FIRST, FOLLOW_UP = "Wer ist der russische UN-Botschafter?", "Was sagte er über die Sanktionen?"


@dataclass
class Live:
    url: str
    client: openai.OpenAI

    def ask(self, question: str, history: list[dict[str, str]] | None = None) -> dict[str, Any]:
        body = {"question": question, "history": history or []}
        response = httpx.post(f"{self.url}/ask", json=body, timeout=30)
        response.raise_for_status()
        return response.json()


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    base = tmp_path_factory.mktemp("openai")
    shutil.copytree(CORPUS, base / "corpus")
    env = {
        **os.environ,
        "RAG_MODEL": "test:words",
        "RAG_LEXICON": "none",
        "RAG_COMPOSER_MODEL": str(WORDS_MODEL),
        "RAG_API_KEY": KEY,
        "RAG_OPENAI_KEY_REQUIRED": "true",
    }
    with rag_serve(base / "corpus", base / "index", base / "serve.log", env, timeout=120) as (url, _):
        client = openai.OpenAI(base_url=f"{url}/v1", api_key=KEY, max_retries=0, timeout=30)
        yield Live(url, client)
        client.close()


def _sources(expected: dict[str, Any]) -> str:
    lines = [
        f"[{c['n']}] {c['title']}, {c['date'] or 'ohne Datum'}: „{c['quote']}“" for c in expected["citations"]
    ]
    return "\n\nQuellen:\n" + "\n".join(lines)


def test_an_answer_is_the_asks_answer_with_its_sources_and_citations(live: Live) -> None:
    expected = live.ask(QUESTION)
    assert not expected["abstained"] and expected["citations"]
    reply = live.client.chat.completions.create(
        model=MODEL_ID, messages=[{"role": "user", "content": QUESTION}]
    )
    assert reply.object == "chat.completion" and reply.model == MODEL_ID and len(reply.choices) == 1
    choice = reply.choices[0]
    assert choice.finish_reason == "stop" and choice.message.role == "assistant"
    assert choice.message.content == expected["answer"] + _sources(expected)
    assert (reply.model_extra or {})["citations"] == expected["citations"]


def test_earlier_messages_are_the_history_and_system_messages_are_ignored(live: Live) -> None:
    first = live.ask(FIRST)
    history = [{"role": "user", "content": FIRST}, {"role": "assistant", "content": first["answer"]}]
    expected = live.ask(FOLLOW_UP, history)
    assert expected["resolved_question"] != FOLLOW_UP  # it is read as a follow-up
    messages: list[Any] = [
        {"role": "system", "content": "You are a helpful assistant."},
        *history,
        {"role": "user", "content": [{"type": "text", "text": FOLLOW_UP}]},  # content parts, as clients send
    ]
    reply = live.client.chat.completions.create(model=MODEL_ID, messages=messages)
    content = reply.choices[0].message.content or ""
    assert content.startswith(expected["answer"])
    assert (reply.model_extra or {})["citations"] == expected["citations"]


def test_streaming_sends_the_same_content_in_chunks_and_the_citations_last(live: Live) -> None:
    expected = live.client.chat.completions.create(
        model=MODEL_ID, messages=[{"role": "user", "content": QUESTION}]
    )
    stream = live.client.chat.completions.create(
        model=MODEL_ID, messages=[{"role": "user", "content": QUESTION}], stream=True
    )
    chunks = list(stream)
    assert len(chunks) >= 4 and {c.object for c in chunks} == {"chat.completion.chunk"}
    assert len({c.id for c in chunks}) == 1 and chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert text == expected.choices[0].message.content
    assert [c.choices[0].finish_reason for c in chunks] == [None] * (len(chunks) - 1) + ["stop"]
    assert (chunks[-1].model_extra or {})["citations"] == (expected.model_extra or {})["citations"]
    assert all("citations" not in (c.model_extra or {}) for c in chunks[:-1])


def test_the_stream_is_server_sent_events_ending_in_done(live: Live) -> None:
    body = {"model": "any-name", "messages": [{"role": "user", "content": QUESTION}], "stream": True}
    headers = {"Authorization": f"Bearer {KEY}"}
    with httpx.stream("POST", f"{live.url}/v1/chat/completions", json=body, headers=headers) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        events = [line for line in response.iter_lines() if line]
    assert all(e.startswith("data: ") for e in events) and events[-1] == "data: [DONE]"


def test_the_model_is_listed(live: Live) -> None:
    assert [m.id for m in live.client.models.list()] == [MODEL_ID]
    assert live.client.models.retrieve(MODEL_ID).id == MODEL_ID
    with pytest.raises(openai.NotFoundError):
        live.client.models.retrieve("gpt-4o")


def test_refusals_are_openai_errors(live: Live) -> None:
    cases: list[tuple[list[Any], str]] = [
        ([], "messages"),
        ([{"role": "assistant", "content": "Hallo"}], "messages"),
        ([{"role": "user", "content": "  "}], "messages"),
        ([{"role": "robot", "content": QUESTION}], "messages.0.role"),
        ([{"role": "user", "content": "x" * 2001}], None),
    ]
    for messages, param in cases:
        with pytest.raises(openai.BadRequestError) as refused:
            live.client.chat.completions.create(model=MODEL_ID, messages=messages)
        error = refused.value
        assert error.status_code == 400 and error.type == "invalid_request_error", error.body
        assert isinstance(error.body, dict) and error.body["message"]
        if param:
            assert error.param == param, error.body
    raw = httpx.post(
        f"{live.url}/v1/chat/completions", content=b"{not json", headers={"Authorization": f"Bearer {KEY}"}
    )
    assert raw.status_code == 400 and set(raw.json()["error"]) == {"message", "type", "param", "code"}


def test_with_the_key_required_a_missing_or_wrong_key_is_refused(live: Live) -> None:
    for key in ("", "wrong-key"):
        other = openai.OpenAI(base_url=f"{live.url}/v1", api_key=key or "unused", max_retries=0)
        if not key:
            other = other.with_options(default_headers={"Authorization": ""})
        with pytest.raises(openai.AuthenticationError) as refused:
            other.chat.completions.create(model=MODEL_ID, messages=[{"role": "user", "content": QUESTION}])
        assert refused.value.status_code == 401 and KEY not in str(refused.value.body)
        with pytest.raises(openai.AuthenticationError):
            other.models.list()
    ok = httpx.get(f"{live.url}/v1/models", headers={"X-API-Key": KEY})
    assert ok.status_code == 200


def test_the_v1_routes_cost_about_what_ask_costs(live: Live) -> None:
    """Median over 15 questions each; printed with -s (the README quotes the real model's figures)."""

    def timed(call: Any) -> float:
        started = time.perf_counter()
        call()
        return time.perf_counter() - started

    with httpx.Client(base_url=live.url, headers={"X-API-Key": KEY}, timeout=30) as http:
        body = {"model": MODEL_ID, "messages": [{"role": "user", "content": QUESTION}]}
        ask = [timed(lambda: http.post("/ask", json={"question": QUESTION})) for _ in range(15)]
        v1 = [timed(lambda: http.post("/v1/chat/completions", json=body)) for _ in range(15)]
    a, b = statistics.median(ask) * 1000, statistics.median(v1) * 1000
    print(f"\nmedian /ask {a:.1f} ms, /v1/chat/completions {b:.1f} ms")
    assert b < 2 * a + 20


# --- in this process


def test_without_the_option_the_endpoint_is_open_and_with_no_key_configured_it_is_off(
    fake_settings: Settings,
) -> None:
    with TestClient(
        create_app(fake_settings, build_pipeline(fake_settings, WordsEmbedder())), base_url=BASE
    ) as client:
        assert client.get("/v1/models").status_code == 200
    required = fake_settings.updated(openai_key_required=True)
    with TestClient(create_app(required, build_pipeline(required, WordsEmbedder())), base_url=BASE) as client:
        off = client.get("/v1/models", headers={"X-API-Key": "anything"})
        assert off.status_code == 403 and off.json()["error"]["type"] == "permission_error"
        assert "RAG_API_KEY" in off.json()["error"]["message"]
    keyed = required.updated(api_key=SecretStr(KEY))
    with TestClient(create_app(keyed, build_pipeline(keyed, WordsEmbedder())), base_url=BASE) as client:
        assert client.get("/v1/models", headers={"Authorization": f"Bearer {KEY}"}).status_code == 200
        assert client.get("/v1/models").status_code == 401


def test_a_long_chat_is_read_like_the_api_reads_history(fake_settings: Settings) -> None:
    pipeline = build_pipeline(fake_settings, WordsEmbedder())
    seen: list[Any] = []
    real = pipeline.ask
    pipeline.ask = lambda q, top_k=None, history=(): seen.append(history) or real(q, top_k, history)  # type: ignore[method-assign]
    # 60 messages of 12,000 characters: 720 KB, under the 1 MiB body limit
    turns = [{"role": r, "content": r[0] * 12_000} for _ in range(30) for r in ("user", "assistant")]
    body = {"model": MODEL_ID, "messages": [*turns, {"role": "user", "content": QUESTION}]}
    with TestClient(create_app(fake_settings, pipeline), base_url=BASE) as client:
        response = client.post("/v1/chat/completions", json=body)
    assert response.status_code == 200, response.text
    assert len(seen[0]) == 50 and all(len(t.content) == 10_000 for t in seen[0])


def test_an_abstention_lists_the_closest_passages_with_their_dates() -> None:
    passage = Passage("d1", "Ein Titel", 10, 41, "Erster Satz. Zweiter Satz hier.", 0.5, 23, 41)
    answer = Answer("Wer?", "Dazu steht nichts in den Artikeln.", True, "de", (), (passage,))
    assert answer_text(answer, {"d1": "2024-07"}) == (
        "Dazu steht nichts in den Artikeln.\n\nNächstliegende Stellen:\n"
        "- Ein Titel, 2024-07: „Zweiter Satz hier.“"
    )
    cited = Citation(1, "d1", "A title", None, "It said so.", 0, 11, "It said so.", 0, 11, 1.0)
    answered = Answer("Who?", "It said so. [1]", False, "en", (cited,), ())
    assert answer_text(answered, {}) == "It said so. [1]\n\nSources:\n[1] A title, undated: “It said so.”"
