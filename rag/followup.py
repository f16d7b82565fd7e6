"""Follow-up questions: fold the conversation's last question into one that cannot stand alone.

"Und wann war das?" after "Wogegen hat Russland sein Veto eingelegt?" has no content words of its own;
retrieval then searches for both together. A question with enough content words of its own is left as
it is, so history never changes the answer to a standalone question.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from rag.lexical import Analyzer

_ANAPHORA = re.compile(
    r"\b(das|dies|dieses|diese|dieser|dort|damals|er|sie|es|ihm|ihr|ihn|ihnen|dabei|dazu|davon|darauf|"
    r"dafür|dagegen|it|that|this|these|those|there|then|he|she|they|him|her|them|its|their)\b",
    re.IGNORECASE,
)
_FOLLOW_START = re.compile(r"^\s*(und|aber|also|and|but|so|what about|und was|wie ist es mit)\b", re.I)
_STANDALONE_TERMS = 3


@dataclass(frozen=True)
class Turn:
    role: str  # "user" or "assistant"
    content: str


def resolve_question(question: str, history: Sequence[Turn], analyzer: Analyzer) -> str:
    """The text to retrieve with: the question, or the previous user question plus this one."""
    previous = next((t.content for t in reversed(history) if t.role == "user" and t.content.strip()), None)
    if previous is None:
        return question
    terms = analyzer.terms(question)
    dependent = len(terms) < _STANDALONE_TERMS and (
        bool(_ANAPHORA.search(question)) or bool(_FOLLOW_START.search(question)) or len(terms) <= 1
    )
    return f"{previous.strip()} {question.strip()}" if dependent else question
