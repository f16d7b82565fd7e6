"""`rag eval`: SQuAD files become documents with exact gold offsets, and the report has its promised shape."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rag.embedding.fake import WordsEmbedder
from rag.errors import BadRequestError
from rag.evaluation.abstention import ask_without_gold, without_gold
from rag.evaluation.report import format_report
from rag.evaluation.run import evaluate_question_set, evaluate_squad, unrelated_chats
from rag.evaluation.squad import (
    PARAGRAPH_SEP,
    load_followups,
    load_question_set,
    load_squad,
    read_json,
    sample,
    write_corpus,
)
from rag.pipeline import build_pipeline
from rag.retrieval.followup import Turn
from rag.settings import Settings
from rag.types import Answer, Hit

from ..conftest import BENCH, DATA, ROOT

TINY_DE = DATA / "tiny_squad_de.json"
TINY_EN = DATA / "tiny_squad_en.json"
RAG = [sys.executable, "-m", "rag.cli"]


def _check_report(report: dict, questions: int) -> None:
    assert report["questions"] == questions
    assert set(report["retrieval"]) == {"hit@1", "hit@3", "hit@5", "hit@10", "mrr@10"}
    assert set(report["answers"]) >= {
        "contains_gold",
        "first_sentence_contains_gold",
        "citation_precision",
        "citation_recall",
        "verbatim_rate",
        "abstention_rate",
        "mean_sentences",
        "mean_words",
    }
    assert set(report["latency_ms"]) == {"median", "p95"}
    assert report["settings"]["chunk_tokens"] > 0 and report["chunks"] > 0
    for value in (*report["retrieval"].values(), *report["answers"].values()):
        assert value >= 0
    assert report["answers"]["verbatim_rate"] == 1.0


def test_articles_become_documents_whose_offsets_hold_the_gold_answers(tmp_path: Path) -> None:
    squad = load_squad(read_json(TINY_DE))
    assert [a.title for a in squad.articles] == ["Wale", "Vulkane"] and len(squad.questions) == 6
    originals = write_corpus(squad.articles, tmp_path / "corpus")
    for q in squad.questions:
        text = originals[q.gold.paragraph.doc_id]
        for span, answer in zip(q.gold.spans, q.gold.texts, strict=True):
            assert text[span.start : span.end] == answer
            assert q.gold.paragraph.contains(span)
    whale = squad.articles[0].text
    assert PARAGRAPH_SEP in whale and whale.startswith("Der Blauwal")
    assert sorted(p.name for p in (tmp_path / "corpus").iterdir()) == ["000_Wale.txt", "001_Vulkane.txt"]


def test_a_parallel_file_swaps_in_its_questions_and_keeps_the_gold() -> None:
    german = load_squad(read_json(TINY_DE))
    english = load_squad(read_json(TINY_DE), read_json(TINY_EN))
    assert [q.qid for q in english.questions] == [q.qid for q in german.questions]
    assert english.questions[3].text == "When did Vesuvius erupt?"
    assert english.questions[3].gold == german.questions[3].gold  # German documents, German gold answers


def test_broken_squad_files_are_refused(tmp_path: Path) -> None:
    data = read_json(TINY_DE)
    data["data"][0]["paragraphs"][0]["qas"][0]["answers"][0]["answer_start"] += 1
    with pytest.raises(BadRequestError, match="not at offset"):
        load_squad(data)
    with pytest.raises(BadRequestError, match="SQuAD"):
        load_squad({"answerable": []})
    parallel = read_json(TINY_EN)
    parallel["data"][1]["paragraphs"][1]["qas"][0]["id"] = "other"
    with pytest.raises(BadRequestError, match="parallel"):
        load_squad(read_json(TINY_DE), parallel)
    bad = tmp_path / "bad.json"
    bad.write_text("{not json", encoding="utf-8")
    with pytest.raises(BadRequestError, match="not valid JSON"):
        read_json(bad)


def test_sample_is_seeded_and_keeps_file_order() -> None:
    items = list(range(100))
    assert sample(items, 10, seed=1) == sample(items, 10, seed=1) == sorted(sample(items, 10, seed=1))
    assert sample(items, 10, seed=1) != sample(items, 10, seed=2)
    assert sample(items, None, 0) == items and sample(items, 500, 0) == items


def test_question_sets_load_answerable_unanswerable_and_follow_ups() -> None:
    data = read_json(DATA / "seed_questions.json")
    questions = load_question_set(data)
    assert len([q for q in questions if q.answer is None]) == len(data["unanswerable"]) >= 20
    assert all(q.text for q in questions)
    followups = load_followups(data)
    assert followups and all(f.history and f.question.answer for f in followups)
    assert [q.text for q in load_question_set(["Wer?", {"question": "Wo?"}])] == ["Wer?", "Wo?"]
    with pytest.raises(BadRequestError):
        load_question_set({"questions": []})


def test_evaluate_squad_with_the_fake_embedder(tmp_path: Path) -> None:
    settings = Settings(model="test:words", index_dir=tmp_path / "unused")
    squad = load_squad(read_json(TINY_DE))
    report = evaluate_squad(
        squad, settings, work_dir=tmp_path / "work", unanswerable=["Wer malte die Mona Lisa?"]
    )
    _check_report(report, 6)
    # Four short paragraphs: each question's words sit in its own paragraph.
    assert report["retrieval"]["hit@3"] == 1.0 and report["documents"] == 2
    assert report["abstention"]["unanswerable"] == 1 and len(report["abstention"]["sweep"]) >= 10
    table = format_report(report)
    assert "hit@1" in table and "verbatim_rate" in table and "threshold" in table


def test_without_gold_hides_each_questions_paragraph(tmp_path: Path) -> None:
    settings = Settings(model="test:words", index_dir=tmp_path / "unused")
    report = evaluate_squad(
        load_squad(read_json(TINY_DE)), settings, work_dir=tmp_path / "w", without_gold=True
    )
    hidden = report["without_gold"]
    assert hidden["unanswerable"] + hidden["skipped"] == hidden["answerable"] == 6
    # each question's words sit in its own paragraph: without it nothing is left to answer from
    assert hidden["skipped"] == 0 and hidden["unanswerable_abstained"] == 1.0
    assert hidden["answerable_answered"] == pytest.approx(1 - report["answers"]["abstention_rate"])
    rows = hidden["sweep"]
    assert rows[0]["unanswerable_abstained"] <= rows[-1]["unanswerable_abstained"]
    assert "gold paragraphs hidden (6 answerable; 6 asked again" in format_report(report)


def test_a_question_answered_outside_its_paragraph_is_not_asked_without_it(tmp_path: Path) -> None:
    data = read_json(TINY_DE)
    # the answer "33 Meter" now also stands in the other paragraph of the article
    data["data"][0]["paragraphs"][1]["context"] += " Auch Finnwale werden 33 Meter lang."
    squad = load_squad(data)
    write_corpus(squad.articles, tmp_path / "corpus")
    settings = Settings(corpus_dir=tmp_path / "corpus", index_dir=tmp_path / "index", model="test:words")
    pipeline = build_pipeline(settings, WordsEmbedder())
    pipeline.warm_up()
    snap = pipeline.snapshot
    by_id = {q.text: q for q in squad.questions}
    length = by_id["Wie lang wird der Blauwal?"]
    every = [Hit(c, 1.0) for c in snap.chunks]
    kept = {r for h in without_gold(snap, every, length) for r in h.chunk.sentences}
    hidden = [
        snap.documents[snap.sentence_doc[r]].text[snap.sentences[r].start : snap.sentences[r].end]
        for r in range(len(snap.sentences))
        if r not in kept and not snap.sentences[r].heading
    ]
    assert hidden == [
        "Der Blauwal ist das größte Tier der Erde.",
        "Er wird bis zu 33 Meter lang und wiegt bis zu 200 Tonnen.",
    ]
    assert ask_without_gold(pipeline, length) is None  # still answered by the Finnwale sentence
    volcano = ask_without_gold(pipeline, by_id["Wann brach der Vesuv aus?"])
    assert (
        volcano is not None
        and volcano.abstained
        and "Vesuv" not in " ".join(c.quote for c in volcano.citations)
    )


def test_history_is_measured_beside_standalone(tmp_path: Path) -> None:
    settings = Settings(model="test:words", index_dir=tmp_path / "unused")
    report = evaluate_squad(load_squad(read_json(TINY_DE)), settings, work_dir=tmp_path / "w", history=True)
    after = report["after_previous_question"]
    assert set(after) == {"retrieval", "answers", "latency_ms"}
    assert after["answers"]["verbatim_rate"] == 1.0


def test_each_question_is_asked_after_one_about_another_article() -> None:
    answers = [Answer(f"q{i}", f"a{i}", False, "de", (), ()) for i in range(6)]
    docs = ["x", "x", "y", "y", None, None]  # None: a question no article answers
    chats = unrelated_chats([f"q{i}" for i in range(6)], docs, answers)
    earlier = [chat[0].content for chat in chats]
    assert earlier == ["q3", "q3", "q1", "q1", "q0", "q1"]  # nearest before (wrapping), another article
    assert chats[0] == [Turn("user", "q3"), Turn("assistant", "a3")]
    assert unrelated_chats(["q"], ["x"], answers[:1]) == [[]]  # no other article: asked alone


def test_standalone_questions_after_unrelated_ones_are_measured(tmp_path: Path) -> None:
    settings = Settings(model="test:words", index_dir=tmp_path / "unused")
    report = evaluate_squad(
        load_squad(read_json(TINY_DE)), settings, work_dir=tmp_path / "w", after_unrelated=True
    )
    after = report["after_unrelated_question"]
    assert after["answers"] == report["answers"] and after["changed_answers"] == 0
    assert "each asked after one about another article" in format_report(report)


def test_evaluate_a_question_set_on_the_seed_corpus(fake_settings: Settings) -> None:
    data = read_json(DATA / "seed_questions.json")
    questions = load_question_set(data)[:3] + [q for q in load_question_set(data) if q.answer is None][:3]
    report = evaluate_question_set(questions, fake_settings, load_followups(data)[:2], after_unrelated=True)
    after = report["after_unrelated"]
    assert after["questions"] == 6 and after["changed_answers"] == 0
    assert after["answerable_correct_after"] == after["answerable_correct_alone"]
    ab = report["abstention"]
    assert (ab["answerable"], ab["unanswerable"]) == (3, 3)
    assert 0 <= ab["answerable_correct"] <= ab["answerable_answered"] <= 1
    assert report["followups"]["questions"] == 2
    assert isinstance(report["failures"], list)


def test_cli_eval_prints_the_table_and_writes_json(tmp_path: Path) -> None:
    out_file = tmp_path / "report.json"
    env = {**os.environ, "RAG_MODEL": "test:words"}
    args = [str(TINY_DE), "--questions", str(TINY_EN), "--limit", "4", "--seed", "3", "-o", str(out_file)]
    out = subprocess.run(
        [*RAG, "eval", *args], capture_output=True, text=True, env=env, cwd=ROOT, timeout=300
    )
    assert out.returncode == 0, out.stderr
    assert "hit@1" in out.stdout and "mrr@10" in out.stdout and "chunk_tokens" in out.stdout
    report = json.loads(out_file.read_text(encoding="utf-8"))
    assert report["questions_file"].endswith("tiny_squad_en.json")
    _check_report(report, 4)


@pytest.mark.model
def test_rag_eval_on_a_slice_of_the_dev_half_with_the_real_model(tmp_path: Path) -> None:
    """The CI check: the real model on two XQuAD-de articles; shape and verbatim quotes, no quality floor."""
    data = read_json(BENCH / "xquad-de-dev.json")
    data["data"] = data["data"][:2]
    piece = tmp_path / "slice.json"
    piece.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    out_file = tmp_path / "report.json"
    args = [*RAG, "eval", str(piece), "--limit", "12", "-o", str(out_file)]
    out = subprocess.run(args, capture_output=True, text=True, cwd=ROOT, timeout=900)
    assert out.returncode == 0, out.stderr
    report = json.loads(out_file.read_text(encoding="utf-8"))
    _check_report(report, 12)
    assert report["documents"] == 2 and report["settings"]["model"] == "intfloat/multilingual-e5-small"
