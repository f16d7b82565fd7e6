"""Text analysis shared by the lexical index and the answer composer: words, stems and character n-grams.

The analyser lower-cases, folds ``ß`` to ``ss`` and accents and umlauts to their base letter (``Pjöngjang``
meets ``Pjongjang``), splits hyphenated words into their parts and keeps the whole (``UN-Sanktionen`` ->
``un``, ``sanktionen``, ``unsanktionen``) and drops German and English stop words and question words (both
languages). Then

- **words** are stemmed with PyStemmer's Snowball stemmer of the corpus language;
- **n-grams** are the 3- to 5-letter pieces of each word padded with a space (`` atom``, ``waffen ``), after a
  spelling fold that makes German and English spellings of a name or cognate meet (``c``/``k``, ``y``/``j``,
  ``z``/``s``, ``ph``/``f``, doubled letters: ``Pyongyang`` and ``Pjöngjang`` share ``ong``/``jang``,
  ``nuclear`` and ``nuklear`` are one word, ``nord`` and ``north`` both become ``nort``).
  N-grams are how German compounds are matched: every n-gram of ``atomwaffen`` is one of
  ``atomwaffenprogramms``, so no word list is needed (docs/decisions.md has the figures).
"""

from __future__ import annotations

import re
import threading
import unicodedata
from collections.abc import Sequence

import Stemmer
from bm25s.stopwords import STOPWORDS_EN_PLUS, STOPWORDS_GERMAN

from rag.text.wordlists import AUXILIARIES, QUESTION_WORDS

_TOKEN = re.compile(r"\w+(?:[-'’]\w+)*")
# Longer "words" are not words (a run of letters without spaces): only their start is read, so one cannot
# make thousands of n-grams. German compounds stay far below it ("Rindfleischetikettierungsgesetz": 31).
MAX_WORD = 64
_JOINERS = re.compile(r"[-'’]")
_STOP = frozenset(w.lower() for w in (*STOPWORDS_GERMAN, *STOPWORDS_EN_PLUS, *QUESTION_WORDS, *AUXILIARIES))
# A question in the other language than the articles loses only its own language's stop words: German's list
# has "war", "die", "hat", "man", which an English question means as content words ("When did the Korean
# War end?"); English's has "won" (from "won't"), which a German question never uses and an English one does.
_STOP_BY_LANGUAGE = {
    "de": frozenset(w.lower() for w in (*STOPWORDS_GERMAN, *QUESTION_WORDS, *AUXILIARIES)),
    "en": frozenset(w.lower() for w in (*STOPWORDS_EN_PLUS, *QUESTION_WORDS)) - {"won"},
}


def stop_words(language: str | None = None) -> frozenset[str]:
    """The folded words left out of the analysis: of ``language``, or of both languages."""
    return _STOP_BY_LANGUAGE.get(language or "", _STOP)


_STEMMERS = {"de": "german", "en": "english"}
_SPELLING: tuple[tuple[str, str], ...] = (
    *(("sch", "s"), ("ph", "f"), ("th", "t"), ("ck", "k"), ("c", "k"), ("y", "j"), ("z", "s")),
    *(("w", "v"), ("qu", "kv"), ("x", "ks"), ("ie", "i"), ("ou", "u"), ("d", "t")),
)
_DOUBLE = re.compile(r"(.)\1+")
GRAM_SIZES = (3, 4, 5)


def fold(word: str) -> str:
    """Lower-case, ``ß`` -> ``ss``, accents and umlauts to their base letter."""
    word = word.lower().replace("ß", "ss")
    if word.isascii():
        return word
    return "".join(ch for ch in unicodedata.normalize("NFKD", word) if not unicodedata.combining(ch))


def spelling(word: str) -> str:
    """A folded word with German/English spelling differences evened out, for the n-gram channel."""
    for a, b in _SPELLING:
        word = word.replace(a, b)
    return _DOUBLE.sub(r"\1", word)


def grams(word: str) -> list[str]:
    padded = f" {word} "
    return [padded[i : i + n] for n in GRAM_SIZES for i in range(len(padded) - n + 1)]


class Analyzer:
    """Text to index terms; thread-safe (PyStemmer objects are not, so each thread gets its own)."""

    def __init__(self, language: str = "de") -> None:
        self.language = language if language in _STEMMERS else "de"
        self._local = threading.local()

    def _stemmer(self) -> Stemmer.Stemmer:
        st = getattr(self._local, "stemmer", None)
        if st is None:
            st = self._local.stemmer = Stemmer.Stemmer(_STEMMERS[self.language])
        return st

    def words(self, text: str, language: str | None = None) -> list[str]:
        """Folded surface words, stop words removed (before stemming): those of both languages, or of
        ``language`` only (a question in the other language than the articles)."""
        stop = stop_words(language)
        out: list[str] = []
        for match in _TOKEN.finditer(text.lower()):
            token = match.group()[:MAX_WORD]
            parts = _JOINERS.split(token) if not token.isalnum() else [token]
            if len(parts) > 1:
                out.extend(fold(p) for p in parts if p and p not in stop)
                token = "".join(parts)
            if token not in stop:
                out.append(fold(token))
        return out

    def stems(self, words: Sequence[str]) -> list[str]:
        return list(self._stemmer().stemWords(words)) if words else []

    def terms(self, text: str) -> list[str]:
        """Stemmed words: the terms of the word index."""
        return self.stems(self.words(text))

    def grams(self, text: str) -> list[str]:
        """Character n-grams of the spelling-folded words: the terms of the n-gram index."""
        return [g for w in self.words(text) for g in grams(spelling(w))]
