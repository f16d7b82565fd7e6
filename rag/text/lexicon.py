"""A bilingual word list for questions in another language than the articles (English over German).

The bundled embedding model is English, so an English question over German articles meets the text only
through names, numbers, cognates (n-grams: ``sanctions``/``Sanktionen``) and weak cross-language vectors.
Every other English word used to be left out of the match, which made "What is the population of North
Korea?" look like "North Korea" to the composer. With a word list, ``population`` becomes ``Bevölkerung``,
``Population``, ``Einwohnerzahl`` ...: retrieval searches for them and the composer finds (or misses) them
like the German words of a German question.

The list is Ding's German-English dictionary (TU Chemnitz, GPL-2+, ~200,000 entries), which Debian ships
as the package ``trans-de-en`` (``/usr/share/trans/de-en``; the Makefile installs it where apt is
available). It is read from there at run time, not copied into this project. No dictionary of that size
and quality is on PyPI, and translation models on PyPI fetch their weights from the network.

Each line of the file is ``German :: English``, both sides split by ``|`` into aligned sub-entries
(headword, plural, phrases) and by ``;`` into synonyms; annotations (``{f}``, ``[Am.]``, ``(...)``,
``/abbr./``) and placeholders (``jdm.``, ``etw.``, ``to``, ``sb.``) are dropped first, so ``jdm. mit etw.
drohen {vi}`` pairs ``drohen`` with ``to threaten sb. with sth.``. Taken are pairs of a German word with an
English word or two-word phrase: German writes as one compound what English writes as two words
(``Security Council``: ``Sicherheitsrat``, ``national anthem``: ``Nationalhymne``, ``square kilometers``:
``Quadratkilometer``). An English phrase is looked up as a whole, or by its words' stems; a German word
translated into a phrase (``Sicherheitsrat``: ``security council``) is found where both its words are.
German phrases are left out: they are verb phrases ("Einspruch erheben") rather than compounds, and took
the places of single words (English questions, MRR@10 0.894 against 0.887 with them). A pair
scores one point per sub-entry it occurs in, plus one each for being the entry's headword, the first German
synonym and the first English synonym; a word keeps its ``KEEP`` best translations, looked up by itself,
then by its stem (``deliveries`` also finds what ``delivery`` found). The parser is written here because
no library on PyPI reads Ding's format.
"""

from __future__ import annotations

import logging
import os
import re
import sqlite3
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Protocol

from rag.errors import ConfigError
from rag.files import atomic_path
from rag.text.analysis import Analyzer, fold, stop_words
from rag.text.wordlists import DICTIONARY_PLACEHOLDERS

log = logging.getLogger(__name__)

DING_PATH = Path("/usr/share/trans/de-en")
KEEP = 8  # translations kept per word, best first
_CACHE_VERSION = 4  # of the compiled format and the rules of ding_pairs: a change recompiles
_ANNOTATION = re.compile(r"\{[^}]*\}|\[[^\]]*\]|\([^)]*\)|/[^/|]+/|<[^>]*>")
_WORD = re.compile(r"^[^\W\d_]+(?:-[^\W\d_]+)*$")

_STOP = stop_words()
Translate = Callable[[str], Sequence[str]]  # a folded word of the question -> folded words of the articles


class Lexicon(Protocol):
    def translations(self, word: str, source: str, target: str) -> tuple[str, ...]:
        """Folded ``target``-language words for the folded ``source``-language ``word``, best first."""
        ...

    def prepare(self, source: str, target: str) -> None:
        """Do now whatever the first lookup from ``source`` into ``target`` would do (load, compile)."""
        ...

    @property
    def source(self) -> str | None:
        """Where the word list comes from (a file), or None without one."""
        ...


class NoLexicon:
    """No word list: cross-language questions match by names, numbers and cognates only."""

    source = None

    def translations(self, word: str, source: str, target: str) -> tuple[str, ...]:
        return ()

    def prepare(self, source: str, target: str) -> None:
        pass


class WordList:
    """Translations of words and two-word phrases from one language into another (a phrase translates into a
    single word, a word into either), looked up by the word (phrase), then by its stem (its words' stems).

    Each word's translations are kept as one tab-joined string (the full Ding list in one direction takes
    about 40 MB so, against 100 MB as tuples)."""

    def __init__(self, pairs: Iterable[tuple[str, str, float]], source: str, target: str) -> None:
        """``pairs`` are ``(source word or phrase, target word or phrase, score)``; a repeated pair adds up
        its scores."""
        self.languages = (source, target)
        self._analyzer = Analyzer(source)
        by_word: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
        for a, b, score in pairs:
            by_word[fold(a)][fold(b)] += score
        by_stem: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
        for word in by_word:
            stem = _stem_key(self._analyzer, word)
            for w, score in by_word[word].items():
                by_stem[stem][w] += score
        self._tables = {"w": _best(by_word), "s": _best(by_stem)}  # by word, by stem

    def translations(self, word: str, source: str, target: str) -> tuple[str, ...]:
        if (source, target) != self.languages:
            return ()
        return _lookup(self._analyzer, word, lambda kind, key: self._tables[kind].get(key))

    def prepare(self, source: str, target: str) -> None:
        pass

    @property
    def source(self) -> str | None:
        return "in memory"

    def __len__(self) -> int:
        return len(self._tables["w"])

    def rows(self) -> Iterable[tuple[str, str, str]]:
        """``(kind, key, tab-joined translations)`` rows, kind ``w`` (key a word) or ``s`` (a stem)."""
        for kind, table in self._tables.items():
            yield from ((kind, k, v) for k, v in table.items())


def _lookup(analyzer: Analyzer, word: str, joined: Callable[[str, str], str | None]) -> tuple[str, ...]:
    """The translations of ``word`` (or a two-word phrase): those stored for the word itself, then for its
    stem, each once and at most ``KEEP``; ``joined(kind, key)`` reads the tab-joined list stored under a word
    (``w``) or stem (``s``)."""
    word = fold(word)
    found = [joined("w", word), joined("s", _stem_key(analyzer, word))]
    return tuple(dict.fromkeys(w for j in found if j for w in j.split("\t")))[:KEEP]


def _stem_key(analyzer: Analyzer, words: str) -> str:
    """The stem of a word, or the stems of a phrase's words joined by a space."""
    return " ".join(analyzer.stems(words.split(" ")))


def _best(table: dict[str, dict[str, float]]) -> dict[str, str]:
    return {
        word: "\t".join(w for w, _ in sorted(found.items(), key=lambda p: (-p[1], p[0]))[:KEEP])
        for word, found in table.items()
    }


def ding_pairs(lines: Iterable[str]) -> Iterable[tuple[str, str, float]]:
    """The ``(German, English, score)`` pairs of a Ding dictionary file: a German word with an English word
    or two-word phrase (module docstring)."""
    for line in lines:
        if line.startswith("#") or " :: " not in line:
            continue
        german, english = line.rstrip("\n").split(" :: ", 1)
        de_parts = _ANNOTATION.sub(" ", german).split("|")
        en_parts = _ANNOTATION.sub(" ", english).split("|")
        if len(de_parts) != len(en_parts):
            continue
        for k, (de, en) in enumerate(zip(de_parts, en_parts, strict=True)):
            de_words = _synonyms(de, "de", longest=1)
            if not de_words:
                continue
            for j, e in _synonyms(en, "en", longest=2):
                for i, d in de_words:
                    yield d, e, 1.0 + (k == 0) + (i == 0) + (j == 0)


def _synonyms(part: str, language: str, longest: int) -> list[tuple[int, str]]:
    """The synonyms of one sub-entry that are at most ``longest`` words once placeholders are gone, with
    their position."""
    skip = DICTIONARY_PLACEHOLDERS[language]
    out = []
    for i, synonym in enumerate(part.split(";")):
        words = [w for w in synonym.split() if w not in skip]
        if len(words) == 2 and any(fold(w) in _STOP for w in words):
            continue  # "nicht zulassen", "at all": a stop word is never found
        if 1 <= len(words) <= longest and all(_WORD.match(w) for w in words):
            out.append((i, " ".join(words)))
    return out


def default_cache_dir() -> Path:
    """Where compiled word lists are kept: ``$XDG_CACHE_HOME/rag``, else ``~/.cache/rag``."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "rag"


def load_lexicon(setting: str, cache_dir: Path | None = None) -> Lexicon:
    """The word list ``RAG_LEXICON`` names: ``auto`` (Ding's file where Debian puts it, else none), ``none``,
    or the path of a file in Ding's format; compiled word lists are kept in ``cache_dir``. Pipelines of one
    process share one instance per file (a second would compile again)."""
    if setting.lower() in ("none", "off", ""):
        return NoLexicon()
    path = DING_PATH if setting.lower() == "auto" else Path(setting)
    if not path.is_file():
        if setting.lower() != "auto":
            raise ConfigError(f"RAG_LEXICON: no word list at {path} (auto, none, or a file in Ding's format)")
        log.info("no bilingual word list at %s: English questions match names and cognates only", path)
        return NoLexicon()
    key = (path.resolve(), (cache_dir or default_cache_dir()).resolve())
    with _shared_lock:
        if key not in _shared:
            _shared[key] = CachedLexicon(*key)
        return _shared[key]


_shared: dict[tuple[Path, Path], CachedLexicon] = {}
_shared_lock = threading.Lock()


class CachedLexicon:
    """A Ding file compiled once per direction into an SQLite file in ``cache_dir``, then looked up there.

    Compiling reads the whole file (English to German: about 7 s and 270 MB while it runs, 37 MB on disk);
    a lookup afterwards is one indexed query and the word list costs no memory, so a server or a CLI call
    pays for it once per machine, not per start. A cache file is named after the source file's size and
    modification time, so an updated dictionary is compiled anew. It is written under a temporary name and
    renamed when complete, so processes compiling at the same time never see half a file (the last rename
    wins; both are equal); where the cache folder cannot be written, the list is compiled into memory."""

    def __init__(self, path: Path, cache_dir: Path) -> None:
        self.path = path
        self.cache_dir = cache_dir
        stat = path.stat()
        self._stem = f"{path.name}-{stat.st_size}-{stat.st_mtime_ns}-v{_CACHE_VERSION}"
        self._dbs: dict[str, sqlite3.Connection] = {}
        self._analyzers = {language: Analyzer(language) for language in ("de", "en")}  # their stemmers
        self._lock = threading.Lock()

    @property
    def source(self) -> str | None:
        return str(self.path)

    def db_path(self, direction: str) -> Path:
        return self.cache_dir / f"{self._stem}-{direction}.sqlite"

    def translations(self, word: str, source: str, target: str) -> tuple[str, ...]:
        if {source, target} != {"de", "en"}:
            return ()
        with self._lock:  # one connection per direction, not thread-safe

            def joined(kind: str, key: str) -> str | None:
                row = db.execute("SELECT words FROM words WHERE kind = ? AND key = ?", (kind, key)).fetchone()
                return row[0] if row else None

            db = self._open(f"{source}-{target}")
            return _lookup(self._analyzers[source], word, joined)

    def prepare(self, source: str, target: str) -> None:
        if {source, target} != {"de", "en"}:
            return
        try:
            with self._lock:
                self._open(f"{source}-{target}")
        except Exception:  # in the background: logged here, and the first question raises it again
            log.warning("could not prepare the word list %s", self.path, exc_info=True)

    def _open(self, direction: str) -> sqlite3.Connection:
        """The compiled word list of ``direction``, compiled now if need be (caller holds the lock)."""
        db = self._dbs.get(direction)
        if db is not None:
            return db
        path = self.db_path(direction)
        if not path.is_file():
            try:
                self.cache_dir.mkdir(parents=True, exist_ok=True)
                _remove_stale(self.cache_dir, self._stem)
                with atomic_path(path) as partial:
                    self._compile(direction, sqlite3.connect(partial)).close()
            except (OSError, sqlite3.Error) as e:
                log.warning("cannot keep the word list in %s (%s): compiling it into memory", path, e)
                db = self._compile(direction, sqlite3.connect(":memory:", check_same_thread=False))
        if db is None:
            db = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True, check_same_thread=False)
        self._dbs[direction] = db
        return db

    def _compile(self, direction: str, db: sqlite3.Connection) -> sqlite3.Connection:
        """Parse the dictionary into ``db`` (an empty database)."""
        source, target = direction.split("-")
        started = time.perf_counter()
        with self.path.open(encoding="utf-8") as f:
            pairs = ((e, d, s) if source == "en" else (d, e, s) for d, e, s in ding_pairs(f))
            words = WordList(pairs, source, target)
        with db:
            db.execute("CREATE TABLE words (kind TEXT, key TEXT, words TEXT, PRIMARY KEY (kind, key))")
            db.executemany("INSERT INTO words VALUES (?, ?, ?)", words.rows())
        log.info(
            "compiled %s (%s): %d words in %.1f s",
            self.path,
            direction,
            len(words),
            time.perf_counter() - started,
        )
        return db


def _remove_stale(folder: Path, stem: str, age_s: float = 600.0) -> None:
    """Delete partial files a process left when it ended mid-compile (a compile takes seconds), and the
    same dictionary compiled by an earlier version of this module (``stem`` names the current one)."""
    same_file = stem.rsplit("-v", 1)[0]
    old = [p for p in folder.glob(f"{same_file}-v*.sqlite") if not p.name.startswith(f"{stem}-")]
    for path in [*folder.glob(".tmp-*"), *old]:
        try:
            if path.suffix == ".sqlite" or time.time() - path.stat().st_mtime > age_s:
                path.unlink()
        except OSError:
            pass  # another process removed or renamed it meanwhile
