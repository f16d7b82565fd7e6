"""The composer's settings: how many sentences, from how many chunks, and when to abstain."""

from __future__ import annotations

from dataclasses import dataclass

from rag.answering.model import ComposerModel


@dataclass(frozen=True)
class ComposerConfig:
    max_sentences: int = 3
    abstain_threshold: float = 0.5  # on the probability that the candidates answer the question
    cross_abstain_threshold: float = 0.5  # the same for a question in the other language than the articles
    context_chunks: int = 5  # the chunks whose sentences are candidates (~35 sentences)
    carry_share: float = 0.85  # of the question words a sentence that refers back takes from the one before
    # The passages the composer read are listed in the order of this share of their fused retrieval score
    # and the rest their best sentence's probability (both relative to the best); see :func:`reorder`.
    retrieval_share: float = 0.7
    follow_bonus: float = 0.2  # added to the probability of the sentence right after the best one
    keep_ratio: float = 0.4  # a further sentence needs at least this share of the best one's probability
    redundancy: float = 0.6  # term-set Jaccard above which a sentence repeats one already chosen
    off: frozenset[str] = frozenset()  # channels switched off for measuring (RAG_ABLATE)
    model: ComposerModel | None = None  # fitted ranker and abstention model; None: the shipped one
    # the same for questions in the other language when no word list translates them (RAG_LEXICON=none)
    untranslated_model: ComposerModel | None = None
