"""Tell German from English, for documents and for questions as short as three words.

The product only needs to choose between its two languages (for the abstention message, the UI text and
the lexical analyser), and questions are often five words long; statistical language identifiers are
unreliable at that length, while function words decide it well: "Wer ist der ..." vs "Who is the ...".
The word lists are bm25s's stop-word lists, so no list is maintained here.
"""

from __future__ import annotations

import re

from bm25s.stopwords import STOPWORDS_EN_PLUS as STOPWORDS_EN
from bm25s.stopwords import STOPWORDS_GERMAN

from rag.text.wordlists import LANGUAGE_CUES

Language = str  # "de" or "en"

_WORD = re.compile(r"[^\W\d_]+")
_GERMAN_ONLY = frozenset(w.lower() for w in STOPWORDS_GERMAN) - frozenset(STOPWORDS_EN)
_ENGLISH_ONLY = frozenset(STOPWORDS_EN) - frozenset(w.lower() for w in STOPWORDS_GERMAN)
_UMLAUTS = re.compile(r"[äöüß]", re.IGNORECASE)


def other_language(language: Language) -> Language:
    """The product's other language: what a question over articles in ``language`` is translated from."""
    return "en" if language == "de" else "de"


def detect_language(text: str, default: Language = "de") -> Language:
    """Return ``"de"`` or ``"en"``; ties (no evidence at all) return ``default``."""
    words = [w.lower() for w in _WORD.findall(text[:20_000])]
    de = sum(w in _GERMAN_ONLY or w in LANGUAGE_CUES["de"] for w in words) + 0.5 * len(
        _UMLAUTS.findall(text[:20_000])
    )
    en = float(sum(w in _ENGLISH_ONLY or w in LANGUAGE_CUES["en"] for w in words))
    if de == en:
        return default
    return "de" if de > en else "en"
