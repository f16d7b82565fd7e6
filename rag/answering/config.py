"""The composer's configuration: its settings (:class:`rag.settings.AnsweringSettings`, where each default
and bound is written) and what the pipeline hands it besides: the channels switched off for measuring and
the fitted models."""

from __future__ import annotations

from pydantic import ConfigDict

from rag.answering.model import ComposerModel
from rag.settings import AnsweringSettings


class ComposerConfig(AnsweringSettings):
    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)

    off: frozenset[str] = frozenset()  # channels switched off for measuring (RAG_ABLATE)
    model: ComposerModel | None = None  # fitted ranker and abstention model; None: the shipped one
    # the same for questions in the other language when no word list translates them (RAG_LEXICON=none)
    untranslated_model: ComposerModel | None = None
