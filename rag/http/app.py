"""The HTTP API: ``/ask``, ``/documents`` and ``/health`` over one shared :class:`~rag.pipeline.Pipeline`.

The app factory takes the pipeline (or builds one from settings); the lifespan loads the model and brings
the index up to date in a worker thread. Errors leave through one handler: a :class:`~rag.errors.RagError`
becomes its status and ``{"detail": message}``; a request that fails validation becomes 422 with a
readable ``detail``.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import unicodedata
from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import asdict
from importlib.resources import files
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, File, Form, Request, Response, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool

from rag import __version__
from rag.errors import (
    AuthError,
    BadDocumentError,
    DocumentTooLargeError,
    NotReadyError,
    RagError,
)
from rag.http import openai as openai_api
from rag.http.auth import SettingsDep, WriteAccess
from rag.http.middleware import BodyLimit, HostCheck, SecurityHeaders, refuse_other_methods
from rag.http.schemas import (
    AskRequest,
    AskResponse,
    Deleted,
    DocumentDetail,
    DocumentList,
    DocumentSummary,
    ErrorOut,
    Health,
)
from rag.indexing.protocol import IndexSnapshot
from rag.pipeline import Pipeline, build_pipeline
from rag.retrieval.followup import Turn
from rag.settings import Settings
from rag.types import Document, DocumentMeta

log = logging.getLogger(__name__)

# Multipart framing and the metadata fields around an upload stay well under this.
_FORM_OVERHEAD = 64 * 1024
# The largest valid /ask is a 2,000-character question and 50 turns of 10,000 characters: ~0.5 MB of
# UTF-8 (German news text is ~1.03 bytes a character), so 1 MiB refuses only what no client needs.
MAX_JSON_BYTES = 1024 * 1024
# The chat UI's requests carry the conversation, whose answers embed their articles; generous but finite.
MAX_UI_BYTES = 32 * 1024 * 1024
_API_PATHS = ("/ask", "/documents", "/health", "/v1/", "/mcp")
_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorOut} for code in (400, 401, 403, 404, 409, 413, 422, 503)
}


# Over 40 lines on purpose: the app's parts in the order requests meet them (middleware, routes, docs).
def create_app(settings: Settings, pipeline: Pipeline | None = None) -> FastAPI:
    """The API app; ``pipeline`` defaults to the one :func:`~rag.pipeline.build_pipeline` assembles."""
    owned = pipeline is None
    pipe = pipeline or build_pipeline(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # `rag serve` warms the pipeline before binding the port; otherwise do it here, off the event loop.
        await asyncio.to_thread(pipe.load_model if pipe.ready else pipe.warm_up)
        # the word list compiles once per machine, in seconds: serve meanwhile (an English question that
        # arrives first waits for it)
        threading.Thread(target=pipe.prepare_lexicon, name="lexicon", daemon=True).start()
        app.state.started = True
        log.info("ready: %d documents, %d chunks", len(pipe.snapshot.documents), len(pipe.snapshot.chunks))
        yield
        if owned:  # a pipeline handed in belongs to the caller
            pipe.close()

    app = FastAPI(
        title="Evidence RAG",
        version=__version__,
        summary="Questions about news articles, answered only with quoted, cited sentences.",
        lifespan=lifespan,
        responses=_ERRORS,
        docs_url=None,  # served below from local files: the stock page loads Swagger UI from a CDN
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.pipeline = pipe
    app.state.started = False
    app.add_exception_handler(RagError, _rag_error)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, _validation_error)  # type: ignore[arg-type]
    app.add_middleware(BodyLimit, limit=_body_limit(settings))
    if settings.server.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.server.cors_origins,
            allow_methods=["*"],
            allow_headers=["*"],
        )
    app.add_middleware(HostCheck, allowed_hosts=settings.server.served_hosts())
    # outermost, so that every response gets the headers, the 400s, 413s and CORS answers included
    app.add_middleware(SecurityHeaders, cors=bool(settings.server.cors_origins))
    app.include_router(router)
    app.include_router(openai_api.router)  # /v1: chat clients use the product as a model (rag/http/openai.py)
    refuse_other_methods(app, [*router.routes, *openai_api.router.routes])
    _docs(app)
    return app


# --- dependencies


def _pipeline(request: Request) -> Pipeline:
    if not request.app.state.started:
        raise NotReadyError("the server is still loading the model and the index: try again in a moment")
    return request.app.state.pipeline


PipelineDep = Annotated[Pipeline, Depends(_pipeline)]


# --- routes


router = APIRouter()


@router.post("/ask", response_model=AskResponse, tags=["questions"])
def ask(body: AskRequest, pipeline: PipelineDep) -> dict[str, Any]:
    """Answer a question with quoted sentences from the articles, each cited with its exact offsets."""
    history = [Turn(t.role, t.content) for t in body.history]
    filters = body.filters.to_filters() if body.filters else None
    return pipeline.ask(body.question, body.top_k, history, filters).to_dict()


@router.get("/documents", response_model=DocumentList, tags=["documents"])
def list_documents(pipeline: PipelineDep) -> DocumentList:
    """The articles the answers come from."""
    snap = pipeline.snapshot  # one snapshot, so the list and the chunk counts agree
    counts = _chunk_counts(snap)
    docs = sorted(snap.documents.values(), key=lambda d: d.path)
    return DocumentList(count=len(docs), documents=[_summary(d, counts[d.doc_id]) for d in docs])


@router.get("/documents/{doc_id}", response_model=DocumentDetail, tags=["documents"])
def get_document(doc_id: str, pipeline: PipelineDep) -> DocumentDetail:
    """One article with the original text that citation offsets point into."""
    return _detail(*pipeline.document_entry(doc_id))


@router.post(
    "/documents",
    response_model=DocumentDetail,
    status_code=201,
    tags=["documents"],
    dependencies=[WriteAccess],
)
async def add_document(
    response: Response,
    pipeline: PipelineDep,
    settings: SettingsDep,
    file: Annotated[UploadFile, File(description="A .txt or .md (UTF-8), .html, .htm or .pdf article.")],
    title: Annotated[str | None, Form(max_length=300)] = None,
    date: Annotated[str | None, Form(max_length=40, examples=["2024-07-15"])] = None,
    source: Annotated[str | None, Form(max_length=200)] = None,
    language: Annotated[str | None, Form(pattern="^(de|en)$")] = None,
    url: Annotated[str | None, Form(max_length=2000, pattern=r"^https?://[^\s]+$")] = None,
) -> DocumentDetail:
    """Add one article to the corpus and the index (needs the API key).

    The file is stored exactly as uploaded; metadata given here and not already in the file's front
    matter is written as front matter above it. Fields left out are read from the article.
    """
    data = await file.read(settings.server.max_upload_bytes + 1)
    if len(data) > settings.server.max_upload_bytes:
        limit = settings.server.max_upload_bytes
        raise DocumentTooLargeError(f"the article is larger than the limit of {limit} bytes")
    fields = {"title": title, "date": date, "source": source, "url": url}
    for name, value in fields.items():
        if value and any(unicodedata.category(ch) in ("Cc", "Cs") for ch in value):
            raise BadDocumentError(f"{name}: control characters are not allowed in metadata")
    meta = None
    if any((title, date, source, language, url)):
        # Fields left empty are read from the article: CorpusWriter writes only the non-empty ones.
        meta = DocumentMeta(title or "", date, source, language or "", url)
    doc = await run_in_threadpool(pipeline.add_document, file.filename or "", data, meta)
    response.headers["Location"] = f"/documents/{doc.doc_id}"
    return _detail(*pipeline.document_entry(doc.doc_id))


@router.delete("/documents/{doc_id}", response_model=Deleted, tags=["documents"], dependencies=[WriteAccess])
def delete_document(doc_id: str, pipeline: PipelineDep) -> Deleted:
    """Remove an article from the corpus and the index (needs the API key)."""
    pipeline.delete_document(doc_id)
    return Deleted(doc_id=doc_id)


@router.get("/health", response_model=Health, tags=["service"], responses={503: {"model": Health}})
def health(request: Request, response: Response) -> Health:
    """Ready (200) once the model is loaded and the index is usable; 503 while starting."""
    pipeline: Pipeline = request.app.state.pipeline
    if not (request.app.state.started and pipeline.ready and pipeline.model_loaded):
        response.status_code = 503
        return Health(
            status="starting",
            model=pipeline.embedder.name,
            documents=0,
            chunks=0,
            index_build=None,
            index_built_at=None,
            word_list=pipeline.lexicon.source,
        )
    snap = pipeline.snapshot
    return Health(
        status="ready",
        model=pipeline.embedder.name,
        documents=len(snap.documents),
        chunks=len(snap.chunks),
        index_build=snap.build_id or None,
        index_built_at=snap.manifest.get("built_at"),
        word_list=pipeline.lexicon.source,
    )


def _docs(app: FastAPI) -> None:
    assets = StaticFiles(directory=str(files("fastapi_swagger.resources")))
    app.mount("/docs-assets", assets, name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=f"{app.title} - API",
            swagger_js_url="/docs-assets/swagger-ui-bundle.js",
            swagger_css_url="/docs-assets/swagger-ui.css",
            swagger_favicon_url="/docs-assets/favicon-32x32.png",
        )


def _chunk_counts(snap: IndexSnapshot) -> Counter[str]:
    return Counter(snap.chunk_doc)


def _summary(doc: Document, chunks: int) -> DocumentSummary:
    return DocumentSummary(
        doc_id=doc.doc_id, path=doc.path, length=len(doc.text), chunks=chunks, **asdict(doc.meta)
    )


def _detail(doc: Document, chunks: int) -> DocumentDetail:
    return DocumentDetail(**_summary(doc, chunks).model_dump(), text=doc.text, sha256=doc.sha256)


# --- errors


async def _rag_error(request: Request, exc: RagError) -> JSONResponse:
    if exc.status_code >= 500:
        log.error("%s %s: %s", request.method, request.url.path, exc.message)
    headers = {"WWW-Authenticate": "Bearer"} if isinstance(exc, AuthError) else None
    if isinstance(exc, NotReadyError):
        headers = {"Retry-After": "5"}
    return JSONResponse({"detail": exc.message}, status_code=exc.status_code, headers=headers)


async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    errors = [
        {
            "field": ".".join(str(p) for p in e["loc"] if p != "body") or "body",
            "message": e["msg"].removeprefix("Value error, "),
            "type": e["type"],
        }
        for e in exc.errors()
    ]
    detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors) or "the request is not valid"
    return JSONResponse({"detail": detail, "errors": errors}, status_code=422)


# --- body size limits


def _body_limit(settings: Settings) -> Callable[[str, str], tuple[int, str] | None]:
    upload = settings.server.max_upload_bytes + _FORM_OVERHEAD
    upload_detail = f"the upload is larger than the limit of {settings.server.max_upload_bytes} bytes"
    json_detail = f"the request body is larger than the limit of {MAX_JSON_BYTES} bytes"
    ui_detail = f"the request body is larger than the limit of {MAX_UI_BYTES} bytes"

    def limit(method: str, path: str) -> tuple[int, str] | None:
        if method == "POST" and path == "/documents":
            return upload, upload_detail
        if path.startswith(_API_PATHS):
            return MAX_JSON_BYTES, json_detail
        return MAX_UI_BYTES, ui_detail

    return limit
