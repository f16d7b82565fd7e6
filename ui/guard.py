"""What the mounted Gradio app accepts: the routes the chat page uses, payloads without files, errors as JSON.

Gradio serves many routes this chat never uses: files from its cache (``/gradio_api/file=``), uploads,
a proxy, its own API pages, login, monitoring, live code editing. The guard sits in front of the mounted
app and

- routes only what the page asks for (recorded from the page in Chromium: the page itself, its assets,
  the event queue and ``run/predict``); every other path is a 404;
- refuses an event payload that holds a file object (a JSON object with a ``"path"``): the chat takes no
  files, and Gradio would copy such a path into its cache and serve it back;
- routes only the events listed in :data:`EVENTS` (each added on purpose); refuses an event for a handler
  the page does not have, through the other route than the page uses for it,
  with another number of inputs than it takes, or without a session (Gradio answers those with a 500);
- answers every error as ``{"detail": ...}`` JSON, without the paths or tracebacks Gradio's own error
  pages can carry.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

# GET (and HEAD): the page, its scripts and styles, the event stream, the session heartbeat.
_GET_EXACT = frozenset(
    {"/", "/config", "/theme.css", "/favicon.ico", "/robots.txt", "/gradio_api/queue/data"}
)
_GET_PREFIXES = ("/assets/", "/static/", "/gradio_api/heartbeat/")
# POST: events through the queue, events sent without it (queue=False), and cancelling one.
_POST_EXACT = frozenset({"/gradio_api/queue/join", "/gradio_api/run/predict", "/gradio_api/cancel"})
_SESSION = re.compile(r"[A-Za-z0-9_-]{1,64}")  # the page makes an 11-character random one
# The page's events by api_name. Each one is a way into the server, so it is listed here on purpose (and in
# the README's Security table): ui.app.mount refuses to start with an event that is not (page_events).
EVENTS = frozenset(
    {
        "load_example",  # an example question into the box
        "ask",
        "ask_example",
        "open_article",  # an article for the panel, by a short request ("3:c1")
        "corpus",  # the article list, when the page loads
        "upload_article",  # these two change the corpus: their handlers check RAG_API_KEY (ui/manage.py)
        "delete_article",
        "export_conversation",  # the conversation as Markdown, from the session's own state
        "filters",  # the filter controls' values (dates, sources), kept with the session's conversation
    }
)
_DETAILS = {
    400: "the chat request is not valid",
    404: "not found",
    405: "method not allowed",
    413: "the request is larger than the limit",
    422: "the chat request is not valid",
}


def routed(method: str, path: str) -> bool:
    """Whether the guard lets ``method path`` through to Gradio."""
    if method in ("GET", "HEAD"):
        return path in _GET_EXACT or path.startswith(_GET_PREFIXES)
    return method == "POST" and path in _POST_EXACT


def holds_file(payload: Any) -> bool:
    """Whether a JSON value holds an object with a ``"path"`` key: Gradio takes such an object for a file."""
    stack = [payload]
    while stack:
        value = stack.pop()
        if isinstance(value, dict):
            if "path" in value:
                return True
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)
    return False


@dataclass(frozen=True)
class Event:
    """An event handler of the page, as the guard checks requests for it."""

    inputs: int  # values its request must carry in "data"
    queued: bool  # sent through /gradio_api/queue/join; otherwise through /gradio_api/run/predict


def page_events(fns: dict[int, Any]) -> dict[int, Event]:
    """The page's event handlers (Gradio's ``blocks.fns``) as the guard checks them, by ``fn_index``.

    Raises:
        RuntimeError: a handler whose name is not in :data:`EVENTS`.
    """
    unlisted = sorted(str(fn.api_name) for fn in fns.values() if fn.api_name not in EVENTS)
    if unlisted:
        raise RuntimeError(f"chat events not in ui.guard.EVENTS: {', '.join(unlisted)}")
    return {i: Event(len(fn.inputs), bool(fn.queue)) for i, fn in fns.items()}


class GradioGuard:
    """The guard around the mounted app; ``events`` are the page's event handlers by ``fn_index``."""

    def __init__(self, app: ASGIApp, events: dict[int, Event]) -> None:
        self.app = app
        self.events = events

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.app(scope, receive, send)
            return
        if scope["type"] != "http":
            await send({"type": "websocket.close", "code": 1008})
            return
        if not routed(scope["method"], scope["path"]):
            await _json(send, 404, _DETAILS[404])
            return
        if scope["method"] == "POST":
            body = await _read_body(receive)  # the server's body limit applies while reading
            problem = self._problem(scope["path"], body)
            if problem:
                await _json(send, 400 if "files" in problem else 422, problem)
                return
            receive = _replay(body, receive)
        await self._forward(scope, receive, send)

    async def _forward(self, scope: Scope, receive: Receive, send: Send) -> None:
        failed = 0  # the status of an error response, whose body is replaced
        started = False

        async def errors_as_json(message: Message) -> None:
            nonlocal failed, started
            if message["type"] == "http.response.start":
                if message["status"] >= 400:
                    failed = message["status"]
                    if failed == 500 and scope["path"] in _POST_EXACT:
                        # the handlers catch their own errors (ui.app.Chat), so an event fails here only
                        # where Gradio could not read the client's values for its inputs
                        failed = 422
                    return
                started = True
            elif failed:
                if not message.get("more_body"):
                    started = True
                    await _json(send, failed, _DETAILS.get(failed, "the chat could not answer this request"))
                return
            await send(message)

        try:
            await self.app(scope, receive, errors_as_json)
        except Exception:
            log.exception("the chat app failed on %s %s", scope["method"], scope["path"])
            if not started:
                await _json(send, 500, "the chat failed on this request; try again")

    def _problem(self, path: str, body: bytes) -> str:
        """What is wrong with an event's body, or "" when it may go on to Gradio."""
        try:
            payload = json.loads(body)
        except (ValueError, RecursionError):
            return "the chat request is not valid JSON"
        if holds_file(payload):
            return "the chat takes no files: send text messages only"
        if not isinstance(payload, dict):
            return "the chat request is not valid"
        if path == "/gradio_api/cancel":
            return ""
        fn = payload.get("fn_index")
        event = self.events.get(fn) if isinstance(fn, int) and not isinstance(fn, bool) else None
        queued = path == "/gradio_api/queue/join"
        if event is None or event.queued != queued:
            return "the chat request names no event of this page"
        data = payload.get("data")
        if not isinstance(data, list) or len(data) != event.inputs:
            return "the chat request does not carry the event's inputs"
        session = payload.get("session_hash")
        if queued and not (isinstance(session, str) and _SESSION.fullmatch(session)):
            return "the chat request has no session"
        return ""


async def _read_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            break
    return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    done = False

    async def replay() -> Message:
        nonlocal done
        if not done:
            done = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()  # after the body: the disconnect, when it comes

    return replay


async def _json(send: Send, status: int, detail: str) -> None:
    body = json.dumps({"detail": detail}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
