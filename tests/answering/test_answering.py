"""Answer composition: word matching, sentence features and choice, abstention, follow-ups."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from rag.answering.compose import Ranking, Scored, reorder, select
from rag.answering.config import ComposerConfig
from rag.answering.features import candidates, pool_features
from rag.pipeline import Pipeline
from rag.retrieval.followup import Turn, resolve_question
from rag.retrieval.terms import (
    SentenceTerms,
    _participle_roots,
    _Word,
    match,
    question_terms,
    sentence_terms,
)
from rag.text.analysis import Analyzer, grams, spelling
from rag.text.discourse import carried, refers_back
from rag.text.language import detect_language
from rag.types import Chunk, Hit

DE = Analyzer("de")


def _sentence(text: str) -> SentenceTerms:
    words = DE.words(text)
    stems = frozenset(DE.stems(words))
    by_head: dict[str, tuple[str, ...]] = {}
    for stem in stems:
        by_head[stem[:4]] = (*by_head.get(stem[:4], ()), stem)
    word_grams = frozenset(g for w in words for g in grams(spelling(w)))
    return SentenceTerms(text, stems, word_grams, by_head)


def _word(word: str, roots: tuple[str, ...] = ()) -> _Word:
    folded = DE.words(word)[0]
    return _Word(DE.stems([folded])[0], frozenset(grams(spelling(folded))), 1.0, roots, surface=folded)


@pytest.mark.parametrize(
    ("word", "sentence", "expected"),
    [
        ("Sanktionen", "Die Sanktion gilt.", 1.0),  # same stem
        ("Atomwaffen", "Wegen seines Atomwaffenprogramms.", pytest.approx(0.8 * 0.89, abs=0.05)),  # n-grams
        ("sanctions", "Die Sanktionen gelten.", pytest.approx(0.55, abs=0.1)),  # English cognate
        ("Russia", "Russland legte ein Veto ein.", 0.6),  # a shared prefix
        ("Iran", "Russland legte ein Veto ein.", 0.0),
        ("UN", "Die Union tagte.", 0.0),  # short words only match by stem
        ("Außenminister", "Der Außenminister sagte.", 1.0),
        ("Minister", "Der Außenminister sagte.", pytest.approx(0.69, abs=0.05)),  # the compound's head
        ("Regierung", "Die Regierungssprecherin sagte.", pytest.approx(0.69, abs=0.05)),  # a compound
    ],
)
def test_how_a_question_word_is_found(word: str, sentence: str, expected: float) -> None:
    assert match(_word(word), _sentence(sentence)) == expected


def test_a_two_word_translation_is_found_where_both_its_words_are() -> None:
    # a German compound translated into an English phrase ("Sicherheitsrat": "security council")
    phrase = _Word("security council", frozenset(), 1.0, parts=(_word("Sicherheit"), _word("Rat")))
    compound = replace(_word("Sicherheitsrat"), translations=(phrase,))
    assert match(phrase, _sentence("Der Rat tagte zur Sicherheit.")) == 1.0
    assert match(phrase, _sentence("Der Rat tagte.")) == 0.0  # one of its words is not enough
    assert match(compound, _sentence("Der Rat tagte zur Sicherheit.")) == 1.0


def test_an_unknown_participle_is_found_by_its_root() -> None:
    assert _participle_roots("eingelegt") == ("einleg", "leg")
    assert _participle_roots("vorgeschlagen") == ("vorschlag", "schlag")
    assert _participle_roots("verhangt") == ()
    split_verb = _sentence("Russland legte sein Veto gegen das Gremium ein.")
    assert match(_word("eingelegt", _participle_roots("eingelegt")), split_verb) == 0.8
    assert match(_word("eingelegt"), split_verb) < 0.8


def _scored(index: int, probability: float, terms: str, doc: str = "a") -> Scored:
    chunk = Chunk("c" + doc, doc, 0, 1, "x", (index,))
    score = float(np.log(probability / (1 - probability))) if 0 < probability < 1 else 0.0
    return Scored(index, Hit(chunk, 1.0), score, probability, frozenset(terms.split()))


def _ranking(sentences: list[Scored], confidence: float = 1.0, cross: bool = False) -> Ranking:
    return Ranking(sentences, confidence, {}, cross)


def test_select_abstains_below_the_threshold_on_the_questions_confidence() -> None:
    cfg = ComposerConfig(abstain_threshold=0.5, cross_abstain_threshold=0.3)
    assert select(_ranking([_scored(1, 0.9, "a b")], 0.49), cfg) == []
    assert select(_ranking([], 1.0), cfg) == []
    assert [s.index for s in select(_ranking([_scored(1, 0.1, "a b")], 0.5), cfg)] == [1]
    # a question in another language than the articles is held to its own threshold
    assert [s.index for s in select(_ranking([_scored(1, 0.9, "a b")], 0.3, cross=True), cfg)] == [1]
    assert select(_ranking([_scored(1, 0.9, "a b")], 0.29, cross=True), cfg) == []


def test_select_keeps_close_sentences_and_skips_repeats() -> None:
    cfg = ComposerConfig(abstain_threshold=0.0, keep_ratio=0.8, follow_bonus=0.2, max_sentences=3)
    best = _scored(10, 0.999, "a b c")
    repeat = _scored(20, 0.95, "a b c")  # the same terms: left out
    close = _scored(30, 0.85, "x y")
    weak_follower = _scored(11, 0.65, "p q")  # right after the best sentence: 0.65 + 0.2 >= 0.8
    weak = _scored(40, 0.7, "m n")
    chosen = select(_ranking([best, repeat, close, weak, weak_follower]), cfg)
    assert [s.index for s in chosen] == [10, 11, 30]
    assert (
        len(select(_ranking([best, close, weak_follower]), cfg.model_copy(update={"max_sentences": 1}))) == 1
    )


def test_question_terms_keep_names_but_drop_unmatched_english_words(fake_pipeline: Pipeline) -> None:
    snap = fake_pipeline.snapshot
    pool = [sentence_terms(snap, row) for row in range(len(snap.sentences))]
    english = question_terms(snap, "What did Iran say about the sanctions?", pool, cross=True)
    stems = {w.stem for w in english.words}
    assert "iran" in stems and "say" not in stems  # a name is kept even unmatched; "say" matches nothing
    german = question_terms(snap, "Was sagte Iran?", pool, cross=False)
    assert len(german.words) == 2  # in the corpus language every content word counts
    unseen = next(w for w in german.words if w.stem == "iran")
    seen = next(w for w in german.words if w.stem != "iran")
    assert unseen.weight > seen.weight  # a word the articles never use weighs most


def test_answers_quote_exactly_and_abstain_off_topic(fake_pipeline: Pipeline) -> None:
    answer = fake_pipeline.ask("Was sagte Nebensja über die Sanktionen?")
    assert not answer.abstained and answer.citations
    for c in answer.citations:
        assert fake_pipeline.document(c.doc_id).text[c.start : c.end] == c.quote
        assert f"{c.quote} [{c.n}]" in answer.answer
    assert 0.0 < answer.citations[0].score <= 1.0  # the sentence's probability of holding the answer
    off = fake_pipeline.ask("Welche Sanktionen gelten gegen Venezuela?")
    assert off.abstained and not off.citations and off.passages


def test_language_of_short_questions() -> None:
    assert detect_language("When was North Korea founded?") == "en"
    assert detect_language("Was hat Putin unterzeichnet?") == "de"
    assert detect_language("Who is Nebensja?") == "en"


def test_follow_ups_are_resolved_and_standalone_questions_left_alone() -> None:
    history = [Turn("user", "Wogegen hat Russland sein Veto eingelegt?"), Turn("assistant", "...")]
    assert resolve_question("Und wann war das?", history, DE).startswith("Wogegen hat Russland")
    standalone = "Welchen Kompromiss hatte Russland vorgeschlagen?"
    assert resolve_question(standalone, history, DE) == standalone
    assert resolve_question("Und wann war das?", [], DE) == "Und wann war das?"


@pytest.mark.parametrize(
    "question",
    [
        "Wer ist der Bundeskanzler?",  # one content word, but its own subject and verb
        "Who is Nebensja?",
        "Wann wurde das Abkommen unterzeichnet?",  # "das" before a noun is an article
        "Das Abkommen wurde wann unterzeichnet?",
        "Wann wurde dieses Edikt erlassen?",  # XQuAD questions the first rule still rewrote
        "Worum ging es in den Gerichtsverfahren?",  # an "es" that stands for nothing
    ],
)
def test_a_question_that_names_its_own_subject_is_not_rewritten(question: str) -> None:
    history = [Turn("user", "Wer ist der russische UN-Botschafter?"), Turn("assistant", "... Nebensja ...")]
    assert resolve_question(question, history, DE) == question


@pytest.mark.parametrize(
    "question",
    ["Mit wessen Unterstützung?", "With whose support?", "Was sieht es vor?", "Wann war das?", "Und wer?"],
)
def test_fragments_and_questions_that_refer_back_are_follow_ups(question: str) -> None:
    history = [Turn("user", "Wann wurde Nordkorea gegründet?"), Turn("assistant", "... 1948 ...")]
    assert resolve_question(question, history, DE) == f"Wann wurde Nordkorea gegründet? {question}"


@pytest.mark.parametrize(
    ("sentence", "expected"),
    [
        ("Das Hauptaugenmerk lag dabei auf Nord- und Westafrika.", True),  # "dabei", the fourth word
        ("Anschließend komponierte er Musik für viele Abenteuer.", True),
        ("Sie sagte, die Experten seien ein Werkzeug geworden.", True),
        ("He later wrote the poem.", True),
        ("Russland legte im Rat sein Veto ein.", False),  # "sein", the fifth word
        ("Nordkorea ist das einzige Land mit Atomtests.", False),
        ("Russia vetoed the renewal of the panel.", False),
    ],
)
def test_which_sentences_refer_back(sentence: str, expected: bool) -> None:
    assert refers_back(sentence) is expected


def test_a_sentence_that_refers_back_takes_the_words_of_the_one_before() -> None:
    found = np.array([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0], [0.5, 0.0], [0.0, 0.0]])
    rows, docs = [10, 11, 12, 20, 30], ["a", "a", "a", "a", "b"]
    refers = [False, True, True, True, True]
    out = carried(found, rows, docs, refers, share=0.5)
    assert out[1].tolist() == [0.5, 1.0]  # its own word in full, the one before's at the share
    assert out[2].tolist() == [0.25, 0.5]  # a chain carries on, the share applied again
    assert out[3].tolist() == [0.5, 0.0]  # row 19 is not a candidate: nothing to take
    assert out[4].tolist() == [0.0, 0.0]  # row 29 would be another document's
    assert carried(found, rows, docs, [False] * 5, share=0.5).tolist() == found.tolist()
    assert found[1].tolist() == [0.0, 1.0]  # the input is left as it was


def test_carried_words_rank_the_sentence_that_continues(fake_pipeline: Pipeline) -> None:
    """ "... sagte Zakharova. Sie sagte, die Experten seien ...": the second sentence is Zakharova's too."""
    snap, cfg = fake_pipeline.snapshot, fake_pipeline.composer
    question = "Was sagte Zakharova über die Experten?"
    query, hits = fake_pipeline.search(snap, question, cfg.context_chunks)
    pool = candidates(snap, hits, cfg)
    texts = [sentence_terms(snap, row).text for row, _ in pool]
    she = next(i for i, t in enumerate(texts) if t.startswith("Sie sagte, die Experten"))
    before = pool_features(snap, query, pool, cfg.model_copy(update={"off": frozenset({"carry"})}))
    after = pool_features(snap, query, pool, cfg)
    assert before.features.carried.tolist() == [0.0] * len(pool)
    assert after.features.carried[she] > 0.0  # "Zakharova", from the sentence before
    assert after.features.cover[she] == before.features.cover[she]  # its own cover is unchanged
    assert pool[she - 1][0] == pool[she][0] - 1  # the sentence before is a candidate
    words = [w.surface for w in after.terms.words]
    weights = np.array([w.weight for w in after.terms.words])
    name = words.index("zakharova")
    assert after.found[she - 1, name] == 1.0 and after.found[she, name] == 0.0
    assert after.features.carried[she] == pytest.approx(0.85 * weights[name] / weights.sum())


def test_the_passages_read_are_reordered_by_their_best_sentence() -> None:
    def hit(name: str, score: float) -> Hit:
        return Hit(Chunk(name, "doc", 0, 1, name, ()), score)

    hits = [hit("a", 1.0), hit("b", 0.9), hit("c", 0.8), hit("d", 0.4)]
    cfg = ComposerConfig(context_chunks=3, retrieval_share=0.7)
    sentences = [
        replace(_scored(1, 0.2, "x"), hit=hits[0]),
        replace(_scored(2, 0.3, "x"), hit=hits[1]),
        replace(_scored(3, 0.8, "x"), hit=hits[2]),  # the sentence that answers
    ]
    out = reorder(hits, _ranking(sentences), cfg)
    assert [h.chunk.chunk_id for h in out] == ["c", "a", "b", "d"]
    assert out[0].score == pytest.approx(0.7 * 0.8 + 0.3 * 1.0)
    assert out[1].score == pytest.approx(0.7 * 1.0 + 0.3 * 0.25)
    assert out[3].score == pytest.approx(0.7 * 0.4)  # not read: its retrieval share alone, still last
    assert [h.score for h in out] == sorted((h.score for h in out), reverse=True)
    # no sentences (all hidden, or none scored): the retrieval order stays
    assert [h.chunk.chunk_id for h in reorder(hits, _ranking([]), cfg)] == ["a", "b", "c", "d"]
    # all retrieval: the order is retrieval's
    same = reorder(hits, _ranking(sentences), cfg.model_copy(update={"retrieval_share": 1.0}))
    assert [h.chunk.chunk_id for h in same] == ["a", "b", "c", "d"]
