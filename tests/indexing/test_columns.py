"""Rows held as columns (rag.indexing.columns) read exactly as the lists of objects they replace."""

from __future__ import annotations

import numpy as np
import pytest

from rag.indexing.columns import ChunkColumns, Labels, SentenceColumns, aranges
from rag.types import Chunk, Document, DocumentMeta, Sentence


def _doc(doc_id: str, text: str) -> Document:
    return Document(doc_id, f"{doc_id}.txt", text, DocumentMeta(title=doc_id), blocks=(), sha256="")


A = _doc("a", "Eins zwei. Drei vier. Fünf.")
B = _doc("b", "Sechs sieben. Acht.")
A_SENTENCES = [Sentence(0, 10), Sentence(11, 21), Sentence(22, 27, heading=True)]
B_SENTENCES = [Sentence(0, 13), Sentence(14, 19)]
# each document's chunks number its sentences from 0; the second chunk of A overlaps the first by one
A_CHUNKS = [Chunk("a0", "a", 0, 21, A.text[0:21], (0, 1)), Chunk("a1", "a", 11, 27, A.text[11:27], (1, 2))]
B_CHUNKS = [Chunk("b0", "b", 0, 19, B.text[0:19], (0, 1))]


def _moved(chunks: list[Chunk], shift: int) -> list[Chunk]:
    return [
        Chunk(c.chunk_id, c.doc_id, c.start, c.end, c.text, tuple(r + shift for r in c.sentences))
        for c in chunks
    ]


def test_sentence_columns_read_as_the_list():
    columns = SentenceColumns.of(A_SENTENCES)
    assert len(columns) == 3 and list(columns) == A_SENTENCES and columns == A_SENTENCES
    assert columns[-1] == A_SENTENCES[-1] and columns[2].heading and not columns[0].heading
    assert columns[1:] == A_SENTENCES[1:] and columns.take(np.array([2, 0])) == [
        A_SENTENCES[2],
        A_SENTENCES[0],
    ]
    assert columns != A_SENTENCES[:2] and SentenceColumns.concat([]) == []
    with pytest.raises(IndexError):
        columns[3]


def test_chunk_columns_read_as_the_list_with_each_chunk_text_sliced_from_its_document():
    a, b = ChunkColumns.of(A, A_CHUNKS), ChunkColumns.of(B, B_CHUNKS)
    assert list(a) == A_CHUNKS and a == A_CHUNKS and a[-1] == A_CHUNKS[-1] and a[0:1] == A_CHUNKS[:1]
    both = ChunkColumns.concat([a, b], [0, 3])  # B's sentences follow A's three
    assert both == A_CHUNKS + _moved(B_CHUNKS, 3)
    assert list(both.doc_ids()) == ["a", "a", "b"] and both.doc_ids() == ["a", "a", "b"]
    assert ChunkColumns.concat([], []) == [] and ChunkColumns.of(A, []) == []
    with pytest.raises(IndexError):
        both[3]


def test_gather_puts_ranges_in_a_new_order_and_renumbers_their_sentences():
    pool = ChunkColumns.concat([ChunkColumns.of(A, A_CHUNKS), ChunkColumns.of(B, B_CHUNKS)], [0, 3])
    # B first (its sentences now from 0), then A (from 2)
    gathered = pool.gather(np.array([[2, 3], [0, 2]]), np.array([-3, 2]), (B, A))
    assert gathered == B_CHUNKS + _moved(A_CHUNKS, 2)
    assert gathered.documents == (B, A) and list(gathered.doc_ids()) == ["b", "a", "a"]
    assert pool.gather(np.zeros((0, 2), dtype=np.int64), np.zeros(0), ()) == []


def test_aranges_concatenates_ranges():
    assert aranges(np.array([5, 0, 9]), np.array([7, 0, 12])).tolist() == [5, 6, 9, 10, 11]
    assert aranges(np.zeros(0), np.zeros(0)).tolist() == []


def test_labels_read_as_the_list_of_names():
    labels = Labels(("a", "b"), np.array([0, 0, 1], dtype=np.int32))
    assert list(labels) == ["a", "a", "b"] and labels == ["a", "a", "b"] and labels[-1] == "b"
    assert labels[1:] == ["a", "b"] and labels != ["a", "b"]
