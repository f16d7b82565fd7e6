"""Split a document's blocks into sentences by character offsets, with pysbd's rule-based segmenter.

pysbd knows German abbreviations (``z.B.``, ``Dr.``) and ordinals (``28. März``, ``21. Jahrhundert``);
one of its habits is mended here: a closing quote after a full stop (``... weitergehen." Zur Frage``)
is given back to the sentence it closes.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from itertools import pairwise

import pysbd

from rag.types import Block, Sentence

_CLOSERS = "\"'“”»«’"
_local = threading.local()


def _segmenter(language: str) -> pysbd.Segmenter:
    cache = getattr(_local, "segmenters", None)
    if cache is None:
        cache = _local.segmenters = {}
    lang = language if language in ("de", "en") else "de"
    if lang not in cache:
        cache[lang] = pysbd.Segmenter(language=lang, clean=False)
    return cache[lang]


def split_sentences(text: str, blocks: Iterable[Block], language: str = "de") -> list[Sentence]:
    """Sentences of all ``blocks`` of ``text`` in order; headings are one sentence each."""
    out: list[Sentence] = []
    for block in blocks:
        if block.kind == "heading":
            out.append(Sentence(block.start, block.end, heading=True))
        else:
            out.extend(_split_block(text, block.start, block.end, language))
    return out


def _split_block(text: str, start: int, end: int, language: str) -> list[Sentence]:
    piece = text[start:end]
    spans: list[list[int]] = []
    cursor = 0
    for seg in _segmenter(language).segment(piece):
        s = seg.strip()
        if not s:
            continue
        at = piece.find(s, cursor)
        if at < 0:  # pysbd altered the text: fall back to the rest of the block as one sentence
            break
        spans.append([at, at + len(s)])
        cursor = at + len(s)
    if cursor < len(piece) and piece[cursor:].strip():
        rest = len(piece) - len(piece[cursor:].lstrip())
        spans.append([rest, len(piece.rstrip())])
    _return_closing_quotes(piece, spans)
    return [Sentence(start + a, start + b) for a, b in spans if b > a]


def _return_closing_quotes(piece: str, spans: list[list[int]]) -> None:
    """Give a quote that pysbd put at the start of a sentence back to the sentence it closes."""
    for prev, cur in pairwise(spans):
        a, b = cur
        closes = piece[a] in _CLOSERS and (a + 1 == b or piece[a + 1].isspace())
        if closes and piece[prev[1] - 1] in ".!?" and not piece[prev[1] : a].strip():
            prev[1] = a + 1
            a += 1
            while a < b and piece[a].isspace():
                a += 1
            cur[0] = a
