"""The composer's fitted numbers, kept as data: a sentence ranker and an abstention model, logistic both.

They live in ``composer_model.json`` beside this module, written by ``python -m bench.calibrate --write``
from the development half of XQuAD (never edited by hand), with named coefficients that are checked
against the feature names of :mod:`rag.answering.compose` when they load; ``composer_model_no_word_list.json``
holds the same fitted without the German-English word list, for questions in the other language on a
machine without one (English figures 7 points better than the first model there). ``RAG_COMPOSER_MODEL``
names another file for all questions (what ``bench.calibrate --out`` writes, e.g. for a measurement with
a channel switched off).
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from importlib.resources import files
from pathlib import Path
from typing import Any

import numpy as np

from rag.errors import ConfigError

SHIPPED = "composer_model.json"
# Fitted with the word list switched off: for questions in the other language on a machine without one.
UNTRANSLATED = "composer_model_no_word_list.json"


@dataclass(frozen=True)
class Logistic:
    """``intercept + sum(weight * feature)``, as log-odds (:meth:`scores`) or a probability."""

    intercept: float
    weights: dict[str, float]

    def scores(self, features: Mapping[str, np.ndarray]) -> np.ndarray:
        """Log-odds for aligned arrays of features (one value per item)."""
        out = np.full(len(next(iter(features.values()))), self.intercept, dtype=np.float64)
        for name, weight in self.weights.items():
            out += weight * features[name]
        return out

    def probability(self, features: Mapping[str, float]) -> float:
        z = self.intercept + sum(w * features[name] for name, w in self.weights.items())
        return 1.0 / (1.0 + math.exp(-z)) if z > -500 else 0.0

    def check(self, names: Sequence[str], what: str) -> None:
        if list(self.weights) != list(names):
            raise ConfigError(
                f"the {what} model has features {list(self.weights)}, the code computes {list(names)}: "
                "refit it with `python -m bench.calibrate --write`"
            )


@dataclass(frozen=True)
class ComposerModel:
    ranker: Logistic
    abstention: Logistic
    about: dict[str, Any] = field(default_factory=dict)  # what it was fitted on, cross-validated figures

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, ensure_ascii=False) + "\n"


def parse_model(text: str, rank_features: Sequence[str], question_features: Sequence[str]) -> ComposerModel:
    """A model from its JSON, checked against the feature names the code computes."""
    try:
        raw = json.loads(text)
        model = ComposerModel(
            Logistic(float(raw["ranker"]["intercept"]), dict(raw["ranker"]["weights"])),
            Logistic(float(raw["abstention"]["intercept"]), dict(raw["abstention"]["weights"])),
            dict(raw.get("about", {})),
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"the composer model is not valid JSON of the expected shape ({exc})") from exc
    model.ranker.check(rank_features, "ranker")
    model.abstention.check(question_features, "abstention")
    return model


@functools.cache
def read_model(
    source: Path | str, rank_features: tuple[str, ...], question_features: tuple[str, ...]
) -> ComposerModel:
    """The model in a file (a ``Path``), or shipped beside this module under a name (a ``str``); read once
    per process."""
    try:
        if isinstance(source, Path):
            text = source.read_text(encoding="utf-8")
        else:
            text = files("rag.answering").joinpath(source).read_text("utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read the composer model {source}: {exc.strerror or exc}") from exc
    return parse_model(text, rank_features, question_features)
