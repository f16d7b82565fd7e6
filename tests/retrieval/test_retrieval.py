"""Lexical analysis, the two BM25 indexes and the fusion of lexical and dense scores."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rag.indexing.bm25 import BM25Index
from rag.pipeline import Pipeline
from rag.retrieval.hybrid import Channels, RetrievalConfig, channels, fuse, retrieve
from rag.text.analysis import Analyzer, fold, grams, spelling


@pytest.fixture
def analyzer() -> Analyzer:
    return Analyzer("de")


def test_words_are_folded_and_stop_and_question_words_dropped(analyzer: Analyzer) -> None:
    assert fold("Pjöngjang") == fold("Pjongjang") == "pjongjang" and fold("Straße") == "strasse"
    assert analyzer.words("Wann hat die UN-Sanktionen verhängt?") == [
        "un",
        "sanktionen",
        "unsanktionen",
        "verhangt",
    ]
    assert analyzer.words("What did he say about the sanctions?") == ["say", "sanctions"]
    assert analyzer.terms("Sanktionen") == analyzer.terms("Sanktion")


def test_a_question_in_the_other_language_keeps_words_only_the_articles_language_stops(
    analyzer: Analyzer,
) -> None:
    assert analyzer.words("When did the Korean War end?") == ["korean", "end"]  # "war": German stop word
    assert analyzer.words("When did the Korean War end?", "en") == ["korean", "war", "end"]
    assert analyzer.words("Who won the election?", "en") == ["won", "election"]
    assert analyzer.words("Wann war die Wahl?", "de") == ["wahl"]


def test_ngrams_match_compounds_and_spellings(analyzer: Analyzer) -> None:
    part, whole = set(analyzer.grams("Atomwaffen")), set(analyzer.grams("Atomwaffenprogramms"))
    assert len(part & whole) / len(part) > 0.8  # only the grams at the end of "atomwaffen" are missing
    assert spelling("pyongyang") == spelling("pjongjang")  # y/j: English and German spellings meet
    assert spelling("nuclear") == spelling("nuklear") and spelling("north").startswith("nort")
    assert " at" in grams("atom") and "atom " in grams("atom")


def _index(texts: list[str], sentences: list[str] = ()) -> BM25Index:
    index = BM25Index(Analyzer("de"))
    index.build(texts, sentences)
    return index


def test_compound_in_the_question_finds_its_part_in_the_text() -> None:
    index = _index(["Die Atomwaffen des Landes.", "Das Wetter ist schön.", "Ein Programm für Kinder."])
    assert index.scores("Atomwaffenprogramm").max() == 0  # no word matches the compound
    grams_ = index.gram_scores("Atomwaffenprogramm")
    assert grams_.argmax() == 0 and grams_[1] == 0


def test_frequencies_come_from_the_stored_index(tmp_path: Path) -> None:
    index = _index(["Russland Veto", "Russland Sanktionen"], ["Russland Veto.", "Russland.", "Sanktionen."])
    assert index.document_frequency(Analyzer("de").terms("Russland")[0]) == 2
    assert index.sentence_frequency(Analyzer("de").terms("Russland")[0]) == (2, 3)
    assert index.document_frequency("unbekannt") == 0
    assert list(index.gram_frequencies([" ru", "zzz"])) == [2, 0]
    index.save(tmp_path / "bm25")
    loaded = BM25Index.load(tmp_path / "bm25", Analyzer("de"), 2)
    assert loaded.sentence_frequency(Analyzer("de").terms("Veto")[0]) == (1, 3)
    assert np.allclose(loaded.gram_scores("Sanktion"), index.gram_scores("Sanktion"))


def _channels(lexical: list[float], dense: list[float]) -> Channels:
    arr = [np.array(x, dtype=np.float64) for x in (lexical, dense)]
    return Channels(np.arange(len(lexical)), arr[0], arr[1], lexical_raw=arr[0])


def test_fusion_weights_and_their_extremes() -> None:
    ch = _channels([1.0, 0.2, 0.0], [0.1, 0.4, 0.6])
    lexical_only = fuse(RetrievalConfig(dense_weight=0.0), ch)
    dense_only = fuse(RetrievalConfig(dense_weight=1.0), ch)
    assert list(np.argsort(-lexical_only)) == [0, 1, 2] and list(np.argsort(-dense_only)) == [2, 1, 0]
    assert np.allclose(fuse(RetrievalConfig(fusion="lexical"), ch), lexical_only)
    assert np.allclose(fuse(RetrievalConfig(fusion="dense"), ch), dense_only)
    # dense scores are min-max scaled: the weakest candidate gets 0, the strongest 1
    assert dense_only.min() == 0.0 and dense_only.max() == 1.0
    cfg = RetrievalConfig(dense_weight=0.1, cross_dense_weight=0.9)
    assert fuse(cfg, ch, cross=False).argmax() == 0 and fuse(cfg, ch, cross=True).argmax() == 2
    assert fuse(RetrievalConfig(), ch) == pytest.approx(0.7 * np.array([0.0, 0.6, 1.0]) + 0.3 * ch.lexical)


def test_retrieve_on_the_seed_corpus(fake_pipeline: Pipeline) -> None:
    snap = fake_pipeline.snapshot
    q = fake_pipeline.query(snap, "Präzisionswaffen Nordkorea liefern")
    query, vector = q.lexical, q.vector
    hits = retrieve(snap, q, 3, fake_pipeline.retrieval)
    assert "Präzisionswaffen" in hits[0].chunk.text
    assert len({h.chunk.chunk_id for h in hits}) == len(hits) <= 3
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    ch = channels(snap, query, vector, pool=50)
    assert len(ch.ids) == len(set(ch.ids.tolist())) and ch.lexical.max() == pytest.approx(1.0)
    first = snap.chunks[int(ch.ids[0])]
    best_sentence = max(float(snap.sentence_vectors[r] @ vector) for r in first.sentences)
    assert ch.dense[0] == pytest.approx(best_sentence, abs=1e-5)
    # words instead of n-grams (RAG_ABLATE=grams): the stemmed-word BM25 scores
    assert np.allclose(
        channels(snap, query, vector, 50, words=True).lexical_raw, snap.bm25.scores(query)[ch.ids]
    )
