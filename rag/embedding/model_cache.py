"""Converted models in ``<index>/models/<key>/``: made once into a temporary folder and renamed into place.

A rename within one folder is atomic, so a reader sees a whole conversion or none, and processes that
start together never collide: each converts into its own temporary folder, the first rename wins and the
others use the winner's folder. A folder that is there but incomplete (``complete`` says no: a file missing
or of the wrong size) is moved aside and made again.
"""

from __future__ import annotations

import logging
import os
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path

from rag.files import atomic_path

log = logging.getLogger(__name__)


def build_folder(target: Path, make: Callable[[Path], None], complete: Callable[[Path], bool]) -> Path:
    """``target``, made by ``make(folder)`` now unless ``complete(target)`` already holds."""
    if complete(target):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.exists() and not complete(target):  # asked again: another start may have just finished it
        log.warning("the converted model in %s is incomplete or damaged: converting it again", target)
        discard(target)
    try:
        with atomic_path(target, directory=True) as tmp:
            make(tmp)
    except OSError:  # another process made it meanwhile: use theirs
        if not complete(target):
            raise
    return target


def discard(folder: Path) -> None:
    """Move ``folder`` aside (atomically, so a concurrent :func:`build_folder` sees it gone) and delete it."""
    stale = folder.parent / f".stale-{uuid.uuid4().hex[:8]}"
    try:
        os.rename(folder, stale)
    except FileNotFoundError:  # another process moved it first
        return
    shutil.rmtree(stale, ignore_errors=True)
