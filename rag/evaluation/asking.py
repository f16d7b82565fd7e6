"""Asking a pipeline many questions, as every evaluation does."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

from rag.pipeline import Pipeline
from rag.retrieval.followup import Turn
from rag.types import Answer

log = logging.getLogger(__name__)

RETRIEVAL_DEPTH = 10  # passages asked for per question: hit@10 and MRR@10 need ten


def ask_all(
    pipeline: Pipeline, questions: Sequence[str], histories: Sequence[Sequence[Turn]] = ()
) -> list[tuple[Answer, float]]:
    """Each question's answer and its wall-clock time in milliseconds (query encoding included);
    ``histories[i]`` is the chat before question ``i`` (none when not given)."""
    out: list[tuple[Answer, float]] = []
    for n, question in enumerate(questions, start=1):
        started = time.perf_counter()
        history = histories[n - 1] if histories else ()
        answer = pipeline.ask(question, top_k=RETRIEVAL_DEPTH, history=history)
        out.append((answer, (time.perf_counter() - started) * 1000))
        if n % 100 == 0:
            log.info("asked %d of %d questions", n, len(questions))
    return out


def share(flags: Sequence[bool]) -> float:
    """The share of true ``flags`` (0 for none)."""
    return sum(flags) / len(flags) if flags else 0.0
