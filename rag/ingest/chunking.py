"""Cut a document into chunks of whole sentences, sized in the embedding model's word pieces.

Sizes are counted in the model's own word pieces, not guessed from words: German news text takes about
1.7 pieces per word with multilingual-e5-small's XLM-R vocabulary (881 pieces for the 526 words of seed
article 001; 1.71 over XQuAD-de), English about 1.5. The default budget (``RAG_CHUNK_TOKENS``) is 512
pieces, what the model reads, about 300 German words: one encyclopaedia paragraph or several news
paragraphs. Chunk size was chosen by answer quality with the composer refitted at each size (see
docs/decisions.md); every sentence has its own vector besides, so a chunk's size does not limit how
finely answers are found.

Short paragraphs are packed together; a heading goes with the paragraph under it; a paragraph longer than
the budget is cut into sentence windows that overlap by ``overlap`` sentences. A single sentence longer
than the budget is cut at spaces so no text is silently truncated by the model.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from itertools import pairwise

from rag.types import Chunk, Document, Sentence

# (texts) -> word-piece count of each, without special tokens
TokenCounter = Callable[[Sequence[str]], list[int]]


def check_chunking(max_tokens: int, overlap: int) -> None:
    if max_tokens < 16:
        raise ValueError("chunk_tokens must be at least 16 word pieces")
    if overlap < 0:
        raise ValueError("chunk_overlap must be 0 or more sentences")


def chunk_document(
    doc: Document,
    sentences: Sequence[Sentence],
    count_tokens: TokenCounter,
    max_tokens: int,
    overlap: int,
) -> tuple[list[Sentence], list[Chunk]]:
    """Return the (possibly finer) sentence list and the chunks; chunk sentence indices point into it."""
    check_chunking(max_tokens, overlap)
    counts = count_tokens([doc.span_text(s) for s in sentences])
    sents, counts = _split_long(doc, list(sentences), counts, max_tokens, count_tokens)
    chunks: list[Chunk] = []
    current: list[int] = []
    current_tokens = 0
    for group in _paragraph_groups(doc, sents):
        tokens = sum(counts[i] for i in group)
        if current and current_tokens + tokens <= max_tokens:
            current += group
            current_tokens += tokens
            continue
        if current:
            chunks.append(_make_chunk(doc, sents, current))
        if tokens <= max_tokens:
            current, current_tokens = list(group), tokens
            continue
        current, current_tokens = [], 0
        for window in _windows(group, counts, max_tokens, overlap):
            chunks.append(_make_chunk(doc, sents, window))
    if current:
        chunks.append(_make_chunk(doc, sents, current))
    return sents, chunks


def _paragraph_groups(doc: Document, sents: list[Sentence]) -> list[list[int]]:
    """Sentence indices grouped by block; a heading joins the block that follows it."""
    groups: list[list[int]] = []
    pending_heading: list[int] = []
    block_i = 0
    last_block = -1
    for i, s in enumerate(sents):
        while block_i < len(doc.blocks) and doc.blocks[block_i].end < s.end:
            block_i += 1
        if s.heading:
            pending_heading.append(i)
            continue
        if block_i != last_block or not groups:
            groups.append([*pending_heading, i])
            pending_heading = []
            last_block = block_i
        else:
            groups[-1].append(i)
    if pending_heading:
        groups.append(pending_heading)
    return groups


def _windows(group: list[int], counts: list[int], max_tokens: int, overlap: int) -> list[list[int]]:
    windows: list[list[int]] = []
    start = 0
    while start < len(group):
        end, used = start, 0
        while end < len(group) and (end == start or used + counts[group[end]] <= max_tokens):
            used += counts[group[end]]
            end += 1
        windows.append(group[start:end])
        if end >= len(group):
            break
        start = max(start + 1, end - overlap)
    return windows


def _split_long(
    doc: Document, sents: list[Sentence], counts: list[int], max_tokens: int, count_tokens: TokenCounter
) -> tuple[list[Sentence], list[int]]:
    if all(c <= max_tokens for c in counts):
        return sents, counts
    out: list[Sentence] = []
    out_counts: list[int] = []
    for s, c in zip(sents, counts, strict=True):
        if c <= max_tokens:
            out.append(s)
            out_counts.append(c)
            continue
        pieces = _cut_at_spaces(doc.text, s, parts=-(-c // max_tokens) + 1)
        out.extend(pieces)
        out_counts.extend(count_tokens([doc.span_text(p) for p in pieces]))
    if any(c > max_tokens for c in out_counts):  # pieces with very long words: cut finer
        return _split_long(doc, out, out_counts, max_tokens, count_tokens)
    return out, out_counts


def _cut_at_spaces(text: str, s: Sentence, parts: int) -> list[Sentence]:
    length = s.end - s.start
    cuts = [s.start]
    for k in range(1, parts):
        target = s.start + length * k // parts
        space = text.rfind(" ", cuts[-1] + 1, target + 1)
        cut = space if space > cuts[-1] else target
        if cut > cuts[-1]:
            cuts.append(cut)
    cuts.append(s.end)
    pieces = []
    for a, b in pairwise(cuts):
        while a < b and text[a].isspace():
            a += 1
        if b > a:
            pieces.append(Sentence(a, b, heading=s.heading))
    return pieces


def _make_chunk(doc: Document, sents: list[Sentence], idx: list[int]) -> Chunk:
    start, end = sents[idx[0]].start, sents[idx[-1]].end
    text = doc.text[start:end]
    digest = hashlib.sha256(f"{doc.doc_id}\0{start}\0{end}\0{text}".encode()).hexdigest()[:20]
    return Chunk(chunk_id=digest, doc_id=doc.doc_id, start=start, end=end, text=text, sentences=tuple(idx))
