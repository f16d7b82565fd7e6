"""The OpenAI-compatible endpoint: chat clients (``openai``, Open WebUI …) use the product as a model.

``POST /v1/chat/completions`` reads the last user message as the question and the earlier user and
assistant messages as the history, and answers exactly as ``POST /ask`` does. ``message.content`` is the
answer with its ``[n]`` markers followed by a Sources block (title, date, quoted sentence), for clients
that show only text; the top-level ``citations`` are the ``/ask`` objects, for clients that read them.
With ``stream: true`` the same content arrives as server-sent events in OpenAI's chunk format, the
citations in the last chunk, then ``data: [DONE]``. The answer is composed before the first event (it is
extracted, not generated: ~15 ms), so a refused question is an ordinary JSON error, never a broken stream.

Errors of these routes are translated once, by :class:`OpenAIRoute`, into OpenAI's shape
``{"error": {"message", "type", "param", "code"}}``, which OpenAI's clients raise as typed exceptions.
"""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Security
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from fastapi.routing import APIRoute
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from starlette.exceptions import HTTPException
from starlette.responses import Response

from rag.errors import BadRequestError, DocumentNotFoundError, NotReadyError, RagError
from rag.http.auth import check_key
from rag.http.openai_schemas import (
    AssistantMessage,
    ChatCompletion,
    ChatCompletionChunk,
    ChatMessage,
    ChatRequest,
    Choice,
    ChunkChoice,
    Delta,
    ModelCard,
    ModelList,
    OpenAIError,
)
from rag.http.schemas import MAX_HISTORY_TURNS, MAX_TURN_CHARS, CitationOut, ErrorOut
from rag.pipeline import Pipeline
from rag.retrieval.followup import Turn
from rag.settings import Settings
from rag.types import Answer

log = logging.getLogger(__name__)

MODEL_ID = "evidence-rag"
_STARTED = int(time.time())
# OpenAI's status and error type for each status the product's errors carry; a refused value is a 400
# invalid_request_error there (this API's own routes say 422).
_TYPES = {
    400: (400, "invalid_request_error"),
    401: (401, "authentication_error"),
    403: (403, "permission_error"),
    404: (404, "not_found_error"),
    409: (409, "invalid_request_error"),
    413: (413, "invalid_request_error"),
    422: (400, "invalid_request_error"),
    503: (503, "service_unavailable"),
}
_LABELS = {
    "de": {"sources": "Quellen", "closest": "Nächstliegende Stellen", "undated": "ohne Datum", "q": "„“"},
    "en": {"sources": "Sources", "closest": "Closest passages", "undated": "undated", "q": "“”"},
}


class OpenAIRoute(APIRoute):
    """A route whose refusals leave in OpenAI's error shape, whatever raised them: request validation, a
    dependency (the key) or the pipeline."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            try:
                return await handler(request)
            except RequestValidationError as exc:
                return _validation_error(exc)
            except RagError as exc:
                return _rag_error(exc)
            except HTTPException as exc:  # a body FastAPI cannot parse (not UTF-8 …)
                if exc.status_code == 413:  # the server's body limit answers in its own words, like it does
                    raise  # before any route (rag.middleware.BodyLimit)
                return _error(exc.status_code, str(exc.detail), "invalid_request_error")

        return route


_ERRORS: dict[int | str, dict[str, Any]] = {
    **{code: {"model": OpenAIError} for code in (400, 401, 403, 404, 409, 503)},
    413: {"model": ErrorOut, "description": "Over the body limit: refused before any route is reached."},
}
router = APIRouter(prefix="/v1", route_class=OpenAIRoute, tags=["openai"], responses=_ERRORS)

# The same schemes as the write endpoints, so /docs offers the key here too.
_KEY_HEADER = APIKeyHeader(name="X-API-Key", auto_error=False, description="The server's RAG_API_KEY.")
_BEARER = HTTPBearer(auto_error=False, description="The server's RAG_API_KEY as a bearer token.")


def _pipeline(request: Request) -> Pipeline:
    if not request.app.state.started:
        raise NotReadyError("the server is still loading the model and the index: try again in a moment")
    return request.app.state.pipeline


def _access(
    request: Request,
    header_key: Annotated[str | None, Security(_KEY_HEADER)],
    bearer: Annotated[HTTPAuthorizationCredentials | None, Security(_BEARER)],
) -> None:
    """With ``RAG_OPENAI_KEY_REQUIRED``, the write endpoints' key rule; otherwise open, like ``/ask``."""
    settings: Settings = request.app.state.settings
    if settings.server.openai_key_required:
        sent = header_key or (bearer.credentials if bearer is not None else "")
        what = "the OpenAI-compatible endpoint (RAG_OPENAI_KEY_REQUIRED)"
        check_key(settings, sent.encode("latin-1", "replace"), what)


PipelineDep = Annotated[Pipeline, Depends(_pipeline)]
Access = Depends(_access)


@router.get("/models", response_model=ModelList, dependencies=[Access])
def list_models() -> ModelList:
    """The one model this server is: its answers are quoted, cited sentences from the articles."""
    return ModelList(data=[_card()])


@router.get("/models/{model}", response_model=ModelCard, dependencies=[Access])
def get_model(model: str) -> ModelCard:
    if model != MODEL_ID:
        raise DocumentNotFoundError(f"no model {model[:100]!r}: this server is {MODEL_ID!r}")
    return _card()


@router.post(
    "/chat/completions",
    response_model=ChatCompletion,
    dependencies=[Access],
    responses={200: {"content": {"text/event-stream": {"schema": {"type": "string"}}}}},
)
def chat_completions(body: ChatRequest, pipeline: PipelineDep) -> Response | ChatCompletion:
    """Answer the last user message from the articles, the earlier messages being the conversation.

    Any ``model`` name is accepted and answered as this server's one model; sampling options are ignored,
    since nothing is generated.
    """
    question, history = split_conversation(body.messages)
    answer = pipeline.ask(question, history=history)
    content = answer_text(answer, _dates(pipeline, answer))
    citations = [CitationOut(**asdict(c)) for c in answer.citations]
    reply_id, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())
    if body.stream:
        events = _events(reply_id, created, content, citations)
        headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
        return StreamingResponse(events, media_type="text/event-stream", headers=headers)
    message = AssistantMessage(content=content)
    return ChatCompletion(
        id=reply_id, created=created, model=MODEL_ID, choices=[Choice(message=message)], citations=citations
    )


# --- from OpenAI's messages to a question and its history


def split_conversation(messages: list[ChatMessage]) -> tuple[str, list[Turn]]:
    """The question (the last message, which must be the user's) and the history the pipeline reads: the
    earlier user and assistant messages with text, the last ``MAX_HISTORY_TURNS`` of them, each cut to
    ``MAX_TURN_CHARS`` (the limits of ``/ask``, applied here rather than refused: a client resends the
    whole chat every turn)."""
    last = messages[-1]
    if last.role != "user":
        raise BadRequestError("messages: the last message must be the user's question")
    question = last.text()
    if not question.strip():
        raise BadRequestError("messages: the last user message has no text")
    turns = [
        Turn(m.role, m.text()[:MAX_TURN_CHARS])
        for m in messages[:-1]
        if m.role in ("user", "assistant") and m.text().strip()
    ]
    return question, turns[-MAX_HISTORY_TURNS:]


# --- the answer as text


def answer_text(answer: Answer, dates: dict[str, str | None]) -> str:
    """The answer with its ``[n]`` markers, then a list of the sources: each citation's title, date and
    quoted sentence; for an abstention, the closest passages' titles and best sentences instead."""
    lab = _LABELS.get(answer.language, _LABELS["en"])
    opening, closing = lab["q"][0], lab["q"][1]
    if answer.citations:
        lines = [
            f"[{c.n}] {c.title}, {c.date or lab['undated']}: {opening}{c.quote}{closing}"
            for c in answer.citations
        ]
        return f"{answer.answer}\n\n{lab['sources']}:\n" + "\n".join(lines)
    lines = []
    for p in answer.passages[:3]:
        start, end = p.focus_start or p.start, p.focus_end or p.end
        sentence = " ".join(p.text[start - p.start : end - p.start].split())
        lines.append(f"- {p.title}, {dates.get(p.doc_id) or lab['undated']}: {opening}{sentence}{closing}")
    return answer.answer + (f"\n\n{lab['closest']}:\n" + "\n".join(lines) if lines else "")


def _dates(pipeline: Pipeline, answer: Answer) -> dict[str, str | None]:
    """The dates of the articles an abstention's passages come from (a passage carries none itself)."""
    documents = pipeline.snapshot.documents
    return {p.doc_id: d.meta.date for p in answer.passages if (d := documents.get(p.doc_id)) is not None}


# --- streaming


def _events(reply_id: str, created: int, content: str, citations: list[CitationOut]) -> Iterator[str]:
    """OpenAI's stream: the role, the content line by line, a last chunk with ``finish_reason`` and the
    citations, then ``[DONE]``."""

    def chunk(delta: Delta, finish: bool = False, cited: list[CitationOut] | None = None) -> str:
        choice = ChunkChoice(delta=delta, finish_reason="stop" if finish else None)
        body = ChatCompletionChunk(
            id=reply_id, created=created, model=MODEL_ID, choices=[choice], citations=cited
        )
        # as OpenAI sends it: "finish_reason": null until the last chunk, a delta without its empty fields
        event = body.model_dump(mode="json", exclude={"citations"} if cited is None else None)
        event["choices"][0]["delta"] = delta.model_dump(exclude_none=True)
        return f"data: {json.dumps(event, ensure_ascii=False)}\n\n"

    yield chunk(Delta(role="assistant", content=""))
    for piece in re.split(r"(?<=\n)", content):
        if piece:
            yield chunk(Delta(content=piece))
    yield chunk(Delta(), finish=True, cited=citations)
    yield "data: [DONE]\n\n"


def _card() -> ModelCard:
    return ModelCard(id=MODEL_ID, created=_STARTED, owned_by="evidence-rag")


# --- errors in OpenAI's shape


def _error(
    status: int, message: str, kind: str, param: str | None = None, code: str | None = None
) -> Response:
    body = {"error": {"message": message, "type": kind, "param": param, "code": code}}
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    if status == 503:
        headers = {"Retry-After": "5"}
    return JSONResponse(body, status_code=status, headers=headers)


def _rag_error(exc: RagError) -> Response:
    status, kind = _TYPES.get(exc.status_code, (500, "server_error"))
    if status >= 500:
        log.error("/v1: %s", exc.message)
    param = "messages" if exc.message.startswith("messages:") else None
    code = "invalid_api_key" if status == 401 else "model_not_found" if status == 404 else None
    return _error(status, exc.message, kind, param, code)


def _validation_error(exc: RequestValidationError) -> Response:
    problems = [
        (".".join(str(p) for p in e["loc"] if p != "body") or "body", e["msg"].removeprefix("Value error, "))
        for e in exc.errors()
    ]
    message = "; ".join(f"{field}: {text}" for field, text in problems) or "the request is not valid"
    param = problems[0][0] if problems else None
    return _error(400, message, "invalid_request_error", param, "invalid_value")


__all__ = ["MODEL_ID", "OpenAIRoute", "answer_text", "router", "split_conversation"]
