"""Micro-batching of concurrent query embeddings: requests that arrive together share one model call.

The first caller becomes the leader and encodes every question queued at that moment in one batch;
callers arriving meanwhile wait, and the next leader takes all of them at once. A lone request never
waits for company (no timer), so single-client latency is unchanged.

Measured, it is not used: on 2 CPU cores a batch costs as much as its questions one by one (8 short
questions: 85 ms in one call, 13 ms each alone) because a question is already compute-bound on one core,
and eight one-thread calls side by side keep both cores busy without waiting on each other: 8 threads
asking at once got 190-207 answers/s without batching and 50-77/s with it (``bench/backends.py``; the
figures in bench/README.md). It is kept, tested, for hardware where a batch is cheaper than its parts
(a GPU, or a wide CPU with few concurrent requests): wrap the pipeline's embedder in it.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import numpy as np

from rag.embedding.base import Embedder


class _Pending:
    __slots__ = ("error", "texts", "vectors")

    def __init__(self, texts: list[str]) -> None:
        self.texts = texts
        self.vectors: np.ndarray | None = None
        self.error: BaseException | None = None

    @property
    def done(self) -> bool:
        return self.vectors is not None or self.error is not None


class BatchingEmbedder:
    """An :class:`~rag.embedding.base.Embedder` whose ``embed_queries`` coalesces concurrent calls.

    Documents (index builds) and everything else go straight to the wrapped embedder.
    """

    def __init__(self, inner: Embedder, max_batch: int = 64) -> None:
        self.name = inner.name
        self.inner = inner
        self._max_batch = max_batch
        self._cond = threading.Condition()
        self._queue: list[_Pending] = []
        self._busy = False
        self.batches = 0  # model calls made, and questions they encoded: their ratio is the batch size
        self.batched_texts = 0

    def __getattr__(self, name: str) -> Any:  # backend, info(), max_tokens ... of the wrapped embedder
        return getattr(self.inner, name)

    @property
    def dimension(self) -> int:
        return self.inner.dimension

    def warm_up(self) -> None:
        self.inner.warm_up()

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        return self.inner.embed_documents(texts)

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        return self.inner.count_tokens(texts)

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return self.inner.embed_queries(texts)
        mine = _Pending(list(texts))
        with self._cond:
            self._queue.append(mine)
        while True:
            with self._cond:
                while self._busy and not mine.done:
                    self._cond.wait()
                if mine.done:
                    break
                self._busy = True
                batch = self._take()
            try:
                self._run(batch)
            finally:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()
        if mine.error is not None:
            raise mine.error
        assert mine.vectors is not None
        return mine.vectors

    def _take(self) -> list[_Pending]:
        """The oldest waiting requests, up to ``max_batch`` texts (always at least one request)."""
        batch: list[_Pending] = []
        size = 0
        while self._queue and (not batch or size + len(self._queue[0].texts) <= self._max_batch):
            request = self._queue.pop(0)
            batch.append(request)
            size += len(request.texts)
        return batch

    def _run(self, batch: list[_Pending]) -> None:
        texts = [t for request in batch for t in request.texts]
        try:
            vectors = self.inner.embed_queries(texts)
        except BaseException as exc:  # every caller of the batch gets the error, raised in its own thread
            for request in batch:
                request.error = exc
            return
        self.batches += 1
        self.batched_texts += len(texts)
        at = 0
        for request in batch:
            request.vectors = vectors[at : at + len(request.texts)]
            at += len(request.texts)
