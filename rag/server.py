"""One server for everything: the API and the chat UI on one uvicorn process, sharing one pipeline.

``rag serve`` calls :func:`run`; :func:`create_server_app` is the ASGI app it serves (and what the tests
drive). The model loads and the index is brought up to date before the port opens, so the first request
is answered at full speed and a broken corpus is a one-line error, not a half-started server.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
import threading
from collections.abc import Callable
from pathlib import Path

from fastapi import FastAPI

from rag.http.app import create_app
from rag.pipeline import Pipeline, build_pipeline
from rag.settings import Settings

log = logging.getLogger(__name__)


def create_server_app(settings: Settings, pipeline: Pipeline | None = None) -> FastAPI:
    """The API and the MCP tools (``/mcp``) with the Gradio chat mounted at ``/``, all over one pipeline."""
    # Gradio reads these at import: the page must work offline and report nothing anywhere, and the
    # files Gradio caches live under the index folder (emptied at start and exit), never in /tmp/gradio.
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    cache = Path(settings.index.index_dir).resolve() / "gradio-cache"
    os.environ["GRADIO_TEMP_DIR"] = str(cache)
    from rag.mcp_server import mount_mcp
    from ui.app import mount

    pipe = pipeline or build_pipeline(settings)
    # /mcp before the chat, which takes every path left at /
    return mount(mount_mcp(create_app(settings, pipe), pipe), pipe, cache)


def _load_model(pipeline: Pipeline) -> None:
    try:
        pipeline.load_model()
    except Exception as exc:  # reported once, by warm_up, which loads again
        log.debug("loading the model beside the Gradio import failed: %s", exc)


def run(settings: Settings, announce: Callable[[str], None] | None = None) -> None:
    """Bind the port, warm up, then serve until interrupted; ``announce`` gets the line that says where.

    Binding first makes a busy port fail at once rather than after the model has loaded; connections
    that arrive during the warm-up wait in the socket's backlog and are answered once it is done.
    """
    import uvicorn

    pipeline = build_pipeline(settings)
    # The model loads while Gradio is imported: the import is ~2.8 s of Python, the model's ~1 s mostly C++
    # (SentencePiece, ONNX Runtime) that lets the interpreter go on. A failure is raised again by warm_up.
    loading = threading.Thread(target=_load_model, args=(pipeline,), name="load-model", daemon=True)
    loading.start()
    app = create_server_app(settings, pipeline)
    config = uvicorn.Config(
        app, host=settings.server.host, port=settings.server.port, log_level=settings.server.log_level.lower()
    )
    sock = config.bind_socket()
    # Accepted connections inherit this: without it a keep-alive client waits ~40 ms per answer for
    # Nagle's algorithm and delayed ACKs (measured with bench.query: 51.4 ms -> 7.4 ms median).
    if sock.family in (socket.AF_INET, socket.AF_INET6):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    loading.join()
    report = pipeline.warm_up(progress=sys.stderr.isatty())
    host = "localhost" if settings.server.host in ("0.0.0.0", "::", "") else settings.server.host
    url = f"http://{f'[{host}]' if ':' in host else host}:{sock.getsockname()[1]}"
    (announce or log.info)(
        f"Serving {report.files} articles ({report.chunks} passages) at {url} - the chat UI is at /, "
        f"the API at /ask, its docs at {url}/docs, OpenAI-compatible at {url}/v1, MCP at {url}/mcp. "
        "Ctrl-C stops."
    )
    words = pipeline.lexicon.source
    (announce or log.info)(
        f"Questions in the other language than the articles are translated word by word with {words}."
        if words
        else "No German-English word list (Debian: apt-get install trans-de-en; RAG_LEXICON): questions in "
        "the other language than the articles are matched by names, numbers and cognates only."
    )
    uvicorn.Server(config).run(sockets=[sock])
