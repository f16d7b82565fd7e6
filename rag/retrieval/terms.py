"""What a question asks about and what a sentence offers: the terms the answer composer compares.

A question becomes its content words, each weighted by its inverse sentence frequency (stored with the word
index at build time, so nothing is recounted per query; a word the articles never use weighs most), and its
character n-grams weighted by their chunk frequency. A sentence becomes its stems and n-grams, cached per
loaded index. A question word is found in a sentence

- fully, when its stem occurs;
- partly (0.8), when it is an unknown German participle whose verb root occurs ("eingelegt": "legte ... ein"),
  or scaled by how many of its n-grams occur when at least half do (``Atomwaffen`` in
  ``Atomwaffenprogramms``, ``sanctions`` in ``Sanktionen``);
- partly (0.6), when a sentence word shares a long prefix with it (``Russia``/``Russland``, ``schüren``/
  ``schürten``).

For a question in another language than the articles, each word is also looked for by its translations
(:mod:`rag.text.lexicon`) that the articles use or a candidate has in another form: ``population`` is found by
"Bevölkerung", and weighs as that word does; a word whose translations the articles never use weighs as a
word found nowhere. An ordinary word with neither a translation nor a cognate in the candidates is left
out (without a word list that is most English words), but a name or number is kept: "Iran" or "2014" must
be found in the articles, in any language.
"""

from __future__ import annotations

import itertools
import math
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from rag.indexing.protocol import IndexSnapshot
from rag.text.analysis import fold, grams, spelling
from rag.text.discourse import refers_back
from rag.text.language import other_language
from rag.text.lexicon import Translate
from rag.text.wordlists import PARTICIPLE_PREFIXES

_CACHE_LIMIT = 20_000  # sentences kept analysed per loaded index (~2 KB each)
_PARTIAL = 0.8  # a word found by its root or most of its n-grams, against 1 for its stem
_PREFIX = 0.6  # a word found by a shared prefix
_MIN_CONTAINED = 0.5  # share of a word's n-grams a sentence must have for a partial match
_MIN_PARTIAL_LEN = 4  # shorter words only match by stem: their few n-grams occur everywhere
_MIN_PREFIX, _PREFIX_SHARE = 4, 0.6  # a shared prefix of 4+ letters covering 60% of the shorter stem
# Past participles of (separable) German verbs, folded: "eingelegt", "durchgefuhrt", "vorgeschlagen". The
# text often has the verb finite and split ("legte ... ein"), so an unknown participle is looked up by root.
_PARTICIPLE = re.compile(r"^(" + "|".join(PARTICIPLE_PREFIXES) + r")?ge([a-z]{3,}?)(?:et|t|en)$")
_cache_lock = threading.Lock()


@dataclass(frozen=True)
class SentenceTerms:
    text: str
    stems: frozenset[str]
    grams: frozenset[str]
    by_head: dict[str, tuple[str, ...]] = field(default_factory=dict)  # stems by their first 4 letters
    refers_back: bool = False  # its opening words refer to the sentence before it (:mod:`rag.text.discourse`)


@dataclass(frozen=True)
class _Word:
    stem: str
    grams: frozenset[str]
    weight: float
    roots: tuple[str, ...] = ()  # an unknown German participle's verb roots: "eingelegt" -> "einleg", "leg"
    name: bool = False  # a name or number (capitalised after the first word, or with digits)
    translations: tuple[_Word, ...] = ()  # a cross-language word's translations the articles use
    surface: str = ""  # the folded word
    parts: tuple[_Word, ...] = ()  # a two-word translation's words ("security council"): found where both are


@dataclass(frozen=True)
class QuestionTerms:
    words: tuple[_Word, ...]
    gram_weights: dict[str, float]
    gram_set: frozenset[str] = frozenset()
    gram_total: float = 0.0
    asked: int = 0  # content words in the question, including those left out for a cross-language question
    off: frozenset[str] = frozenset()  # matching rules switched off for measuring (RAG_ABLATE)

    def found(self, s: SentenceTerms) -> list[float]:
        """How well each question word is found in the sentence, in [0, 1]."""
        return [match(w, s, self.off) for w in self.words]

    def cover(self, s: SentenceTerms) -> float:
        """Weighted share of the question's words found in the sentence (0 with no words)."""
        total = sum(w.weight for w in self.words)
        return (
            sum(w.weight * f for w, f in zip(self.words, self.found(s), strict=True)) / total
            if total
            else 0.0
        )

    def gram_share(self, s: SentenceTerms) -> float:
        if not self.gram_total:
            return 0.0
        return sum(self.gram_weights[g] for g in self.gram_set.intersection(s.grams)) / self.gram_total


def sentence_terms(snap: IndexSnapshot, row: int) -> SentenceTerms:
    """The sentence's text, stems and n-grams, analysed once per loaded index (a bounded cache)."""
    cache: dict[int, SentenceTerms] = snap.extras.setdefault("sentence_terms", {})
    hit = cache.get(row)
    if hit is not None:
        return hit
    s = snap.sentences[row]
    text = snap.documents[snap.sentence_doc[row]].text[s.start : s.end]
    analyzer = snap.analyzer
    words = analyzer.words(text)
    stems = frozenset(analyzer.stems(words))
    by_head: dict[str, tuple[str, ...]] = {}
    for stem in stems:
        if len(stem) >= _MIN_PREFIX:
            by_head[stem[:_MIN_PREFIX]] = (*by_head.get(stem[:_MIN_PREFIX], ()), stem)
    word_grams = frozenset(g for w in words for g in grams(spelling(w)))
    terms = SentenceTerms(text, stems, word_grams, by_head, refers_back(text))
    with _cache_lock:
        if len(cache) >= _CACHE_LIMIT:
            cache.clear()
        cache[row] = terms
    return terms


def question_terms(
    snap: IndexSnapshot,
    text: str,
    pool: Sequence[SentenceTerms],
    cross: bool,
    translate: Translate | None = None,
    off: frozenset[str] = frozenset(),
) -> QuestionTerms:
    """The question's weighted words and n-grams; ``pool`` are the candidate sentences, ``cross`` says the
    question is in another language than the articles, ``translate`` gives a word's translations into
    theirs (:mod:`rag.text.lexicon`); ``off`` names matching rules switched off for measuring."""
    surface = _question_words(snap, text, cross)
    names = _names(text)
    phrases = _phrases(snap, surface, names, translate) if cross and translate else {}
    words: list[_Word] = []
    for k, word in enumerate(surface):
        if k in phrases:
            words.append(phrases[k])  # besides its two words (in their place: first sentences 0.673)
        w = _word(snap, word, name=word in names)
        if cross:
            known = translate(word) if translate else ()
            w = _translated(snap, w, known, pool, off)
            in_phrase = k in phrases or k - 1 in phrases
            if (in_phrase or (not w.name and not known)) and not any(match(w, s, off) for s in pool):
                continue  # nothing to look for, or a phrase's word found only in the phrase ("council")
        words.append(w)
    n = max(len(snap.chunks), 1)
    unique = sorted({g for w in words for g in w.grams})
    dfs = snap.gram_frequencies(unique)
    gram_weights = {g: _idf(n, int(df)) for g, df in zip(unique, dfs.tolist(), strict=True) if df}
    asked = len(surface) + len(phrases)
    total = sum(gram_weights.values())
    return QuestionTerms(tuple(words), gram_weights, frozenset(gram_weights), total, asked, off)


def translated_query(snap: IndexSnapshot, text: str, translate: Translate, per_word: int = 3) -> str:
    """``text`` followed by the ``per_word`` best translations of each of its words that the articles use
    (the two best when they use none: the n-gram channel still finds "drohte" for ``drohen``): what the
    lexical retrievers search for a question in another language."""
    extra: list[str] = []
    surface = _question_words(snap, text, cross=True)
    for word in surface:
        known = translate(word)
        used = [t.surface for t in _used(snap, known)] or list(known[:2])
        extra.extend(used[:per_word])
    for phrase in _pairs(surface):
        extra.extend(t.surface for t in _used(snap, translate(phrase))[:per_word])
    return " ".join([text, *extra])


def _pairs(surface: Sequence[str]) -> list[str]:
    return [f"{a} {b}" for a, b in itertools.pairwise(surface)]


def _phrases(
    snap: IndexSnapshot, surface: Sequence[str], names: set[str], translate: Translate
) -> dict[int, _Word]:
    """Two-word phrases of a cross-language question that translate into one word the articles use
    (``Security Council``: "Sicherheitsrat", ``national anthem``: "Nationalhymne"), by the position of their
    first word, left to right without overlap. Each is a question word of its own, next to its two words
    (which alone look for "Sicherheit" and "Rat"). A compound the articles never use ("Koreakrieg") adds
    nothing: in another form, a compound's n-grams meet too many others ("koreanischen ... Krieg")."""
    out: dict[int, _Word] = {}
    for k, phrase in enumerate(_pairs(surface)):
        if k - 1 in out:
            continue
        found = _used(snap, translate(phrase))
        if found:
            name = surface[k] in names or surface[k + 1] in names
            weight = max(t.weight for t in found)
            out[k] = _Word(phrase, frozenset(), weight, name=name, translations=tuple(found), surface=phrase)
    return out


def _question_words(snap: IndexSnapshot, text: str, cross: bool) -> list[str]:
    """The question's content words, each once; a question in the other language loses only its own
    language's stop words (English "war" is a German stop word)."""
    analyzer = snap.analyzer
    return list(dict.fromkeys(analyzer.words(text, other_language(analyzer.language) if cross else None)))


def _translated(
    snap: IndexSnapshot, w: _Word, known: Sequence[str], pool: Sequence[SentenceTerms], off: frozenset[str]
) -> _Word:
    """A cross-language word with those of its translations the articles use, or that a candidate has in
    another form (``drohen``: "drohte", ``Abkommen``: "Partnerschaftsabkommen"); it weighs as the rarest of
    them, or as a word the articles never use when there are none."""
    found = _used(snap, known, pool, off)
    if not found:
        return w
    return replace(w, translations=tuple(found), weight=max(t.weight for t in found))


def _used(
    snap: IndexSnapshot,
    words: Sequence[str],
    pool: Sequence[SentenceTerms] = (),
    off: frozenset[str] = frozenset(),
) -> list[_Word]:
    """``words`` the articles use (or a sentence of ``pool`` has in another form), one per stem, in order."""
    out: dict[str, _Word] = {}
    unseen = _unseen(snap)
    for word in words:
        w = _word(snap, word)
        weight = max((p.weight for p in w.parts), default=w.weight)
        if w.stem not in out and (weight < unseen or any(_match(w, s, off) for s in pool)):
            out[w.stem] = w
    return list(out.values())


def _unseen(snap: IndexSnapshot) -> float:
    """The weight of a word no sentence has (the idf at document frequency 0)."""
    return _idf(snap.sentence_frequency("")[1], 0)


def match(word: _Word, s: SentenceTerms, off: frozenset[str] = frozenset()) -> float:
    """How well one question word is found in one sentence, in [0, 1] (see the module docstring); a
    cross-language word by itself (a cognate) or by its best translation."""
    found = _match(word, s, off)
    for t in word.translations:
        if found == 1.0:
            break
        found = max(found, _match(t, s, off))
    return found


def _match(word: _Word, s: SentenceTerms, off: frozenset[str] = frozenset()) -> float:
    if word.parts:
        return min(_match(p, s, off) for p in word.parts)
    if word.stem in s.stems:
        return 1.0
    if len(word.stem) < _MIN_PARTIAL_LEN or " " in word.stem:  # short, or a phrase (found by translation)
        return 0.0
    if word.roots and "participles" not in off and any(stem.startswith(word.roots) for stem in s.stems):
        return _PARTIAL  # "eingelegt": "legte ... ein"; "vorgeschlagen": "Vorschlag"
    contained = len(word.grams & s.grams) / len(word.grams) if word.grams and "grams" not in off else 0.0
    by_grams = _PARTIAL * contained if contained >= _MIN_CONTAINED else 0.0
    prefix = _PREFIX if "prefix" not in off and _shares_prefix(word.stem, s) else 0.0
    return max(by_grams, prefix)


def _shares_prefix(stem: str, s: SentenceTerms) -> bool:
    for other in s.by_head.get(stem[:_MIN_PREFIX], ()):
        shared = len(_common_prefix(stem, other))
        if shared >= _PREFIX_SHARE * min(len(stem), len(other)):
            return True
    return False


def _common_prefix(a: str, b: str) -> str:
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return a[:n]


def _word(snap: IndexSnapshot, word: str, name: bool = False) -> _Word:
    if " " in word:  # a two-word translation: it weighs as its words on average
        parts = tuple(_word(snap, w) for w in word.split(" "))
        weight = sum(p.weight for p in parts) / len(parts)
        return _Word(word, frozenset(), weight, name=name, surface=word, parts=parts)
    stem = snap.analyzer.stems([word])[0]
    df, sentences = snap.sentence_frequency(stem)
    roots = _participle_roots(word) if snap.analyzer.language == "de" and not df else ()
    return _Word(stem, frozenset(grams(spelling(word))), _idf(sentences, df), roots, name, surface=word)


def _participle_roots(word: str) -> tuple[str, ...]:
    """The verb roots of a participle: with a separable prefix, prefix and root ("vorgeschlagen":
    "vorschlag", as in "Vorschlag") and the root alone (split in the text: "schlug ... vor")."""
    m = _PARTICIPLE.match(word)
    if not m:
        return ()
    return (m.group(1) + m.group(2), m.group(2)) if m.group(1) else (m.group(2),)


def _idf(n: int, df: int) -> float:
    return math.log(1 + (n - df + 0.5) / (df + 0.5))


def _names(text: str) -> set[str]:
    """Folded words that look like names or numbers: capitalised after the first word, or with digits."""
    tokens = re.findall(r"\w+", text)
    return {
        fold(t) for i, t in enumerate(tokens) if (i > 0 and t[:1].isupper()) or any(c.isdigit() for c in t)
    }
