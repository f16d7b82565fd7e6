"""Schemathesis fuzzing of ``/mcp``, the MCP tools over streamable HTTP, from the tools' own input schemas.

The MCP endpoint speaks JSON-RPC and has no OpenAPI description, so one is written here from what the
server publishes (``tools/list``): ``POST /mcp`` with a ``tools/call`` of each tool whose ``arguments``
follow that tool's input schema, or a ``tools/list``. Valid and invalid calls both go to the whole server
app (middleware and chat included). A call the tool refuses is a JSON-RPC result with ``isError``, so a
refused value is no 4xx here: only server errors, undocumented statuses and responses outside the
JSON-RPC shape fail.
"""

from __future__ import annotations

import os
import shutil
from collections import Counter
from collections.abc import Iterator
from typing import Any

import anyio
import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from schemathesis.config import SchemathesisConfig

from rag.embedding.fake import WordsEmbedder
from rag.mcp_server import create_mcp
from rag.pipeline import build_pipeline
from rag.server import create_server_app
from rag.settings import Settings

from ..conftest import CORPUS

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "200")) // 2
CALLS: Counter[str] = Counter()
_ERROR = {"type": "object", "properties": {"detail": {"type": "string"}}, "required": ["detail"]}
_RPC = {  # a JSON-RPC answer: a result or an error, never both
    "type": "object",
    "required": ["jsonrpc"],
    "properties": {"jsonrpc": {"const": "2.0"}, "result": {"type": "object"}, "error": {"type": "object"}},
    "oneOf": [{"required": ["result"]}, {"required": ["error"]}],
}


def _inline(schema: Any, defs: dict[str, Any] | None = None) -> Any:
    """A tool's input schema with its ``$defs`` references written out: embedded in the OpenAPI body below,
    ``#/$defs/...`` would point at the wrong document root."""
    if defs is None and isinstance(schema, dict):
        defs = schema.get("$defs", {})
    if isinstance(schema, dict):
        ref = schema.get("$ref", "")
        if ref.startswith("#/$defs/"):
            return _inline(defs[ref.removeprefix("#/$defs/")], defs)  # type: ignore[index]
        return {k: _inline(v, defs) for k, v in schema.items() if k != "$defs"}
    if isinstance(schema, list):
        return [_inline(v, defs) for v in schema]
    return schema


def _call(name: str, schema: dict[str, Any]) -> dict[str, Any]:
    params = {
        "type": "object",
        "required": ["name", "arguments"],
        "properties": {"name": {"const": name}, "arguments": schema},
        "additionalProperties": False,
    }
    return {
        "type": "object",
        "required": ["jsonrpc", "id", "method", "params"],
        "properties": {
            "jsonrpc": {"const": "2.0"},
            "id": {"type": "integer", "minimum": 1, "maximum": 10**6},
            "method": {"const": "tools/call"},
            "params": params,
        },
        "additionalProperties": False,
    }


def _spec() -> dict[str, Any]:
    """An OpenAPI description of ``POST /mcp`` from the tools this server publishes (no index is read)."""
    tools = anyio.run(create_mcp(build_pipeline(Settings(model="test:words"), WordsEmbedder())).list_tools)
    listing = {
        "type": "object",
        "required": ["jsonrpc", "id", "method"],
        "properties": {
            "jsonrpc": {"const": "2.0"},
            "id": {"type": "integer"},
            "method": {"const": "tools/list"},
        },
        "additionalProperties": False,
    }
    body = {"oneOf": [listing, *(_call(t.name, _inline(t.input_schema)) for t in tools)]}
    accept = {
        "name": "Accept",
        "in": "header",
        "required": True,
        "schema": {"const": "application/json, text/event-stream"},
    }
    answers = {"200": {"description": "a JSON-RPC answer", "content": {"application/json": {"schema": _RPC}}}}
    # a message the transport reads as a notification or a response (no usable id) gets 202 and no body
    answers["202"] = {"description": "accepted, nothing to answer"}
    for status in ("400", "406", "413", "415"):  # a body or headers the transport cannot read
        answers[status] = {"description": "refused", "content": {"application/json": {"schema": {}}}}
    return {
        "openapi": "3.1.0",
        "info": {"title": "Evidence RAG MCP tools", "version": "1"},
        "paths": {
            "/mcp": {
                "post": {
                    "operationId": "mcp",
                    "parameters": [accept],
                    "requestBody": {"required": True, "content": {"application/json": {"schema": body}}},
                    "responses": answers,
                }
            }
        },
    }


CONFIG = SchemathesisConfig.from_dict(
    {
        "checks": {
            "negative_data_rejection": {"enabled": False},  # a refused tool argument is an isError result
            "positive_data_acceptance": {"expected-statuses": ["2xx"]},
        }
    }
)
schema = schemathesis.openapi.from_dict(_spec(), config=CONFIG)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FastAPI]:
    base = tmp_path_factory.mktemp("fuzz-mcp")
    shutil.copytree(CORPUS, base / "corpus")
    config = Settings(
        corpus_dir=base / "corpus", index_dir=base / "index", model="test:words", lexicon="none"
    )
    app = create_server_app(config, build_pipeline(config, WordsEmbedder()))
    with TestClient(app, base_url="http://127.0.0.1"):  # the lifespan starts the MCP session manager
        yield app


@pytest.fixture(scope="module", autouse=True)
def _report_calls() -> Iterator[None]:
    yield
    print(f"\nschemathesis /mcp: {sum(CALLS.values())} generated cases: {dict(sorted(CALLS.items()))}")


@pytest.mark.timeout(600)
@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_the_mcp_endpoint_never_fails_on_any_tool_call(served: FastAPI, case: schemathesis.Case) -> None:
    body = case.body if isinstance(case.body, dict) else {}
    params = body.get("params")
    name = params.get("name") if isinstance(params, dict) else None
    CALLS[str(name or body.get("method") or "other")] += 1
    case.operation.schema.app = served  # the checks' own probes take the schema's transport
    case.call_and_validate(app=served, base_url="http://127.0.0.1")
