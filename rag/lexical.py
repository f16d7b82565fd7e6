"""Lexical retrieval: two BM25 indexes (bm25s) over the chunks, of stemmed words and of character n-grams.

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
  ``atomwaffenprogramms``, so no word list is needed.

Measured on XQuAD-de (dev half, 512-piece chunks, lexical retrieval alone, hit@1 / MRR@10): stemmed words
0.891 / 0.927, n-grams 0.920 / 0.949, both (0.2 : 0.8) 0.922 / 0.951; English questions 0.549, 0.629, 0.644
hit@1. Steps measured on the way (384-piece chunks, hit@1): folding umlauts before the German stemmer
changed nothing (0.881; the stemmer folds them itself), splitting compounds into words the corpus knows
lowered it to 0.874 (a small corpus knows too few parts). No decompounding library qualified: PyPI's
German splitter, compound-split, is GPL-3.0 with no release since 2020, and ``charsplit`` on PyPI is an
unrelated image tool.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import unicodedata
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import bm25s
import numpy as np
import Stemmer
from bm25s.stopwords import STOPWORDS_EN_PLUS, STOPWORDS_GERMAN

# bm25s sets its own logger to DEBUG on import; its per-build messages are noise on the CLI's stderr.
logging.getLogger("bm25s").setLevel(logging.WARNING)

_TOKEN = re.compile(r"\w+(?:[-'’]\w+)*")
# Longer "words" are not words (a run of letters without spaces): only their start is read, so one cannot
# make thousands of n-grams. German compounds stay far below it ("Rindfleischetikettierungsgesetz": 31).
MAX_WORD = 64
_JOINERS = re.compile(r"[-'’]")
# Question words are not in bm25s's lists but never name what is asked about; left in, "wann" or "womit"
# (in no article) would weigh most in a question and their n-grams would match noise.
_QUESTION_WORDS = re.findall(
    r"\w+",
    "wer wem wen wessen wann woher wohin womit wogegen wofür worüber worauf wodurch wovon wozu woran worin"
    " worum warum weshalb weswegen wieso wieviel wieviele viele whose many much",
)
# bm25s's German list has "werden" and "wird" but not the past forms of the auxiliary; left in, "wurde"
# counts as a content word found in half the sentences of a news article ("Wann wurde X geboren?").
_AUXILIARIES = ("wurde", "wurden", "worden", "wurdest")
_STOP = frozenset(w.lower() for w in (*STOPWORDS_GERMAN, *STOPWORDS_EN_PLUS, *_QUESTION_WORDS, *_AUXILIARIES))
# A question in the other language than the articles loses only its own language's stop words: German's list
# has "war", "die", "hat", "man", which an English question means as content words ("When did the Korean
# War end?"); English's has "won" (from "won't"), which a German question never uses and an English one does.
_STOP_BY_LANGUAGE = {
    "de": frozenset(w.lower() for w in (*STOPWORDS_GERMAN, *_QUESTION_WORDS, *_AUXILIARIES)),
    "en": frozenset(w.lower() for w in (*STOPWORDS_EN_PLUS, *_QUESTION_WORDS)) - {"won"},
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
# k1 saturates term frequency. A word repeated in a chunk repeats all of its n-grams, so the n-gram channel
# over-counts repetition; 0.6 instead of the usual 1.2 lifted hit@1 on XQuAD-de (dev half) from 0.928 to
# 0.938 after fusion, and changed English questions by less than 0.005.
K1, B = 0.6, 0.75
METHOD = f"bm25s:snowball-words+chargrams3-5:k1={K1}:b={B}:fold-v3+sentence-df"  # manifest; change = rebuild
_SENTENCE_DF = "sentence_df.json"


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


class _Bm25:
    """One bm25s index; scores for a query's terms, and document frequencies from the stored matrix."""

    def __init__(self, model: bm25s.BM25, size: int) -> None:
        self.model = model
        self.size = size
        indptr = model.scores["indptr"]
        self._df = np.diff(indptr) if len(indptr) else np.zeros(0, dtype=np.int64)
        self._df_padded = np.append(self._df, 0)  # an unknown term's id points at the trailing 0

    @classmethod
    def build(cls, tokens: list[list[str]], k1: float, b: float) -> _Bm25:
        model = bm25s.BM25(k1=k1, b=b)
        model.index([t or [""] for t in tokens], show_progress=False)
        return cls(model, len(tokens))

    def scores(self, terms: Sequence[str]) -> np.ndarray:
        known = [t for t in terms if t in self.model.vocab_dict]
        if not known:
            return np.zeros(self.size, dtype=np.float32)
        return np.asarray(self.model.get_scores(known), dtype=np.float32)

    def df(self, term: str) -> int:
        tid = self.model.vocab_dict.get(term)
        return int(self._df[tid]) if tid is not None and tid < len(self._df) else 0

    def dfs(self, terms: Sequence[str]) -> np.ndarray:
        vocab, n = self.model.vocab_dict, len(self._df)
        ids = np.array([vocab.get(t, n) for t in terms], dtype=np.int64)
        return self._df_padded[ids]


class BM25Index:
    """BM25 over chunk texts, by stemmed words and by character n-grams."""

    def __init__(self, analyzer: Analyzer, k1: float = K1, b: float = B) -> None:
        self.analyzer = analyzer
        self._k1, self._b = k1, b
        self._words: _Bm25 | None = None
        self._grams: _Bm25 | None = None
        self._size = 0
        self._sentence_df: dict[str, int] = {}
        self._sentences = 0

    def build(self, texts: Sequence[str], sentences: Sequence[str] = ()) -> None:
        """Index the chunk ``texts``; ``sentences`` (all of the corpus) give the sentence frequencies."""
        self._size = len(texts)
        if texts:
            self._words = _Bm25.build([self.analyzer.terms(t) for t in texts], self._k1, self._b)
            self._grams = _Bm25.build([self.analyzer.grams(t) for t in texts], self._k1, self._b)
        counts: Counter[str] = Counter()
        for sentence in sentences:
            counts.update(set(self.analyzer.terms(sentence)))
        self._sentence_df, self._sentences = dict(counts), len(sentences)

    def __len__(self) -> int:
        return self._size

    def scores(self, query: str) -> np.ndarray:
        """Every chunk's word-BM25 score for ``query``."""
        return self.word_scores(self.analyzer.terms(query))

    def word_scores(self, terms: Sequence[str]) -> np.ndarray:
        return self._words.scores(terms) if self._words else np.zeros(self._size, dtype=np.float32)

    def gram_scores(self, query: str) -> np.ndarray:
        """Every chunk's n-gram-BM25 score for ``query``."""
        if self._grams is None:
            return np.zeros(self._size, dtype=np.float32)
        return self._grams.scores(self.analyzer.grams(query))

    def document_frequency(self, term: str) -> int:
        """In how many chunks the stemmed word ``term`` occurs (0 when it never does)."""
        return self._words.df(term) if self._words else 0

    def gram_frequencies(self, grams: Sequence[str]) -> np.ndarray:
        """In how many chunks each n-gram occurs (0 for one that never does)."""
        return self._grams.dfs(grams) if self._grams else np.zeros(len(grams), dtype=np.int64)

    def sentence_frequency(self, term: str) -> tuple[int, int]:
        """``(sentences containing the stemmed word term, sentences)``; chunk counts for an index built
        without sentences. Sentence counts keep an idf informative on a corpus of a few chunks."""
        if self._sentences:
            return self._sentence_df.get(term, 0), self._sentences
        return self.document_frequency(term), self._size

    def save(self, folder: Path) -> None:
        assert self._words is not None and self._grams is not None, "build() a non-empty index before save()"
        self._words.model.save(str(folder), show_progress=False)
        self._grams.model.save(str(folder / "grams"), show_progress=False)
        payload = {"sentences": self._sentences, "df": self._sentence_df}
        (folder / _SENTENCE_DF).write_text(json.dumps(payload, ensure_ascii=False), encoding="utf-8")

    @classmethod
    def load(cls, folder: Path, analyzer: Analyzer, size: int) -> BM25Index:
        """Load a saved index. One saved before n-grams existed loads without them (its manifest names the
        old method, so only a rebuild reads it, to reuse its vectors)."""
        index = cls(analyzer)
        index._words = _Bm25(_load(folder), size)
        if (folder / "grams").is_dir():
            index._grams = _Bm25(_load(folder / "grams"), size)
        if (folder / _SENTENCE_DF).is_file():
            payload = json.loads((folder / _SENTENCE_DF).read_text(encoding="utf-8"))
            index._sentence_df, index._sentences = payload["df"], int(payload["sentences"])
        index._size = size
        return index


def _load(folder: Path) -> bm25s.BM25:
    return bm25s.BM25.load(str(folder), mmap=False, show_progress=False)
