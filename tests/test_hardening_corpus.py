"""Corpus files that used to crash the whole index build are skipped with a reason instead."""

from __future__ import annotations

import os
from pathlib import Path

from rag.indexing import build_index
from rag.store import load_snapshot
from rag.testing import WordsEmbedder

SEEDS = {"000_ec495bea3a2a83c6", "001_280cdb7c2d6d85fb"}


def test_a_file_name_that_is_not_utf8_is_skipped_with_a_reason(seed_corpus: Path, tmp_path: Path) -> None:
    # "café.txt" as an old Latin-1 archive names it: Python sees a lone surrogate, which no JSON can hold
    with open(os.path.join(os.fsencode(seed_corpus), b"caf\xe9.txt"), "wb") as handle:
        handle.write("Ein Café in der Stadt. Es hat lange geöffnet.".encode())

    snap, report = build_index(seed_corpus, tmp_path / "ix", WordsEmbedder(), 200, 1)

    assert set(snap.documents) == SEEDS
    assert [(s.path, s.reason) for s in report.skipped] == [
        ("caf\ufffd.txt", "its file name is not UTF-8: rename the file")
    ]
    assert set(load_snapshot(tmp_path / "ix").documents) == SEEDS


def test_front_matter_with_a_surrogate_escape_is_skipped(seed_corpus: Path, tmp_path: Path) -> None:
    (seed_corpus / "kaputt.md").write_text('---\ntitle: "Titel \\ud800"\n---\nEin Satz. Noch ein Satz.\n')
    (seed_corpus / "gut.md").write_text('---\ntitle: "Caf\\u00e9 \\U0001F600"\n---\nEin Satz. Noch einer.\n')

    snap, report = build_index(seed_corpus, tmp_path / "ix", WordsEmbedder(), 200, 1)

    assert {s.path: s.reason for s in report.skipped} == {
        "kaputt.md": "its front matter has a \\u escape that is not a character"
    }
    assert snap.documents["gut"].meta.title == "Café 😀"  # real characters written as escapes are fine
    assert set(load_snapshot(tmp_path / "ix").documents) == {*SEEDS, "gut"}
