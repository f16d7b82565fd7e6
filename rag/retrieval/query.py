"""The question as every later stage reads it: built once per question by the pipeline, handed down."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rag.retrieval.filters import Scope
from rag.text.lexicon import Translate


@dataclass(frozen=True)
class Query:
    """A question resolved against its chat, embedded, with its language and its words' translations.

    ``text`` is what retrieval and the composer compare with the articles (a follow-up gains its subject:
    :mod:`rag.retrieval.followup`); ``lexical`` is what the n-gram retriever looks for (``text`` and, for a
    question in the other language than the articles, its words' translations the articles use:
    :func:`rag.retrieval.terms.translated_query`).
    """

    question: str  # as asked
    text: str
    vector: np.ndarray
    language: str
    corpus_language: str
    lexical: str
    translate: Translate | None = None  # a word of the question into the articles' language, if they differ
    scope: Scope | None = None  # the articles its filters leave (None: all of them)

    @property
    def cross(self) -> bool:
        """The question is in the other language than the articles."""
        return self.language != self.corpus_language
