"""Micro-batching: concurrent questions share model calls and each gets exactly its own vectors."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

import numpy as np
import pytest

from bench.batching import BatchingEmbedder
from rag.embedding.fake import WordsEmbedder


class _Slow(WordsEmbedder):
    """The fake model, with a model call slow enough that questions pile up meanwhile."""

    def __init__(self) -> None:
        super().__init__()
        self.sizes: list[int] = []
        self.failed: list[int] = []
        self.backend = "slow"

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        self.sizes.append(len(texts))
        if "boom" in texts:
            self.failed.append(len(texts))
            raise RuntimeError("model failed")
        time.sleep(0.05)
        return super().embed_queries(texts)


def _ask_all(embedder: BatchingEmbedder, questions: list[str]) -> dict[str, np.ndarray | BaseException]:
    out: dict[str, np.ndarray | BaseException] = {}
    start = threading.Barrier(len(questions))

    def ask(q: str) -> None:
        start.wait()
        try:
            out[q] = embedder.embed_queries([q])
        except BaseException as exc:
            out[q] = exc

    threads = [threading.Thread(target=ask, args=(q,)) for q in questions]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return out


def test_concurrent_questions_share_calls_and_get_their_own_vectors() -> None:
    inner = _Slow()
    batching = BatchingEmbedder(inner)
    questions = [f"Frage Nummer {i} über Nordkorea" for i in range(12)]
    got = _ask_all(batching, questions)
    reference = WordsEmbedder()
    for q in questions:
        np.testing.assert_allclose(got[q], reference.embed_queries([q]), atol=1e-6)  # type: ignore[arg-type]
    assert sum(inner.sizes) == 12 and len(inner.sizes) < 12  # fewer model calls than questions
    assert batching.batches == len(inner.sizes) and batching.batched_texts == 12


def test_a_lone_question_is_one_call_with_no_waiting() -> None:
    inner = _Slow()
    batching = BatchingEmbedder(inner)
    started = time.perf_counter()
    assert batching.embed_queries(["eine Frage", "noch eine"]).shape == (2, 64)
    assert time.perf_counter() - started < 0.5 and inner.sizes == [2]


def test_batches_are_capped() -> None:
    inner = _Slow()
    got = _ask_all(BatchingEmbedder(inner, max_batch=3), [f"q{i}" for i in range(10)])
    assert len(got) == 10 and max(inner.sizes) <= 3


def test_an_error_reaches_every_caller_of_its_batch_and_no_other() -> None:
    inner = _Slow()
    batching = BatchingEmbedder(inner)
    got = _ask_all(batching, ["boom", *[f"q{i}" for i in range(5)]])
    assert isinstance(got["boom"], RuntimeError)
    failed = [q for q, v in got.items() if isinstance(v, BaseException)]
    assert len(failed) == inner.failed[0] and len(got) - len(failed) == 6 - inner.failed[0]
    assert batching.embed_queries(["afterwards"]).shape == (1, 64)  # and the next call works


def test_everything_else_goes_to_the_wrapped_embedder() -> None:
    inner = _Slow()
    batching = BatchingEmbedder(inner)
    assert batching.name == inner.name and batching.dimension == 64 and batching.backend == "slow"
    assert batching.embed_documents(["a b"]).shape == (1, 64) and inner.sizes == []
    assert batching.count_tokens(["a b"]) == inner.count_tokens(["a b"])
    assert batching.embed_queries([]).shape == (0, 64)
    with pytest.raises(AttributeError):
        _ = batching.no_such_thing
