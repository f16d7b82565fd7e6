"""Sentences and chunks: German sentence boundaries, sizes, overlap and exact offsets."""

from __future__ import annotations

from itertools import pairwise

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rag.embedding.fake import WordsEmbedder
from rag.ingest.chunking import chunk_document
from rag.ingest.loading import parse_document
from rag.ingest.sentences import split_sentences

from ..conftest import CORPUS

count = WordsEmbedder().count_tokens


def _doc(text: str, name: str = "t.txt"):
    return parse_document(text.encode("utf-8"), name)


def _sentences(text: str) -> list[str]:
    doc = _doc(text)
    return [doc.span_text(s) for s in split_sentences(doc.text, doc.blocks)]


def test_german_abbreviations_and_ordinals_do_not_end_sentences() -> None:
    text = "Am 28. März sagte Dr. Müller z.B. etwas. Im 21. Jahrhundert ist das so. Ende."
    assert _sentences(text) == [
        "Am 28. März sagte Dr. Müller z.B. etwas.",
        "Im 21. Jahrhundert ist das so.",
        "Ende.",
    ]


def test_closing_quote_stays_with_its_sentence() -> None:
    text = 'Er sagte: "Es kann nicht ewig so weitergehen." Zur Frage äußerte er sich nicht.'
    assert _sentences(text) == [
        'Er sagte: "Es kann nicht ewig so weitergehen."',
        "Zur Frage äußerte er sich nicht.",
    ]


def test_dash_inside_sentence_is_not_a_boundary() -> None:
    text = "Nordkorea testete - nach Angaben der UN - mehrfach. Danach kam nichts."
    assert _sentences(text) == ["Nordkorea testete - nach Angaben der UN - mehrfach.", "Danach kam nichts."]


def test_heading_is_not_merged_into_the_next_sentence() -> None:
    text = "Erster Absatz. Mit zwei Sätzen.\n\nEine kurze Zwischenzeile\n\nDer nächste Absatz beginnt hier."
    assert "Eine kurze Zwischenzeile" in _sentences(text)


def test_every_seed_chunk_is_an_exact_slice_and_fits_the_window() -> None:
    for path in sorted(CORPUS.glob("*.md")):
        doc = parse_document(path.read_bytes(), path.name)
        sents, chunks = chunk_document(doc, split_sentences(doc.text, doc.blocks), count, 120, 1)
        assert chunks
        for chunk in chunks:
            assert doc.text[chunk.start : chunk.end] == chunk.text
            assert sum(count([doc.span_text(sents[i])])[0] for i in chunk.sentences) <= 120
            assert chunk.text.startswith(doc.span_text(sents[chunk.sentences[0]]))
        covered = {i for c in chunks for i in c.sentences}
        assert covered == set(range(len(sents)))  # no sentence is lost


def test_long_paragraph_windows_overlap_by_one_sentence() -> None:
    para = " ".join(f"Satz Nummer {i} hat hier genau acht Wörter." for i in range(30))
    doc = _doc(para)
    _, chunks = chunk_document(doc, split_sentences(doc.text, doc.blocks), count, 100, 1)
    assert len(chunks) > 2
    for a, b in pairwise(chunks):
        assert a.sentences[-1] == b.sentences[0]


def test_short_paragraphs_are_packed_and_headings_travel_with_their_paragraph() -> None:
    text = "Eins ist kurz.\n\nZwei ist kurz.\n\nZwischentitel hier\n\nDrei ist auch kurz."
    doc = _doc(text)
    _, chunks = chunk_document(doc, split_sentences(doc.text, doc.blocks), count, 200, 1)
    assert len(chunks) == 1 and chunks[0].text == text
    _, small = chunk_document(doc, split_sentences(doc.text, doc.blocks), count, 16, 0)
    assert any(c.text.startswith("Zwischentitel hier\n\nDrei") for c in small)


def test_a_sentence_longer_than_the_window_is_cut_not_truncated() -> None:
    text = " ".join(["Wort"] * 400) + "."
    doc = _doc(text)
    _, chunks = chunk_document(doc, split_sentences(doc.text, doc.blocks), count, 100, 0)
    assert len(chunks) >= 10
    assert "".join(c.text for c in chunks).replace(" ", "") == text.replace(" ", "")
    assert all(count([c.text])[0] <= 100 for c in chunks)


_alphabet = st.sampled_from([*"abcäöüßXYZ .,!?\"'-–\n\t0123456789", "z.B.", "Dr.", "28. März", "\n\n"])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_alphabet, min_size=1, max_size=300).map("".join), st.integers(16, 80), st.integers(0, 3))
def test_chunks_are_exact_slices_of_arbitrary_text(text: str, max_tokens: int, overlap: int) -> None:
    if not text.strip():
        return
    try:
        doc = _doc(text)
    except Exception as exc:  # only "no answerable text" may refuse text
        assert "answerable" in str(exc) or "empty" in str(exc) or "binary" in str(exc)
        return
    sents = split_sentences(doc.text, doc.blocks)
    for s in sents:
        assert doc.text[s.start : s.end].strip() == doc.text[s.start : s.end] != ""
    sents, chunks = chunk_document(doc, sents, count, max_tokens, overlap)
    for chunk in chunks:
        assert doc.text[chunk.start : chunk.end] == chunk.text
    assert {i for c in chunks for i in c.sentences} == set(range(len(sents)))
