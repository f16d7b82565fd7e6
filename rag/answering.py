"""Extractive answer composition: pick the sentences that answer the question, quote them, cite them.

No language model writes anything: every answer sentence is a verbatim slice ``text[start:end]`` of an
article. Each candidate sentence (from the best retrieved chunks) gets an evidence score from

- ``lexical``: the idf-weighted share of the question's terms that the sentence contains; a term that is
  part of a longer compound counts partly (``Atomwaffen`` in ``Atomwaffenprogramms``);
- ``dense``: the cosine between question and sentence vectors (computed at index time);
- ``passage``: the fused retrieval score of the chunk it came from, relative to the best chunk;
- ``cue``: a bonus when the sentence has what the question type asks for (a year for "wann"/"when",
  a number for "wie viele"/"how many").

Below ``abstain_threshold`` for the best sentence, the answer says the articles do not contain this.
"""

from __future__ import annotations

import math
import re
import threading
from collections import Counter
from dataclasses import dataclass

import numpy as np

from rag.store import Snapshot
from rag.types import Answer, Citation, Hit, Passage

_YEAR = re.compile(r"\b(1[5-9]\d\d|20\d\d)\b")
_DATE = re.compile(
    r"\b(\d{1,2}\.\s*(Januar|Februar|März|April|Mai|Juni|Juli|August|September|Oktober|November|Dezember)"
    r"|January|February|March|April|May|June|July|August|September|October|November|December"
    r"|Januar|Februar|März|Juni|Juli|Oktober|Dezember|Anfang|Ende|Mitte)\b"
)
_NUMBER = re.compile(
    r"\b(\d+([.,]\d+)?|zwei|drei|vier|fünf|sechs|sieben|acht|neun|zehn|zwölf|hundert|tausend|zweimal"
    r"|two|three|four|five|six|seven|eight|nine|ten|twelve|hundred|thousand|twice|million|Million\w*"
    r"|Milliard\w*|billion)\b",
    re.IGNORECASE,
)
_WHEN = re.compile(r"\b(wann|seit wann|when|what year|which year|in welchem jahr|welches jahr)\b", re.I)
_HOW_MANY = re.compile(r"\b(wie viele|wie viel|wieviele|how many|how much|wie oft|how often|anzahl)\b", re.I)

ABSTAIN_TEXT = {
    "de": "Dazu steht nichts in den Artikeln. Die nächstliegenden Stellen sind unten aufgeführt.",
    "en": "The articles do not say. The closest passages are listed below.",
}


@dataclass(frozen=True)
class ComposerConfig:
    max_sentences: int = 3
    abstain_threshold: float = 0.35
    context_chunks: int = 5
    w_lexical: float = 0.55
    w_dense: float = 0.30
    w_passage: float = 0.15
    cue_bonus: float = 0.10
    keep_ratio: float = 0.75  # a further sentence must score at least this share of the best one
    redundancy: float = 0.6  # term-set Jaccard above which a sentence repeats one already chosen


@dataclass(frozen=True)
class Scored:
    index: int  # row in the snapshot's sentence table
    hit: Hit
    score: float
    terms: frozenset[str]


_idf_lock = threading.Lock()


def _idf(snap: Snapshot) -> dict[str, float]:
    """Inverse document frequency of each term over the chunks, computed once per loaded snapshot."""
    cached = snap.extras.get("idf")
    if cached is None:
        with _idf_lock:
            cached = snap.extras.get("idf")
            if cached is None:
                df: Counter[str] = Counter()
                for c in snap.chunks:
                    df.update(set(snap.bm25.analyzer.terms(c.text)))
                n = max(len(snap.chunks), 1)
                cached = {t: math.log(1 + (n - f + 0.5) / (f + 0.5)) for t, f in df.items()}
                cached[""] = math.log(1 + (n + 0.5) / 0.5)  # unseen terms weigh most
                snap.extras["idf"] = cached
    return cached


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
    scored = score_sentences(snap, question, query_text, query_vector, hits, cfg)
    chosen = _select(scored, cfg)
    if not chosen:
        return Answer(question, ABSTAIN_TEXT[language], True, language, (), passages)
    citations = tuple(_citation(snap, n, s) for n, s in enumerate(chosen, start=1))
    text = " ".join(f"{c.quote} [{c.n}]" for c in citations)
    return Answer(question, text, False, language, citations, passages)


def score_sentences(
    snap: Snapshot, question: str, query_text: str, query_vector: np.ndarray, hits: list[Hit], cfg: ComposerConfig
) -> list[Scored]:
    """Every non-heading sentence of the best ``context_chunks`` hits, best evidence first."""
    context = hits[: cfg.context_chunks]
    if not context:
        return []
    analyzer = snap.bm25.analyzer
    idf = _idf(snap)
    q_terms = set(analyzer.terms(query_text))
    q_weight = {t: idf.get(t, idf[""]) for t in q_terms}
    total = sum(q_weight.values()) or 1.0
    best_hit = max(h.score for h in context) or 1.0
    wants_year, wants_number = bool(_WHEN.search(question)), bool(_HOW_MANY.search(question))
    seen: set[int] = set()
    out: list[Scored] = []
    for hit in context:
        rows = [i for i in hit.chunk.sentences if i not in seen and not snap.sentences[i].heading]
        seen.update(rows)
        if not rows:
            continue
        dense = snap.sentence_vectors[rows] @ query_vector.reshape(-1)
        for row, cos in zip(rows, dense.tolist(), strict=True):
            text = _sentence_text(snap, row)
            terms = frozenset(analyzer.terms(text))
            lexical = sum(w * _match(t, terms) for t, w in q_weight.items()) / total
            cue = (wants_year and bool(_YEAR.search(text) or _DATE.search(text))) or (
                wants_number and bool(_NUMBER.search(text))
            )
            score = (
                cfg.w_lexical * lexical
                + cfg.w_dense * max(cos, 0.0)
                + cfg.w_passage * max(hit.score, 0.0) / best_hit
                + cfg.cue_bonus * cue
            )
            out.append(Scored(row, hit, score, terms))
    out.sort(key=lambda s: (-s.score, s.index))
    return out


def _match(term: str, terms: frozenset[str]) -> float:
    """1 for an exact term, 0.7 when one is a part of a compound of the other (both >= 5 letters)."""
    if term in terms:
        return 1.0
    if len(term) >= 5 and any(len(t) >= 5 and (term in t or t in term) for t in terms):
        return 0.7
    return 0.0


def _select(scored: list[Scored], cfg: ComposerConfig) -> list[Scored]:
    if not scored or scored[0].score < cfg.abstain_threshold:
        return []
    chosen = [scored[0]]
    for cand in scored[1:]:
        if len(chosen) >= cfg.max_sentences or cand.score < cfg.keep_ratio * scored[0].score:
            break
        if all(_jaccard(cand.terms, c.terms) <= cfg.redundancy for c in chosen):
            chosen.append(cand)
    return chosen


def _jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    return len(a & b) / len(a | b) if a or b else 1.0


def _sentence_text(snap: Snapshot, row: int) -> str:
    s = snap.sentences[row]
    return snap.documents[snap.sentence_doc[row]].text[s.start : s.end]


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
        score=round(s.score, 4),
    )


def _passage(snap: Snapshot, hit: Hit) -> Passage:
    c = hit.chunk
    return Passage(c.doc_id, snap.documents[c.doc_id].meta.title, c.start, c.end, c.text, round(hit.score, 4))
