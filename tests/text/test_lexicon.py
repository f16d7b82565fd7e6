"""The bilingual word list: parsing Ding's format, lookups, the compiled cache, and its use in matching."""

from __future__ import annotations

import logging
import os
import threading
import time
from pathlib import Path

import pytest

from rag.embedding.fake import WordsEmbedder
from rag.errors import ConfigError
from rag.pipeline import Pipeline, build_pipeline
from rag.retrieval.terms import match, question_terms, sentence_terms, translated_query
from rag.text import lexicon as lexicon_module
from rag.text.lexicon import CachedLexicon, NoLexicon, WordList, ding_pairs, load_lexicon

from ..conftest import DATA, words_settings

SAMPLE = DATA / "ding-sample.txt"


def _pairs() -> list[tuple[str, str, float]]:
    return list(ding_pairs(SAMPLE.read_text(encoding="utf-8").splitlines()))


def test_ding_pairs_align_sub_entries_and_drop_annotations_and_placeholders() -> None:
    pairs = {(d, e): score for d, e, score in _pairs()}
    # headword, first German synonym, first English synonym: 1 + 1 + 1 + 1
    assert pairs[("Bevölkerung", "population")] == 4.0
    assert pairs[("Einwohnerschaft", "populace")] == 2.0  # headword only
    # "(gegen etw.)" and "{n}" go, "jdm. mit etw." and "to ... sb. with sth." too
    assert ("Veto", "veto") in pairs and ("drohen", "threaten") in pairs and ("androhen", "threaten") in pairs
    assert pairs[("gedroht", "threatened")] == 3.0  # third sub-entry: not the headword
    assert ("Waffen", "arms") in pairs and ("Hauptstadt", "capital") in pairs
    # a two-word phrase pairs with a single word ("capital city": second English synonym, 1 + 1 + 1 + 0),
    # not with another phrase ("ländliche Bevölkerung", "rural population"), nor with longer ones; lines
    # whose sides have a different number of sub-entries give nothing, nor do comments
    assert pairs[("Hauptstadt", "capital city")] == 3.0 and ("Sicherheitsrat", "security council") in pairs
    assert not any("rural" in e or "ländliche" in d or "unmatched" in e for d, e in pairs)
    assert not any(" " in d or len(e.split()) > 2 for d, e in pairs)  # German: one word, a compound
    assert not any("#" in d for d, _ in pairs)


def test_word_list_looks_up_words_then_stems_in_either_direction() -> None:
    en_de = WordList(((e, d, s) for d, e, s in _pairs()), "en", "de")
    # its own translation first (folded), then those of words with its stem ("populace": "popul")
    assert en_de.translations("population", "en", "de") == ("bevolkerung", "einwohnerschaft")
    assert en_de.translations("threatens", "en", "de")[:2] == ("drohen", "androhen")  # by stem
    assert "gedroht" in en_de.translations("Threatened", "en", "de")  # the word, then its stem's
    assert en_de.translations("unknown", "en", "de") == ()
    assert en_de.translations("population", "de", "en") == ()  # built for one direction
    # a phrase by itself, then by its words' stems; it only translates into a single word
    assert en_de.translations("Security Council", "en", "de") == ("sicherheitsrat",)
    assert en_de.translations("security councils", "en", "de") == ("sicherheitsrat",)
    assert en_de.translations("capital city", "en", "de") == ("hauptstadt",)
    de_en = WordList(_pairs(), "de", "en")
    assert de_en.translations("Bevölkerung", "de", "en") == ("population", "populace")
    assert de_en.translations("Waffen", "de", "en") == ("weapons", "arms", "weapon")
    # a German word may translate into an English phrase, never the other way round
    assert de_en.translations("Sicherheitsrat", "de", "en") == ("security council",)
    assert "capital city" in de_en.translations("Hauptstadt", "de", "en")


def test_compiled_cache_is_reused_and_falls_back_to_memory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    first = CachedLexicon(SAMPLE, tmp_path / "cache")
    assert first.translations("population", "en", "de")[0] == "bevolkerung"
    assert first.db_path("en-de").is_file() and not first.db_path("de-en").exists()  # only what was asked

    def no_parsing(lines: object) -> object:
        raise AssertionError("the compiled list should be read, not the dictionary")

    monkeypatch.setattr(lexicon_module, "ding_pairs", no_parsing)
    second = CachedLexicon(SAMPLE, tmp_path / "cache")
    assert second.translations("population", "en", "de") == first.translations("population", "en", "de")
    assert second.translations("veto", "fr", "de") == ()  # a pair the file does not hold
    monkeypatch.undo()

    blocked = tmp_path / "a-file"
    blocked.write_text("not a folder")
    with caplog.at_level(logging.WARNING, logger="rag.text.lexicon"):
        in_memory = CachedLexicon(SAMPLE, blocked)
        assert in_memory.translations("veto", "en", "de")[:2] == ("einspruch", "veto")
    assert "compiling it into memory" in caplog.text


def test_processes_compiling_at_once_do_not_collide(tmp_path: Path) -> None:
    """Two servers starting together both compile: each writes its own file and renames it when done."""
    lexicons = [CachedLexicon(SAMPLE, tmp_path) for _ in range(4)]
    threads = [threading.Thread(target=lx.prepare, args=("en", "de")) for lx in lexicons]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert {lx.translations("veto", "en", "de") for lx in lexicons} == {("einspruch", "veto")}
    assert [p.name for p in tmp_path.iterdir()] == [lexicons[0].db_path("en-de").name]  # no partial files


def test_partial_files_of_ended_processes_are_removed(tmp_path: Path) -> None:
    stale, fresh = tmp_path / ".tmp-de-en.sqlite-1a2b3c4d", tmp_path / ".tmp-de-en.sqlite-5e6f7a8b"
    for f in (stale, fresh):
        f.write_bytes(b"half a compile")
    os.utime(stale, (time.time() - 3600, time.time() - 3600))  # an hour old: its process is gone
    lexicon = CachedLexicon(SAMPLE, tmp_path)
    current = lexicon.db_path("en-de").name
    older = tmp_path / current.replace(f"-v{lexicon_module._CACHE_VERSION}-", "-v1-")  # an earlier format
    other = tmp_path / "another-dictionary-1-2-v1-en-de.sqlite"
    for f in (older, other):
        f.write_bytes(b"compiled before")
    lexicon.prepare("en", "de")
    assert not stale.exists() and fresh.exists()  # a recent one may still be being written
    assert not older.exists() and other.exists() and (tmp_path / current).is_file()


def test_load_lexicon_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert isinstance(load_lexicon("none"), NoLexicon)
    shared = load_lexicon(str(SAMPLE), tmp_path)
    assert isinstance(shared, CachedLexicon) and load_lexicon(str(SAMPLE), tmp_path) is shared
    with pytest.raises(ConfigError, match="no word list"):
        load_lexicon(str(tmp_path / "missing.txt"))
    monkeypatch.setattr(lexicon_module, "DING_PATH", tmp_path / "not-installed")
    assert isinstance(load_lexicon("auto"), NoLexicon)  # auto without Debian's package: none, no error


@pytest.fixture
def translating(seed_corpus: Path, tmp_path: Path) -> Pipeline:
    settings = words_settings(seed_corpus, tmp_path / "index", lexicon=str(SAMPLE))
    pipeline = build_pipeline(settings, WordsEmbedder())
    pipeline.warm_up()
    return pipeline


def test_the_service_says_which_word_list_it_uses(translating: Pipeline) -> None:
    from fastapi.testclient import TestClient

    from rag.http.app import create_app

    with TestClient(create_app(translating.settings, translating), base_url="http://127.0.0.1") as client:
        assert client.get("/health").json()["word_list"] == str(SAMPLE.resolve())
    assert NoLexicon().source is None


def test_english_words_are_matched_by_their_translations(translating: Pipeline) -> None:
    snap = translating.snapshot
    translate = translating.translator("en", "de")
    assert translate is not None and translating.translator("de", "de") is None
    # the seed article: "... schwerwiegende humanitäre Folgen für die Bevölkerung Nordkoreas ..."
    row = next(
        r for r in range(len(snap.sentences)) if "Bevölkerung Nordkoreas" in sentence_terms(snap, r).text
    )
    sentence = sentence_terms(snap, row)
    terms = question_terms(snap, "What is the population of North Korea?", [sentence], True, translate)
    population = next(w for w in terms.words if w.surface == "population")
    assert [t.surface for t in population.translations] == ["bevolkerung"]  # einwohnerschaft: not used
    assert match(population, sentence) == 1.0
    # without the word list the same word has nothing to be found by and is left out
    bare = question_terms(snap, "What is the population of North Korea?", [sentence], True)
    assert "population" not in [w.surface for w in bare.words]
    # retrieval searches for the translations the articles use ("einwohnerschaft" is not searched for),
    # and the two best of a word whose translations they never use (n-grams may find another form of them);
    # such a word keeps its weight as a word found nowhere ("capital": no "Hauptstadt" in the seed articles)
    query = translated_query(snap, "What is the capital and population?", translate)
    assert query == "What is the capital and population? hauptstadt hauptstadte bevolkerung"
    capital = question_terms(snap, "What is the capital?", [sentence], True, translate).words[0]
    assert capital.surface == "capital" and not capital.translations and match(capital, sentence) == 0.0


@pytest.mark.parametrize(
    ("question", "evidence"),
    [
        # (not "What is the population ...?": that asks for a number, which the sentence does not give)
        ("What about the population of North Korea?", "Bevölkerung Nordkoreas"),
        ("Who is the Russian ambassador?", "UN-Botschafter Wassili Nebensja"),
    ],
)
def test_translations_lead_an_english_question_to_its_sentence(
    translating: Pipeline, seed_corpus: Path, question: str, evidence: str
) -> None:
    answer = translating.ask(question)
    assert answer.language == "en" and not answer.abstained
    assert evidence in answer.citations[0].quote
    # the same pipeline without the word list finds another sentence, or none it trusts
    plain = build_pipeline(translating.settings.updated(lexicon="none"), WordsEmbedder())
    without = plain.ask(question)
    assert without.abstained or evidence not in without.citations[0].quote


def test_a_two_word_phrase_is_found_by_the_compound_the_articles_use(translating: Pipeline) -> None:
    snap = translating.snapshot
    translate = translating.translator("en", "de")
    assert translate is not None
    # "... dass der UN-Sicherheitsrat in Bezug auf die Probleme der koreanischen Halbinsel ..."
    row = next(
        r for r in range(len(snap.sentences)) if "UN-Sicherheitsrat in" in sentence_terms(snap, r).text
    )
    sentence = sentence_terms(snap, row)
    question = "What did the Security Council say?"
    words = {w.surface: w for w in question_terms(snap, question, [sentence], True, translate).words}
    phrase = words["security council"]
    assert [t.surface for t in phrase.translations] == ["sicherheitsrat"] and match(phrase, sentence) == 1.0
    # "council" alone ("Rat") is in no sentence: it is left out instead of counting as missing
    assert "council" not in words
    assert "sicherheitsrat" in translated_query(snap, question, translate).split()
    # a compound the articles never use adds nothing
    other = question_terms(snap, "What did the capital city say?", [sentence], True, translate)
    assert "capital city" not in [w.surface for w in other.words]
