"""HTML and PDF articles become documents whose text is what was extracted; bad files are skipped with a
reason; a PDF bomb costs a bounded time and memory."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from rag.errors import BadDocumentError
from rag.ingest import extract as extract_module
from rag.ingest.extract import extract
from rag.ingest.loading import load_corpus, parse_document

from ..formats import (
    ARTICLE,
    FURNITURE,
    PAGE_ONE,
    PAGE_THREE,
    PAGE_TWO,
    PDF_TITLE,
    TITLE,
    bomb_pdf,
    front_page,
    news_page,
    news_pdf,
    scanned_pdf,
)


def test_a_news_page_gives_its_article_and_metadata_without_the_page_around_it() -> None:
    started = time.perf_counter()
    doc = parse_document(news_page(), "politik/heizung.html")
    print(f"\nHTML page ({len(news_page())} bytes): {time.perf_counter() - started:.3f} s")
    for paragraph in ARTICLE:
        assert paragraph in doc.text
    for furniture in FURNITURE:
        assert furniture not in doc.text, furniture
    assert "Förderung für Hausbesitzer" in doc.text  # the article's own subheading stays, as a heading
    assert any(doc.span_text(b) == "Förderung für Hausbesitzer" and b.kind == "heading" for b in doc.blocks)
    meta = doc.meta
    assert (meta.title, meta.date, meta.source) == (TITLE, "2024-03-14", "Tagesblatt")
    assert meta.author == "Anna Beispiel"
    assert meta.url == "https://www.tagesblatt.example/politik/heizungsgesetz-123.html"
    assert meta.language == "de" and doc.pages == () and doc.page_at(0) is None
    assert doc.doc_id == "politik--heizung"


def test_a_pdf_gives_paragraphs_and_the_page_of_every_offset() -> None:
    data = news_pdf()
    started = time.perf_counter()
    doc = parse_document(data, "hafen.pdf")
    print(f"\nPDF, 3 pages ({len(data)} bytes): {time.perf_counter() - started:.3f} s")
    assert doc.meta.title == PDF_TITLE and doc.meta.author == "Max Muster" and doc.meta.date is None
    assert len(doc.pages) == 3 and doc.pages[0] == 0
    for page, paragraphs in enumerate([PAGE_ONE, PAGE_TWO, PAGE_THREE], 1):
        for paragraph in paragraphs:
            start = doc.text.index(paragraph)  # each paragraph is one line of text, whole
            assert doc.page_at(start) == page and doc.page_at(start + len(paragraph) - 1) == page
            assert any(doc.span_text(b) == paragraph for b in doc.blocks)
    assert "Das Museum wird von der Bundesregierung gefördert." in doc.text  # the line-end hyphen is gone
    assert doc.text.startswith(PDF_TITLE + "\n\n") and doc.blocks[0].kind == "heading"


def test_the_same_bytes_give_the_same_text() -> None:
    first = extract(news_pdf(), "a.pdf")
    extract_module._CACHE = extract_module._Cache(extract_module._CACHE_CHARS)  # read again, not cached
    assert extract(news_pdf(), "b.pdf") == first


BAD_FILES = [
    ("scanned.pdf", scanned_pdf(), "no text layer (a scanned PDF?)"),
    ("encrypted.pdf", news_pdf(password="geheim"), "encrypted PDF that needs a password"),
    ("links.html", front_page(), "no article text was found"),
    ("cut.pdf", news_pdf()[:-600], "it is truncated"),
    ("cut.html", news_page(closed=False)[:-400], "it is truncated"),
    ("fake.pdf", b"%PDF-1.7\n" + b"\x00garbage" * 200 + b"\n%%EOF\n", "not a readable PDF"),
    ("image.htm", b"\x89PNG\r\n\x1a\n\x00\x00" + bytes(range(256)), "binary file"),
]


@pytest.mark.parametrize(("name", "data", "reason"), BAD_FILES, ids=[c[0] for c in BAD_FILES])
def test_bad_files_are_refused_with_their_reason(name: str, data: bytes, reason: str) -> None:
    with pytest.raises(BadDocumentError, match=re.escape(reason)):
        parse_document(data, name)


def test_bad_files_in_the_corpus_are_skipped_and_the_rest_is_loaded(tmp_path: Path) -> None:
    (tmp_path / "heizung.html").write_bytes(news_page())
    (tmp_path / "hafen.pdf").write_bytes(news_pdf())
    for name, data, _ in BAD_FILES:
        (tmp_path / name).write_bytes(data)
    result = load_corpus(tmp_path)
    assert [d.path for d in result.documents] == ["hafen.pdf", "heizung.html"]
    reasons = {s.path: s.reason for s in result.skipped}
    assert sorted(reasons) == sorted(name for name, _, _ in BAD_FILES)
    for name, _, reason in BAD_FILES:
        assert reason in reasons[name]


def test_a_pdf_bomb_is_stopped_by_the_memory_cap() -> None:
    data = bomb_pdf(700)  # 2.2 MB on disk, 700 MB of operators inflated: pdfium would take GBs and minutes
    started = time.perf_counter()
    with pytest.raises(BadDocumentError, match="needed over 1024 MB"):  # pdfium aborts at the worker's cap
        extract(data, "bomb.pdf")
    print(f"\nPDF bomb ({len(data)} bytes): refused in {time.perf_counter() - started:.1f} s")
    assert time.perf_counter() - started < 20
    assert extract(_fresh_pdf("Absturz"), "after.pdf").pages  # the worker is started again for the next file


def test_a_pdf_that_takes_too_long_is_stopped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(extract_module, "MAX_SECONDS", 0.5)
    data = bomb_pdf(40)  # ~2 s of pdfium's work, ~600 MB
    started = time.perf_counter()
    with pytest.raises(BadDocumentError, match=re.escape("took longer than 0.5 s (a PDF bomb?)")):
        extract(data, "slow.pdf")
    assert time.perf_counter() - started < 5
    with pytest.raises(BadDocumentError, match="took longer"):  # remembered: not read again
        extract(data, "slow-copy.pdf")
    assert time.perf_counter() - started < 5
    assert extract(_fresh_pdf("Zeitlimit"), "after.pdf").pages  # a fresh worker reads the next file


def _fresh_pdf(word: str) -> bytes:
    """A PDF no earlier test read (results are kept by content)."""
    return news_pdf(pages=[[f"Nach dem Abbruch liest ein neuer Prozess den Text über {word} weiter. " * 4]])


def test_a_file_over_the_size_cap_is_not_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(extract_module, "MAX_SOURCE_BYTES", 1000)
    with pytest.raises(BadDocumentError, match="larger than"):
        extract(news_pdf(), "big.pdf")
