"""The index: self-describing manifest, incremental builds, atomic writes, mismatch and damage detection."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from rag.embedding.fake import WordsEmbedder
from rag.errors import IndexCorruptError, IndexError_, IndexMismatchError
from rag.indexing.build import build_index
from rag.indexing.store import current_build, expected_config, load_snapshot


def _build(
    corpus: Path, index: Path, embedder: WordsEmbedder | None = None, tokens: int = 200, overlap: int = 1
):
    return build_index(corpus, index, embedder or WordsEmbedder(), tokens, overlap)


def test_manifest_describes_the_build(seed_corpus: Path, tmp_path: Path) -> None:
    snap, report = _build(seed_corpus, tmp_path / "ix")
    manifest = json.loads((current_build(tmp_path / "ix") / "manifest.json").read_text())
    assert manifest["model"] == {"name": "test:words", "dimension": 64}
    assert manifest["chunking"]["max_tokens"] == 200 and manifest["chunking"]["overlap_sentences"] == 1
    assert set(manifest["files"]) == {"000_ec495bea3a2a83c6.md", "001_280cdb7c2d6d85fb.md"}
    assert all(len(h) == 64 for h in manifest["files"].values())
    assert manifest["package_version"] and manifest["built_at"].endswith("Z")
    assert set(manifest["checksums"]) >= {"store.json", "chunks.npy", "sentences.npy"}
    assert report.files == 2 and report.chunks == len(snap.chunks) > 0


def test_chunks_and_sentences_reassemble_the_originals(seed_corpus: Path, tmp_path: Path) -> None:
    _build(seed_corpus, tmp_path / "ix")
    snap = load_snapshot(tmp_path / "ix")
    for chunk in snap.chunks:
        doc = snap.documents[chunk.doc_id]
        assert doc.text[chunk.start : chunk.end] == chunk.text
        for row in chunk.sentences:
            s = snap.sentences[row]
            assert snap.sentence_doc[row] == chunk.doc_id and chunk.start <= s.start < s.end <= chunk.end
    assert snap.chunk_vectors.shape == (len(snap.chunks), 64)
    assert np.allclose(np.linalg.norm(snap.chunk_vectors, axis=1), 1.0, atol=1e-5)


def test_incremental_build_embeds_only_what_changed(seed_corpus: Path, tmp_path: Path) -> None:
    index = tmp_path / "ix"
    _build(seed_corpus, index)
    embedder = WordsEmbedder()
    _, again = _build(seed_corpus, index, embedder)
    assert again.up_to_date and embedder.calls == 0

    (seed_corpus / "neu.txt").write_text("Ein neuer Artikel über Wale. Wale sind groß.", encoding="utf-8")
    embedder = WordsEmbedder()
    snap, added = _build(seed_corpus, index, embedder)
    assert (added.embedded_files, added.reused_files) == (1, 2)
    assert embedder.calls == added.embedded_texts == 2  # its two sentences (the chunk is their mean)
    assert "neu" in snap.documents

    path = seed_corpus / "001_280cdb7c2d6d85fb.md"
    path.write_text(path.read_text(encoding="utf-8") + "\n\nEin neuer Schlusssatz.", encoding="utf-8")
    (seed_corpus / "neu.txt").unlink()
    snap, changed = _build(seed_corpus, index)
    assert (changed.embedded_files, changed.reused_files, changed.removed_files) == (1, 1, 1)
    assert "neu" not in snap.documents and all(c.doc_id != "neu" for c in snap.chunks)


def test_incremental_equals_full_rebuild(seed_corpus: Path, tmp_path: Path) -> None:
    _build(seed_corpus, tmp_path / "inc")
    (seed_corpus / "neu.txt").write_text("Noch ein Artikel. Mit zwei Sätzen.", encoding="utf-8")
    inc, _ = _build(seed_corpus, tmp_path / "inc")
    full, _ = _build(seed_corpus, tmp_path / "full")
    key = lambda s: sorted((c.chunk_id, c.text) for c in s.chunks)  # noqa: E731
    assert key(inc) == key(full)
    order = {c.chunk_id: i for i, c in enumerate(full.chunks)}
    rows = [order[c.chunk_id] for c in inc.chunks]
    assert np.allclose(inc.chunk_vectors, full.chunk_vectors[rows])


def test_crash_during_build_leaves_previous_index_loadable(
    seed_corpus: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    index = tmp_path / "ix"
    before, _ = _build(seed_corpus, index)
    (seed_corpus / "neu.txt").write_text("Ein Artikel, der nie ankommt. Wirklich.", encoding="utf-8")

    def crash(*args: object, **kwargs: object) -> None:
        raise OSError("simulated crash before the switch")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError):
        _build(seed_corpus, index)
    monkeypatch.undo()
    after = load_snapshot(index)
    assert after.build_id == before.manifest["build_id"]
    assert [c.chunk_id for c in after.chunks] == [c.chunk_id for c in before.chunks]
    snap, _ = _build(seed_corpus, index)  # the next build completes
    assert "neu" in snap.documents and not list((index / "builds").glob(".tmp-*"))


def test_other_model_or_chunking_is_a_clear_error(seed_corpus: Path, tmp_path: Path) -> None:
    _build(seed_corpus, tmp_path / "ix")
    with pytest.raises(IndexMismatchError, match="run `rag index`"):
        load_snapshot(tmp_path / "ix", expected_config("other-model", 64, 200, 1, "de"))
    with pytest.raises(IndexMismatchError, match="chunking"):
        load_snapshot(tmp_path / "ix", expected_config("test:words", 64, 100, 1, "de"))
    # and a build with other settings re-embeds everything instead of reusing vectors
    embedder = WordsEmbedder()
    _, report = _build(seed_corpus, tmp_path / "ix", embedder, tokens=100)
    assert report.embedded_files == 2 and report.reused_files == 0


def test_missing_index_says_to_run_rag_index(tmp_path: Path) -> None:
    with pytest.raises(IndexError_, match="run `rag index`"):
        load_snapshot(tmp_path / "none")


@pytest.mark.parametrize("victim", ["chunks.npy", "store.json", "sentences.npy"])
def test_damaged_files_are_detected(seed_corpus: Path, tmp_path: Path, victim: str) -> None:
    _build(seed_corpus, tmp_path / "ix")
    path = current_build(tmp_path / "ix") / victim
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(IndexCorruptError, match="run `rag index`"):
        load_snapshot(tmp_path / "ix")
    _, report = _build(seed_corpus, tmp_path / "ix")  # and a build repairs it
    assert not report.up_to_date and report.embedded_files == 2
    assert load_snapshot(tmp_path / "ix").build_id == report.build_id
