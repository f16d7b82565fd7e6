"""Adding and deleting articles from the chat page, with the server's API key, over the same pipeline.

The page reads a chosen file in the browser and sends it as text (``{"name": ..., "data": base64}``)
through an ordinary event, never as a Gradio file upload: the guard keeps refusing file objects and
Gradio's upload route, so nothing lands in its cache. The key travels as an event input from a password
box, is checked by :func:`rag.http.auth.check_key` (the API's own rule) and is never returned, shown or
logged. Each handler answers with the new article list and one status line.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import time
from typing import Any

from rag.errors import (
    AuthError,
    BadDocumentError,
    DocumentTooLargeError,
    MissingKeyError,
    RagError,
    WritesDisabledError,
)
from rag.http.auth import check_key
from rag.ingest.loading import SUPPORTED_SUFFIXES
from rag.pipeline import Pipeline
from ui import render

log = logging.getLogger(__name__)

_NAME_CHARS = 300
_ID_CHARS = 200
MESSAGES = {
    "added": "Hinzugefügt · Added: {title}",
    "deleted": "Gelöscht · Deleted: {title}",
    "no_key": "Bitte zuerst den API-Schlüssel eingeben. · Enter the API key first.",
    "bad_key": "Der API-Schlüssel stimmt nicht. · The API key is not valid.",
    "writes_off": "Artikel verwalten ist auf diesem Server aus (RAG_API_KEY ist nicht gesetzt). · "
    "Managing articles is off on this server (RAG_API_KEY is not set).",
    "refused": "Nicht geändert · Not changed: {reason}",
    "failed": "Das hat nicht geklappt; der Fehler wurde protokolliert. · That failed; the error was logged.",
}


def accepted_suffixes() -> tuple[str, ...]:
    """The file types an upload may have: the API's (``rag.ingest.loading``), so the two never disagree."""
    return tuple(SUPPORTED_SUFFIXES)


def status_html(message: str, kind: str) -> str:
    """One status line; ``data-at`` makes every answer new, so the page redraws it even when the words
    repeat (the page writes "Uploading …" there meanwhile)."""
    return render.static_html("manage_status", message=message, kind=kind, at=time.monotonic_ns())


class Articles:
    """The article-management handlers over ``pipeline``."""

    def __init__(self, pipeline: Pipeline) -> None:
        self.pipeline = pipeline

    def upload(self, payload: Any, key: Any) -> tuple[str, str]:
        """Add the article the page sent as ``{"name", "data"}``: the new list and a status line."""
        try:
            self._check(key)
            name, data = _decode(payload, self.pipeline.settings.server.max_upload_bytes)
            doc = self.pipeline.add_document(name, data)
        except Exception as exc:
            return self._refused(exc, "upload")
        return self._corpus(), status_html(MESSAGES["added"].format(title=doc.meta.title), "ok")

    def delete(self, doc_id: Any, key: Any) -> tuple[str, str]:
        """Remove the article ``doc_id``: the new list and a status line."""
        try:
            self._check(key)
            doc_id = doc_id[:_ID_CHARS] if isinstance(doc_id, str) else ""
            title = self.pipeline.document(doc_id).meta.title
            self.pipeline.delete_document(doc_id)
        except Exception as exc:
            return self._refused(exc, "delete")
        return self._corpus(), status_html(MESSAGES["deleted"].format(title=title), "ok")

    def _check(self, key: Any) -> None:
        sent = key if isinstance(key, str) else ""
        check_key(self.pipeline.settings, sent.strip().encode("utf-8"))

    def _corpus(self) -> str:
        return render.corpus_html(self.pipeline.documents())

    def _refused(self, exc: Exception, action: str) -> tuple[str, str]:
        """The list as it is now (another session may have changed it) and what went wrong, in words."""
        if isinstance(exc, WritesDisabledError):
            message = MESSAGES["writes_off"]
        elif isinstance(exc, AuthError):
            message = MESSAGES["no_key"] if isinstance(exc, MissingKeyError) else MESSAGES["bad_key"]
        elif isinstance(exc, RagError):
            message = MESSAGES["refused"].format(reason=exc.message)
        else:  # a bug, not the user's doing: logged (without the key, which no message holds)
            log.error("the chat's article %s failed", action, exc_info=exc)
            message = MESSAGES["failed"]
        return self._corpus(), status_html(message, "error")


def _decode(payload: Any, limit: int) -> tuple[str, bytes]:
    """The file name and bytes of a page's upload; refuses what is not one before decoding more than
    ``limit`` bytes' worth of base64."""
    if not isinstance(payload, str) or len(payload) > 4 * (limit // 3 + 1) + 2 * _NAME_CHARS + 64:
        raise DocumentTooLargeError(f"the article is larger than the limit of {limit} bytes")
    try:
        sent = json.loads(payload)
        name, encoded = sent["name"], sent["data"]
        if not (isinstance(name, str) and isinstance(encoded, str)):
            raise TypeError
        data = base64.b64decode(encoded, validate=True)
    except (ValueError, KeyError, TypeError, binascii.Error):
        raise BadDocumentError("the page sent no readable file: choose it again") from None
    if len(data) > limit:
        raise DocumentTooLargeError(f"the article is larger than the limit of {limit} bytes")
    return name[:_NAME_CHARS], data
