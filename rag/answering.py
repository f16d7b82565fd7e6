"""Extractive answer composition: pick the sentences that answer the question, quote them, cite them.

No language model writes anything: every answer sentence is a verbatim slice ``text[start:end]`` of an
article. Each sentence of the best retrieved chunks gets an evidence score from

- ``cover``: the idf-weighted share of the question's words the sentence contains, a word counting fully
  when its stem occurs and partly when most of its n-grams do (``Atomwaffen`` in ``Atomwaffenprogramms``,
  ``sanctions`` in ``Sanktionen``). A question word that occurs nowhere in the articles weighs most, which
  is what makes "Welche Sanktionen gelten gegen Venezuela?" score low: the articles never name Venezuela;
- ``grams``: the idf-weighted share of the question's n-grams in the sentence (spelling variants, cognates);
- ``dense``: the cosine between question and sentence vectors (computed at index time);
- ``passage``: the fused retrieval score of the chunk it came from, relative to the best chunk;
- ``cue``: a bonus when the sentence has what the question type asks for and the question does not already
  say (a year for "wann"/"when", a number for "wie viele"/"how many", a name for "wer"/"who").

The best sentence opens the answer; up to two more follow when they score close to it and do not repeat it,
the sentence right after the best one getting a bonus (answers often continue there: "... sagte Zakharova.
Sie sagte, die Experten seien ..."). Below ``abstain_threshold`` for the best sentence the answer says the
articles do not contain this: the abstention depends on that one score only, which ``rag eval`` relies on.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rag.cues import cue_match, cues, question_kind
from rag.evidence import QuestionTerms, SentenceTerms, question_terms, sentence_terms
from rag.store import Snapshot
from rag.types import Answer, Citation, Hit, Passage

ABSTAIN_TEXT = {
    "de": "Dazu steht nichts in den Artikeln. Die nächstliegenden Stellen sind unten aufgeführt.",
    "en": "The articles do not say. The closest passages are listed below.",
}


@dataclass(frozen=True)
class ComposerConfig:
    max_sentences: int = 3
    abstain_threshold: float = 0.6
    context_chunks: int = 5  # ~35 sentences; 3 answer as well but abstain more (a smaller pool covers less)
    w_cover: float = 0.40
    w_grams: float = 0.30
    w_dense: float = 0.0
    w_passage: float = 0.30
    cue_bonus: float = 0.10
    follow_bonus: float = 0.20  # for the sentence right after the best one
    keep_ratio: float = 0.80  # a further sentence must score at least this share of the best one
    redundancy: float = 0.6  # term-set Jaccard above which a sentence repeats one already chosen
    pool_share: float = 0.5  # share of the candidates' joint cover (against the sentence's) in the evidence


@dataclass(frozen=True)
class Scored:
    index: int  # row in the snapshot's sentence table
    hit: Hit
    score: float  # ranks the sentences
    evidence: float  # how much of the question the sentence and the candidates cover: decides abstention
    terms: frozenset[str]


def compose(
    snap: Snapshot,
    question: str,
    query_text: str,
    query_vector: np.ndarray,
    hits: list[Hit],
    top_k: int,
    language: str,
    cfg: ComposerConfig,
) -> Answer:
    """Build the answer for ``question``; ``query_text`` is what retrieval used (it may add history)."""
    passages = tuple(_passage(snap, h) for h in hits[:top_k])
    scored = score_sentences(snap, question, query_text, query_vector, hits, cfg, language)
    chosen = select(scored, cfg)
    if not chosen:
        return Answer(question, ABSTAIN_TEXT[language], True, language, (), passages)
    citations = tuple(_citation(snap, n, s) for n, s in enumerate(chosen, start=1))
    text = " ".join(f"{c.quote} [{c.n}]" for c in citations)
    return Answer(question, text, False, language, citations, passages)


def candidates(snap: Snapshot, hits: list[Hit], cfg: ComposerConfig) -> list[tuple[int, Hit]]:
    """The non-heading sentences of the best ``context_chunks`` hits, each once, with the hit it came from."""
    seen: set[int] = set()
    out: list[tuple[int, Hit]] = []
    for hit in hits[: cfg.context_chunks]:
        for row in hit.chunk.sentences:
            if row not in seen and not snap.sentences[row].heading:
                seen.add(row)
                out.append((row, hit))
    return out


def features(
    snap: Snapshot,
    question: str,
    query_text: str,
    query_vector: np.ndarray,
    pool: list[tuple[int, Hit]],
    language: str,
) -> tuple[np.ndarray, float, list[SentenceTerms]]:
    """One row per candidate (cover, grams, dense, passage, cue, each in [0, 1]) and the pool's cover: the
    weighted share of the question's words found in any candidate."""
    cross = language != snap.bm25.analyzer.language
    infos = [sentence_terms(snap, row) for row, _ in pool]
    q: QuestionTerms = question_terms(snap, query_text, infos, cross)
    weights = np.array([w.weight for w in q.words])
    found = np.array([q.found(info) for info in infos]).reshape(len(infos), len(weights))
    total = float(weights.sum()) or 1.0
    rows = [row for row, _ in pool]
    dense = np.maximum(snap.sentence_vectors[rows] @ query_vector.reshape(-1), 0.0) if rows else np.zeros(0)
    best_hit = max((h.score for _, h in pool), default=1.0) or 1.0
    out = np.zeros((len(pool), 5))
    out[:, 0] = found @ weights / total
    out[:, 1] = [q.gram_share(info) for info in infos]
    out[:, 2] = dense
    out[:, 3] = [max(hit.score, 0.0) / best_hit for _, hit in pool]
    kind, asked = question_kind(question), cues(question)
    out[:, 4] = [cue_match(kind, asked, info.cues) if info.cues else 0.0 for info in infos]
    pool_cover = float(found.max(axis=0) @ weights / total) if len(infos) and len(weights) else 0.0
    return out, pool_cover, infos


def score_sentences(
    snap: Snapshot,
    question: str,
    query_text: str,
    query_vector: np.ndarray,
    hits: list[Hit],
    cfg: ComposerConfig,
    language: str = "de",
) -> list[Scored]:
    """Every candidate sentence with its ranking score and evidence, best first."""
    pool = candidates(snap, hits, cfg)
    if not pool:
        return []
    x, pool_cover, infos = features(snap, question, query_text, query_vector, pool, language)
    scores = x @ np.array([cfg.w_cover, cfg.w_grams, cfg.w_dense, cfg.w_passage, cfg.cue_bonus])
    evidence = (1 - cfg.pool_share) * x[:, 0] + cfg.pool_share * pool_cover
    out = [
        Scored(row, hit, float(score), float(ev), info.stems)
        for (row, hit), score, ev, info in zip(pool, scores.tolist(), evidence.tolist(), infos, strict=True)
    ]
    out.sort(key=lambda s: (-s.score, s.index))
    return out


def select(scored: list[Scored], cfg: ComposerConfig) -> list[Scored]:
    """The best sentence, then up to ``max_sentences - 1`` close, non-repeating ones (none: abstain)."""
    if not scored or scored[0].evidence < cfg.abstain_threshold:
        return []
    best = scored[0]
    chosen = [best]
    rest = sorted(((_support(best, s, cfg), s) for s in scored[1:]), key=lambda p: (-p[0], p[1].index))
    for support, cand in rest:
        if len(chosen) >= cfg.max_sentences or support < cfg.keep_ratio * best.score:
            break
        if all(_jaccard(cand.terms, c.terms) <= cfg.redundancy for c in chosen):
            chosen.append(cand)
    return chosen


def _support(best: Scored, s: Scored, cfg: ComposerConfig) -> float:
    """A further sentence's claim to a place in the answer: its score, plus a bonus for following the best."""
    follows = s.index == best.index + 1 and s.hit.chunk.doc_id == best.hit.chunk.doc_id
    return s.score + cfg.follow_bonus * follows


def _jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    return len(a & b) / len(a | b) if a or b else 1.0


def _citation(snap: Snapshot, n: int, s: Scored) -> Citation:
    sentence = snap.sentences[s.index]
    doc = snap.documents[snap.sentence_doc[s.index]]
    chunk = s.hit.chunk
    return Citation(
        n=n,
        doc_id=doc.doc_id,
        title=doc.meta.title,
        date=doc.meta.date,
        quote=doc.text[sentence.start : sentence.end],
        start=sentence.start,
        end=sentence.end,
        passage=chunk.text,
        passage_start=chunk.start,
        passage_end=chunk.end,
        score=round(s.evidence, 4),
    )


def _passage(snap: Snapshot, hit: Hit) -> Passage:
    c = hit.chunk
    return Passage(c.doc_id, snap.documents[c.doc_id].meta.title, c.start, c.end, c.text, round(hit.score, 4))
