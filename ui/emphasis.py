"""What a when- or how-many-question asks for, found inside a quoted sentence: its dates or its numbers.

The page emphasises them in the quote without changing a character of it: :func:`key_spans` returns
character ranges, which the templates wrap in ``<strong>``. These are the page's own small patterns (the
core's question types may change independently): the text is read as words by one ``\\w+`` scan, each word
is looked up in closed sets, and neighbouring finds are joined ("28. März 2024", "1,5 Millionen"), so the
work is linear in the length of the text and nothing can backtrack.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator
from typing import Literal

Kind = Literal["when", "how_many", ""]

_WORD = re.compile(r"\w+")
# fmt: off
_MONTHS = frozenset([
    "januar", "februar", "märz", "april", "mai", "juni", "juli", "august", "september", "oktober",
    "november", "dezember", "jänner", "january", "february", "march", "june", "july", "october", "december",
])
_NUMBER_WORDS = frozenset([
    "zwei", "drei", "vier", "fünf", "sechs", "sieben", "acht", "neun", "zehn", "elf", "zwölf", "zwanzig",
    "dreißig", "vierzig", "fünfzig", "hundert", "tausend", "dutzend", "dutzende", "million", "millionen",
    "milliarde", "milliarden", "prozent", "zweimal", "dreimal", "two", "three", "four", "five", "six",
    "seven", "eight", "nine", "ten", "eleven", "twelve", "twenty", "thirty", "forty", "fifty", "hundred",
    "thousand", "dozen", "dozens", "million", "millions", "billion", "billions", "percent", "twice",
])
# fmt: on
_WHEN_WORDS = frozenset({"wann"})
_WHEN_PAIRS = frozenset({("what", "year"), ("which", "year"), ("welchem", "jahr"), ("what", "date")})
_HOW_MANY_WORDS = frozenset({"wieviele", "wieviel", "anzahl", "einwohnerzahl"})
_HOW_MANY_PAIRS = frozenset(
    {
        ("wie", "viele"),
        ("wie", "viel"),
        ("wie", "oft"),
        ("wie", "hoch"),
        ("wie", "lange"),
        ("wie", "alt"),
        ("wie", "groß"),
        ("how", "many"),
        ("how", "much"),
        ("how", "often"),
        ("how", "long"),
        ("how", "old"),
        ("how", "large"),
        ("what", "percentage"),
    }
)
# what may stand between two parts of one date or number ("28. März 2024", "1.500", "1,5 Millionen"); a
# comma and a space separate a list ("2006, 2009 und 2013"), so they do not join
_JOINS = frozenset({"", " ", ".", ",", ". ", "/", "-", "–"})


def question_kind(question: str) -> Kind:
    """``"when"`` for wann/when questions, ``"how_many"`` for wie viele/how many ones, else ``""``.

    English "when" counts at the start only ("How old was he when ..." asks for a number).
    """
    words = [m.group().lower() for m in _WORD.finditer(question[:2000])]
    pairs = set(itertools.pairwise(words))
    if _HOW_MANY_WORDS.intersection(words) or _HOW_MANY_PAIRS & pairs:
        return "how_many"
    opening = words[:2] if words[:1] in (["since"], ["until"]) else words[:1]
    if _WHEN_WORDS.intersection(words) or "when" in opening or _WHEN_PAIRS & pairs:
        return "when"
    return ""


def key_spans(text: str, kind: Kind) -> list[tuple[int, int]]:
    """The ``[start, end)`` ranges of ``text`` that hold what a ``kind`` question asks for, in order and
    never overlapping; none for other questions."""
    if not kind:
        return []
    words = [(m.start(), m.end(), m.group()) for m in _WORD.finditer(text)]
    found = [_is_key(words, i, kind) for i in range(len(words))]
    spans: list[tuple[int, int]] = []
    for (start, end, _), key in zip(words, found, strict=True):
        if not key:
            continue
        if spans and _joins(text, spans[-1][1], start):
            spans[-1] = (spans[-1][0], end)
        else:
            spans.append((start, end))
    return spans


def _is_key(words: list[tuple[int, int, str]], i: int, kind: Kind) -> bool:
    word = words[i][2].lower()
    if kind == "when":
        if _is_year(word) or word in _MONTHS:
            return True
        # a day before its month: "28. März"
        return word.isdigit() and len(word) <= 2 and i + 1 < len(words) and words[i + 1][2].lower() in _MONTHS
    if word in _NUMBER_WORDS:
        return True
    # "1948" is a year and the 28 of "28. März" a day, not counts; "1.500" is read as its digit groups
    day = i + 1 < len(words) and words[i + 1][2].lower() in _MONTHS
    return any(ch.isdigit() for ch in word) and not _is_year(word) and not day


def _is_year(word: str) -> bool:
    digits = word[:-2] if word.endswith("er") else word[:-1] if word.endswith("s") else word
    return len(digits) == 4 and digits.isdigit() and 1000 <= int(digits) <= 2099


def _joins(text: str, end: int, start: int) -> bool:
    return start - end <= 2 and text[end:start] in _JOINS


def pieces(text: str, spans: list[tuple[int, int]]) -> Iterator[tuple[str, bool]]:
    """``text`` as consecutive ``(piece, emphasised)`` runs; joined, the pieces are ``text`` again."""
    pos = 0
    for start, end in spans:
        if start > pos:
            yield text[pos:start], False
        yield text[start:end], True
        pos = end
    if pos < len(text) or not text:
        yield text[pos:], False
