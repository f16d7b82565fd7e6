"""How the bot abstains: rates at the configured thresholds, the sweep over thresholds, and answers with a
question's gold paragraph hidden from the composer (``rag eval --without-gold``)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

from rag.answering.compose import compose
from rag.answering.features import candidates
from rag.evaluation.asking import RETRIEVAL_DEPTH, ask_all, share
from rag.evaluation.metrics import Trial, contains_any, sweep
from rag.evaluation.squad import Question
from rag.indexing.protocol import IndexSnapshot
from rag.pipeline import Pipeline, build_pipeline
from rag.retrieval.terms import sentence_terms
from rag.types import Answer, Hit

SWEEP = tuple(round(0.05 * i, 2) for i in range(1, 20))  # thresholds 0.05 ... 0.95


def abstention_off(pipeline: Pipeline, questions: Sequence[str]) -> list[Answer]:
    """The answers to ``questions`` with abstention off: what a lower threshold would give. An answer's
    confidence does not depend on the threshold, so these and the configured answers make the sweep."""
    update = {"abstain_threshold": 0.0, "cross_abstain_threshold": 0.0}
    off = build_pipeline(pipeline.settings.updated(**update), pipeline.embedder)
    off.update_index()
    return [a for a, _ in ask_all(off, questions)]


def abstention_report(
    pipeline: Pipeline,
    answers: Sequence[Answer],
    off: Sequence[Answer],
    is_right: Callable[[int, Answer], bool],
    asked: Sequence[Answer],
) -> dict[str, Any]:
    """Rates at the configured thresholds, as asked, and the sweep over thresholds.

    ``answers[i]`` is the configured pipeline's answer to the ``i``-th answerable question and ``off[i]``
    the same with abstention off (:func:`abstention_off`); ``is_right(i, answer)`` judges an answer to it;
    ``asked`` are the configured answers to questions the articles do not answer.
    """
    settings = pipeline.settings
    articles = pipeline.snapshot.analyzer.language
    trials = [(a.language, Trial(a.confidence, True, is_right(i, a))) for i, a in enumerate(off)]
    trials += [(a.language, Trial(a.confidence, False, False)) for a in asked]
    report: dict[str, Any] = {
        **_given(answers, asked),
        "threshold": settings.answering.abstain_threshold,
        "cross_threshold": settings.answering.cross_abstain_threshold,
        "answerable_correct": share([is_right(i, a) for i, a in enumerate(answers)]),
        "by_language": {
            lang: _given([a for a in answers if a.language == lang], [a for a in asked if a.language == lang])
            for lang in sorted({a.language for a in (*answers, *asked)})
        },
    }
    # the composer applies one threshold to questions in the articles' language, another to the rest
    for key, same in (("sweep", True), ("sweep_cross", False)):
        group = [t for g, t in trials if (g == articles) == same]
        if group:
            report[key] = sweep(group, SWEEP)
    return report


def without_gold(snap: IndexSnapshot, hits: list[Hit], question: Question) -> list[Hit]:
    """``hits`` with the sentences of the question's gold paragraph taken out of their chunks, so the
    composer never reads them (the passages it lists still show the whole chunk)."""
    para = question.gold.paragraph

    def outside(row: int) -> bool:
        s = snap.sentences[row]
        return not (snap.sentence_doc[row] == para.doc_id and s.start < para.end and s.end > para.start)

    return [
        replace(h, chunk=replace(h.chunk, sentences=tuple(filter(outside, h.chunk.sentences)))) for h in hits
    ]


def still_answered(snap: IndexSnapshot, rows: Sequence[int], question: Question) -> bool:
    """Whether one of the sentence ``rows`` contains a gold answer (outside the gold paragraph, too)."""
    return any(contains_any(sentence_terms(snap, row).text, question.gold.texts) for row in rows)


def ask_without_gold(pipeline: Pipeline, question: Question) -> Answer | None:
    """The answer with the question's gold paragraph hidden from the composer, at the configured
    thresholds; None when another candidate sentence still contains the answer."""
    snap = pipeline.snapshot
    cfg = pipeline.composer
    query, hits = pipeline.search(snap, question.text, max(RETRIEVAL_DEPTH, cfg.context_chunks))
    hidden = without_gold(snap, hits, question)
    if still_answered(snap, [row for row, _ in candidates(snap, hidden, cfg)], question):
        return None
    return compose(snap, query, hidden, RETRIEVAL_DEPTH, cfg)


def _given(answers: Sequence[Answer], asked: Sequence[Answer]) -> dict[str, Any]:
    """How the configured pipeline did: answerable questions answered, unanswerable ones abstained on."""
    return {
        "answerable": len(answers),
        "unanswerable": len(asked),
        "answerable_answered": share([not a.abstained for a in answers]),
        "unanswerable_abstained": share([a.abstained for a in asked]),
    }
