"""Corpus files that used to crash the whole index build are skipped with a reason instead."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from rag.embedding.fake import WordsEmbedder
from rag.indexing.build import build_index
from rag.indexing.store import load_snapshot

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
        "kaputt.md": "its title holds a control character or a \\u escape that is no character"
    }
    assert snap.documents["gut"].meta.title == "Café 😀"  # real characters written as escapes are fine
    assert set(load_snapshot(tmp_path / "ix").documents) == {*SEEDS, "gut"}


# --- a duplicate never hides the article that was there first (F3)


def test_a_copy_that_sorts_first_does_not_hide_the_indexed_original(
    seed_corpus: Path, tmp_path: Path
) -> None:
    build_index(seed_corpus, tmp_path / "ix", WordsEmbedder(), 200, 1)
    original = (seed_corpus / "001_280cdb7c2d6d85fb.md").read_bytes()
    (seed_corpus / "000_aaa-kopie.md").write_bytes(original)  # sorts before both seed articles

    snap, report = build_index(seed_corpus, tmp_path / "ix", WordsEmbedder(), 200, 1)

    assert set(snap.documents) == SEEDS
    assert {s.path: s.reason for s in report.skipped} == {
        "000_aaa-kopie.md": "duplicate of 001_280cdb7c2d6d85fb.md"
    }


def test_without_an_index_the_older_file_keeps_the_article(seed_corpus: Path, tmp_path: Path) -> None:
    text = "Ein Artikel über Leuchttürme. Er steht zweimal im Ordner.\n"
    (seed_corpus / "b-neu.md").write_text(f"---\ntitle: Neuer Titel\n---\n{text}")
    (seed_corpus / "a-alt.md").write_text(text)
    os.utime(seed_corpus / "b-neu.md", (2_000_000_000, 2_000_000_000))  # same text, other front matter
    os.utime(seed_corpus / "a-alt.md", (1_000_000_000, 1_000_000_000))

    snap, report = build_index(seed_corpus, tmp_path / "ix", WordsEmbedder(), 200, 1)

    assert "a-alt" in snap.documents and "b-neu" not in snap.documents
    assert {s.path: s.reason for s in report.skipped} == {"b-neu.md": "duplicate of a-alt.md"}


# --- front matter: no alias expansion, bounded strings (F4)

BOMB = (
    'a0: &a0 ["lol"]\n'
    + "".join(f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]\n" for i in range(1, 7))
    + "title: *a6\n"
)


@pytest.mark.parametrize(
    ("front_matter", "reason"),
    [
        (BOMB, "its YAML front matter does not parse (aliases are not allowed)"),
        ("title: " + "x" * 301 + "\n", "its title is longer than 300 characters"),
        ("title: [eins, zwei]\n", "its title must be text, not a list"),
        ("source: {a: b}\n", "its source must be text, not a dict"),
        ("url: 'javascript:alert(1)'\n", "its url must be an http:// or https:// address"),
        ("title: x\n" + "# Kommentar\n" * 2000, "its front matter is longer than 16384 characters"),
    ],
)
def test_front_matter_is_bounded(seed_corpus: Path, tmp_path: Path, front_matter: str, reason: str) -> None:
    assert len(BOMB) < 400
    (seed_corpus / "meta.md").write_text(f"---\n{front_matter}---\nEin Satz hier. Noch ein Satz.\n")

    snap, report = build_index(seed_corpus, tmp_path / "ix", WordsEmbedder(), 200, 1)

    assert {s.path: s.reason for s in report.skipped} == {"meta.md": reason}
    assert set(snap.documents) == SEEDS


def test_metadata_values_are_strings_within_their_limits(seed_corpus: Path, tmp_path: Path) -> None:
    (seed_corpus / "ok.md").write_text(
        "---\ntitle: |\n  Zwei\n  Zeilen\ndate: 2024-07-15\nsource: 42\nurl: https://example.org/a\n---\n"
        "Ein Satz hier. Noch ein Satz.\n"
    )
    (seed_corpus / "lang.md").write_text("# " + "Überschrift " * 60 + "\n\nEin Satz hier. Noch einer.\n")

    snap, _ = build_index(seed_corpus, tmp_path / "ix", WordsEmbedder(), 200, 1)

    meta = snap.documents["ok"].meta
    assert (meta.title, meta.date, meta.source, meta.url) == (
        "Zwei Zeilen",
        "2024-07-15",
        "42",
        "https://example.org/a",
    )
    title = snap.documents["lang"].meta.title  # a heading found in the text is shortened, not refused
    assert len(title) <= 300 and title.endswith("…")
