"""The abstention model: its question-level features on hand-made numbers, and the shipped models' sense."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rag.abstention import FEATURES, MODEL_NAMES, Logistic, answer_probability, question_features
from rag.abstention_weights import MODELS
from rag.evidence import QuestionTerms, _Word


def _terms(*words: tuple[str, float, bool], asked: int | None = None) -> QuestionTerms:
    ws = tuple(_Word(stem, frozenset(), weight, name=name) for stem, weight, name in words)
    return QuestionTerms(ws, {}, asked=len(ws) if asked is None else asked)


def test_features_on_a_hand_made_pool() -> None:
    # three question words (weights 1, 2, 1; the last a name), two candidate sentences
    terms = _terms(("veto", 1.0, False), ("gremium", 2.0, False), ("kim", 1.0, True), asked=5)
    found = np.array([[1.0, 0.0, 0.0], [1.0, 0.5, 0.0]])
    #               cover  grams dense passage cue
    x = np.array([[0.25, 0.4, 0.3, 1.0, 0.0], [0.5, 0.2, 0.6, 0.8, 1.0]])
    scores = np.array([0.9, 0.7])
    f = dict(zip(FEATURES, question_features(x, found, terms, scores, best=0), strict=True))
    assert f["cover_best"] == 0.25 and f["cover_max"] == 0.5
    assert f["pool_cover"] == pytest.approx((1 + 2 * 0.5) / 4)  # best found anywhere, weighted
    assert f["missing_max"] == pytest.approx(1 / 4) and f["missing_sum"] == pytest.approx(1 / 4)  # kim
    assert f["partial"] == pytest.approx(2 / 4)  # gremium, half found
    assert f["names_missing"] == pytest.approx(1 / 4)
    assert "dense_best" not in f  # vector scales depend on the embedding model: not a feature
    assert f["score_best"] == 0.9 and f["grams_best"] == 0.4 and f["cue_best"] == 0.0
    assert f["words"] == 5 and f["dropped"] == pytest.approx(2 / 5)  # two words left out (cross-language)


def test_features_without_question_words_are_finite() -> None:
    x = np.zeros((1, 5))
    f = question_features(x, np.zeros((1, 0)), _terms(), np.zeros(1), 0)
    assert f.shape == (len(FEATURES),) and np.isfinite(f).all()


def test_logistic_probability() -> None:
    model = Logistic(-1.0, (2.0, 0.0))
    assert model.probability(np.array([0.5, 9.0])) == pytest.approx(0.5)
    assert model.probability(np.array([1.0, 0.0])) == pytest.approx(1 / (1 + math.exp(-1)))
    assert Logistic(-1000.0, (0.0,)).probability(np.array([0.0])) == 0.0  # no overflow


def test_shipped_models_match_the_features_and_prefer_covered_questions() -> None:
    assert set(MODELS) == set(MODEL_NAMES)
    for model in MODELS.values():
        assert len(model.coef) == len(FEATURES)
    terms = _terms(("veto", 2.0, False), ("gremium", 2.0, False))
    x = np.array([[1.0, 0.9, 0.6, 1.0, 0.0]])
    covered = question_features(x, np.array([[1.0, 1.0]]), terms, np.array([0.97]), 0)
    x_half = np.array([[0.5, 0.4, 0.4, 1.0, 0.0]])
    half = question_features(x_half, np.array([[1.0, 0.0]]), terms, np.array([0.62]), 0)
    for cross, translated in ((False, True), (True, True), (True, False)):
        assert answer_probability(covered, cross, translated) > answer_probability(half, cross, translated)
        assert 0.0 <= answer_probability(half, cross, translated) <= 1.0


def test_calibrate_writes_a_module_that_loads_as_the_shipped_one() -> None:
    from bench.calibrate import render

    coef = tuple(float(i) for i in range(len(FEATURES)))
    figures = {"cv_auc": 0.9, "cover_only_auc": 0.8, "answerable": 2, "removed": 1}
    figures["cv_answered_abstained"] = {0.5: (0.9, 0.8), 0.7: (0.8, 0.9)}
    text = render({"same": (-1.5, coef), "cross": (0.25, coef)}, {"same": figures, "cross": figures})
    namespace: dict = {}
    exec(compile(text, "abstention_weights.py", "exec"), namespace)
    assert namespace["MODELS"]["same"] == Logistic(-1.5, coef)
    assert namespace["MODELS"]["cross"].intercept == 0.25
