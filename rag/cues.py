"""Question-type cues: does a sentence hold what the question type asks for, which the question lacks?

"Wann"/"when" asks for a year or a date, "wie viele"/"how many" for a number, "wer"/"who" for a name (two
capitalised words in a row, since every German noun is capitalised). Measured on XQuAD-de (dev half), the
cue lifts the share of first answer sentences holding the answer for "wann"/"when" questions from 0.884 to
0.907 and for "wie viele"/"how many" from 0.800 to 0.813; for "wer" it changes nothing, and is kept for the
news articles, where the person asked about is named in full.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_YEAR = re.compile(r"\b(1[0-9]\d\d|20\d\d)\b")
_MONTHS = (
    "Januar|Februar|März|April|Mai|Juni|Juli|August|September|Oktober|November|Dezember|January|February"
    "|March|May|June|July|October|December"
)
_DATE = re.compile(rf"\b(\d{{1,2}}\.\s*({_MONTHS})|{_MONTHS}|\d+\.\s*Jahrhundert|\d+(st|nd|rd|th) century)\b")
_NUMBER = re.compile(
    r"\b(\d+([.,]\d+)*|zwei|drei|vier|fünf|sechs|sieben|acht|neun|zehn|elf|zwölf|zwanzig|hundert|tausend"
    r"|zweimal|dreimal|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|twenty|hundred|thousand"
    r"|twice|dozen|Dutzend\w*|Million\w*|Milliard\w*|millions?|billions?)\b",
    re.IGNORECASE,
)
_NAME = re.compile(r"\b[A-ZÄÖÜ][\w’'-]+\s+[A-ZÄÖÜ][\w’'-]+")
_WHEN = re.compile(r"\b(wann|seit wann|when|what year|which year|in welchem jahr|welches jahr)\b", re.I)
_HOW_MANY = re.compile(
    r"\b(wie viele|wie viel|wieviele|how many|how much|wie oft|how often|anzahl|wie hoch|wie lange"
    r"|how long|wie alt|how old)\b",
    re.I,
)
_WHO = re.compile(r"\b(wer|wem|wen|wessen|who|whom|whose)\b", re.I)


@dataclass(frozen=True)
class Cues:
    """What a text offers each question type: its years and dates, its numbers, its names."""

    dated: frozenset[str]
    numbers: frozenset[str]
    names: frozenset[str]


def cues(text: str) -> Cues:
    years = set(_YEAR.findall(text))
    if _DATE.search(text):
        years.add("")  # a date without a year still answers "wann"
    numbers = {m.group().lower() for m in _NUMBER.finditer(text)}
    return Cues(frozenset(years), frozenset(numbers), frozenset(m.group() for m in _NAME.finditer(text)))


def question_kind(question: str) -> str:
    """``"when"``, ``"how_many"``, ``"who"`` or ``""``."""
    for kind, pattern in (("when", _WHEN), ("how_many", _HOW_MANY), ("who", _WHO)):
        if pattern.search(question):
            return kind
    return ""


def cue_match(kind: str, asked: Cues, offered: Cues) -> float:
    """1.0 when the sentence offers what the question type asks for and the question does not say already."""
    if kind == "when":
        return float(bool(offered.dated - asked.dated))
    if kind == "how_many":
        return float(bool(offered.numbers - asked.numbers))
    if kind == "who":
        return float(bool(offered.names - asked.names))
    return 0.0
