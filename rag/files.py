"""Writing files and folders so that a reader sees the old one or the new one, never half of either."""

from __future__ import annotations

import hashlib
import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_path(target: Path, directory: bool = False) -> Iterator[Path]:
    """A fresh temporary path beside ``target`` (an empty folder with ``directory``) for the caller to
    write; on leaving the block it is flushed to disk and renamed onto ``target``, and on an error removed.

    A file replaces ``target``; a folder takes its name only if ``target`` does not exist (the rename
    raises ``OSError`` otherwise, after the temporary folder is removed).
    """
    tmp = target.parent / f".tmp-{target.name}-{uuid.uuid4().hex[:8]}"
    if directory:
        tmp.mkdir()
    try:
        yield tmp
        fsync(tmp)
        if directory:
            os.rename(tmp, target)
        else:
            os.replace(tmp, target)
        fsync(target.parent)
    finally:
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        elif tmp.exists():
            tmp.unlink()


def write_atomically(target: Path, data: bytes) -> None:
    """``target`` holds ``data``, or what it held before if this fails."""
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)


def fsync(path: Path) -> None:
    """Flush a file's or a folder's entries to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
