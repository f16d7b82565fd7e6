"""The API key rule of the write endpoints, as a FastAPI dependency (:data:`WriteAccess`)."""

from __future__ import annotations

import hashlib
import hmac
from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from rag.errors import AuthError, WritesDisabledError
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
    key = settings.server.api_key.get_secret_value() if settings.server.api_key is not None else ""
    if not key.strip():  # unset, or set to nothing: writes are off
        raise WritesDisabledError(
            "adding and deleting documents is disabled: start the server with RAG_API_KEY set, "
            "then send the key as 'Authorization: Bearer <key>' or 'X-API-Key: <key>'"
        )
    sent = header_key or (bearer.credentials if bearer is not None else "")
    if not sent:
        raise AuthError("this endpoint needs the API key: send 'Authorization: Bearer <key>' or 'X-API-Key'")
    if not _same_secret(sent, key):
        raise AuthError("the API key is not valid")  # never says what was sent, nor what was expected


def _same_secret(sent: str, key: str) -> bool:
    """Compare in constant time: digests of equal length, so neither content nor length leaks."""
    # header values reach us as the latin-1 reading of their bytes; this gives those bytes back
    sent_digest = hashlib.sha256(sent.encode("latin-1", "replace")).digest()
    return hmac.compare_digest(sent_digest, hashlib.sha256(key.encode("utf-8")).digest())


WriteAccess = Depends(_require_key)
