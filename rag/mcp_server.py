"""The articles as an MCP server (the official ``mcp`` SDK), so assistants can ask and search them.

Tools: ``ask`` (an answer of quoted, cited sentences, or an abstention), ``search`` (the closest passages
with their offsets), ``get_document`` (an article's text, which the offsets point into, and its metadata)
and ``list_documents``. They return the HTTP API's own objects (``rag.http.schemas``) as structured content.
``rag mcp`` serves them over stdio; ``rag serve`` also at ``/mcp`` over streamable HTTP, stateless and
with JSON responses, behind the server's host check and body limit (the SDK's own host check is off:
``RAG_ALLOWED_HOSTS`` decides for every route alike). Every tool only reads, like ``POST /ask``.

Product errors are translated once, in :func:`_run`, into a tool error with the product's message.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import asdict
from typing import Annotated, Any, TypeVar

import anyio
from fastapi import FastAPI
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.server.transport_security import TransportSecuritySettings
from pydantic import BaseModel, Field
from starlette.responses import JSONResponse
from starlette.routing import Route

from rag import __version__
from rag.errors import RagError
from rag.http.schemas import CitationOut, DocumentDetail, DocumentList, DocumentSummary, FiltersIn, PassageOut
from rag.pipeline import Pipeline
from rag.types import MAX_QUESTION_CHARS, MAX_TOP_K, Document

log = logging.getLogger(__name__)

MCP_PATH = "/mcp"
_INSTRUCTIONS = (
    "Answers questions about a collection of news articles (German and English) with sentences quoted "
    "verbatim from them, each cited with its article and exact character offsets. It never generates "
    "text: when the articles do not say, `ask` abstains and `search` still shows the closest passages."
)
T = TypeVar("T")

Question = Annotated[str, Field(min_length=1, max_length=MAX_QUESTION_CHARS, description="The question.")]
TopK = Annotated[int | None, Field(None, ge=1, le=MAX_TOP_K, description="Passages to consider (default 5).")]
# the same filters as POST /ask: dates, sources, document ids, combined with AND
FilterArg = Annotated[FiltersIn | None, Field(None, description="Only these articles (as /ask's filters).")]


class AskResult(BaseModel):
    answer: str = Field(description="Quoted sentences, each followed by its [n] marker; or the abstention.")
    abstained: bool = Field(description="True when the articles do not answer the question.")
    confidence: float = Field(description="Estimated probability that the articles answer the question.")
    resolved_question: str
    citations: list[CitationOut] = Field(description="quote == get_document(doc_id).text[start:end].")


class SearchResult(BaseModel):
    passages: list[PassageOut] = Field(
        description="The closest passages, best first; text == get_document(doc_id).text[start:end], and "
        "focus_start/focus_end mark each one's best sentence for the question."
    )


def create_mcp(pipeline: Pipeline) -> MCPServer:
    """An MCP server whose four tools read ``pipeline`` (the same object the API and the chat use)."""
    server: MCPServer = MCPServer(
        "evidence-rag",
        title="Evidence RAG",
        instructions=_INSTRUCTIONS,
        version=__version__,
        log_level="WARNING",  # where no entry point configured logging, the SDK does (to stderr)
    )

    async def ask(question: Question, top_k: TopK = None, filters: FilterArg = None) -> AskResult:
        """Answer a question from the articles with quoted sentences, each cited with its exact offsets."""
        chosen = filters.to_filters() if filters else None
        answer = await _run(lambda: pipeline.ask(question, top_k, filters=chosen))
        data = answer.to_dict()
        return AskResult(**{k: data[k] for k in AskResult.model_fields})

    async def search(question: Question, top_k: TopK = None, filters: FilterArg = None) -> SearchResult:
        """The passages of the articles closest to a question, with their character offsets."""
        chosen = filters.to_filters() if filters else None
        answer = await _run(lambda: pipeline.ask(question, top_k, filters=chosen))
        return SearchResult(passages=[PassageOut(**asdict(p)) for p in answer.passages])

    async def get_document(
        doc_id: Annotated[str, Field(max_length=200, description="An id from list_documents or a citation.")],
    ) -> DocumentDetail:
        """One article: its metadata and the original text that citation offsets point into."""
        doc, chunks = await _run(lambda: pipeline.document_entry(doc_id))
        return DocumentDetail(**_summary(doc, chunks).model_dump(), text=doc.text, sha256=doc.sha256)

    async def list_documents() -> DocumentList:
        """The articles the answers come from: id, title, date, source, language, length."""
        snap = await _run(lambda: pipeline.snapshot)
        counts = Counter(snap.chunk_doc)
        docs = sorted(snap.documents.values(), key=lambda d: d.path)
        return DocumentList(count=len(docs), documents=[_summary(d, counts[d.doc_id]) for d in docs])

    for tool in (ask, search, get_document, list_documents):
        server.add_tool(tool, structured_output=True)
    return server


def _summary(doc: Document, chunks: int) -> DocumentSummary:
    return DocumentSummary(
        doc_id=doc.doc_id, path=doc.path, length=len(doc.text), chunks=chunks, **asdict(doc.meta)
    )


async def _run(work: Callable[[], T]) -> T:
    """``work`` on a worker thread (the pipeline blocks); the product's errors become tool errors."""
    try:
        return await anyio.to_thread.run_sync(work)
    except RagError as exc:
        raise ToolError(exc.message) from None


# --- streamable HTTP inside `rag serve`


class _Endpoint:
    """The ``/mcp`` route: hands each request to the session manager of the running server.

    A session manager runs once, so each start of the app (its lifespan) makes a new one.
    """

    def __init__(self) -> None:
        self.manager: StreamableHTTPSessionManager | None = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["method"] != "POST":
            # Stateless, with JSON answers, the server never sends anything unasked: no stream to open with
            # GET (the SDK would hold one open for good) and no session to end with DELETE.
            detail = "this MCP server is stateless: send JSON-RPC requests with POST"
            response = JSONResponse({"detail": detail}, status_code=405, headers={"Allow": "POST"})
        elif self.manager is None:
            response = JSONResponse({"detail": "the MCP server is not running"}, status_code=503)
        else:
            await self.manager.handle_request(scope, receive, _errors_as_json(send))
            return
        await response(scope, receive, send)


def _errors_as_json(send: Any) -> Any:
    """The SDK answers some refusals (a wrong Content-Type or Accept header) in plain text; the server's
    rule is that every error is JSON with a readable ``detail``, so such a body is rewritten."""
    start: dict[str, Any] | None = None
    body = b""

    async def rewrite(message: Any) -> None:
        nonlocal start, body
        if message["type"] == "http.response.start":
            headers = dict(message.get("headers", []))
            if message["status"] >= 400 and not headers.get(b"content-type", b"").startswith(
                b"application/json"
            ):
                start = message
                return
        elif start is not None:
            body += message.get("body", b"")
            if message.get("more_body"):
                return
            detail = body.decode("utf-8", "replace")[:300] or "the MCP request was refused"
            response = JSONResponse({"detail": detail}, status_code=start["status"])
            await send(
                {"type": "http.response.start", "status": start["status"], "headers": response.raw_headers}
            )
            await send({"type": "http.response.body", "body": response.body})
            return
        await send(message)

    return rewrite


def mount_mcp(app: FastAPI, pipeline: Pipeline) -> FastAPI:
    """Serve the MCP tools at ``/mcp`` on ``app`` (before the chat UI is mounted at ``/``)."""
    server = create_mcp(pipeline)
    endpoint = _Endpoint()
    # every method reaches the endpoint, which answers all but POST with a 405 (else the chat's mount at /
    # would answer them with a 404)
    app.router.routes.append(Route(MCP_PATH, endpoint))
    started = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(instance: FastAPI) -> AsyncIterator[Any]:
        server.streamable_http_app(
            streamable_http_path=MCP_PATH,
            stateless_http=True,
            json_response=True,
            transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),
        )
        endpoint.manager = server.session_manager
        async with endpoint.manager.run(), started(instance) as state:
            yield state
        endpoint.manager = None

    app.router.lifespan_context = lifespan
    return app


__all__ = ["MCP_PATH", "AskResult", "SearchResult", "create_mcp", "mount_mcp"]
