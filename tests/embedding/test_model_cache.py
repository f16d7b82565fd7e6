"""Converted-model folders: made atomically, shared by concurrent starts, remade when incomplete."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from rag.embedding.model_cache import build_folder


def _complete(folder: Path) -> bool:
    return (folder / "done").is_file() and (folder / "weights").read_text() == "x" * 1000


def _make(calls: list[str]) -> object:
    def make(tmp: Path) -> None:
        calls.append(tmp.name)
        (tmp / "weights").write_text("x" * 1000)
        time.sleep(0.05)  # long enough for the other starts to be converting too
        (tmp / "done").write_text("")

    return make


def test_concurrent_starts_share_one_folder_and_leave_nothing_behind(tmp_path: Path) -> None:
    target, calls, results = tmp_path / "models" / "m", [], []
    barrier = threading.Barrier(4)

    def start() -> None:
        barrier.wait()
        results.append(build_folder(target, _make(calls), _complete))  # type: ignore[arg-type]

    threads = [threading.Thread(target=start) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [target] * 4 and _complete(target) and len(calls) >= 1
    assert sorted(p.name for p in target.parent.iterdir()) == ["m"]
    assert build_folder(target, _make(calls), _complete) == target and len(calls) <= 4  # reused


def test_an_incomplete_folder_is_made_again(tmp_path: Path) -> None:
    target, calls = tmp_path / "m", []
    target.mkdir()
    (target / "weights").write_text("x" * 10)  # cut short
    assert build_folder(target, _make(calls), _complete) == target  # type: ignore[arg-type]
    assert _complete(target) and len(calls) == 1
    assert [p.name for p in tmp_path.iterdir()] == ["m"]


def test_a_failed_conversion_leaves_no_folder(tmp_path: Path) -> None:
    def fail(tmp: Path) -> None:
        (tmp / "weights").write_text("x")
        raise RuntimeError("converter broke")

    with pytest.raises(RuntimeError, match="converter broke"):
        build_folder(tmp_path / "m", fail, _complete)
    assert list(tmp_path.iterdir()) == []
