"""Embedding backends: the contract every embedder keeps, which one is chosen, the torch fallback, and ONNX
reproducing torch's vectors."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest

from rag.embedding.base import (
    INT8_SUFFIX,
    Embedder,
    FallbackEmbedder,
    SentenceTransformerEmbedder,
    create_embedder,
    embedder_info,
    resolve_model_path,
)
from rag.embedding.e5_convert import MODEL_NAME as E5
from rag.embedding.fake import WordsEmbedder
from rag.embedding.onnx import OnnxEmbedder
from rag.embedding.onnx_export import cache_key, unsupported_reason
from rag.errors import ConfigError
from rag.pipeline import Pipeline

MODEL = "sentence-transformers/all-MiniLM-L6-v2"
BUNDLED = Path(resolve_model_path(MODEL))
TEXTS = [
    "Russland legte sein Veto gegen die jährliche Erneuerung eines Expertengremiums ein.",
    "Wer ist der russische UN-Botschafter?",
    "x",
    "Die Verteidigung der Panthers gab nur 308 Punkte ab und belegte den sechsten Platz in der Liga. " * 12,
]


REAL = ("minilm-onnx", "minilm-torch", "e5-onnx", "e5-torch")  # model-backend
_MADE: dict[str, Embedder] = {}  # each real embedder is loaded once per session
KINDS = [
    "words",
    *(
        pytest.param(k, marks=pytest.mark.model)
        for k in ("minilm-onnx", "minilm-torch", "e5-onnx", "e5-torch")
    ),
]


def _made(kind: str, request: pytest.FixtureRequest) -> Embedder:
    """The embedder of a kind ("words", "minilm-onnx", "e5-torch", ...), made on first use."""
    if kind not in _MADE:
        model, _, backend = kind.partition("-")
        if model == "words":
            _MADE[kind] = WordsEmbedder()
        else:
            cache = request.getfixturevalue("e5_models" if model == "e5" else "minilm_models")
            _MADE[kind] = create_embedder(E5 if model == "e5" else MODEL, backend=backend, cache_dir=cache)  # type: ignore[arg-type]
    return _MADE[kind]


@pytest.fixture(params=KINDS)
def any_embedder(request: pytest.FixtureRequest) -> Embedder:
    return _made(request.param, request)


class TestEmbedderContract:
    """What the index and retrieval rely on, kept by the test fake and every real backend alike."""

    def test_it_is_an_embedder_with_a_name_and_a_dimension(self, any_embedder: Embedder) -> None:
        assert isinstance(any_embedder, Embedder) and isinstance(any_embedder.name, str)
        any_embedder.warm_up()
        any_embedder.warm_up()
        assert isinstance(any_embedder.dimension, int) and any_embedder.dimension > 0
        assert isinstance(embedder_info(any_embedder)["backend"], str)

    @pytest.mark.parametrize("method", ["embed_documents", "embed_queries"])
    def test_vectors_are_normalised_float32_rows_in_input_order(
        self, any_embedder: Embedder, method: str
    ) -> None:
        embed = getattr(any_embedder, method)
        vectors = embed(TEXTS)
        assert vectors.dtype == np.float32 and vectors.shape == (len(TEXTS), any_embedder.dimension)
        np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
        alone = np.concatenate([embed([t]) for t in TEXTS])
        assert (alone * vectors).sum(axis=1).min() > 0.999
        np.testing.assert_array_equal(embed(TEXTS), vectors)
        assert embed([]).shape == (0, any_embedder.dimension)

    def test_a_question_finds_its_passage(self, any_embedder: Embedder) -> None:
        docs = any_embedder.embed_documents([TEXTS[0], TEXTS[3]])
        query = any_embedder.embed_queries(["Wer legte ein Veto gegen die Erneuerung ein?"])[0]
        assert int(np.argmax(docs @ query)) == 0

    def test_token_counts_are_of_the_text_alone(self, any_embedder: Embedder) -> None:
        counts = any_embedder.count_tokens(TEXTS)
        assert len(counts) == len(TEXTS) and all(isinstance(c, int) and c >= 1 for c in counts)
        assert counts[3] > counts[0] > counts[1]  # not truncated, no specials to make them alike
        assert any_embedder.count_tokens([]) == []


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
    with caplog.at_level(logging.WARNING, logger="rag.embedding.base"):
        vectors = embedder.embed_queries(["a b"])
        embedder.embed_documents(["c"])
    assert vectors.shape == (1, 32) and embedder.dimension == 32
    assert [r.message for r in caplog.records].count(
        "ONNX backend unavailable (No module named 'onnxruntime'); using torch"
    ) == 1
    assert embedder_info(embedder) == {"backend": "WordsEmbedder"}


@pytest.mark.model
def test_the_shipped_pipeline_runs_the_converted_default_model(real_pipeline: Pipeline) -> None:
    assert real_pipeline.embedder.name == E5 and getattr(real_pipeline.embedder, "backend", None) == "onnx-q4"
    manifest = real_pipeline.snapshot.manifest
    assert manifest["model"] == {"name": E5, "dimension": 384}
    assert manifest["embedding"]["backend"] == "onnx-q4" and len(manifest["embedding"]["sha256"]) == 64
    assert Path(manifest["embedding"]["file"]).is_relative_to(
        Path(real_pipeline.settings.index.index_dir) / "models"
    )


@pytest.mark.model
def test_e5_on_torch_uses_its_prompts_and_matches_the_4bit_graph(request: pytest.FixtureRequest) -> None:
    torch, onnx = _made("e5-torch", request), _made("e5-onnx", request)
    assert isinstance(torch, SentenceTransformerEmbedder)
    assert torch.count_tokens(TEXTS) == onnx.count_tokens(TEXTS)
    prompted = torch._load().encode(["query: " + TEXTS[1]], normalize_embeddings=True)
    np.testing.assert_allclose(torch.embed_queries(TEXTS[1:2]), prompted, atol=1e-6)
    for ours, theirs in [
        (onnx.embed_documents(TEXTS), torch.embed_documents(TEXTS)),
        (onnx.embed_queries(TEXTS), torch.embed_queries(TEXTS)),
    ]:
        assert (ours * theirs).sum(axis=1).min() > 0.999  # 4-bit graph with int8 activations vs fp32


@pytest.mark.model
def test_minilm_on_onnx_matches_torch(minilm_models: Path) -> None:
    embedder = OnnxEmbedder(MODEL, BUNDLED, minilm_models)
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
def test_questions_run_on_one_thread_and_batches_on_more(minilm_models: Path) -> None:
    embedder = OnnxEmbedder(MODEL, BUNDLED, minilm_models, threads=2)
    embedder.embed_queries(TEXTS[:1])
    sessions = embedder._load().sessions
    assert not sessions.batch.ready and sessions.single.get_session_options().intra_op_num_threads == 1
    embedder.embed_documents(TEXTS * 3)
    assert sessions.batch.ready and sessions.batch.get().get_session_options().intra_op_num_threads == 2


@pytest.mark.model
def test_int8_export_stays_close_to_the_model(tmp_path: Path) -> None:
    int8 = create_embedder(MODEL, backend="onnx-int8", cache_dir=tmp_path / "models")
    fp32 = SentenceTransformerEmbedder(MODEL)
    cosines = (int8.embed_documents(TEXTS) * fp32.embed_documents(TEXTS)).sum(axis=1)
    assert cosines.min() > 0.95
    export = json.loads(next((tmp_path / "models").glob("*/export.json")).read_text())
    assert export["quantization"] == "int8-dynamic-per-channel"
