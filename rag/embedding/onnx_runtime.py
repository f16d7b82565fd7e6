"""ONNX Runtime sessions and Hugging Face tokenizers as the ONNX backends and the export share them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np


def create_session(path: Path, threads: int) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.inter_op_num_threads = 1
    options.intra_op_num_threads = threads  # 0 = onnxruntime's default: one per physical core

    options.log_severity_level = 3
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def load_tokenizer(model_dir: Path, max_length: int | None) -> Any:
    """The model's fast tokenizer; truncating at ``max_length`` and padding to the longest, or neither."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    if max_length is None:
        tokenizer.no_truncation()
        tokenizer.no_padding()
        return tokenizer
    tokenizer.enable_truncation(max_length)
    pad = read_json_object(model_dir / "special_tokens_map.json").get("pad_token", "[PAD]")
    pad = pad.get("content", "[PAD]") if isinstance(pad, dict) else pad
    pad_id = tokenizer.token_to_id(pad)
    tokenizer.enable_padding(pad_id=0 if pad_id is None else pad_id, pad_token=pad)  # to the longest
    return tokenizer


def tokenize(tokenizer: Any, texts: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    encoded = tokenizer.encode_batch(texts)
    ids = np.array([e.ids for e in encoded], dtype=np.int64)
    mask = np.array([e.attention_mask for e in encoded], dtype=np.int64)
    types = np.array([e.type_ids for e in encoded], dtype=np.int64)
    return ids, mask, types


def max_seq_length(model_dir: Path) -> int:
    return int(read_json_object(model_dir / "sentence_bert_config.json").get("max_seq_length", 256))


def read_json_object(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}
