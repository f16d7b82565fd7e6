"""Property-based fuzzing of the HTTP API from its own OpenAPI schema (schemathesis), bounded for CI.

The OpenAI-compatible routes (``/v1``) are in the schema and fuzzed alike; the MCP endpoint, which has no
OpenAPI description (JSON-RPC), is fuzzed from its own message shapes by the last test.

The whole server app is fuzzed (API with the chat UI mounted, middleware included) with the instant
embedder; the schema lists only the API's operations, so only those are generated. Every response must be
a documented status with a body that matches the schema, never a 5xx; valid and invalid inputs both.
Examples are derandomized, so a CI run is reproducible; raise ``FUZZ_EXAMPLES`` for a deeper local run.
"""

from __future__ import annotations

import os
import shutil
from collections import Counter
from collections.abc import Iterator

import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from pydantic import SecretStr
from schemathesis.config import SchemathesisConfig

from rag.embedding.fake import WordsEmbedder
from rag.http.app import create_app
from rag.pipeline import build_pipeline
from rag.server import create_server_app
from rag.settings import Settings

from ..conftest import CORPUS

KEY = "fuzz-key-0123456789"
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "200"))
CALLS: Counter[str] = Counter()


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FastAPI]:
    base = tmp_path_factory.mktemp("fuzz")
    shutil.copytree(CORPUS, base / "corpus")
    config = Settings(
        corpus_dir=base / "corpus",
        index_dir=base / "index",
        model="test:words",
        api_key=SecretStr(KEY),
        openai_key_required=True,  # so that the key the schema declares on /v1 is checked too
        max_upload_bytes=20_000,
    )
    app = create_server_app(config, build_pipeline(config, WordsEmbedder()))
    with TestClient(
        app, base_url="http://127.0.0.1"
    ):  # runs the lifespan once: model loaded, index built, then fuzzed in place
        # the word list compiles in the background at start (~7 s, more on a busy machine); a question in
        # the other language waits for it, and past 10 s the case would fail as a timeout
        app.state.pipeline.prepare_lexicon()
        yield app


def _spec() -> dict:
    # Collected at import (schemathesis parametrizes at collection); the schema does not depend on the
    # settings, and the test below checks that the served app publishes exactly this one.
    return create_app(Settings(model="test:words"), build_pipeline(Settings(model="test:words"))).openapi()


SPEC = _spec()
# A schema cannot say "a .txt or .md file with text in it" or "a question with something printable in
# it", so a schema-valid request may still be refused with 422 and a reason: that is the API's contract.
# A request over the body limit is refused with 413 before anyone reads whether it fits the schema.
# The /v1 routes say 400 where the others say 422 (OpenAI's status for a request it cannot answer, such as
# a conversation whose last message is not the user's).
_VALID = ["2xx", "400", "401", "403", "404", "409", "413", "422"]
_INVALID = ["400", "401", "403", "404", "405", "409", "413", "422"]
CONFIG = SchemathesisConfig.from_dict(
    {
        "checks": {
            "positive_data_acceptance": {"expected-statuses": _VALID},
            "negative_data_rejection": {"expected-statuses": _INVALID},
        }
    }
)
schema = schemathesis.openapi.from_dict(SPEC, config=CONFIG)


@pytest.fixture(scope="module", autouse=True)
def _report_calls() -> Iterator[None]:
    yield
    print(f"\nschemathesis: {sum(CALLS.values())} generated cases: {dict(sorted(CALLS.items()))}")  # with -s


def test_the_served_app_publishes_the_fuzzed_schema(served: FastAPI) -> None:
    assert served.openapi() == SPEC
    assert set(SPEC["paths"]) == {  # no UI routes
        "/ask",
        "/documents",
        "/documents/{doc_id}",
        "/health",
        "/v1/models",
        "/v1/models/{model}",
        "/v1/chat/completions",
    }


@pytest.mark.timeout(600)
@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_every_api_operation_conforms_to_its_schema(served: FastAPI, case: schemathesis.Case) -> None:
    CALLS[f"{case.method} {case.path}"] += 1
    # the checks' own probes (the request again without the key, for ignored_auth) take the schema's
    # transport, not the app given to call_and_validate: without this they would try a real connection
    case.operation.schema.app = served
    case.call_and_validate(app=served, base_url="http://127.0.0.1", headers={"X-API-Key": KEY})
