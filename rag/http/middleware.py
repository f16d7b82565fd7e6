"""ASGI guards around the whole server (API and chat UI): a host check, a body limit, security headers, 405s.

They are plain ASGI rather than route code so that they also cover the mounted Gradio app, requests
refused before any route runs, and bodies that arrive without a ``Content-Length``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from typing import Any

from starlette._utils import parse_host_header
from starlette.applications import Starlette
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

# JSON answers and errors load nothing and may be framed by nobody.
API_POLICY = "default-src 'none'; frame-ancestors 'none'"
# The chat page and /docs: everything from this server only. Gradio's page and Swagger UI start from
# inline scripts and set inline styles, and Gradio runs the page's custom JS (ui.app._SCROLL_JS) with
# `new Function`, hence the 'unsafe-*' sources; what the policy still takes away from injected markup is
# loading or sending anything to another origin, plugins, <base> and form targets, and being framed.
PAGE_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self' 'unsafe-inline' 'unsafe-eval'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data: blob:",
        "font-src 'self' data:",
        "media-src 'self' data: blob:",
        "connect-src 'self'",
        "worker-src 'self' blob:",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
# A refused body is read and dropped up to this much, so that a client that writes its whole body before
# it reads (urllib, a raw socket, requests over a slow link) gets the 413 and not a connection reset:
# 32 MiB covers a phone photo or a scanned PDF sent by mistake, ~30 ms on loopback; a longer one is cut off.
DRAIN_BYTES = 32 * 1024 * 1024
DRAIN_SECONDS = 10.0  # and for at most this long, so that a client trickling its body cannot hold a worker
_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
}


class HostCheck(TrustedHostMiddleware):
    """Starlette's host check (its patterns: exact names, ``*.example.org``, ``*``), answering in JSON.

    A page on another site can make a browser send requests to this server under the attacker's own
    host name (DNS rebinding); refusing every ``Host`` the server is not configured for stops that, and
    Gradio builds the URLs it hands out from that header.
    """

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.allow_any or scope["type"] not in ("http", "websocket") or self._allowed(scope):
            await self.app(scope, receive, send)
            return
        detail = "this server does not answer to that host name (RAG_ALLOWED_HOSTS lists the ones it does)"
        await JSONResponse({"detail": detail}, status_code=400)(scope, receive, send)

    def _allowed(self, scope: Scope) -> bool:
        host_header = dict(scope["headers"]).get(b"host", b"").decode("latin-1")
        parsed = parse_host_header(host_header)
        if parsed is None:
            return False
        host = parsed.host.lower().strip("[]")
        return any(
            host == pattern or (pattern.startswith("*.") and host.endswith(pattern[1:]))
            for pattern in self.allowed_hosts
        )


class BodyLimit:
    """Refuse a request body larger than its route's limit with a JSON 413, announced or streamed.

    A ``Content-Length`` over the limit is refused before the app reads a byte; a body sent without one
    (chunked) is counted as it arrives and refused once it passes the limit. Either way the app never
    holds more than the limit of one request in memory or on disk, and the rest of the body is read and
    dropped (up to :data:`DRAIN_BYTES`, for :data:`DRAIN_SECONDS`) before the 413 goes out, unless the
    client asked ``Expect: 100-continue`` and so waits for the answer before it sends the body.
    """

    def __init__(self, app: ASGIApp, limit: Callable[[str, str], tuple[int, str] | None]) -> None:
        self.app = app
        self.limit = limit  # (method, path) -> (bytes allowed, the 413's detail), or None: no limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        rule = self.limit(scope["method"], scope["path"]) if scope["type"] == "http" else None
        if rule is None:
            await self.app(scope, receive, send)
            return
        limit, detail = rule
        headers = dict(scope["headers"])
        announced = headers.get(b"content-length", b"")
        drain = headers.get(b"expect", b"").lower() != b"100-continue"
        if announced.isdigit() and int(announced) > limit:
            if drain:
                await _drain(receive)
            await _too_large(send, detail)
            return
        received = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    if drain and message.get("more_body", False):
                        await _drain(receive)
                    raise _TooLargeError(413, detail)
            return message

        async def watching_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, watching_send)
        except _TooLargeError:
            # the frameworks turn this HTTPException into the same 413 themselves; this is the fallback
            if not started:
                await _too_large(send, detail)


class SecurityHeaders:
    """Set the security headers on every response; without configured CORS, drop any CORS header.

    Gradio answers cross-origin requests on its own routes when the server is reached by a non-localhost
    name; the product's rule is that CORS is off unless ``RAG_CORS_ORIGINS`` is set, so the headers that
    would grant it are removed here, in one place, whoever added them.
    """

    def __init__(self, app: ASGIApp, cors: bool) -> None:
        self.app = app
        self.cors = cors

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                if not self.cors:
                    for name in {k for k in headers if k.startswith("access-control-")}:
                        del headers[name]
                for name, value in _HEADERS.items():
                    headers[name] = value
                page = headers.get("content-type", "").startswith("text/html")
                headers["Content-Security-Policy"] = PAGE_POLICY if page else API_POLICY
            await send(message)

        await self.app(scope, receive, send_with_headers)


def refuse_other_methods(app: Starlette, routes: Sequence[BaseRoute]) -> None:
    """405 for any other method on the paths of ``routes``; with the UI mounted at /, it would get them."""
    allowed: dict[str, set[str]] = {}
    for route in routes:
        if isinstance(route, Route):
            allowed.setdefault(route.path, set()).update(route.methods or ())
    for path, methods in allowed.items():
        # an ASGI endpoint (not a function) makes a route that matches every method; the real ones win
        app.router.routes.append(Route(path, _MethodNotAllowed(", ".join(sorted(methods)))))


class _MethodNotAllowed:
    def __init__(self, allow: str) -> None:
        self.allow = allow

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        detail = f"{scope['method'][:20]} is not allowed here: use {self.allow}"
        response = JSONResponse({"detail": detail}, status_code=405, headers={"Allow": self.allow})
        await response(scope, receive, send)


class _TooLargeError(HTTPException):
    """Raised from ``receive``: FastAPI passes an HTTPException through its body parsing unchanged."""


async def _drain(receive: Receive) -> None:
    """Read and drop the rest of a request body, up to :data:`DRAIN_BYTES` and :data:`DRAIN_SECONDS`."""

    async def drop() -> None:
        left = DRAIN_BYTES
        while left > 0:
            message = await receive()
            if message["type"] != "http.request" or not message.get("more_body", False):
                return
            left -= len(message.get("body", b""))

    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(drop(), DRAIN_SECONDS)


async def _too_large(send: Send, detail: str) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
