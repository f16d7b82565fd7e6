"""A messy corpus folder indexes without crashing and says what it skipped and why."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rag.embedding.fake import WordsEmbedder
from rag.indexing.build import build_index

from ..conftest import BENCH


def _five_megabytes() -> str:
    data = json.loads((BENCH / "xquad-de-dev.json").read_text(encoding="utf-8"))
    paragraphs = [p["context"] for a in data["data"] for p in a["paragraphs"]]
    parts: list[str] = []
    size, i = 0, 0
    while size < 5_000_000:
        part = f"{paragraphs[i % len(paragraphs)]} Absatz {i}.\n\n"
        parts.append(part)
        size += len(part.encode())
        i += 1
    return "".join(parts)


@pytest.mark.timeout(300)
def test_messy_corpus_indexes_and_reports_skips(seed_corpus: Path, tmp_path: Path) -> None:
    (seed_corpus / "leer.txt").write_bytes(b"")
    (seed_corpus / "bild.txt").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8)
    (seed_corpus / "alt.txt").write_bytes(
        "Die Straße führt über die Brücke nach Köln. Dort ist es schön.".encode("cp1252")
    )
    (seed_corpus / "gross.md").write_text(_five_megabytes(), encoding="utf-8")
    (seed_corpus / "kopie.md").write_bytes((seed_corpus / "000_ec495bea3a2a83c6.md").read_bytes())
    (seed_corpus / ".versteckt.txt").write_text("Nicht indexieren. Niemals.")
    (seed_corpus / ".git").mkdir()
    (seed_corpus / ".git" / "HEAD.txt").write_text("ref: main. Nicht indexieren.")
    (seed_corpus / "tabelle.csv").write_text("a,b\n1,2\n")

    snap, report = build_index(seed_corpus, tmp_path / "ix", WordsEmbedder(), 200, 1)

    reasons = {s.path: s.reason for s in report.skipped}
    assert set(reasons) == {"leer.txt", "bild.txt", "kopie.md", "tabelle.csv"}
    assert "empty" in reasons["leer.txt"] and "binary" in reasons["bild.txt"]
    assert "duplicate of 000_ec495bea3a2a83c6.md" in reasons["kopie.md"]
    assert "unsupported" in reasons["tabelle.csv"]
    assert set(snap.documents) == {"000_ec495bea3a2a83c6", "001_280cdb7c2d6d85fb", "alt", "gross"}
    assert snap.documents["alt"].text.startswith("Die Straße führt über die Brücke nach Köln.")
    big = snap.documents["gross"]
    big_chunks = [c for c in snap.chunks if c.doc_id == "gross"]
    assert len(big_chunks) > 5000
    assert all(big.text[c.start : c.end] == c.text for c in big_chunks[:: len(big_chunks) // 50])
