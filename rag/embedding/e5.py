"""multilingual-e5-small run by ONNX Runtime from its converted 4-bit graph
(see :mod:`rag.embedding.e5_convert`).

The model's own prompts go in front: "query: " for questions, "passage: " for what is indexed. Texts are
encoded in batches of at most ``batch_size`` texts and at most 2,048 padded tokens, shortest first, so a
batch pads to similar lengths and its attention scores stay small (32 texts x 512 tokens alone would
allocate [32, 12, 512, 512] floats, ~400 MB, which ONNX Runtime's arena then keeps). A question runs on
one thread, batches on ``threads`` (:class:`rag.embedding.onnx.Sessions`). On the 2-core development
machine: 10.7 ms a question, ~186 MB of memory after loading (the tokenizer ~60 MB of it).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rag.embedding.e5_convert import MODEL_NAME, ensure_converted, read_record
from rag.embedding.e5_tokenizer import PASSAGE_PROMPT, QUERY_PROMPT, E5Tokenizer
from rag.embedding.lazy import Lazy
from rag.embedding.model_cache import discard
from rag.embedding.onnx import Sessions

log = logging.getLogger(__name__)

TOKEN_BUDGET = 2048  # padded tokens per batch: 4 texts of 512, 32 of 64


@dataclass
class _Model:
    sessions: Sessions
    tokenizer: E5Tokenizer
    record: dict[str, Any]
    folder: Path


class E5Embedder:
    """The :class:`~rag.embedding.base.Embedder` of multilingual-e5-small; converts and loads on first use."""

    backend = "onnx-q4"

    def __init__(
        self,
        cache_dir: Path,
        batch_size: int = 32,
        threads: int = 0,
        token_budget: int = TOKEN_BUDGET,
    ) -> None:
        self.name = MODEL_NAME
        self._cache_dir = cache_dir
        self._batch_size = batch_size
        self._threads = threads
        self._token_budget = token_budget
        self._model = Lazy(self._open)

    def warm_up(self) -> None:
        self._load()

    def _load(self) -> _Model:
        return self._model.get()

    def _open(self) -> _Model:
        folder = ensure_converted(self._cache_dir)
        try:
            return _open_folder(folder, self._threads)
        except Exception as exc:  # a damaged file of the right size: convert once more
            log.warning("cannot load the converted model in %s (%s): converting it again", folder, exc)
            discard(folder)
            return _open_folder(ensure_converted(self._cache_dir), self._threads)

    @property
    def dimension(self) -> int:
        return int(self._load().record["dimension"])

    @property
    def max_tokens(self) -> int:
        """512 tokens with ``<s>``, ``</s>`` and the prompt: 508 pieces of a passage, 507 of a question."""
        return int(self._load().record["max_seq_length"])

    def info(self) -> dict[str, Any]:
        """What the index manifest records about how its vectors were made."""
        model = self._load()
        record = model.record
        return {
            "backend": self.backend,
            "file": str(model.folder / record["file"]),
            "sha256": record["sha256"],
            "source_sha256": record["source_sha256"],
            "converter_version": record["converter_version"],
            "quantization": record["quantization"],
            "onnxruntime": record["onnxruntime"],
        }

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(texts, PASSAGE_PROMPT)

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(texts, QUERY_PROMPT)

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """The pieces of each text itself: no prompt, no ``<s>`` / ``</s>``, not truncated."""
        return [len(ids) for ids in self._load().tokenizer.pieces(texts)] if texts else []

    def _encode(self, texts: Sequence[str], prompt: str) -> np.ndarray:
        model = self._load()
        out = np.zeros((len(texts), int(model.record["dimension"])), dtype=np.float32)
        if not texts:
            return out
        session = model.sessions.for_texts(len(texts))
        ids = model.tokenizer.encode(texts, prompt)
        for rows in token_batches([len(x) for x in ids], self._batch_size, self._token_budget):
            batch, mask = model.tokenizer.pad([ids[i] for i in rows])
            out[rows] = session.run(None, {"input_ids": batch, "attention_mask": mask})[0]
        return out


def token_batches(lengths: Sequence[int], max_texts: int, max_tokens: int) -> list[list[int]]:
    """Indices shortest first, cut so that no batch holds more than ``max_texts`` texts or more than
    ``max_tokens`` tokens once padded to its longest (a single longer text makes a batch of its own)."""
    batches: list[list[int]] = []
    current: list[int] = []
    for i in sorted(range(len(lengths)), key=lengths.__getitem__):
        if current and (len(current) == max_texts or (len(current) + 1) * lengths[i] > max_tokens):
            batches.append(current)
            current = []
        current.append(i)
    return [*batches, current] if current else batches


def _open_folder(folder: Path, threads: int) -> _Model:
    """The session is made on a second thread while the tokenizer loads (both in C++, ~0.2 and ~0.5 s)."""
    record = read_record(folder)
    with ThreadPoolExecutor(1) as pool:
        sessions = pool.submit(Sessions, folder / "model.onnx", threads)
        tokenizer = E5Tokenizer(folder, int(record["max_seq_length"]))
        model = _Model(sessions.result(), tokenizer, record, folder)
    log.info("loaded %s (%s) from %s", MODEL_NAME, record.get("quantization"), folder)
    return model
