"""Text out of HTML and PDF articles, in a worker process bounded in time and memory.

The text extracted here *is* the article's original text: citation offsets point into it, and the source
file stays in the corpus so that it can be extracted again. The text is a function of the file's bytes
(the same bytes give the same text), and the index stores it beside the offsets it was cut with.

- **HTML** (``.html``, ``.htm``): trafilatura's main text (navigation, teasers, footers and comments left
  out), its title, date (htmldate), author and site name. Each paragraph, heading or list item it finds is
  a block of its own, separated by a blank line.
- **PDF**: pdfium's text layer, page by page. Lines are joined into paragraphs; a paragraph ends where the
  white space above the next line exceeds the page's usual white space between lines (its lower quartile,
  so that a few wide gaps do not raise it; at most half a font height) by over :data:`PARAGRAPH_GAP` font
  heights, or the
  font height changes by over a fifth (a heading). A hyphen pdfium marks as a line-end break is dropped
  before a lower-case letter ("Bundes-|regierung"). Every page starts a new paragraph, and
  :attr:`Extracted.pages` records where each page starts, so that a citation knows its page.

Parsers of untrusted files run in one worker process (spawned at first use, reused, restarted after a
failure): a file that takes longer than :data:`MAX_SECONDS` is skipped and the worker killed, and the
worker's address space is capped at :data:`MAX_MEMORY`, so a 157 KB PDF whose content stream inflates to
50 MB (720 MB and 2.2 s in pdfium) or one of 3 MB that inflates to 1 GB cannot hang or swap the server.
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import multiprocessing
import re
import threading
import unicodedata
from collections import OrderedDict
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

from rag.errors import BadDocumentError

log = logging.getLogger(__name__)

EXTRACTED_SUFFIXES = (".html", ".htm", ".pdf")
MAX_SOURCE_BYTES = 50 * 1024 * 1024  # a news PDF with photos is a few MB; the upload limit is lower still
MAX_SECONDS = 30.0  # a 100-page PDF takes ~1 s; the first HTML page ~0.5 s more while trafilatura imports
MAX_MEMORY = 1024 * 1024 * 1024  # the worker's address space: it needs ~60 MB with both parsers loaded
MAX_PAGES = 1000
MAX_CHARS = 2_000_000  # as much text as the largest .txt upload (RAG_MAX_UPLOAD_BYTES, 2 MB)
MIN_ARTICLE_CHARS = 200  # less than two sentences of prose: a page of links, not an article
# White space between two lines' font boxes, in font heights: ~0.3 inside a paragraph of 11 pt type on 17 pt
# lines; a paragraph break adds at least half a line to the page's usual white space.
PARAGRAPH_GAP = 0.5
_SENTENCE_END = (".", "!", "?", '"', "“", "”", "«", "»", ":")
_CACHE_CHARS = 50_000_000  # extracted texts kept in memory, so rebuilding the index re-extracts nothing
_LIGATURES = str.maketrans({"ﬀ": "ff", "ﬁ": "fi", "ﬂ": "fl", "ﬃ": "ffi", "ﬄ": "ffl", "ﬅ": "st", "ﬆ": "st"})
_SOFT_HYPHEN = re.compile("\x02(?=[a-zäöüß])")
_PDF_ERRORS = {  # pdfium's FPDF_ERR_* codes
    3: "it is not a readable PDF (damaged or truncated)",
    4: "it is an encrypted PDF that needs a password: add a copy without the password",
    5: "it is an encrypted PDF with a security handler pdfium cannot open: add an unencrypted copy",
}


@dataclass(frozen=True)
class Extracted:
    """An HTML or PDF article as text: paragraphs separated by blank lines, the metadata found in the file
    (``title``, ``date``, ``author``, ``source``, ``url``, unchecked) and, for a PDF, the offset at which
    each page starts (``pages[0] == 0``; empty for HTML)."""

    text: str
    meta: dict[str, str] = field(default_factory=dict)
    pages: tuple[int, ...] = ()


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
    """A spawned process that runs the parsers, a file at a time; killed on a timeout, started anew."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._process: Any = None
        self._conn: Connection | None = None

    def run(self, kind: str, data: bytes) -> Extracted | str:
        """The extracted text, or the reason the file cannot be used."""
        with self._lock:
            conn = self._connection()
            try:
                conn.send((kind, data))
                if not conn.poll(MAX_SECONDS):
                    self._stop()
                    return f"reading its text took longer than {MAX_SECONDS:g} s (a PDF bomb?)"
                status, value = conn.recv()
            except (EOFError, OSError):
                self._stop()  # the parser crashed, or ran out of its MAX_MEMORY
                return f"reading its text crashed the parser or needed over {MAX_MEMORY // 2**20} MB"
        return value if status == "ok" else str(value)

    def _connection(self) -> Connection:
        if self._conn is None or not self._process.is_alive():
            self._stop()
            # spawn, not fork: the server runs model threads, and a forked child may inherit their held locks
            context = multiprocessing.get_context("spawn")
            parent, child = context.Pipe()
            self._process = context.Process(
                target=_serve, args=(child, MAX_MEMORY), name="rag-extract", daemon=True
            )
            self._process.start()
            child.close()
            self._conn = parent
        return self._conn

    def _stop(self) -> None:
        if self._process is not None:
            self._process.kill()
            self._process.join(5)
        if self._conn is not None:
            self._conn.close()
        self._process = self._conn = None


def _serve(conn: Connection, memory: int) -> None:  # pragma: no cover - runs in the worker process
    """The worker's loop: read ``(kind, bytes)``, answer ``("ok", Extracted)`` or ``("bad", reason)``."""
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    logging.disable(logging.WARNING)  # the parsers' own complaints: the reason goes back to the caller
    while True:
        try:
            kind, data = conn.recv()
        except EOFError:
            return
        try:
            reply: tuple[str, Any] = ("ok", _pdf(data) if kind == "pdf" else _html(data))
        except BadDocumentError as exc:
            reply = ("bad", exc.message)
        except MemoryError:
            reply = ("bad", f"reading its text needed over {memory // 2**20} MB")
        except Exception as exc:  # a malformed file may break a parser anywhere: skip it, say which error
            reply = ("bad", f"its text could not be read ({type(exc).__name__})")
        conn.send(reply)


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
    meta = {
        "title": found.title,
        "date": found.date,
        "author": found.author,
        "source": found.sitename or found.hostname,
        "url": found.url,
    }
    return Extracted(_clean(text), {k: v for k, v in meta.items() if v})


def _pdf(data: bytes) -> Extracted:
    import pypdfium2 as pdfium

    try:
        doc = pdfium.PdfDocument(data)
    except pdfium.PdfiumError as exc:
        code = int(getattr(exc, "err_code", None) or 0)
        raise BadDocumentError(_PDF_ERRORS.get(code, "it is not a readable PDF")) from exc
    try:
        if len(doc) > MAX_PAGES:
            raise BadDocumentError(f"it has {len(doc)} pages, more than {MAX_PAGES}")
        pages: list[str] = []
        for index in range(len(doc)):
            page = doc[index]
            textpage = page.get_textpage()
            pages.append("\n\n".join(_paragraphs(textpage)))
            textpage.close()
            page.close()
            if sum(map(len, pages)) > MAX_CHARS:
                raise BadDocumentError(f"its text is longer than {MAX_CHARS} characters")
        info = doc.get_metadata_dict(skip_empty=True)
    finally:
        doc.close()
    return _joined(pages, info)


def _joined(pages: list[str], info: dict[str, str]) -> Extracted:
    starts: list[int] = []
    parts: list[str] = []
    pos = 0
    for text in pages:
        if text and parts:
            pos += 2  # the blank line between two pages' text
        starts.append(pos)
        if text:
            parts.append(text)
            pos += len(text)
    text = "\n\n".join(parts)
    if not text.strip():
        raise BadDocumentError("it has no text layer (a scanned PDF?): run OCR on it first, then add it")
    first = parts[0].split("\n\n", 1)[0]
    heading = len(first) <= 300 and len(first.split()) <= 15 and not first.endswith(".")
    meta = {"title": info.get("Title") or (first if heading else ""), "author": info.get("Author", "")}
    return Extracted(text, {k: " ".join(v.split()) for k, v in meta.items() if v.strip()}, tuple(starts))


def _paragraphs(textpage: Any) -> list[str]:
    """One page's text as paragraphs, its lines joined with single spaces."""
    lines = _lines(textpage)
    if not lines:
        return []
    pairs = list(itertools.pairwise(lines))
    spaces = sorted(a[2] - b[1] for a, b in pairs if a[1] > b[1])
    usual = spaces[len(spaces) // 4] if spaces else 0.0
    paragraphs: list[list[str]] = [[lines[0][0]]]
    for (_, top, bottom), (text, next_top, next_bottom) in pairs:
        height, next_height = top - bottom, next_top - next_bottom
        up = next_top >= top  # the next column
        size = max(height, next_height)
        # the usual space, but at most half a line: a page of two paragraphs has no usual space of its own
        wide = bottom - next_top > min(usual, size / 2) + PARAGRAPH_GAP * size
        if up or wide or abs(next_height - height) > 0.2 * max(height, next_height):
            paragraphs.append([])
        paragraphs[-1].append(text)
    joined = (_SOFT_HYPHEN.sub("", " ".join(p)).replace("\x02", "-") for p in paragraphs)
    return [_clean(" ".join(p.split())) for p in joined if p.strip()]


def _lines(textpage: Any) -> list[tuple[str, float, float]]:
    """The page's lines as pdfium orders them: (text, top, bottom of its first character's font box)."""
    import pypdfium2.raw as pdfium_c

    lines: list[tuple[str, float, float]] = []
    chars: list[str] = []
    box: tuple[float, float] | None = None
    for index in range(textpage.count_chars()):
        code = pdfium_c.FPDFText_GetUnicode(textpage, index)
        if code == 10:  # pdfium's generated "\r\n" ends a line
            if box is not None:
                lines.append(("".join(chars), *box))
            chars, box = [], None
        elif code not in (0, 13):
            chars.append(chr(code) if code < 0xD800 or code > 0xDFFF else "\ufffd")
            if box is None and not chars[-1].isspace():
                _, bottom, _, top = textpage.get_charbox(index, loose=True)
                box = (top, bottom)
    if box is not None:
        lines.append(("".join(chars), *box))
    return lines


def _clean(text: str) -> str:
    """Ligatures as letters, control characters as spaces: what a reader copying the text would get."""
    text = text.translate(_LIGATURES)
    return "".join(" " if unicodedata.category(ch) == "Cc" and ch != "\n" else ch for ch in text)


_CACHE = _Cache(_CACHE_CHARS)
_WORKER = _Worker()
