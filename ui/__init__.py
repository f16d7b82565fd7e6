"""The Gradio chat app: an adapter over :mod:`rag`'s pipeline, nothing more.

Gradio is imported on first use, so ``import ui`` stays cheap.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["build_ui", "mount"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        return getattr(importlib.import_module("ui.app"), name)
    raise AttributeError(f"module 'ui' has no attribute {name!r}")
