"""The MCP server, driven by the SDK's own client over both transports: `rag mcp` (stdio) and `/mcp` of
`rag serve` (streamable HTTP). Each runs in its own process with the instant test embedder."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from mcp import Client
from mcp.client.stdio import StdioServerParameters

from bench.common import rag_serve

from ..conftest import CORPUS, ROOT, WORDS_MODEL

QUESTION = "Wann wurde Nordkorea gegründet?"
TOOLS = {"ask", "search", "get_document", "list_documents"}
ENV = {"RAG_MODEL": "test:words", "RAG_LEXICON": "none", "RAG_COMPOSER_MODEL": str(WORDS_MODEL)}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("mcp")
    shutil.copytree(CORPUS, base / "corpus")
    return base


@pytest.fixture(scope="module")
def http_url(corpus: Path) -> Iterator[str]:
    env = {**os.environ, **ENV}
    with rag_serve(corpus / "corpus", corpus / "index-http", corpus / "serve.log", env, timeout=120) as (
        url,
        _,
    ):
        yield url


def _stdio(corpus: Path) -> StdioServerParameters:
    args = [
        "-m",
        "rag.cli",
        "mcp",
        "--corpus",
        str(corpus / "corpus"),
        "--index",
        str(corpus / "index-stdio"),
    ]
    return StdioServerParameters(command=sys.executable, args=args, env={**os.environ, **ENV}, cwd=str(ROOT))


@asynccontextmanager
async def _client(transport: str, corpus: Path, http_url: str) -> AsyncIterator[Client]:
    server: Any = _stdio(corpus) if transport == "stdio" else f"{http_url}/mcp"
    async with Client(server, read_timeout_seconds=60) as client:
        yield client


async def _exercise(client: Client) -> dict[str, Any]:
    """Every tool once, checked against the others: the citations' and passages' offsets point into the
    text get_document returns."""
    tools = await client.list_tools()
    assert {t.name for t in tools.tools} == TOOLS
    assert all(t.description for t in tools.tools)

    listed = await client.call_tool("list_documents", {})
    assert not listed.is_error and listed.structured_content
    documents = {d["doc_id"]: d for d in listed.structured_content["documents"]}
    assert listed.structured_content["count"] == len(documents) == 2

    asked = await client.call_tool("ask", {"question": QUESTION})
    assert not asked.is_error and asked.structured_content
    answer = asked.structured_content
    assert set(answer) == {"answer", "abstained", "confidence", "resolved_question", "citations"}
    assert not answer["abstained"] and answer["citations"] and "[1]" in answer["answer"]
    for citation in answer["citations"]:
        got = await client.call_tool("get_document", {"doc_id": citation["doc_id"]})
        document = got.structured_content or {}
        assert document["text"][citation["start"] : citation["end"]] == citation["quote"]
        assert document["title"] == documents[citation["doc_id"]]["title"] == citation["title"]

    found = await client.call_tool("search", {"question": QUESTION, "top_k": 3})
    passages = (found.structured_content or {})["passages"]
    assert 1 <= len(passages) <= 3
    for p in passages:
        text = ((await client.call_tool("get_document", {"doc_id": p["doc_id"]})).structured_content or {})[
            "text"
        ]
        assert text[p["start"] : p["end"]] == p["text"]

    one = next(iter(documents))  # the filters of /ask: only that article is searched and cited
    kept = await client.call_tool("search", {"question": QUESTION, "filters": {"doc_ids": [one]}})
    assert {p["doc_id"] for p in (kept.structured_content or {})["passages"]} == {one}
    later = await client.call_tool("ask", {"question": QUESTION, "filters": {"date_from": "2099-01-01"}})
    assert later.is_error and "no article matches the filters" in later.content[0].text  # type: ignore[union-attr]

    missing = await client.call_tool("get_document", {"doc_id": "nope"})
    assert missing.is_error and "no document with id 'nope'" in missing.content[0].text  # type: ignore[union-attr]
    blank = await client.call_tool("ask", {"question": "   "})
    assert blank.is_error and "empty" in blank.content[0].text  # type: ignore[union-attr]
    too_long = await client.call_tool("ask", {"question": "x" * 2001})
    assert too_long.is_error
    return answer


@pytest.mark.parametrize("transport", ["stdio", "http"])
def test_every_tool_over_each_transport(transport: str, corpus: Path, http_url: str) -> None:
    async def run() -> dict[str, Any]:
        async with _client(transport, corpus, http_url) as client:
            return await _exercise(client)

    answer = anyio.run(run)
    expected = httpx.post(f"{http_url}/ask", json={"question": QUESTION}, timeout=30).json()
    assert answer["answer"] == expected["answer"] and answer["citations"] == expected["citations"]


def test_the_http_transport_is_behind_the_servers_host_check_and_body_limit(http_url: str) -> None:
    foreign = httpx.post(f"{http_url}/mcp", json={}, headers={"Host": "evil.example"})
    assert foreign.status_code == 400 and "host name" in foreign.json()["detail"]
    huge = httpx.post(
        f"{http_url}/mcp", content=b"x" * (2 * 1024 * 1024), headers={"content-type": "application/json"}
    )
    assert huge.status_code == 413
    for method in ("GET", "POST", "DELETE"):  # no session, no body: refused, never a server error
        response = httpx.request(method, f"{http_url}/mcp")
        assert 400 <= response.status_code < 500, (method, response.status_code, response.text)
