"""Embedding backends: which one is chosen, the torch fallback, and ONNX reproducing torch's vectors."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest

from rag.embedding import (
    INT8_SUFFIX,
    FallbackEmbedder,
    SentenceTransformerEmbedder,
    create_embedder,
    embedder_info,
    resolve_model_path,
)
from rag.errors import ConfigError
from rag.onnx_embedding import OnnxEmbedder
from rag.onnx_export import cache_key, unsupported_reason
from rag.pipeline import Pipeline
from rag.testing import WordsEmbedder

MODEL = "sentence-transformers/all-MiniLM-L6-v2"
BUNDLED = Path(resolve_model_path(MODEL))
TEXTS = [
    "Russland legte sein Veto gegen die jährliche Erneuerung eines Expertengremiums ein.",
    "Wer ist der russische UN-Botschafter?",
    "x",
    "Die Verteidigung der Panthers gab nur 308 Punkte ab und belegte den sechsten Platz in der Liga. " * 12,
]


def _copy_model(tmp_path: Path, **pooling: bool) -> Path:
    target = tmp_path / "model"
    shutil.copytree(BUNDLED, target, ignore=shutil.ignore_patterns("*.safetensors"))
    config = json.loads((target / "1_Pooling" / "config.json").read_text())
    (target / "1_Pooling" / "config.json").write_text(json.dumps({**config, **pooling}))
    return target


def test_the_bundled_model_can_be_exported() -> None:
    assert unsupported_reason(BUNDLED) is None


def test_models_onnx_cannot_reproduce_are_refused(tmp_path: Path) -> None:
    cls = _copy_model(tmp_path, pooling_mode_cls_token=True, pooling_mode_mean_tokens=False)
    assert "pooling" in (unsupported_reason(cls) or "")
    assert "not a local" in (unsupported_reason(tmp_path / "missing") or "")
    with pytest.raises(ConfigError, match="pooling"):
        create_embedder(str(cls), backend="onnx", cache_dir=tmp_path / "models")
    # auto quietly keeps torch for such a model
    assert isinstance(create_embedder(str(cls), cache_dir=tmp_path / "models"), SentenceTransformerEmbedder)


def test_backend_choice() -> None:
    cache = Path("unused")
    assert isinstance(create_embedder(MODEL, backend="torch", cache_dir=cache), SentenceTransformerEmbedder)
    assert isinstance(create_embedder(MODEL), SentenceTransformerEmbedder)  # no cache folder: torch
    assert isinstance(create_embedder(MODEL, device="cuda", cache_dir=cache), SentenceTransformerEmbedder)
    auto = create_embedder(MODEL, cache_dir=cache)
    assert isinstance(auto, FallbackEmbedder) and auto.name == MODEL
    assert isinstance(create_embedder(MODEL, backend="onnx", cache_dir=cache), OnnxEmbedder)
    int8 = create_embedder(MODEL, backend="onnx-int8", cache_dir=cache)
    assert int8.name == MODEL + INT8_SUFFIX  # an int8 index is never queried with the fp32 model
    assert isinstance(create_embedder("test:words", backend="onnx"), WordsEmbedder)
    with pytest.raises(ConfigError):
        create_embedder("no/such-model", backend="onnx", cache_dir=cache)


def test_cache_key_names_the_variant_and_is_stable() -> None:
    assert cache_key(BUNDLED, False) == cache_key(BUNDLED, False)
    assert "-fp32-" in cache_key(BUNDLED, False) and "-int8-" in cache_key(BUNDLED, True)


class _Broken(WordsEmbedder):
    def warm_up(self) -> None:
        raise ImportError("No module named 'onnxruntime'")


def test_fallback_to_torch_when_onnx_cannot_load(caplog: pytest.LogCaptureFixture) -> None:
    fallback = WordsEmbedder(32)
    embedder = FallbackEmbedder(_Broken(64), fallback)
    with caplog.at_level(logging.WARNING, logger="rag.embedding"):
        vectors = embedder.embed_queries(["a b"])
        embedder.embed_documents(["c"])
    assert vectors.shape == (1, 32) and embedder.dimension == 32
    assert [r.message for r in caplog.records].count(
        "ONNX backend unavailable (No module named 'onnxruntime'); using torch"
    ) == 1
    assert embedder_info(embedder) == {"backend": "WordsEmbedder"}


@pytest.mark.model
def test_shipped_pipeline_runs_onnx_and_matches_torch(real_pipeline: Pipeline) -> None:
    embedder = real_pipeline.embedder
    assert getattr(embedder, "backend", None) == "onnx"
    manifest = real_pipeline.snapshot.manifest
    assert manifest["embedding"]["backend"] == "onnx" and len(manifest["embedding"]["sha256"]) == 64
    assert Path(manifest["embedding"]["file"]).is_relative_to(
        Path(real_pipeline.settings.index_dir) / "models"
    )
    torch = SentenceTransformerEmbedder(MODEL)
    assert embedder.count_tokens(TEXTS) == torch.count_tokens(TEXTS)
    for ours, theirs in [
        (embedder.embed_documents(TEXTS), torch.embed_documents(TEXTS)),
        (embedder.embed_queries(TEXTS[1:2]), torch.embed_queries(TEXTS[1:2])),
    ]:
        assert ours.dtype == np.float32 and ours.shape == theirs.shape
        np.testing.assert_allclose(ours, theirs, atol=1e-5)
    assert embedder.embed_documents([]).shape == (0, 384)


@pytest.mark.model
def test_questions_run_on_one_thread_and_batches_on_more(real_pipeline: Pipeline) -> None:
    embedder = OnnxEmbedder(MODEL, BUNDLED, Path(real_pipeline.settings.index_dir) / "models", threads=2)
    embedder.embed_queries(TEXTS[:1])
    loaded = embedder._load()
    assert loaded.batch is None and loaded.single.get_session_options().intra_op_num_threads == 1
    embedder.embed_documents(TEXTS * 3)
    assert loaded.batch is not None and loaded.batch.get_session_options().intra_op_num_threads == 2


@pytest.mark.model
def test_int8_export_stays_close_to_the_model(tmp_path: Path) -> None:
    int8 = create_embedder(MODEL, backend="onnx-int8", cache_dir=tmp_path / "models")
    fp32 = SentenceTransformerEmbedder(MODEL)
    cosines = (int8.embed_documents(TEXTS) * fp32.embed_documents(TEXTS)).sum(axis=1)
    assert cosines.min() > 0.95
    export = json.loads(next((tmp_path / "models").glob("*/export.json")).read_text())
    assert export["quantization"] == "int8-dynamic-per-channel"
