"""Deterministic, instant test doubles that are registered like real parts (``RAG_MODEL=test:words``).

``WordsEmbedder`` is a bag-of-words embedder: each lower-cased word is hashed to a fixed random unit
vector and a text is the normalised sum, so texts sharing words are similar and rankings can be
asserted. It needs no model and no network, which is what the fast tests and subprocess tests use.
"""

from __future__ import annotations

import hashlib
import re
import threading
import time
from collections.abc import Sequence

import numpy as np

_WORD = re.compile(r"\w+")


class WordsEmbedder:
    def __init__(self, dimension: int = 64, name: str = "test:words", delay: float = 0.0) -> None:
        self.name = name
        self._delay = delay  # seconds per text, to make builds slow enough to be interrupted
        self._dimension = dimension
        self._cache: dict[str, np.ndarray] = {}
        self._lock = threading.Lock()
        self.calls = 0  # texts embedded, so tests can assert what was (not) re-embedded

    @property
    def dimension(self) -> int:
        return self._dimension

    def warm_up(self) -> None:
        return None

    def _word(self, word: str) -> np.ndarray:
        vec = self._cache.get(word)
        if vec is None:
            seed = int.from_bytes(hashlib.sha256(word.encode()).digest()[:8], "little")
            vec = np.random.default_rng(seed).standard_normal(self._dimension).astype(np.float32)
            self._cache[word] = vec
        return vec

    def _embed(self, texts: Sequence[str]) -> np.ndarray:
        if self._delay:
            time.sleep(self._delay * len(texts))
        with self._lock:
            self.calls += len(texts)
            out = np.zeros((len(texts), self._dimension), dtype=np.float32)
            for i, text in enumerate(texts):
                for word in _WORD.findall(text.lower()):
                    out[i] += self._word(word)
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        norms[norms == 0] = 1.0
        return out / norms

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        return self._embed(texts)

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._embed(texts)

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        # about what MiniLM's word pieces give for German (2.5 per word), so sizes behave alike in tests
        return [len(_WORD.findall(t)) * 5 // 2 for t in texts]


def create_test_embedder(name: str) -> WordsEmbedder:
    if name in ("test:words", "test:words-64"):
        return WordsEmbedder(64, name)
    if name == "test:words-32":
        return WordsEmbedder(32, name)
    if name == "test:words-slow":  # same vectors as test:words, 3 ms a text
        return WordsEmbedder(64, "test:words", delay=0.003)
    raise ValueError(f"unknown test embedder {name!r} (known: test:words, test:words-32, test:words-slow)")
