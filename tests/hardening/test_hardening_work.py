"""Pathological articles take bounded work: the sentence splitter, the analyser and the quotes (F5).

pysbd rewrote the whole paragraph for every abbreviation or list item it found, so 200 KB of ``z.B.`` in
one paragraph held the write lock for two minutes, and a single 2 MB word took 20 s and a gigabyte, then
came back as a 2 MB "sentence" in every answer. Each upload here goes to ``rag serve`` (its own process,
so its peak memory is its own) with the instant embedder: what is measured is the splitting and indexing.
"""

from __future__ import annotations

import os
import re
import shutil
import time
from pathlib import Path

import httpx
import pytest

from bench.common import rag_serve
from rag.ingest.loading import parse_document
from rag.ingest.sentences import MAX_PIECE, MAX_SENTENCE, split_sentences

from ..conftest import CORPUS

KEY = "work-test-key-0c7d"
AUTH = {"X-API-Key": KEY}
CASES = {
    "zb.txt": "z.B. " * 40_000,  # 200 KB, one paragraph
    "zb2.txt": "z.B. " * 399_000,  # 2 MB, one paragraph
    "wort.txt": "x" * 1_999_000,  # one 2 MB word
    "liste.txt": "Er sagte: 1. Punkt und so 2. Punkt " * 56_000,  # 2 MB of numbered list items
}


def _peak_rss_mb(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmHWM:\s+(\d+) kB", status).group(1)) / 1024  # type: ignore[union-attr]


def _upload_to_a_new_server(base: Path, name: str, text: str) -> tuple[float, float, dict]:
    """Seconds the upload took, the server's peak memory growth in MB, and an answer afterwards."""
    shutil.copytree(CORPUS, base / "corpus")
    env = {**os.environ, "RAG_MODEL": "test:words", "RAG_LEXICON": "none", "RAG_API_KEY": KEY}
    with rag_serve(base / "corpus", base / "index", base / "log", env, timeout=120) as (url, process):
        before = _peak_rss_mb(process.pid)
        started = time.perf_counter()
        files = {"file": (name, text.encode())}
        response = httpx.post(f"{url}/documents", files=files, headers=AUTH, timeout=600)
        took = time.perf_counter() - started
        assert response.status_code == 201, response.text
        grown = _peak_rss_mb(process.pid) - before
        answer = httpx.post(f"{url}/ask", json={"question": text[:40]}, timeout=60).json()
    return took, grown, answer


@pytest.mark.timeout(900)
def test_pathological_articles_cost_no_more_than_ordinary_text(tmp_path: Path) -> None:
    prose = "Der Leuchtturm wurde 1888 gebaut und ist 40 Meter hoch. " * 35_000  # 2 MB, one paragraph
    base_took, base_grown, _ = _upload_to_a_new_server(tmp_path / "prose", "prosa.txt", prose)
    for name, text in CASES.items():
        took, grown, answer = _upload_to_a_new_server(tmp_path / name, name, text)
        # before: 200 KB of z.B. took 119 s, the 2 MB word 20 s and 900 MB
        assert took < max(2 * base_took, 10), (name, took, base_took)
        assert grown < max(1.5 * base_grown, 100), (name, grown, base_grown)
        quotes = [c["quote"] for c in answer["citations"]]
        assert all(len(q) <= MAX_SENTENCE for q in quotes), name


@pytest.mark.parametrize("name", sorted(CASES))
def test_the_splitter_reads_bounded_pieces_and_makes_bounded_sentences(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pysbd

    longest = 0
    real = pysbd.Segmenter.segment

    def spy(self: pysbd.Segmenter, text: str) -> list[str]:
        nonlocal longest
        longest = max(longest, len(text))
        return real(self, text)

    monkeypatch.setattr(pysbd.Segmenter, "segment", spy)
    doc = parse_document(CASES[name].encode(), name)
    sentences = split_sentences(doc.text, doc.blocks)
    assert longest <= MAX_PIECE
    assert sentences and max(s.end - s.start for s in sentences) <= MAX_SENTENCE
    assert all(doc.text[s.start : s.end].strip() == doc.text[s.start : s.end] for s in sentences)
