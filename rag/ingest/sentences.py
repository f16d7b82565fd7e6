"""Split a document's blocks into sentences by character offsets, with pysbd's rule-based segmenter.

pysbd knows German abbreviations (``z.B.``, ``Dr.``) and ordinals (``28. März``, ``21. Jahrhundert``);
one of its habits is mended here: a closing quote after a full stop (``... weitergehen." Zur Frage``)
is given back to the sentence it closes.

pysbd's work grows with the square of its input where full stops crowd together: for each numbered list
item or abbreviation it finds, it rewrites the whole text (``"1. Punkt 2. Punkt ..."``: 55 ms per 2,000
characters, 212 ms per 4,000; 200 KB of ``"z.B. "`` in one paragraph took two minutes). So its input is
bounded, which keeps the work per document linear in its length:

- a block longer than :data:`MAX_PIECE` characters is cut first, at a line break, else after a full stop,
  else at a space (no paragraph of the XQuAD development half, at most 2,311 characters, is cut);
- a piece with 20 or more full stops, question or exclamation marks followed by a space, more than one per
  :data:`DENSE_BOUNDARY` characters, is not prose (the densest XQuAD paragraph has one per 42) and is split
  without pysbd, at the first of them after :data:`MIN_DENSE` characters (so 2 MB of ``"z.B. "`` make as
  many sentences, and as many vectors, as 2 MB of prose, not 400,000);
- a sentence longer than :data:`MAX_SENTENCE` characters is cut at its last space before that length
  (the longest XQuAD sentence has 590), so no quote, and no word a tokenizer reads, is unbounded.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable, Iterator
from itertools import pairwise

import pysbd

from rag.types import Block, Sentence

MAX_PIECE = 4000
DENSE_BOUNDARY = 25
MAX_SENTENCE = 1000
MIN_DENSE = 100
_FEW_MARKS = 20  # below this many marks pysbd's work stays small whatever their density
_CLOSERS = "\"'“”»«’"
_BOUNDARY = re.compile(r"[.!?…][\"'“”»«’)]*\s")  # a possible sentence end: mark, closing quotes, space
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
            out.extend(_bounded(text, block.start, block.end, heading=True))
            continue
        for start, end in _pieces(text, block.start, block.end):
            for sentence in _split_piece(text, start, end, language):
                out.extend(_bounded(text, sentence.start, sentence.end))
    return out


def _pieces(text: str, start: int, end: int) -> Iterator[tuple[int, int]]:
    """``[start, end)`` in pieces of at most :data:`MAX_PIECE` characters, cut at the safest point."""
    while end - start > MAX_PIECE:
        window = text[start : start + MAX_PIECE]
        half = MAX_PIECE // 2
        cut = window.rfind("\n", half)
        if cut < 0:
            ends = [m.end() for m in _BOUNDARY.finditer(window, half)]
            cut = ends[-1] if ends else window.rfind(" ", half)
        cut = start + (cut if cut > 0 else MAX_PIECE)
        yield start, cut
        start = cut
    yield start, end


def _split_piece(text: str, start: int, end: int, language: str) -> list[Sentence]:
    piece = text[start:end]
    marks = [m.end() for m in _BOUNDARY.finditer(piece)]
    if len(marks) >= _FEW_MARKS and len(marks) * DENSE_BOUNDARY > len(piece):  # not prose
        cuts = [0]
        for mark in marks:  # at a mark, once the sentence has MIN_DENSE characters
            if mark - cuts[-1] >= MIN_DENSE:
                cuts.append(mark)
        return _spans(piece, start, [*cuts, len(piece)])
    spans: list[list[int]] = []
    cursor = 0
    for seg in _segmenter(language).segment(piece):
        s = seg.strip()
        if not s:
            continue
        at = piece.find(s, cursor)
        if at < 0:  # pysbd altered the text: fall back to the rest of the piece as one sentence
            break
        spans.append([at, at + len(s)])
        cursor = at + len(s)
    if cursor < len(piece) and piece[cursor:].strip():
        rest = len(piece) - len(piece[cursor:].lstrip())
        spans.append([rest, len(piece.rstrip())])
    _return_closing_quotes(piece, spans)
    return [Sentence(start + a, start + b) for a, b in spans if b > a]


def _spans(piece: str, offset: int, cuts: list[int]) -> list[Sentence]:
    """The stripped text between consecutive ``cuts`` of ``piece`` as sentences."""
    out = []
    for a, b in pairwise(cuts):
        stripped = piece[a:b].strip()
        if stripped:
            at = piece.index(stripped, a)
            out.append(Sentence(offset + at, offset + at + len(stripped)))
    return out


def _bounded(text: str, start: int, end: int, heading: bool = False) -> Iterator[Sentence]:
    """The sentence ``[start, end)``, cut at spaces into parts of at most :data:`MAX_SENTENCE` characters."""
    while end - start > MAX_SENTENCE:
        space = text.rfind(" ", start + MAX_SENTENCE // 2, start + MAX_SENTENCE)
        cut = space if space > start else start + MAX_SENTENCE
        yield Sentence(start, cut, heading=heading)
        start = cut
        while start < end and text[start].isspace():
            start += 1
    if end > start:
        yield Sentence(start, end, heading=heading)


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
