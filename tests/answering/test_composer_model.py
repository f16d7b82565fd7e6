"""The composer's fitted numbers as data: loading, checking against the features, and their sense."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from rag.answering.compose import shipped_model
from rag.answering.features import QUESTION_FEATURES, RANK_FEATURES
from rag.answering.model import ComposerModel, Logistic, parse_model, read_model
from rag.errors import ConfigError


def test_logistic_scores_and_probability() -> None:
    model = Logistic(-1.0, {"a": 2.0, "b": 0.0})
    assert model.probability({"a": 0.5, "b": 9.0}) == pytest.approx(0.5)
    assert model.probability({"a": 1.0, "b": 0.0}) == pytest.approx(1 / (1 + math.exp(-1)))
    assert Logistic(-1000.0, {"a": 0.0}).probability({"a": 0.0}) == 0.0  # no overflow
    scores = model.scores({"a": np.array([0.0, 1.0]), "b": np.array([5.0, 5.0])})
    assert scores.tolist() == [-1.0, 1.0]


def test_the_shipped_models_load_and_name_the_features_the_code_computes() -> None:
    for untranslated in (False, True):
        model = shipped_model(untranslated)
        assert list(model.ranker.weights) == list(RANK_FEATURES)
        assert list(model.abstention.weights) == list(QUESTION_FEATURES)
        assert model.about["cross_validated"]["de"]["abstention_auc"] > 0.9
    # more of the question found, and a better best sentence: more likely answered
    model = shipped_model()
    weak = dict.fromkeys(QUESTION_FEATURES, 0.0) | {"words": 4.0, "cosine_best": 0.8}
    strong = weak | {"score_best": 2.0, "pool_cover": 1.0, "cover_max": 1.0, "cosine_best": 0.9}
    assert model.abstention.probability(strong) > model.abstention.probability(weak)
    assert model.ranker.weights["cover"] > 0 and model.ranker.weights["similarity"] > 0


def test_a_model_whose_features_differ_from_the_code_is_refused(tmp_path: Path) -> None:
    model = shipped_model()
    raw = json.loads(model.to_json())
    raw["abstention"]["weights"]["no_such_feature"] = 1.0
    with pytest.raises(ConfigError, match="refit it"):
        parse_model(json.dumps(raw), RANK_FEATURES, QUESTION_FEATURES)
    with pytest.raises(ConfigError, match="not valid JSON"):
        parse_model("{", RANK_FEATURES, QUESTION_FEATURES)


def test_a_model_file_round_trips(tmp_path: Path) -> None:
    model = replace(shipped_model(), about={"note": "ein Test"})
    path = tmp_path / "model.json"
    path.write_text(model.to_json(), encoding="utf-8")
    assert read_model(path, RANK_FEATURES, QUESTION_FEATURES) == model
    assert isinstance(model, ComposerModel)
