"""Sentences that continue the one before them, and the question words they take over from it.

An answer often sits in the sentence after the one that names what the question asks about, and that
sentence refers back instead of repeating the names: "Frankreich begann erst nach 1850 ernsthaft mit dem
Wiederaufbau seines weltweiten Imperiums. Das Hauptaugenmerk lag dabei auf Nord- und Westafrika ...";
"... war Dudley Simpson ... Anschließend komponierte er Musik für viele Abenteuer der 1960er und 1970er".
Word cover alone ranks such a sentence low: it has none of the question's words. A sentence whose first
:data:`OPENING_WORDS` words hold a word that refers back (a pronoun, a demonstrative, a pronominal adverb
like "dabei", a connective like "anschließend") therefore takes over the question words of the sentence
before it, at ``share`` of their weight, and in a chain ("Er ... Danach ...") from the sentences before that.

With multilingual-e5-small it earns 0.8 points of English answers that hold the gold answer and 0.3 of
German first sentences (docs/decisions.md has the history). The opening words are in
:mod:`rag.text.wordlists`; German and English are one set, so a corpus may mix the two.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

from rag.text.wordlists import ANAPHORS

OPENING_WORDS = 4  # "Das Hauptaugenmerk lag dabei ...": the word that refers back comes early


_WORD = re.compile(r"[^\W\d_]+")


def refers_back(text: str) -> bool:
    """Whether the sentence's opening words refer to what came before it."""
    return any(w in ANAPHORS for w in _WORD.findall(text.lower())[:OPENING_WORDS])


def carried(
    found: np.ndarray, rows: Sequence[int], docs: Sequence[str], refers: Sequence[bool], share: float
) -> np.ndarray:
    """``found`` (how well each candidate has each question word) with each candidate that refers back
    topped up by ``share`` of what the sentence right before it has, that one's own carried words included.

    ``rows`` are the candidates' sentence rows (consecutive rows are consecutive sentences when ``docs``,
    their documents, agree); a sentence before that is not a candidate carries nothing."""
    out = found.astype(float, copy=True)
    at = {row: i for i, row in enumerate(rows)}
    for i in sorted(range(len(rows)), key=lambda i: rows[i]):  # earlier sentences first: chains carry on
        before = at.get(rows[i] - 1)
        if refers[i] and before is not None and docs[before] == docs[i]:
            out[i] = np.maximum(out[i], share * out[before])
    return out
