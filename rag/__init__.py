"""Evidence-first question answering over a folder of news articles.

Every answer sentence is quoted verbatim from an article and cited with its exact character offsets.
The public names below are imported on first use, so ``import rag`` (and ``rag --help``) stays instant.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "Answer": "rag.types",
    "Chunk": "rag.types",
    "Citation": "rag.types",
    "Document": "rag.types",
    "DocumentMeta": "rag.types",
    "Hit": "rag.types",
    "Passage": "rag.types",
    "Pipeline": "rag.pipeline",
    "build_pipeline": "rag.pipeline",
    "RagError": "rag.errors",
    "Settings": "rag.settings",
    "load_settings": "rag.settings",
}

__all__ = [*sorted(_EXPORTS), "__version__"]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'rag' has no attribute {name!r}")
