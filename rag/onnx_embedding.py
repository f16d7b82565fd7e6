"""The same sentence-transformers model run by ONNX Runtime: exported locally and offline, no torch to run.

Why: on a 2-core CPU, importing torch + transformers + sentence-transformers takes ~4.5 s of the ~5 s that
``rag ask`` needed for its first answer, while onnxruntime + tokenizers load in ~0.3 s; ONNX Runtime also
encodes a short query in about a third of the time (fused attention and GELU kernels, no autograd
dispatch) and a batch of paragraphs in about two thirds.

The export (once per model and variant, into ``<index>/models/``) folds the model's mean pooling and L2
normalisation into the graph, fuses it with onnxruntime's BERT optimizer, optionally quantises the weights
to int8, and checks the result against torch on probe texts before it is used. Only the export needs
torch. Models this cannot reproduce exactly (other pooling, prompts, non-BERT encoders) are refused and
the caller falls back to torch.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import threading
import uuid
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rag.errors import ConfigError

log = logging.getLogger(__name__)

EXPORT_VERSION = 1  # bump when the exported graph changes, so caches are re-made
_OPSET = 17
# Probe texts for the export check: German and English, short and long, so padding is exercised.
_PROBES = (
    "Wer hat ein Veto eingelegt?",
    "Russland legte sein Veto gegen die jährliche Erneuerung eines Expertengremiums ein, das die "
    "Durchsetzung der Sanktionen der Vereinten Nationen gegen Nordkorea überwacht.",
    "How many points did the Panthers defense surrender?",
)
# int8 weights move vectors by a few hundredths of cosine (min 0.975 over XQuAD paragraphs); fp32 by ~1e-7.
_MIN_PROBE_COSINE = {False: 0.9999, True: 0.95}


def unsupported_reason(model_dir: Path) -> str | None:
    """Why the model in ``model_dir`` cannot be exported faithfully, or None when it can."""
    try:
        modules = json.loads((model_dir / "modules.json").read_text())
        config = json.loads((model_dir / "config.json").read_text())
        st_config = _json_or_empty(model_dir / "config_sentence_transformers.json")
        kinds = [m["type"].rsplit(".", 1)[-1] for m in modules]
        pooling = (
            json.loads((model_dir / modules[1]["path"] / "config.json").read_text()) if len(kinds) > 1 else {}
        )
    except (OSError, ValueError, KeyError, IndexError) as exc:
        return f"not a local sentence-transformers folder ({exc.__class__.__name__})"
    if kinds not in (["Transformer", "Pooling"], ["Transformer", "Pooling", "Normalize"]):
        return f"modules {kinds} (only Transformer + mean Pooling [+ Normalize] is exported)"
    modes = [k for k, v in pooling.items() if k.startswith("pooling_mode_") and v]
    if modes != ["pooling_mode_mean_tokens"]:
        return f"pooling {modes} (only mean pooling is exported)"
    if any(st_config.get("prompts", {}).values()) or st_config.get("default_prompt_name"):
        return "the model uses prompts"
    if config.get("model_type") != "bert":
        return f"model type {config.get('model_type')!r} (only BERT encoders are exported)"
    if not (model_dir / "tokenizer.json").is_file():
        return "no tokenizer.json"
    return None


def cache_key(model_dir: Path, quantize: bool) -> str:
    """A folder name for one export: the model's files (by name, size and mtime), variant and version.

    Stat-based so that loading costs no hashing of 90 MB of weights; the weights' sha256 is computed once
    at export time and recorded in ``export.json``.
    """
    parts = [str(model_dir.resolve()), str(EXPORT_VERSION), "int8" if quantize else "fp32"]
    for f in sorted(p for p in model_dir.rglob("*") if p.is_file()):
        st = f.stat()
        parts.append(f"{f.relative_to(model_dir).as_posix()}:{st.st_size}:{st.st_mtime_ns}")
    digest = hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]
    return f"{model_dir.name}-{'int8' if quantize else 'fp32'}-{digest}"


def ensure_export(model_dir: Path, cache_dir: Path, quantize: bool) -> Path:
    """The export folder for this model and variant under ``cache_dir``, exported now if missing."""
    target = cache_dir / cache_key(model_dir, quantize)
    if (target / "export.json").is_file():
        return target
    reason = unsupported_reason(model_dir)
    if reason is not None:
        raise ConfigError(f"cannot export {model_dir} to ONNX: {reason}")
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = cache_dir / f".tmp-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        _export(model_dir, tmp, quantize)
        try:
            os.rename(tmp, target)
        except OSError:  # another process exported it meanwhile: use theirs
            if not (target / "export.json").is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def _export(model_dir: Path, out: Path, quantize: bool) -> None:
    import time

    started = time.perf_counter()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    import torch
    import transformers
    from onnxruntime.transformers.optimizer import optimize_model
    from transformers import AutoModel

    transformers.logging.set_verbosity_error()
    for name in ("fusion_base", "onnx_model", "onnx_model_bert", "fusion_utils", "fusion_attention"):
        logging.getLogger(name).setLevel(logging.WARNING)  # the optimizer's per-fusion chatter
    log.info("exporting %s to ONNX (%s), once per model", model_dir, "int8" if quantize else "fp32")
    # Eager attention traces to the MatMul/Softmax pattern onnxruntime fuses into one Attention node;
    # the SDPA path traces to a graph it does not recognise (measured: 0 of 6 attention layers fused).
    model = AutoModel.from_pretrained(str(model_dir), attn_implementation="eager").eval()

    class MeanPooled(torch.nn.Module):
        def __init__(self, encoder: Any) -> None:
            super().__init__()
            self.encoder = encoder

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            tokens = self.encoder(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(tokens.dtype)
            mean = (tokens * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(mean, p=2, dim=1)

    wrapper = MeanPooled(model).eval()
    tokenizer = _tokenizer(model_dir, _max_seq_length(model_dir))
    ids, mask, types = _batch(tokenizer, list(_PROBES))
    raw = out / "raw.onnx"
    names = ["input_ids", "attention_mask", "token_type_ids"]
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        args = (torch.from_numpy(ids), torch.from_numpy(mask), torch.from_numpy(types))
        expected = wrapper(*args).numpy()
        torch.onnx.export(
            wrapper,
            args,
            str(raw),
            input_names=names,
            output_names=["embedding"],
            dynamic_axes={**{n: {0: "batch", 1: "tokens"} for n in names}, "embedding": {0: "batch"}},
            opset_version=_OPSET,
            dynamo=False,
        )
    cfg = model.config
    fused = optimize_model(
        str(raw), model_type="bert", num_heads=cfg.num_attention_heads, hidden_size=cfg.hidden_size
    )
    final = out / "model.onnx"
    if quantize:
        import onnx
        from onnxruntime.quantization import QuantType, quantize_dynamic

        fused.save_model_to_file(str(out / "fused.onnx"))
        quantize_dynamic(
            str(out / "fused.onnx"),
            str(final),
            weight_type=QuantType.QInt8,
            per_channel=True,
            extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
        )
        (out / "fused.onnx").unlink()
    else:
        fused.save_model_to_file(str(final))
    raw.unlink()
    got = _session(final, threads=0).run(
        None, {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
    )[0]
    worst = float((got * expected).sum(1).min())
    if worst < _MIN_PROBE_COSINE[quantize]:
        raise ConfigError(f"the ONNX export of {model_dir} does not reproduce torch (cosine {worst:.4f})")
    meta = {
        "export_version": EXPORT_VERSION,
        "source": str(model_dir),
        "source_sha256": _sha256(model_dir / "model.safetensors")
        if (model_dir / "model.safetensors").exists()
        else None,
        "quantization": "int8-dynamic-per-channel" if quantize else None,
        "dimension": int(got.shape[1]),
        "max_seq_length": _max_seq_length(model_dir),
        "opset": _OPSET,
        "torch": torch.__version__,
        "onnxruntime": _ort_version(),
        "probe_min_cosine": round(worst, 6),
        "sha256": _sha256(final),
        "seconds": round(time.perf_counter() - started, 2),
    }
    (out / "export.json").write_text(json.dumps(meta, indent=2) + "\n")
    log.info("exported %s in %.1fs (probe cosine vs torch %.6f)", final, meta["seconds"], worst)


class OnnxEmbedder:
    """Encodes with an exported model; loads lazily (thread-safe), like the torch embedder."""

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
        self._state: tuple[Any, Any, Any, dict[str, Any], Path] | None = None
        self._lock = threading.Lock()

    def warm_up(self) -> None:
        self._load()

    def _load(self) -> tuple[Any, Any, Any, dict[str, Any], Path]:
        state = self._state
        if state is None:
            with self._lock:
                if self._state is None:
                    folder = ensure_export(self._model_dir, self._cache_dir, self._quantize)
                    meta = json.loads((folder / "export.json").read_text())
                    session = _session(folder / "model.onnx", self._threads)
                    encoder = _tokenizer(self._model_dir, int(meta["max_seq_length"]))
                    counter = _tokenizer(self._model_dir, None)
                    self._state = (session, encoder, counter, meta, folder)
                    log.info("loaded ONNX model %s", folder / "model.onnx")
                state = self._state
        assert state is not None
        return state

    @property
    def dimension(self) -> int:
        return int(self._load()[3]["dimension"])

    @property
    def max_tokens(self) -> int:
        return int(self._load()[3]["max_seq_length"])

    def info(self) -> dict[str, Any]:
        """What the manifest records about how vectors were made."""
        _, _, _, meta, folder = self._load()
        return {
            "backend": self.backend,
            "file": str(folder / "model.onnx"),
            "sha256": meta["sha256"],
            "quantization": meta["quantization"],
            "onnxruntime": meta["onnxruntime"],
        }

    def _encode(self, texts: Sequence[str]) -> np.ndarray:
        session, tokenizer, _, meta, _ = self._load()
        out = np.zeros((len(texts), int(meta["dimension"])), dtype=np.float32)
        # Longest first, as sentence-transformers does, so each batch pads to similar lengths.
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        for at in range(0, len(order), self._batch_size):
            rows = order[at : at + self._batch_size]
            ids, mask, types = _batch(tokenizer, [texts[i] for i in rows])
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
        counter = self._load()[2]
        return [len(e.ids) for e in counter.encode_batch(list(texts), add_special_tokens=False)]


def _session(path: Path, threads: int) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.inter_op_num_threads = 1
    # 0 = onnxruntime's default, one thread per physical core (2 here).
    options.intra_op_num_threads = threads
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def _tokenizer(model_dir: Path, max_length: int | None) -> Any:
    """The model's fast tokenizer; truncating at ``max_length`` and padding to the longest, or neither."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    if max_length is None:
        tokenizer.no_truncation()
        tokenizer.no_padding()
        return tokenizer
    tokenizer.enable_truncation(max_length)
    pad = _json_or_empty(model_dir / "special_tokens_map.json").get("pad_token", "[PAD]")
    pad = pad.get("content", "[PAD]") if isinstance(pad, dict) else pad
    pad_id = tokenizer.token_to_id(pad)
    tokenizer.enable_padding(pad_id=0 if pad_id is None else pad_id, pad_token=pad)  # to the longest
    return tokenizer


def _batch(tokenizer: Any, texts: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    encoded = tokenizer.encode_batch(texts)
    ids = np.array([e.ids for e in encoded], dtype=np.int64)
    mask = np.array([e.attention_mask for e in encoded], dtype=np.int64)
    types = np.array([e.type_ids for e in encoded], dtype=np.int64)
    return ids, mask, types


def _max_seq_length(model_dir: Path) -> int:
    return int(_json_or_empty(model_dir / "sentence_bert_config.json").get("max_seq_length", 256))


def _json_or_empty(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _ort_version() -> str:
    import onnxruntime

    return str(onnxruntime.__version__)
