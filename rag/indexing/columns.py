"""Sentences and chunks held as columns of numbers, made into :class:`~rag.types.Sentence` and
:class:`~rag.types.Chunk` objects only when read.

The postgres store's servers search in the database but answer from a snapshot's rows. As one Python object
per row, with each chunk's text a copy of its document's span, a snapshot took ~1,100 bytes a chunk (1,089 MB
at 10^6 chunks); as columns a chunk takes 64 bytes and a sentence 29 (database ids included), and the
documents' texts are held once: 111.9 -> 32.9 MB at 10^5 chunks (``bench.pg_refresh``, bench/README.md). A
question reads some hundred rows (the candidates' chunks and their sentences), ~2.4 us each.
"""

from __future__ import annotations

import operator
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TypeVar, overload

import numpy as np

from rag.types import Chunk, Document, Sentence

_EMPTY = np.zeros(0, dtype=np.int64)
T = TypeVar("T")


def aranges(starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """``concatenate([arange(s, e) for s, e in zip(starts, ends)])`` in a few array operations."""
    lengths = np.asarray(ends, dtype=np.int64) - np.asarray(starts, dtype=np.int64)
    firsts = np.concatenate([np.zeros(1, dtype=np.int64), np.cumsum(lengths)[:-1]])
    return np.repeat(np.asarray(starts, dtype=np.int64) - firsts, lengths) + np.arange(
        lengths.sum(), dtype=np.int64
    )


class _Rows(Sequence[T]):
    """Rows compare equal to any sequence of the same rows (the lists they stand for), and are unhashable."""

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Sequence) and len(self) == len(other) and all(map(operator.eq, self, other))

    __hash__ = None  # type: ignore[assignment]


@dataclass(frozen=True, eq=False)
class SentenceColumns(_Rows[Sentence]):
    """Sentences by row: ``Sentence(start[r], end[r], heading[r])``."""

    start: np.ndarray  # int64
    end: np.ndarray  # int64
    heading: np.ndarray  # bool

    @classmethod
    def of(cls, sentences: Sequence[Sentence]) -> SentenceColumns:
        return cls(
            np.array([s.start for s in sentences], dtype=np.int64),
            np.array([s.end for s in sentences], dtype=np.int64),
            np.array([s.heading for s in sentences], dtype=bool),
        )

    @classmethod
    def concat(cls, parts: Sequence[SentenceColumns]) -> SentenceColumns:
        return cls(
            np.concatenate([_EMPTY, *(p.start for p in parts)]),
            np.concatenate([_EMPTY, *(p.end for p in parts)]),
            np.concatenate([np.zeros(0, dtype=bool), *(p.heading for p in parts)]),
        )

    def take(self, rows: np.ndarray | slice) -> SentenceColumns:
        return SentenceColumns(self.start[rows], self.end[rows], self.heading[rows])

    def __len__(self) -> int:
        return len(self.start)

    @overload
    def __getitem__(self, index: int) -> Sentence: ...
    @overload
    def __getitem__(self, index: slice) -> SentenceColumns: ...
    def __getitem__(self, index: int | slice) -> Sentence | SentenceColumns:
        if isinstance(index, slice):
            return self.take(index)
        return Sentence(int(self.start[index]), int(self.end[index]), bool(self.heading[index]))

    def __iter__(self) -> Iterator[Sentence]:
        for start, end, heading in zip(
            self.start.tolist(), self.end.tolist(), self.heading.tolist(), strict=True
        ):
            yield Sentence(start, end, heading)


@dataclass(frozen=True, eq=False)
class ChunkColumns(_Rows[Chunk]):
    """Chunks by row. Chunk ``i`` is of ``documents[doc[i]]``, spans ``[start[i], end[i])`` of its text (its
    ``text``, sliced when read) and holds the sentence rows ``rows[bounds[i]:bounds[i + 1]]``."""

    documents: tuple[Document, ...]
    doc: np.ndarray  # int32, a position in documents
    chunk_id: np.ndarray  # bytes (numpy "S"), UTF-8
    start: np.ndarray  # int64
    end: np.ndarray  # int64
    bounds: np.ndarray  # int64, one more than the chunks
    rows: np.ndarray  # int64

    @classmethod
    def of(cls, doc: Document, chunks: Sequence[Chunk]) -> ChunkColumns:
        """One document's chunks (their sentence rows as they are)."""
        columns = ([c.chunk_id for c in chunks], [c.start for c in chunks], [c.end for c in chunks])
        return cls.of_rows(doc, *columns, [c.sentences for c in chunks])

    @classmethod
    def of_rows(
        cls,
        doc: Document,
        chunk_ids: Sequence[str],
        starts: Sequence[int],
        ends: Sequence[int],
        sentences: Sequence[Sequence[int]],
    ) -> ChunkColumns:
        """One document's chunks from their columns."""
        counts = np.array([len(s) for s in sentences], dtype=np.int64)
        return cls(
            (doc,),
            np.zeros(len(chunk_ids), dtype=np.int32),
            np.array([c.encode() for c in chunk_ids], dtype=np.bytes_) if chunk_ids else np.zeros(0, "S1"),
            np.array(starts, dtype=np.int64),
            np.array(ends, dtype=np.int64),
            np.concatenate([np.zeros(1, dtype=np.int64), np.cumsum(counts)]),
            np.array([r for s in sentences for r in s], dtype=np.int64),
        )

    @classmethod
    def concat(cls, parts: Sequence[ChunkColumns], shifts: Sequence[int]) -> ChunkColumns:
        """``parts`` one after the other, each one's sentence rows moved by its shift (a part's ``bounds``
        start at 0 and end at ``len(rows)``, as every constructor here makes them)."""
        documents: list[Document] = []
        docs, bounds, rows = [], [], []
        total = 0
        for part, shift in zip(parts, shifts, strict=True):
            docs.append(part.doc + len(documents))
            documents += part.documents
            bounds.append(part.bounds[1:] + total)
            rows.append(part.rows + shift)
            total += len(part.rows)
        width = max([p.chunk_id.dtype.itemsize for p in parts], default=1)
        return cls(
            tuple(documents),
            np.concatenate([np.zeros(0, dtype=np.int32), *docs]).astype(np.int32),
            np.concatenate([np.zeros(0, f"S{width}"), *(p.chunk_id for p in parts)]),
            np.concatenate([_EMPTY, *(p.start for p in parts)]),
            np.concatenate([_EMPTY, *(p.end for p in parts)]),
            np.concatenate([np.zeros(1, dtype=np.int64), *bounds]),
            np.concatenate([_EMPTY, *rows]),
        )

    def gather(self, ranges: np.ndarray, shifts: np.ndarray, documents: tuple[Document, ...]) -> ChunkColumns:
        """The chunks of each range ``[c0, c1)`` of ``ranges`` one after the other: range ``j``'s are of
        ``documents[j]``, with their sentence rows moved by ``shifts[j]``."""
        counts = ranges[:, 1] - ranges[:, 0]
        take = aranges(ranges[:, 0], ranges[:, 1])
        sizes = self.bounds[take + 1] - self.bounds[take]
        moved = np.repeat(np.repeat(np.asarray(shifts, dtype=np.int64), counts), sizes)
        return ChunkColumns(
            documents,
            np.repeat(np.arange(len(documents), dtype=np.int32), counts),
            self.chunk_id[take],
            self.start[take],
            self.end[take],
            np.concatenate([np.zeros(1, dtype=np.int64), np.cumsum(sizes)]),
            self.rows[aranges(self.bounds[take], self.bounds[take + 1])] + moved,
        )

    def __len__(self) -> int:
        return len(self.start)

    @overload
    def __getitem__(self, index: int) -> Chunk: ...
    @overload
    def __getitem__(self, index: slice) -> list[Chunk]: ...
    def __getitem__(self, index: int | slice) -> Chunk | list[Chunk]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        index = range(len(self))[index]  # negative rows and IndexError as a list has them
        doc = self.documents[self.doc[index]]
        start, end = int(self.start[index]), int(self.end[index])
        rows = self.rows[self.bounds[index] : self.bounds[index + 1]].tolist()
        return Chunk(self.chunk_id[index].decode(), doc.doc_id, start, end, doc.text[start:end], tuple(rows))

    def __iter__(self) -> Iterator[Chunk]:
        return (self[i] for i in range(len(self)))

    def doc_ids(self) -> Labels:
        """Each chunk's document id, without making the chunks."""
        return Labels(tuple(d.doc_id for d in self.documents), self.doc)


@dataclass(frozen=True, eq=False)
class Labels(_Rows[str]):
    """A name by row, ``names[at[r]]``: whose document each sentence or chunk is."""

    names: tuple[str, ...]
    at: np.ndarray  # int32

    def __len__(self) -> int:
        return len(self.at)

    @overload
    def __getitem__(self, index: int) -> str: ...
    @overload
    def __getitem__(self, index: slice) -> list[str]: ...
    def __getitem__(self, index: int | slice) -> str | list[str]:
        if isinstance(index, slice):
            return [self.names[i] for i in self.at[index].tolist()]
        return self.names[self.at[index]]

    def __iter__(self) -> Iterator[str]:
        return (self.names[i] for i in self.at.tolist())
