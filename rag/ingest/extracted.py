"""What extraction gives for an HTML or PDF article, shared by the caller and the worker that parses."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field

MAX_CHARS = 2_000_000  # as much text as the largest .txt upload (RAG_MAX_UPLOAD_BYTES, 2 MB)
_LIGATURES = str.maketrans({"ﬀ": "ff", "ﬁ": "fi", "ﬂ": "fl", "ﬃ": "ffi", "ﬄ": "ffl", "ﬅ": "st", "ﬆ": "st"})


@dataclass(frozen=True)
class Extracted:
    """An HTML or PDF article as text: paragraphs separated by blank lines, the metadata found in the file
    (``title``, ``date``, ``author``, ``source``, ``url``, unchecked) and, for a PDF, the offset at which
    each page starts (``pages[0] == 0``; empty for HTML)."""

    text: str
    meta: dict[str, str] = field(default_factory=dict)
    pages: tuple[int, ...] = ()


def clean_text(text: str) -> str:
    """Ligatures as letters, control characters as spaces: what a reader copying the text would get."""
    text = text.translate(_LIGATURES)
    return "".join(" " if unicodedata.category(ch) == "Cc" and ch != "\n" else ch for ch in text)
