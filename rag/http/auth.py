"""The one API-key rule: who may change the corpus (and, with ``RAG_OPENAI_KEY_REQUIRED``, use ``/v1``).

The write endpoints (:data:`WriteAccess`), the OpenAI-compatible endpoint and the chat page's article
management all call :func:`check_key`, so the rule and its constant-time comparison live in one place;
each adapter turns the errors into its own words.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from rag.errors import AuthError, MissingKeyError, WritesDisabledError
from rag.settings import Settings


def _settings(request: Request) -> Settings:
    return request.app.state.settings


SettingsDep = Annotated[Settings, Depends(_settings)]

# Declared as security schemes so that /docs offers "Authorize" and the OpenAPI schema says which
# operations need the key; auto_error=False so that a missing key gets this API's own 401 message.
_KEY_HEADER = APIKeyHeader(name="X-API-Key", auto_error=False, description="The server's RAG_API_KEY.")
_BEARER = HTTPBearer(auto_error=False, description="The server's RAG_API_KEY as a bearer token.")


def _require_key(
    settings: SettingsDep,
    header_key: Annotated[str | None, Security(_KEY_HEADER)],
    bearer: Annotated[HTTPAuthorizationCredentials | None, Security(_BEARER)],
) -> None:
    sent = header_key or (bearer.credentials if bearer is not None else "")
    # header values reach us as the latin-1 reading of their bytes; this gives those bytes back
    check_key(settings, sent.encode("latin-1", "replace"))


WriteAccess = Depends(_require_key)


HOW_TO_SEND = "send it as 'Authorization: Bearer <key>' or 'X-API-Key: <key>'"


def check_key(settings: Settings, sent: bytes, what: str = "adding and deleting documents") -> None:
    """Pass when ``sent`` is the server's ``RAG_API_KEY``.

    Raises:
        WritesDisabledError: no key is configured (unset or blank), so ``what`` is off for everybody.
        MissingKeyError: no key was sent.
        AuthError: another key was sent.
    """
    key = settings.server.api_key.get_secret_value() if settings.server.api_key is not None else ""
    if not key.strip():
        raise WritesDisabledError(
            f"{what} is disabled: start the server with RAG_API_KEY set, then {HOW_TO_SEND}"
        )
    if not sent:
        raise MissingKeyError(f"this endpoint needs the API key: {HOW_TO_SEND}")
    if not same_secret(sent, key):
        raise AuthError("the API key is not valid")  # never says what was sent, nor what was expected


def same_secret(sent: bytes, key: str) -> bool:
    """Compare in constant time: digests of equal length, so neither content nor length leaks."""
    sent_digest = hashlib.sha256(sent).digest()
    return hmac.compare_digest(sent_digest, hashlib.sha256(key.encode("utf-8")).digest())
