"""Lexical retrieval: two BM25 indexes (bm25s) over the chunks, of stemmed words and of character n-grams
(the terms of :class:`rag.text.analysis.Analyzer`), and the sentence frequencies the composer weighs words by.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import bm25s
import numpy as np

from rag.text.analysis import Analyzer

# bm25s sets its own logger to DEBUG on import; its per-build messages are noise on the CLI's stderr.
logging.getLogger("bm25s").setLevel(logging.WARNING)

# k1 saturates term frequency. A word repeated in a chunk repeats all of its n-grams, so the n-gram channel
# over-counts repetition; 0.6 instead of the usual 1.2 lifted hit@1 on XQuAD-de (dev half) from 0.928 to
# 0.938 after fusion, and changed English questions by less than 0.005.
K1, B = 0.6, 0.75
METHOD = f"bm25s:snowball-words+chargrams3-5:k1={K1}:b={B}:fold-v3+sentence-df"  # manifest; change = rebuild
_SENTENCE_DF = "sentence_df.json"


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
