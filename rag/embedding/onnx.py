"""The same sentence-transformers model run by ONNX Runtime: exported locally and offline, no torch to run.

Why: on a 2-core CPU, importing torch + transformers + sentence-transformers takes ~4.5 s of the ~5 s that
``rag ask`` needed for its first answer, while onnxruntime + tokenizers load in ~0.3 s; ONNX Runtime also
encodes a short query several times faster (fused attention and GELU kernels, no autograd dispatch) and
a batch of paragraphs ~1.6x faster, with vectors equal to torch's within 2e-7. The export itself (see
:mod:`rag.embedding.onnx_export`)
is made once per model; models it cannot reproduce exactly are refused, and the
caller falls back to torch.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rag.embedding.lazy import Lazy
from rag.embedding.onnx_export import ensure_export
from rag.embedding.onnx_runtime import create_session, load_tokenizer, tokenize

log = logging.getLogger(__name__)

_FEW = 4  # texts up to which a call counts as a question, not a batch (see OnnxEmbedder)


class Sessions:
    """The sessions of one model file: a question (a few texts) runs on one thread, batches on ``threads``.

    A question is compute-bound and tiny, so a second thread only adds synchronisation: on 2 cores the
    fastest 10% of questions take 5.2 ms with one thread and 5.3 ms with two (MiniLM), and with other work
    on the machine the median is 7.2 vs 13.7 ms; concurrent questions run side by side instead (8 at once:
    175 vs 158 per second). Batches of documents use ``threads`` threads (0 = one per physical core), where
    a second core does pay (~12% here); their session is made on first use, so a server that only answers
    holds the model once.
    """

    def __init__(self, path: Path, threads: int) -> None:
        self.path = path
        self.threads = threads
        self.single = create_session(path, 1)
        self.batch: Lazy[Any] = Lazy(lambda: create_session(path, threads))

    def for_texts(self, count: int) -> Any:
        return self.single if count <= _FEW or self.threads == 1 else self.batch.get()


@dataclass
class _Loaded:
    sessions: Sessions
    tokenizer: Any
    counter: Any  # the same tokenizer without truncation or padding, for counting word pieces
    meta: dict[str, Any]
    folder: Path


class OnnxEmbedder:
    """Encodes with an exported model; loads lazily (thread-safe), like the torch embedder (threads: see
    :class:`Sessions`)."""

    def __init__(
        self,
        name: str,
        model_dir: Path,
        cache_dir: Path,
        batch_size: int = 32,
        threads: int = 0,
        quantize: bool = False,
    ) -> None:
        self.name = name
        self.backend = "onnx-int8" if quantize else "onnx"
        self._model_dir = model_dir
        self._cache_dir = cache_dir
        self._batch_size = batch_size
        self._threads = threads
        self._quantize = quantize
        self._loaded = Lazy(self._open)

    def warm_up(self) -> None:
        self._load()

    def _load(self) -> _Loaded:
        return self._loaded.get()

    def _open(self) -> _Loaded:
        folder = ensure_export(self._model_dir, self._cache_dir, self._quantize)
        meta = json.loads((folder / "export.json").read_text())
        loaded = _Loaded(
            sessions=Sessions(folder / "model.onnx", self._threads),
            tokenizer=load_tokenizer(self._model_dir, int(meta["max_seq_length"])),
            counter=load_tokenizer(self._model_dir, None),
            meta=meta,
            folder=folder,
        )
        log.info("loaded ONNX model %s", folder / "model.onnx")
        return loaded

    @property
    def dimension(self) -> int:
        return int(self._load().meta["dimension"])

    @property
    def max_tokens(self) -> int:
        return int(self._load().meta["max_seq_length"])

    def info(self) -> dict[str, Any]:
        """What the manifest records about how vectors were made."""
        loaded = self._load()
        return {
            "backend": self.backend,
            "file": str(loaded.folder / "model.onnx"),
            "sha256": loaded.meta["sha256"],
            "quantization": loaded.meta["quantization"],
            "onnxruntime": loaded.meta["onnxruntime"],
        }

    def _encode(self, texts: Sequence[str]) -> np.ndarray:
        loaded = self._load()
        session = loaded.sessions.for_texts(len(texts))
        out = np.zeros((len(texts), int(loaded.meta["dimension"])), dtype=np.float32)
        # Longest first, as sentence-transformers does, so each batch pads to similar lengths.
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        for at in range(0, len(order), self._batch_size):
            rows = order[at : at + self._batch_size]
            ids, mask, types = tokenize(loaded.tokenizer, [texts[i] for i in rows])
            out[rows] = session.run(
                None, {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
            )[0]
        return out

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(texts)

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(texts)

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        if not texts:
            return []
        counter = self._load().counter
        return [len(e.ids) for e in counter.encode_batch(list(texts), add_special_tokens=False)]
