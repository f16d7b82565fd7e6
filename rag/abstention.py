"""Whether to answer at all: the estimated probability that the candidate sentences answer the question.

Twelve question-level features describe how well the best sentence and the whole candidate pool cover
the question (weighted word cover, the share of the question found nowhere, found only partly, names
and numbers found nowhere, n-gram share, the ranking score, a question-type cue). Vector similarities are
left out on purpose: their scale belongs to the embedding model, which users may change (RAG_MODEL), and
with them the fitted numbers would hold for the bundled model only; without them the cross-validated
separation is the same (ROC AUC 0.944 with and without, measured when they were dropped). A
logistic regression turns them into a probability, one model for questions in the articles' language and
two for questions in another language (English over German articles): one when their words are translated
by the word list of :mod:`rag.lexicon`, one when no word list is installed and every ordinary word without
a cognate in the candidates is left out (the same cover means something else there).

The models are fitted by ``python -m bench.calibrate`` on the XQuAD development half only: every question
asked once as it is (the articles answer it) and once with the sentences of its gold paragraph removed
from the candidates (the rest of the article is still there, so it is a close-topic question the articles
no longer answer). The fitted numbers live in :mod:`rag.abstention_weights`, which that command writes.
The composer abstains when the probability is below ``abstain_threshold``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from rag.evidence import QuestionTerms

FEATURES = (
    "cover_best",  # weighted share of the question's words in the best-ranked sentence
    "pool_cover",  # ... found in any candidate sentence
    "cover_max",  # ... in the candidate that covers most
    "missing_max",  # weight share of the heaviest word found nowhere
    "missing_sum",  # weight share of all words found nowhere
    "partial",  # weight share of words found only partly (n-grams, prefix, verb root)
    "score_best",  # the best sentence's ranking score
    "words",  # content words in the question, before cross-language words are left out
    "names_missing",  # weight share of names and numbers found nowhere
    "dropped",  # share of the question's words left out: no translation, no cognate (cross-language only)
    "grams_best",  # n-gram share of the best sentence
    "cue_best",  # the best sentence has what the question type asks for
)


@dataclass(frozen=True)
class Logistic:
    intercept: float
    coef: tuple[float, ...]

    def probability(self, x: np.ndarray) -> float:
        z = self.intercept + float(np.dot(self.coef, x))
        return 1.0 / (1.0 + math.exp(-z)) if z > -500 else 0.0


MODEL_NAMES = ("same", "cross", "cross-untranslated")


def question_features(
    x: np.ndarray, found: np.ndarray, terms: QuestionTerms, scores: np.ndarray, best: int
) -> np.ndarray:
    """The :data:`FEATURES` of one question: ``x`` holds the candidates' sentence features (cover, grams,
    dense, passage, cue), ``found`` how well each candidate has each question word, ``scores`` the ranking
    scores and ``best`` the row of the best-ranked candidate."""
    weights = np.array([w.weight for w in terms.words])
    total = float(weights.sum()) or 1.0
    pool = found.max(axis=0) if len(weights) and len(found) else np.zeros(len(weights))
    nowhere = (pool == 0) * weights
    partly = ((pool > 0) & (pool < 1)) * weights
    names = np.array([w.name for w in terms.words], dtype=bool)
    asked = max(terms.asked, len(terms.words))
    return np.array(
        [
            x[best, 0],
            float(pool @ weights) / total,
            x[:, 0].max(),
            float(nowhere.max(initial=0.0)) / total,
            float(nowhere.sum()) / total,
            float(partly.sum()) / total,
            scores[best],
            float(asked),
            float((nowhere * names).sum()) / total,
            (asked - len(terms.words)) / max(asked, 1),
            x[best, 1],
            x[best, 4],
        ]
    )


def answer_probability(features: np.ndarray, cross: bool, translated: bool = True) -> float:
    """The probability that the articles answer the question (see the module docstring); ``translated``
    says a cross-language question's words were translated (:mod:`rag.lexicon`)."""
    from rag.abstention_weights import MODELS

    name = "same" if not cross else "cross" if translated else "cross-untranslated"
    return MODELS[name].probability(features)
