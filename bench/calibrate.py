"""Fit the composer's ranker and abstention model (:mod:`rag.answering.model`) on the XQuAD development half.

    .venv/bin/python -m bench.calibrate            # fit, print cross-validated figures, nothing written
    .venv/bin/python -m bench.calibrate --write    # ... and write rag/answering/composer_model*.json
    RAG_ABLATE=cues .venv/bin/python -m bench.calibrate --out /tmp/m.json   # a model for a measurement

Every question, German and the parallel English ones, is asked through the product's own retrieval and
sentence features, twice: as it is, and with the sentences of its gold paragraph left out of the
candidates (the rest of its article is still there, so it is a close-topic question the articles no
longer answer; skipped when another candidate still contains the answer). The ranker is a logistic
regression over the sentence features of the full candidate pools (label: the sentence holds a gold
answer); the abstention model one over the question features of both pools (label: the pool answers).
The figures printed are from 6-fold cross-validation grouped by article, so no question is scored by a
model fitted on its own article. Settings come from the environment as usual (``RAG_ABLATE``, ...).
"""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.common import ROOT, XQUAD_DE, XQUAD_EN
from rag.answering.features import (
    QUESTION_FEATURES,
    RANK_FEATURES,
    Pool,
    candidates,
    pool_features,
    question_features,
)
from rag.answering.model import SHIPPED, UNTRANSLATED, ComposerModel, Logistic
from rag.evaluation.abstention import still_answered, without_gold
from rag.evaluation.metrics import contains_any
from rag.evaluation.squad import Question, load_squad, read_json, write_corpus
from rag.pipeline import Pipeline, build_pipeline
from rag.settings import load_settings
from rag.text.lexicon import NoLexicon

log = logging.getLogger("bench.calibrate")
MODEL = ROOT / "rag" / "answering" / SHIPPED
C = 1.0  # inverse regularisation strength of both logistic regressions
FOLDS = 6
THRESHOLDS = (0.3, 0.4, 0.5, 0.6, 0.7)  # the cross-validated trade-off is printed at these


@dataclass(frozen=True)
class Pools:
    """One question's candidate pools as the composer sees them: as asked, and with the gold paragraph
    hidden (None when another candidate still holds the answer)."""

    article: str
    language: str
    full: Pool
    labels: np.ndarray  # each candidate of the full pool holds a gold answer
    hidden: Pool | None


def collect(pipeline: Pipeline, questions: Sequence[Question], language: str) -> list[Pools]:
    """Each question's candidate pools, full and with its gold paragraph hidden."""
    snap = pipeline.snapshot
    cfg = pipeline.composer
    out: list[Pools] = []
    for question in questions:
        query, hits = pipeline.search(snap, question.text, max(10, cfg.context_chunks))
        pools = []
        for hide in (False, True):
            pool = candidates(snap, without_gold(snap, hits, question) if hide else hits, cfg)
            if not pool or (hide and still_answered(snap, [r for r, _ in pool], question)):
                pools.append(None)
                continue
            pools.append(pool_features(snap, query, pool, cfg))
        full, hidden = pools
        if full is None:
            continue
        labels = np.array([contains_any(info.text, question.gold.texts) for info in full.infos])
        out.append(Pools(question.gold.paragraph.doc_id, language, full, labels, hidden))
    return out


def fit_ranker(data: Sequence[Pools]) -> Logistic:
    from sklearn.linear_model import LogisticRegression

    x = np.concatenate([_matrix(p.full.features.values(), RANK_FEATURES) for p in data])
    y = np.concatenate([p.labels for p in data])
    model = LogisticRegression(C=C, max_iter=10_000).fit(x, y)
    return Logistic(
        float(model.intercept_[0]), dict(zip(RANK_FEATURES, map(float, model.coef_[0]), strict=True))
    )


def fit_abstention(data: Sequence[Pools], ranker: Logistic) -> Logistic:
    from sklearn.linear_model import LogisticRegression

    x, y = _abstention_samples(data, ranker)
    model = LogisticRegression(C=C, max_iter=10_000).fit(x, y)
    return Logistic(
        float(model.intercept_[0]), dict(zip(QUESTION_FEATURES, map(float, model.coef_[0]), strict=True))
    )


def _abstention_samples(data: Sequence[Pools], ranker: Logistic) -> tuple[np.ndarray, np.ndarray]:
    rows, labels = [], []
    for p in data:
        for pool, label in ((p.full, 1), (p.hidden, 0)):
            if pool is not None:
                rows.append(_question_vector(pool, ranker))
                labels.append(label)
    return np.array(rows), np.array(labels)


def _question_vector(pool: Pool, ranker: Logistic) -> np.ndarray:
    scores = ranker.scores(pool.features.values())
    best = min(range(len(scores)), key=lambda i: (-scores[i], pool.rows[i]))
    q = question_features(pool, scores, best)
    return np.array([q[name] for name in QUESTION_FEATURES])


def _matrix(values: dict[str, np.ndarray], names: Sequence[str]) -> np.ndarray:
    return np.stack([values[n] for n in names], axis=1)


def cross_validate(data: Sequence[Pools]) -> dict:
    """Figures of models fitted without each question's article: first sentence right, abstention AUC and
    the (answered, abstained) trade-off at :data:`THRESHOLDS`, per question language."""
    from sklearn.metrics import roc_auc_score

    articles = sorted({p.article for p in data})
    fold = {a: i % FOLDS for i, a in enumerate(articles)}
    first: dict[str, list[bool]] = {}
    held: dict[str, list[tuple[float, int]]] = {}
    for k in range(FOLDS):
        train = [p for p in data if fold[p.article] != k]
        ranker = fit_ranker(train)
        abstention = fit_abstention(train, ranker)
        for p in (p for p in data if fold[p.article] == k):
            scores = ranker.scores(p.full.features.values())
            first.setdefault(p.language, []).append(bool(p.labels[int(np.argmax(scores))]))
            for pool, label in ((p.full, 1), (p.hidden, 0)):
                if pool is not None:
                    vector = _question_vector(pool, ranker)
                    prob = abstention.probability(dict(zip(QUESTION_FEATURES, vector, strict=True)))
                    held.setdefault(p.language, []).append((prob, label))
    figures = {}
    for language, pairs in held.items():
        probs = np.array([a for a, _ in pairs])
        labels = np.array([b for _, b in pairs])
        figures[language] = {
            "questions": len(first[language]),
            "first_sentence_right": round(float(np.mean(first[language])), 3),
            "abstention_auc": round(float(roc_auc_score(labels, probs)), 3),
            "answered_abstained": {
                str(t): [
                    round(float((probs[labels == 1] >= t).mean()), 3),
                    round(float((probs[labels == 0] < t).mean()), 3),
                ]
                for t in THRESHOLDS
            },
        }
    return figures


def calibrate(pipeline: Pipeline, german: Sequence[Question], english: Sequence[Question]) -> ComposerModel:
    """Fit both models on all questions and say how they do cross-validated."""
    data = collect(pipeline, german, "de") + collect(pipeline, english, "en")
    ranker = fit_ranker(data)
    abstention = fit_abstention(data, ranker)
    about = {
        "fitted_on": "XQuAD development half: German questions and the parallel English ones over the German "
        "articles, each as asked and with its gold paragraph hidden",
        "model": pipeline.embedder.name,
        "off": sorted(pipeline.composer.off),
        "cross_validated": cross_validate(data),
    }
    return ComposerModel(ranker, abstention, about)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--squad", type=Path, default=XQUAD_DE, help="SQuAD file in the articles' language")
    p.add_argument("--cross", type=Path, default=XQUAD_EN, help="parallel file, the other language")
    p.add_argument("--write", action="store_true", help="write the shipped models in rag/")
    p.add_argument("--out", type=Path, help="write the model to this file instead")
    args = p.parse_args()
    logging.basicConfig(level=logging.WARNING)
    german = load_squad(read_json(args.squad))
    english = load_squad(read_json(args.squad), read_json(args.cross))
    with tempfile.TemporaryDirectory(prefix="rag-calibrate-") as tmp:
        write_corpus(german.articles, Path(tmp) / "corpus")
        settings = load_settings(corpus_dir=Path(tmp) / "corpus", index_dir=Path(tmp) / "index")
        pipeline = build_pipeline(settings)
        pipeline.warm_up()
        if args.write and isinstance(pipeline.lexicon, NoLexicon):
            raise SystemExit("the shipped model needs the word list: apt-get install trans-de-en")
        models = {MODEL: calibrate(pipeline, german.questions, english.questions)}
        if args.write:  # and the one for questions in the other language without a word list
            pipeline.lexicon = NoLexicon()
            models[MODEL.with_name(UNTRANSLATED)] = calibrate(pipeline, german.questions, english.questions)
    for path, model in models.items():
        print(f"{path.name}: {json.dumps(model.about['cross_validated'])}")
        target = path if args.write else args.out
        if target:
            target.write_text(model.to_json(), encoding="utf-8")
            print(f"written {target}")


if __name__ == "__main__":
    main()
