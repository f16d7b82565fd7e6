"""Fit the abstention models (:mod:`rag.abstention`) on the XQuAD development half, and write them.

    .venv/bin/python -m bench.calibrate            # fit, print cross-validated figures, nothing written
    .venv/bin/python -m bench.calibrate --write    # ... and write rag/abstention_weights.py

Every question is asked through the product's own retrieval and sentence scoring twice: as it is (label 1:
the articles answer it) and with the sentences of its gold paragraph left out of the candidates (label 0:
the rest of its article is still there, so it is a close-topic question the articles no longer answer;
skipped when another candidate still contains the answer). German questions fit the model for questions in
the articles' language, the parallel English questions the cross-language models: one with the word list
of :mod:`rag.lexicon`, one without it (for machines without Debian's trans-de-en). A logistic regression
(scikit-learn) per model; the figures printed are from 6-fold cross-validation grouped by article, so a
question is never scored by a model fitted on its own article.
"""

from __future__ import annotations

import argparse
import logging
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from bench.common import ROOT, XQUAD_DE, XQUAD_EN
from rag import abstention_weights as weights
from rag.abstention import FEATURES, MODEL_NAMES, Logistic
from rag.answering import score_sentences
from rag.evaluation import gold_excluder, still_answered
from rag.lexicon import NoLexicon
from rag.pipeline import Pipeline, build_pipeline
from rag.settings import Settings
from rag.squad import Question, load_squad, read_json, write_corpus

log = logging.getLogger("bench.calibrate")
WEIGHTS = ROOT / "rag" / "abstention_weights.py"
C = 1.0  # inverse regularisation strength of the logistic regression
THRESHOLDS = (0.3, 0.5, 0.6, 0.7, 0.8, 0.9)  # the cross-validated trade-off is printed at these


def samples(pipeline: Pipeline, questions: Sequence[Question]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Feature rows, labels and article ids: each question answerable, then with its paragraph removed."""
    snap = pipeline.snapshot
    cfg = pipeline.composer
    rows: list[np.ndarray] = []
    labels: list[int] = []
    groups: list[str] = []
    for question in questions:
        q = pipeline.search(snap, question.text, max(10, cfg.context_chunks))
        full = score_sentences(
            snap, question.text, q.query_text, q.vector, q.hits, cfg, q.language, translate=q.translate
        )
        if not full.sentences:
            continue
        rows.append(full.features)
        labels.append(1)
        groups.append(question.gold.paragraph.doc_id)
        hidden = gold_excluder(snap, question)
        removed = score_sentences(
            snap, question.text, q.query_text, q.vector, q.hits, cfg, q.language, hidden, q.translate
        )
        still = still_answered(snap, [s.index for s in removed.sentences], question)
        if removed.sentences and not still:
            rows.append(removed.features)
            labels.append(0)
            groups.append(question.gold.paragraph.doc_id)
    return np.array(rows), np.array(labels), np.array(groups)


def fit(x: np.ndarray, y: np.ndarray, groups: np.ndarray) -> tuple[tuple[float, tuple[float, ...]], dict]:
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import GroupKFold

    held_out = np.zeros(len(y))
    for train, test in GroupKFold(n_splits=6).split(x, y, groups):
        model = LogisticRegression(C=C, max_iter=10_000).fit(x[train], y[train])
        held_out[test] = model.predict_proba(x[test])[:, 1]
    model = LogisticRegression(C=C, max_iter=10_000).fit(x, y)
    figures = {
        "answerable": int(y.sum()),
        "removed": int((1 - y).sum()),
        "cv_auc": round(float(roc_auc_score(y, held_out)), 3),
        "cover_only_auc": round(float(roc_auc_score(y, 0.5 * x[:, 0] + 0.5 * x[:, 1])), 3),
        "cv_answered_abstained": {
            t: (
                round(float((held_out[y == 1] >= t).mean()), 3),
                round(float((held_out[y == 0] < t).mean()), 3),
            )
            for t in THRESHOLDS
        },
    }
    coef = tuple(round(float(c), 4) for c in model.coef_[0])
    return (round(float(model.intercept_[0]), 4), coef), figures


def render(models: dict[str, tuple[float, tuple[float, ...]]], figures: dict[str, dict]) -> str:
    lines = [
        '"""The abstention models, written by ``python -m bench.calibrate --write``: do not edit by hand.',
        "",
        "Cross-validated on the XQuAD development half (grouped by article):",
    ]
    for name, f in figures.items():
        lines.append(f"- {name}: {f['answerable']} answerable, {f['removed']} with the paragraph removed;")
        lines.append(f"  ROC AUC {f['cv_auc']} (word cover alone {f['cover_only_auc']});")
        lines.append("  (answered, abstained) at thresholds:")
        rates = [f"{t}: {a}, {b}" for t, (a, b) in f["cv_answered_abstained"].items()]
        lines.append("  " + "; ".join(rates[:3]) + ";")
        lines.append("  " + "; ".join(rates[3:]) + ".")
    lines += ['"""', "", "from rag.abstention import Logistic", "", "MODELS = {"]
    for name, (intercept, coef) in models.items():
        lines.append(f'    "{name}": Logistic(')
        lines.append(f"        {intercept},")
        lines.append("        (")
        lines += [f"            {c},  # {feature}" for c, feature in zip(coef, FEATURES, strict=True)]
        lines.append("        ),")
        lines.append("    ),")
    lines.append("}")
    return "\n".join(lines) + "\n"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--squad", type=Path, default=XQUAD_DE, help="SQuAD file in the articles' language")
    p.add_argument("--cross", type=Path, default=XQUAD_EN, help="parallel file with cross-language questions")
    p.add_argument("--write", action="store_true", help=f"write {WEIGHTS.relative_to(ROOT)}")
    args = p.parse_args()
    logging.basicConfig(level=logging.WARNING)
    # the features do not depend on the fitted numbers: neutral models stand in while they are refitted
    # (also when FEATURES changed and the written ones no longer fit)
    weights.MODELS = {name: Logistic(0.0, (0.0,) * len(FEATURES)) for name in MODEL_NAMES}
    same = load_squad(read_json(args.squad))
    cross = load_squad(read_json(args.squad), read_json(args.cross))
    models, figures = {}, {}
    with tempfile.TemporaryDirectory(prefix="rag-calibrate-") as tmp:
        folder = Path(tmp)
        write_corpus(same.articles, folder / "corpus")
        settings = Settings(corpus_dir=folder / "corpus", index_dir=folder / "index", abstain_threshold=0.0)
        pipeline = build_pipeline(settings)
        pipeline.warm_up()
        if isinstance(pipeline.lexicon, NoLexicon):
            raise SystemExit("the cross-language model needs the word list: apt-get install trans-de-en")
        lexicon = pipeline.lexicon
        for name, squad in (("same", same), ("cross", cross), ("cross-untranslated", cross)):
            pipeline.lexicon = NoLexicon() if name == "cross-untranslated" else lexicon
            x, y, groups = samples(pipeline, squad.questions)
            models[name], figures[name] = fit(x, y, groups)
            print(f"{name}: {figures[name]}")
            for feature, c in zip(FEATURES, models[name][1], strict=True):
                print(f"  {feature:<14} {c:+.3f}")
            print(f"  {'intercept':<14} {models[name][0]:+.3f}")
    if args.write:
        WEIGHTS.write_text(render(models, figures), encoding="utf-8")
        print(f"written {WEIGHTS}")


if __name__ == "__main__":
    main()
