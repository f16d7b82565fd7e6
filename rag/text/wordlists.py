"""The closed word lists, German and English, in one place.

Each list is short and closed: question words, auxiliaries, pronouns and connectives do not change with the
corpus, and no library offers them as lists (bm25s's stop words are used besides, in
:mod:`rag.text.analysis`). Every list names the module that reads it and the rule it serves.
"""

from __future__ import annotations


def _words(text: str, sep: str | None = None) -> tuple[str, ...]:
    return tuple(text.split(sep))


# rag.text.analysis: left out of every question and text besides the stop words. Question words never name
# what is asked about; left in, "wann" or "womit" (in no article) would weigh most in a question.
QUESTION_WORDS = _words(
    "wer wem wen wessen wann woher wohin womit wogegen wofür worüber worauf wodurch wovon wozu woran worin"
    " worum warum weshalb weswegen wieso wieviel wieviele viele whose many much"
)
# rag.text.analysis: the past forms of the German auxiliary, which bm25s's list lacks ("werden" and "wird"
# are in it); left in, "wurde" counts as a content word found in half the sentences of a news article.
AUXILIARIES = ("wurde", "wurden", "worden", "wurdest")

# rag.text.language: question words that settle a short question's language on their own ("was" is not
# one: it is English too, so "When was North Korea founded?" would be a tie).
LANGUAGE_CUES = {
    "de": frozenset(_words("wer wie wann wo warum welche welcher welches wieso")),
    "en": frozenset(_words("who how what when where why which whom whose")),
}

# rag.text.discourse: opening words by which a sentence refers to the one before it ("Sie sagte ...").
ANAPHORS = frozenset(
    _words(
        """er sie es ihr ihre ihren ihrem ihrer ihres sein seine seinen seinem seiner seines dies diese
dieser dieses diesen diesem dessen deren dabei damit dadurch darauf daraufhin dafür dagegen darin daraus
dort hier daher deshalb deswegen anschließend danach später zudem außerdem jedoch allerdings stattdessen
ebenfalls auch
he she it they him them his her hers its their theirs this these those there then later
thus therefore however instead also afterwards subsequently"""
    )
)

# rag.retrieval.followup: words by which a question refers to the chat before it, words a follow-up opens
# with, and finite verbs (with one, a one-word question names its own subject: "Wer ist der Bundeskanzler?").
FOLLOWUP_REFERENCES = _words(
    "das|dies|dieses|diese|dieser|dort|damals|er|sie|es|ihm|ihr|ihn|ihnen|dabei|dazu|davon|darauf|"
    "dafür|dagegen|it|that|this|these|those|there|then|he|she|they|him|her|them|its|their",
    "|",
)
FOLLOWUP_OPENINGS = ("und", "aber", "also", "and", "but", "so", "what about", "und was", "wie ist es mit")
FINITE_VERBS = _words(
    "ist|sind|war|waren|wird|werden|wurde|wurden|hat|haben|hatte|hatten|heißt|hieß|gibt|gab|kann|"
    "können|soll|sollen|is|are|was|were|has|have|had|does|do|did|will|can|could|would|should",
    "|",
)

# rag.retrieval.terms: separable prefixes of German participles, folded ("vorgeschlagen": "vor" + "schlag").
PARTICIPLE_PREFIXES = _words(
    "ab an auf aus bei durch ein fest fort her hin los mit nach vor weg zu zuruck zusammen"
)

# rag.text.lexicon: dropped from a word list's synonym before it is taken as one word.
DICTIONARY_PLACEHOLDERS = {
    "de": frozenset(
        _words(
            "jdm. jdn. jds. jd. etw. sich ein eine einen einem einer der die das dem den des mit an auf für"
            " gegen über von zu in um aus bei nach vor"
        )
    ),
    "en": frozenset(
        _words("to sb. sth. sb's sth's one's oneself sb./sth. a an the with on of for at by from in into")
    ),
}
