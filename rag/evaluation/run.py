"""``rag eval``: measure retrieval, answers, citations and abstention through the product's own pipeline.

A SQuAD-format file is written to a temporary corpus (see :mod:`rag.evaluation.squad`), indexed like any
corpus, and
every question is asked through :meth:`Pipeline.ask`, the call the API makes, for the top 10 passages (the
answer itself does not depend on how many passages are returned). A question set is asked against an
existing corpus folder. With unanswerable questions, the report also shows the abstention threshold's
trade-off: the answerable questions are asked once more with abstention off (to judge every answer), and each
threshold is applied to the answers' confidence, which is exactly the rule the composer abstains by.

Without a file of unanswerable questions, ``--without-gold`` makes them from the answerable ones: each is
asked once more with the sentences of its gold paragraph hidden from the answer composer (retrieval still
sees the whole corpus, and the rest of the article stays, so it is a close-topic question the articles no
longer answer; skipped when another candidate sentence still contains the answer). ``bench.calibrate`` fits
the abstention models on the same construction.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from rag.evaluation.abstention import abstention_off, abstention_report, ask_without_gold
from rag.evaluation.asking import ask_all, share
from rag.evaluation.metrics import Cited, Judged, Region, contains_any, judge, summarize
from rag.evaluation.squad import FollowUp, Question, SetQuestion, SquadSet, sample, write_corpus
from rag.pipeline import Pipeline, build_pipeline
from rag.retrieval.followup import Turn
from rag.settings import Settings
from rag.types import Answer

log = logging.getLogger(__name__)

_SETTINGS_SHOWN = (
    "chunk_tokens",
    "chunk_overlap",
    "fusion",
    "dense_weight",
    "abstain_threshold",
    "cross_abstain_threshold",
    "model",
)


@contextmanager
def work_folder(work_dir: Path | None) -> Iterator[Path]:
    """``work_dir`` if given (its index is reused by the next run), else a temporary folder."""
    if work_dir is not None:
        Path(work_dir).mkdir(parents=True, exist_ok=True)
        yield Path(work_dir)
        return
    with tempfile.TemporaryDirectory(prefix="rag-eval-") as tmp:
        yield Path(tmp)


def judge_answer(question: Question, answer: Answer, ms: float, originals: dict[str, str]) -> Judged:
    retrieved = [Region(p.doc_id, p.start, p.end) for p in answer.passages]
    cited = [Cited(c.n, Region(c.doc_id, c.start, c.end), c.quote) for c in answer.citations]
    return judge(question.gold, retrieved, answer.abstained, answer.answer, cited, originals, ms)


# Over 40 lines on purpose: the report's sections in the order they are measured, each a few lines.
def evaluate_squad(
    squad: SquadSet,
    settings: Settings,
    limit: int | None = None,
    seed: int = 0,
    work_dir: Path | None = None,
    unanswerable: Sequence[str] = (),
    history: bool = False,
    without_gold: bool = False,
    after_unrelated: bool = False,
) -> dict[str, Any]:
    """Index the file's articles, ask (a sample of) its questions, and return the report. With ``history``
    every question is asked once more after the one before it (a chat that moves on to a new question),
    which must not change how well it is answered; with ``after_unrelated`` once more after a question
    about another article (:func:`unrelated_chats`); with ``without_gold`` once more with its gold
    paragraph hidden (module docstring)."""
    questions = sample(squad.questions, limit, seed)
    with work_folder(work_dir) as folder:
        originals = write_corpus(squad.articles, folder / "corpus")
        where = {"corpus_dir": folder / "corpus", "index_dir": folder / "index"}
        pipeline = build_pipeline(settings.updated(**where))
        pipeline.warm_up()
        answers = ask_all(pipeline, [q.text for q in questions])
        report = {
            **_setup(pipeline, len(questions)),
            **summarize(
                [judge_answer(q, a, ms, originals) for q, (a, ms) in zip(questions, answers, strict=True)]
            ),
        }

        given = [a for a, _ in answers]
        report.update(_abstention(pipeline, questions, given, unanswerable, without_gold))
        if history:
            chats = [
                _chat(questions[i - 1].text, answers[i - 1][0]) if i else [] for i in range(len(questions))
            ]
            again = ask_all(pipeline, [q.text for q in questions], chats)
            judged = [judge_answer(q, a, ms, originals) for q, (a, ms) in zip(questions, again, strict=True)]
            report["after_previous_question"] = summarize(judged)
        if after_unrelated:
            texts = [q.text for q in questions]
            chats = unrelated_chats(texts, [q.gold.paragraph.doc_id for q in questions], given)
            again = ask_all(pipeline, texts, chats)
            judged = [judge_answer(q, a, ms, originals) for q, (a, ms) in zip(questions, again, strict=True)]
            report["after_unrelated_question"] = {
                **summarize(judged),
                "changed_answers": sum(a.answer != b.answer for a, (b, _) in zip(given, again, strict=True)),
            }
    return report


def _abstention(
    pipeline: Pipeline,
    questions: Sequence[Question],
    given: Sequence[Answer],
    unanswerable: Sequence[str],
    without_gold: bool,
) -> dict[str, Any]:
    """The abstention parts of a SQuAD report: against the ``unanswerable`` questions, and with each
    question's gold paragraph hidden."""

    def is_right(i: int, a: Answer) -> bool:
        return not a.abstained and contains_any(_quoted(a), questions[i].gold.texts)

    report: dict[str, Any] = {}
    off = abstention_off(pipeline, [q.text for q in questions]) if unanswerable or without_gold else []
    if unanswerable:
        asked = [a for a, _ in ask_all(pipeline, unanswerable)]
        report["abstention"] = abstention_report(pipeline, given, off, is_right, asked)
    if without_gold:
        hidden = [a for a in (ask_without_gold(pipeline, q) for q in questions) if a is not None]
        report["without_gold"] = {
            "skipped": len(questions) - len(hidden),
            **abstention_report(pipeline, given, off, is_right, hidden),
        }
    return report


def _chat(question: str, answer: Answer) -> list[Turn]:
    return [Turn("user", question), Turn("assistant", answer.answer)]


def unrelated_chats(
    questions: Sequence[str], docs: Sequence[str | None], answers: Sequence[Answer]
) -> list[list[Turn]]:
    """For each question, a chat of one question about another article and its answer: the nearest one
    before it in the list (wrapping round) whose document differs. A question no article answers (its
    document ``None``) follows the questions that have one in turn, and never serves as the earlier one.
    A standalone question asked after that chat must be answered as when asked alone; the chat is empty
    where there is no such question."""
    known = [j for j, doc in enumerate(docs) if doc is not None]
    chats: list[list[Turn]] = []
    for i, doc in enumerate(docs):
        if doc is None:
            j = known[i % len(known)] if known else None
        else:
            before = (k % len(docs) for k in range(i - 1, i - len(docs), -1))
            j = next((k for k in before if docs[k] is not None and docs[k] != doc), None)
        chats.append(_chat(questions[j], answers[j]) if j is not None else [])
    return chats


def evaluate_question_set(
    questions: Sequence[SetQuestion],
    settings: Settings,
    followups: Sequence[FollowUp] = (),
    after_unrelated: bool = False,
) -> dict[str, Any]:
    """Ask a question set against the configured corpus (its index is brought up to date first); with
    ``after_unrelated`` every question once more after one about another article (:func:`unrelated_chats`)."""
    pipeline = build_pipeline(settings)
    pipeline.warm_up()
    answerable = [q for q in questions if q.answer is not None]
    unanswerable = [q.text for q in questions if q.answer is None]
    answers = [a for a, _ in ask_all(pipeline, [q.text for q in answerable])]

    def is_right(i: int, a: Answer) -> bool:
        return correct(answerable[i], a)

    report = _setup(pipeline, len(questions))
    off = abstention_off(pipeline, [q.text for q in answerable])
    asked = [a for a, _ in ask_all(pipeline, unanswerable)]
    report["abstention"] = abstention_report(pipeline, answers, off, is_right, asked)
    if followups:
        report["followups"] = _followups(pipeline, followups)
    if after_unrelated:
        report["after_unrelated"] = _after_unrelated(pipeline, answerable, unanswerable, answers, asked)
    report["failures"] = [
        {"question": q.text, "expected": q.answer, "answer": a.answer}
        for i, (q, a) in enumerate(zip(answerable, answers, strict=True))
        if not is_right(i, a)
    ]
    return report


def _followups(pipeline: Pipeline, followups: Sequence[FollowUp]) -> dict[str, Any]:
    """Follow-up questions answered correctly after their chat, and asked bare (which should fail)."""
    texts = [f.question.text for f in followups]
    chats = [[t for q in f.history for t in _chat(q, pipeline.ask(q))] for f in followups]
    with_chat = [
        correct(f.question, a) for f, (a, _) in zip(followups, ask_all(pipeline, texts, chats), strict=True)
    ]
    bare = [correct(f.question, a) for f, (a, _) in zip(followups, ask_all(pipeline, texts), strict=True)]
    return {
        "questions": len(followups),
        "correct_with_history": share(with_chat),
        "correct_alone": share(bare),
    }


def _after_unrelated(
    pipeline: Pipeline,
    answerable: Sequence[SetQuestion],
    unanswerable: Sequence[str],
    answers: Sequence[Answer],
    asked: Sequence[Answer],
) -> dict[str, Any]:
    """The question set asked again, each question after one about another article: answerable ones
    answered correctly and unanswerable ones abstained on, against the same questions asked alone."""
    texts = [q.text for q in answerable] + list(unanswerable)
    # an answerable question of unknown document counts as about an article of its own
    docs = [q.doc_id or q.text for q in answerable] + [None] * len(unanswerable)
    alone = [*answers, *asked]
    again = [a for a, _ in ask_all(pipeline, texts, unrelated_chats(texts, docs, alone))]
    after, after_nope = again[: len(answerable)], again[len(answerable) :]
    return {
        "questions": len(texts),
        "answerable_correct_alone": share([correct(q, a) for q, a in zip(answerable, answers, strict=True)]),
        "answerable_correct_after": share([correct(q, a) for q, a in zip(answerable, after, strict=True)]),
        "unanswerable_abstained_alone": share([a.abstained for a in asked]),
        "unanswerable_abstained_after": share([a.abstained for a in after_nope]),
        "changed_answers": sum(a.answer != b.answer for a, b in zip(alone, again, strict=True)),
    }


def correct(q: SetQuestion, answer: Answer) -> bool:
    """Answered, and the sentences quoted from the expected document contain the expected fragment."""
    if answer.abstained or q.answer is None:
        return False
    quotes = [c.quote for c in answer.citations if q.doc_id is None or c.doc_id == q.doc_id]
    return contains_any(" ".join(quotes), [q.answer])


def _quoted(answer: Answer) -> str:
    return " ".join(c.quote for c in answer.citations)


def _setup(pipeline: Pipeline, questions: int) -> dict[str, Any]:
    snap = pipeline.snapshot
    words = [len(c.text.split()) for c in snap.chunks]
    return {
        "questions": questions,
        "documents": len(snap.documents),
        "chunks": len(snap.chunks),
        "mean_chunk_words": round(sum(words) / max(len(words), 1), 1),
        "settings": {k: pipeline.settings.value(k) for k in _SETTINGS_SHOWN},
    }
