"""Lexical retrieval: BM25 (bm25s) over analysed terms: folded, stop words removed, Snowball-stemmed.

The analyser lower-cases, folds ``ß`` to ``ss``, splits hyphenated words into their parts and keeps the
whole (``UN-Sanktionen`` -> ``un``, ``sanktion``, ``unsanktion``), drops German and English stop words
(questions come in both languages), and stems with PyStemmer's Snowball stemmer of the corpus language.
The German stemmer also removes umlauts, so ``Pjöngjang`` and ``Pjongjang`` meet.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Sequence
from pathlib import Path

import bm25s
import numpy as np
import Stemmer
from bm25s.stopwords import STOPWORDS_EN, STOPWORDS_GERMAN

# bm25s sets its own logger to DEBUG on import; its per-build messages are noise on the CLI's stderr.
logging.getLogger("bm25s").setLevel(logging.WARNING)

_TOKEN = re.compile(r"\w+(?:[-'’]\w+)*")
_STOP = frozenset(w.lower() for w in (*STOPWORDS_GERMAN, *STOPWORDS_EN))
_STEMMERS = {"de": "german", "en": "english"}


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

    def words(self, text: str) -> list[str]:
        """Lower-cased, folded surface words, stop words removed (before stemming)."""
        out: list[str] = []
        for match in _TOKEN.finditer(text.lower().replace("ß", "ss")):
            token = match.group()
            parts = re.split(r"[-'’]", token)
            if len(parts) > 1:
                out.extend(p for p in parts if p and p not in _STOP)
                token = "".join(parts)
            if token not in _STOP:
                out.append(token)
        return out

    def terms(self, text: str) -> list[str]:
        words = self.words(text)
        return list(self._stemmer().stemWords(words)) if words else []


class BM25Index:
    """BM25 over chunk texts; :meth:`scores` gives every chunk's score for one query."""

    def __init__(self, analyzer: Analyzer, k1: float = 1.2, b: float = 0.75) -> None:
        self.analyzer = analyzer
        self._k1, self._b = k1, b
        self._bm25: bm25s.BM25 | None = None
        self._size = 0

    def build(self, texts: Sequence[str]) -> None:
        self._bm25 = bm25s.BM25(k1=self._k1, b=self._b)
        tokens = [self.analyzer.terms(t) or [""] for t in texts]
        if texts:
            self._bm25.index(tokens, show_progress=False)
        self._size = len(texts)

    def __len__(self) -> int:
        return self._size

    def scores(self, query: str) -> np.ndarray:
        if self._bm25 is None or self._size == 0:
            return np.zeros(self._size, dtype=np.float32)
        terms = [t for t in self.analyzer.terms(query) if t in self._bm25.vocab_dict]
        if not terms:
            return np.zeros(self._size, dtype=np.float32)
        return np.asarray(self._bm25.get_scores(terms), dtype=np.float32)

    def save(self, folder: Path) -> None:
        assert self._bm25 is not None, "build() before save()"
        self._bm25.save(str(folder))

    @classmethod
    def load(cls, folder: Path, analyzer: Analyzer, size: int) -> BM25Index:
        index = cls(analyzer)
        index._bm25 = bm25s.BM25.load(str(folder), mmap=False)
        index._size = size
        return index
