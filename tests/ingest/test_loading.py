"""The loader: seed quirks, front matter, bad files skipped with reasons, bad folders refused."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from rag.errors import CorpusError
from rag.ingest.loading import doc_id_for, load_corpus, parse_document

from ..conftest import CORPUS, SEEDS


def _seed(name: str) -> bytes:
    return (SEEDS / f"{name}.txt").read_bytes()


def test_corpus_bodies_are_the_seed_articles_exactly() -> None:
    docs = {d.doc_id: d for d in load_corpus(CORPUS).documents}
    assert set(docs) == {"000_ec495bea3a2a83c6", "001_280cdb7c2d6d85fb"}
    for doc_id, doc in docs.items():
        assert doc.text == _seed(doc_id).decode("utf-8")
        assert doc.meta.title and doc.meta.language == "de"
    assert docs["000_ec495bea3a2a83c6"].meta.date == "2024-07"
    assert docs["000_ec495bea3a2a83c6"].meta.source == "dpa-AFX"


def test_seed_000_quirks_are_recognised() -> None:
    doc = parse_document(_seed("000_ec495bea3a2a83c6"), "000.txt")
    blocks = [(b.kind, doc.span_text(b)) for b in doc.blocks]
    assert doc.meta.date == "2024-07"  # from the "date 2024-07" prefix
    assert doc.meta.source == "dpa-AFX"  # from the dateline
    assert blocks[0][1].startswith("Damit bekräftigte")  # prefix not answerable
    assert blocks[1][1].startswith("Russland strebt")  # dateline not part of the first sentence
    assert ("heading", "Russland nutzte sein Veto zuletzt schon einmal im Sinne Pjöngjangs") in blocks
    assert blocks[-1][1].endswith("im Kriegsfall vorsieht.")  # author tag /scb/DP/he cut off
    assert all("/scb/DP/he" not in text for _, text in blocks)
    assert doc.text.endswith("/scb/DP/he")  # ... but the original text is kept whole


def test_seed_001_subheading_is_a_heading() -> None:
    doc = parse_document(_seed("001_280cdb7c2d6d85fb"), "001.txt")
    headings = [doc.span_text(b) for b in doc.blocks if b.kind == "heading"]
    assert headings == ["SANKTIONEN?"]
    assert doc.meta.date is None and doc.meta.language == "de"


def test_blocks_point_into_the_original_text() -> None:
    for path in sorted(CORPUS.glob("*.md")):
        doc = parse_document(path.read_bytes(), path.name)
        for block in doc.blocks:
            text = doc.span_text(block)
            assert text == text.strip() and text


def test_front_matter_sets_metadata_and_is_not_part_of_the_text() -> None:
    raw = (
        "---\ntitle: Ein Test\ndate: 2024-05-01\nsource: AP\nlanguage: en\nurl: http://x\n---\n"
        "Hello world. Bye.\n"
    )
    doc = parse_document(raw.encode(), "news/ein test.md")
    assert doc.text == "Hello world. Bye.\n"
    assert (doc.meta.title, doc.meta.date, doc.meta.source, doc.meta.language) == (
        "Ein Test",
        "2024-05-01",
        "AP",
        "en",
    )
    assert doc.doc_id == "news--ein-test"


def test_markdown_heading_becomes_title_and_heading_block() -> None:
    doc = parse_document(b"# Big news\n\nSomething happened today. It was big.", "a.md")
    assert doc.meta.title == "Big news"
    assert doc.blocks[0].kind == "heading" and doc.span_text(doc.blocks[0]) == "Big news"


def test_language_is_detected_when_not_given() -> None:
    doc = parse_document(b"The council met on Monday and the members voted against the plan.", "en.txt")
    assert doc.meta.language == "en"


def test_bad_files_are_skipped_with_reasons(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    (tmp_path / "good.txt").write_text("Ein guter Artikel. Er hat zwei Sätze.", encoding="utf-8")
    (tmp_path / "empty.txt").write_bytes(b"")
    (tmp_path / "blank.md").write_text("   \n\n  ")
    (tmp_path / "binary.txt").write_bytes(bytes(range(256)) * 4)
    (tmp_path / "notes.docx").write_bytes(b"PK\x03\x04")
    (tmp_path / "notes.pdf").write_bytes(b"%PDF-1.4")
    (tmp_path / "latin1.txt").write_bytes("Die Straße in München ist groß.".encode("latin-1"))
    (tmp_path / ".hidden.txt").write_text("versteckt")
    (tmp_path / "zz-dup.txt").write_text("Ein guter Artikel. Er hat zwei Sätze.", encoding="utf-8")
    with caplog.at_level(logging.WARNING):
        result = load_corpus(tmp_path)
    reasons = {s.path: s.reason for s in result.skipped}
    assert [d.path for d in result.documents] == ["good.txt", "latin1.txt"]
    assert "empty" in reasons["empty.txt"] and "empty" in reasons["blank.md"]
    assert "binary" in reasons["binary.txt"]
    assert "unsupported file type" in reasons["notes.docx"]
    assert "truncated" in reasons["notes.pdf"]
    assert "duplicate of good.txt" in reasons["zz-dup.txt"]
    assert ".hidden.txt" not in reasons
    latin = next(d for d in result.documents if d.path == "latin1.txt")
    assert latin.text == "Die Straße in München ist groß."  # decoded, not garbled
    assert all(path in caplog.text for path in ("empty.txt", "binary.txt", "notes.pdf", "latin1.txt"))


def test_unreadable_file_is_skipped(tmp_path: Path) -> None:
    (tmp_path / "ok.txt").write_text("Lesbar. Wirklich.")
    (tmp_path / "dir.txt").mkdir()  # a folder with an article's name is not an article
    (tmp_path / "link.txt").symlink_to(tmp_path / "missing.txt")
    result = load_corpus(tmp_path)
    assert [d.path for d in result.documents] == ["ok.txt"]
    assert any(s.path == "link.txt" and "cannot be read" in s.reason for s in result.skipped)


def test_links_out_of_the_corpus_are_not_followed(tmp_path: Path) -> None:
    outside = tmp_path / "secret.txt"
    outside.write_text("Geheim. Sehr geheim.")
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "a.txt").write_text("Ein Artikel. Noch ein Satz.")
    (corpus / "leak.txt").symlink_to(outside)
    result = load_corpus(corpus)
    assert [d.path for d in result.documents] == ["a.txt"]
    assert "outside the corpus" in result.skipped[0].reason


def test_missing_and_empty_folders_say_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(CorpusError, match=r"does not exist: create it and put \.txt, \.md, \.html"):
        load_corpus(tmp_path / "nope")
    with pytest.raises(CorpusError, match="no usable article"):
        load_corpus(tmp_path)


def test_doc_ids_are_url_safe() -> None:
    assert doc_id_for("a b/c?d.md") == "a-b--c-d"
    assert doc_id_for("../x.txt") == "doc--x"
