"""The ONNX export of a sentence-transformers model, made locally and offline, and checked against torch.

Once per model and variant, into ``<index>/models/<key>/``: the Transformer module with its mean pooling and
L2 normalisation folded into the graph (so the output is the sentence vector), fused by onnxruntime's BERT
optimizer, optionally with int8 weights, then run on probe texts next to torch and refused unless they
agree. ``export.json`` beside ``model.onnx`` records the source weights' hash, versions, the check and
the file's own hash. Only this module needs torch; :mod:`rag.embedding.onnx` runs the result.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import warnings
from pathlib import Path
from typing import Any

from rag.embedding.model_cache import build_folder
from rag.embedding.onnx_runtime import (
    create_session,
    load_tokenizer,
    max_seq_length,
    read_json_object,
    tokenize,
)
from rag.errors import ConfigError
from rag.files import sha256_file

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
        st_config = read_json_object(model_dir / "config_sentence_transformers.json")
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
    return build_folder(
        target, lambda tmp: _export(model_dir, tmp, quantize), lambda f: (f / "export.json").is_file()
    )


# Over 40 lines on purpose: one linear recipe (export, fuse, check against torch, record); parts
# would pass a dozen values along.
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
    tokenizer = load_tokenizer(model_dir, max_seq_length(model_dir))
    ids, mask, types = tokenize(tokenizer, list(_PROBES))
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
        root = logging.getLogger()
        level = root.level
        root.setLevel(logging.ERROR)  # it advises "pre-processing" on the root logger, every time
        try:
            quantize_dynamic(
                str(out / "fused.onnx"),
                str(final),
                weight_type=QuantType.QInt8,
                per_channel=True,
                extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
            )
        finally:
            root.setLevel(level)
        (out / "fused.onnx").unlink()
    else:
        fused.save_model_to_file(str(final))
    raw.unlink()
    got = create_session(final, threads=0).run(
        None, {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
    )[0]
    worst = float((got * expected).sum(1).min())
    if worst < _MIN_PROBE_COSINE[quantize]:
        raise ConfigError(f"the ONNX export of {model_dir} does not reproduce torch (cosine {worst:.4f})")
    meta = {
        "export_version": EXPORT_VERSION,
        "source": str(model_dir),
        "source_sha256": sha256_file(model_dir / "model.safetensors")
        if (model_dir / "model.safetensors").exists()
        else None,
        "quantization": "int8-dynamic-per-channel" if quantize else None,
        "dimension": int(got.shape[1]),
        "max_seq_length": max_seq_length(model_dir),
        "opset": _OPSET,
        "torch": torch.__version__,
        "onnxruntime": _ort_version(),
        "probe_min_cosine": round(worst, 6),
        "sha256": sha256_file(final),
        "seconds": round(time.perf_counter() - started, 2),
    }
    (out / "export.json").write_text(json.dumps(meta, indent=2) + "\n")
    log.info("exported %s in %.1fs (probe cosine vs torch %.6f)", final, meta["seconds"], worst)


def _ort_version() -> str:
    import onnxruntime

    return str(onnxruntime.__version__)
