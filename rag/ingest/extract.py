"""Text out of HTML and PDF articles, in a worker process bounded in time and memory.

The text extracted here *is* the article's original text: citation offsets point into it, and the source
file stays in the corpus so that it can be extracted again. The text is a function of the file's bytes
(the same bytes give the same text), and the index stores it beside the offsets it was cut with.

- **HTML** (``.html``, ``.htm``): trafilatura's main text (navigation, teasers, footers and comments left
  out), its title, date (htmldate), author and site name. Each paragraph, heading or list item it finds is
  a block of its own, separated by a blank line. A page with under :data:`MIN_ARTICLE_CHARS` characters
  of prose (paragraphs that end like a sentence, list items aside) has no article.
- **PDF**: pdfium's text layer, page by page (:mod:`rag.ingest.pdf_text`).

Parsers of untrusted files run in one worker process (started at first use, ~0.2 s with trafilatura's
import; reused; started anew after a failure): a file that takes longer than :data:`MAX_SECONDS` is
skipped and the worker killed, and the worker's address space is capped at :data:`MAX_MEMORY`. A 2.1 MB
PDF whose content stream inflates to 700 MB of operators, which pdfium alone would take gigabytes and
minutes over (157 KB inflating to 50 MB: 720 MB and 2.2 s), is refused in 0.6 s.
"""

from __future__ import annotations

import hashlib
import logging
import os
import subprocess
import sys
import threading
from collections import OrderedDict
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from rag.errors import BadDocumentError
from rag.ingest.extracted import MAX_CHARS, Extracted, clean_text

log = logging.getLogger(__name__)

EXTRACTED_SUFFIXES = (".html", ".htm", ".pdf")
MAX_SOURCE_BYTES = 50 * 1024 * 1024  # a news PDF with photos is a few MB; the upload limit is lower still
MAX_SECONDS = 30.0  # a 200-page PDF takes 0.4 s, a news page 2 ms; starting the worker 0.2 s
MAX_MEMORY = 1024 * 1024 * 1024  # the worker's address space: it needs ~60 MB with both parsers loaded
MIN_ARTICLE_CHARS = 200  # less than two sentences of prose: a page of links, not an article
_SENTENCE_END = (".", "!", "?", '"', "“", "”", "«", "»", ":")
_CACHE_CHARS = 50_000_000  # extracted texts kept in memory, so rebuilding the index re-extracts nothing


def extract(data: bytes, name: str) -> Extracted:
    """The text of an HTML or PDF file named ``name``.

    Raises:
        BadDocumentError: the file has no usable text, with the reason (encrypted, scanned, truncated, no
            article, too large, too slow to read).
    """
    kind = "pdf" if name.lower().endswith(".pdf") else "html"
    if len(data) > MAX_SOURCE_BYTES:
        raise BadDocumentError(f"it is larger than {MAX_SOURCE_BYTES // 2**20} MB")
    _check_whole(data, kind)
    key = hashlib.sha256(data).hexdigest() + kind
    cached = _CACHE.get(key)
    if cached is None:
        cached = _WORKER.run(kind, data)
        _CACHE.put(key, cached)
    if isinstance(cached, str):
        raise BadDocumentError(cached)
    return cached


def _check_whole(data: bytes, kind: str) -> None:
    """Refuse a file that was cut off: a PDF ends with ``%%EOF`` (a few bytes of padding may follow), and
    an HTML page that opens ``<html`` closes it."""
    if kind == "pdf":
        if not data[:1024].lstrip().startswith(b"%PDF-"):
            raise BadDocumentError("it is not a PDF (no %PDF- header)")
        if b"%%EOF" not in data[-2048:]:
            raise BadDocumentError("it is truncated (the PDF does not end with %%EOF): add the whole file")
        return
    if b"\x00" in data[:65536]:
        raise BadDocumentError("it is a binary file, not an HTML page")
    lowered = data.lower()
    if b"<html" in lowered[:4096] and b"</html" not in lowered:
        raise BadDocumentError("it is truncated (the HTML page never closes its <html>): add the whole page")


class _Cache:
    """Results by content hash (a text, or the reason a file was skipped), least recently used out first."""

    def __init__(self, max_chars: int) -> None:
        self._items: OrderedDict[str, Extracted | str] = OrderedDict()
        self._chars = 0
        self._max = max_chars
        self._lock = threading.Lock()

    def get(self, key: str) -> Extracted | str | None:
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
            return self._items.get(key)

    def put(self, key: str, value: Extracted | str) -> None:
        with self._lock:
            if key in self._items:
                return
            self._items[key] = value
            self._chars += _size(value)
            while self._chars > self._max and len(self._items) > 1:
                _, old = self._items.popitem(last=False)
                self._chars -= _size(old)


def _size(value: Extracted | str) -> int:
    return len(value) if isinstance(value, str) else len(value.text)


class _Worker:
    """A Python process that runs the parsers, a file at a time; killed on a timeout, started anew.

    A fresh interpreter (not a fork: the server runs model threads, whose held locks a fork would copy,
    nor multiprocessing's spawn, which re-runs the caller's main script) that reads requests from one pipe
    and answers on another; it exits when the server's end of its pipe closes.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._process: subprocess.Popen[bytes] | None = None
        self._send: Connection | None = None
        self._receive: Connection | None = None

    def run(self, kind: str, data: bytes) -> Extracted | str:
        """The extracted text, or the reason the file cannot be used."""
        with self._lock:
            send, receive = self._connections()
            try:
                send.send((kind, data))
                if not receive.poll(MAX_SECONDS):
                    self._stop()
                    return f"reading its text took longer than {MAX_SECONDS:g} s (a PDF bomb?)"
                status, value = receive.recv()
            except (EOFError, OSError):
                self._stop()  # the parser crashed, or ran out of its MAX_MEMORY
                return f"reading its text crashed the parser or needed over {MAX_MEMORY // 2**20} MB"
        return Extracted(value[0], value[1], tuple(value[2])) if status == "ok" else str(value)

    def _connections(self) -> tuple[Connection, Connection]:
        if self._process is None or self._process.poll() is not None:
            self._stop()
            requests, answers = os.pipe(), os.pipe()
            source = str(Path(__file__).resolve().parents[2])  # the folder rag is imported from
            path = os.pathsep.join(p for p in (source, os.environ.get("PYTHONPATH", "")) if p)
            self._process = subprocess.Popen(
                [sys.executable, "-c", _WORKER_MAIN, str(requests[0]), str(answers[1]), str(MAX_MEMORY)],
                pass_fds=(requests[0], answers[1]),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                env={**os.environ, "PYTHONPATH": path},
            )
            os.close(requests[0])
            os.close(answers[1])
            log.info("started the extraction worker (pid %d)", self._process.pid)
            self._send = Connection(requests[1], readable=False)
            self._receive = Connection(answers[0], writable=False)
        assert self._send is not None and self._receive is not None
        return self._send, self._receive

    def _stop(self) -> None:
        if self._process is not None:
            self._process.kill()
            self._process.wait(5)
        for conn in (self._send, self._receive):
            if conn is not None:
                conn.close()
        self._process = self._send = self._receive = None


_WORKER_MAIN = "import sys; from rag.ingest.extract import run_worker; run_worker(*map(int, sys.argv[1:]))"


def run_worker(requests: int, answers: int, memory: int) -> None:  # pragma: no cover - the worker process
    """The worker's loop: read ``(kind, bytes)`` from the ``requests`` pipe, answer on ``answers`` with
    ``("ok", (text, meta, pages))`` or ``("bad", reason)``; its address space capped at ``memory`` bytes."""
    import resource

    from rag.ingest.pdf_text import (
        read_pdf,  # imported by the worker alone: only it reads files
    )

    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    logging.disable(logging.WARNING)  # the parsers' own complaints: the reason goes back to the caller
    inbox, outbox = Connection(requests, writable=False), Connection(answers, readable=False)
    while True:
        try:
            kind, data = inbox.recv()
        except EOFError:
            return
        try:
            found = read_pdf(data) if kind == "pdf" else _html(data)
            reply: tuple[str, Any] = ("ok", (found.text, found.meta, found.pages))
        except BadDocumentError as exc:
            reply = ("bad", exc.message)
        except MemoryError:
            reply = ("bad", f"reading its text needed over {memory // 2**20} MB")
        except Exception as exc:  # a malformed file may break a parser anywhere: skip it, say which error
            reply = ("bad", f"its text could not be read ({type(exc).__name__})")
        outbox.send(reply)


def _html(data: bytes) -> Extracted:
    import trafilatura

    found: Any = trafilatura.bare_extraction(
        data, with_metadata=True, favor_precision=True, include_comments=False
    )
    lines = [" ".join(line.split()) for line in (found.text or "").splitlines()] if found else []
    lines = [line for line in lines if line]
    # prose: paragraphs that end like a sentence, not list items ("- ..."), which is all a section front has
    prose = sum(len(line) for line in lines if line.endswith(_SENTENCE_END) and not line.startswith("- "))
    if prose < MIN_ARTICLE_CHARS:
        raise BadDocumentError("no article text was found in the page (a front page or list of links?)")
    text = "\n\n".join(lines)
    if len(text) > MAX_CHARS:
        raise BadDocumentError(f"its text is longer than {MAX_CHARS} characters")
    meta = {
        "title": found.title,
        "date": found.date,
        "author": found.author,
        "source": found.sitename or found.hostname,
        "url": found.url,
    }
    return Extracted(clean_text(text), {k: v for k, v in meta.items() if v})


_CACHE = _Cache(_CACHE_CHARS)
_WORKER = _Worker()
