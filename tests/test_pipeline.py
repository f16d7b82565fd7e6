"""The pipeline's answer contract, with the instant fake embedder."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from rag.embedding.fake import WordsEmbedder
from rag.errors import BadRequestError, DocumentNotFoundError
from rag.pipeline import Pipeline, build_pipeline
from rag.retrieval.followup import Turn
from rag.settings import Settings


def _check_contract(pipeline: Pipeline, payload: dict) -> None:
    assert set(payload) >= {"answer", "abstained", "citations", "passages", "timings_ms"}
    for n, c in enumerate(payload["citations"], start=1):
        assert set(c) >= {"n", "doc_id", "title", "date", "quote", "start", "end", "passage", "score"}
        assert c["n"] == n
        doc = pipeline.document(c["doc_id"])
        assert doc.text[c["start"] : c["end"]] == c["quote"]
        assert c["quote"] in c["passage"]
        assert f"{c['quote']} [{n}]" in payload["answer"]
    for p in payload["passages"]:
        assert pipeline.document(p["doc_id"]).text[p["start"] : p["end"]] == p["text"]


def test_answer_quotes_and_cites_exact_spans(fake_pipeline: Pipeline) -> None:
    answer = fake_pipeline.ask("Wer ist der russische UN-Botschafter?")
    payload = json.loads(json.dumps(answer.to_dict()))
    assert not payload["abstained"] and "Nebensja" in payload["answer"]
    assert 1 <= len(payload["citations"]) <= 3
    assert payload["citations"][0]["doc_id"] == "000_ec495bea3a2a83c6"
    _check_contract(fake_pipeline, payload)
    assert set(payload["timings_ms"]) == {"retrieve", "compose", "total"}


def test_top_k_limits_passages(fake_pipeline: Pipeline) -> None:
    chunks = len(fake_pipeline.snapshot.chunks)
    assert len(fake_pipeline.ask("Nordkorea Sanktionen", top_k=2).passages) == 2
    assert len(fake_pipeline.ask("Nordkorea Sanktionen", top_k=20).passages) == min(20, chunks)
    with pytest.raises(BadRequestError):
        fake_pipeline.ask("Nordkorea", top_k=21)


def test_passages_are_listed_best_first_and_retrieval_share_1_keeps_retrievals_order(
    fake_pipeline: Pipeline, fake_settings: Settings
) -> None:
    question = "Was sagte Nebensja über die Sanktionen?"
    shipped = fake_pipeline.ask(question, top_k=5).passages
    assert [p.score for p in shipped] == sorted((p.score for p in shipped), reverse=True)
    plain = build_pipeline(fake_settings.updated(retrieval_share=1.0), WordsEmbedder())
    _, hits = plain.search(plain.snapshot, question, 5)
    passages = plain.ask(question, top_k=5).passages
    assert [(p.doc_id, p.start) for p in passages] == [(h.chunk.doc_id, h.chunk.start) for h in hits]
    assert {(p.doc_id, p.start) for p in passages} == {(p.doc_id, p.start) for p in shipped}
    # the passage whose sentence quotes Nebensja moves up
    assert [(p.doc_id, p.start) for p in passages] != [(p.doc_id, p.start) for p in shipped]


def test_unanswerable_question_abstains_in_its_language(fake_pipeline: Pipeline) -> None:
    de = fake_pipeline.ask("Wer hat die Fußball-Weltmeisterschaft 2014 gewonnen?")
    assert de.abstained and not de.citations and "nichts in den Artikeln" in de.answer
    assert de.passages  # the closest passages are still shown
    en = fake_pipeline.ask("Who won the football world cup in 2014?")
    assert en.abstained and en.answer.startswith("The articles do not say")


@pytest.mark.parametrize("question", ["", "   ", "\x00\x01", "x" * 2001])
def test_bad_questions_are_refused(fake_pipeline: Pipeline, question: str) -> None:
    with pytest.raises(BadRequestError):
        fake_pipeline.ask(question)


def test_follow_up_uses_the_history(fake_pipeline: Pipeline) -> None:
    history = [
        Turn("user", "Wogegen hat Russland sein Veto im Sicherheitsrat eingelegt?"),
        Turn("assistant", "..."),
    ]
    alone = fake_pipeline.ask("Und wann war das?")
    follow = fake_pipeline.ask("Und wann war das?", history=history)
    assert not follow.abstained and "Veto" in follow.citations[0].quote
    assert follow.answer != alone.answer
    standalone = "Wer ist der russische UN-Botschafter?"
    assert fake_pipeline.ask(standalone, history=history).answer == fake_pipeline.ask(standalone).answer


def test_documents_and_unknown_ids(fake_pipeline: Pipeline) -> None:
    ids = [d.doc_id for d in fake_pipeline.documents()]
    assert ids == ["000_ec495bea3a2a83c6", "001_280cdb7c2d6d85fb"]
    doc, chunks = fake_pipeline.document_entry(ids[0])
    assert doc.doc_id == ids[0] and chunks > 0
    with pytest.raises(DocumentNotFoundError):
        fake_pipeline.document("nope")


def test_add_and_delete_documents_update_the_index(fake_pipeline: Pipeline, fake_settings: Settings) -> None:
    doc = fake_pipeline.add_document(
        "Wale.txt", "Der Blauwal ist das größte Tier der Erde. Er frisst Krill.".encode()
    )
    assert doc.doc_id == "Wale"
    assert (Path(fake_settings.index.corpus_dir) / "Wale.txt").read_bytes().decode() == doc.text
    answer = fake_pipeline.ask("Was ist das größte Tier der Erde?")
    assert answer.citations and answer.citations[0].doc_id == "Wale"
    fake_pipeline.delete_document("Wale")
    assert "Wale" not in [d.doc_id for d in fake_pipeline.documents()]
    assert not (Path(fake_settings.index.corpus_dir) / "Wale.txt").exists()


def test_queries_during_updates_never_fail(fake_pipeline: Pipeline) -> None:
    expected = fake_pipeline.ask("Wann wurde Nordkorea gegründet?").answer
    errors: list[BaseException] = []
    answers: list[str] = []
    stop = threading.Event()

    def asker() -> None:
        while not stop.is_set():
            try:
                answers.append(fake_pipeline.ask("Wann wurde Nordkorea gegründet?").answer)
            except BaseException as exc:
                errors.append(exc)

    threads = [threading.Thread(target=asker) for _ in range(3)]
    for t in threads:
        t.start()
    for i in range(5):
        fake_pipeline.add_document(
            f"x{i}.txt", f"Artikel {i} über Bienen. Bienen sammeln Nektar {i}.".encode()
        )
        fake_pipeline.delete_document(f"x{i}")
    stop.set()
    for t in threads:
        t.join()
    assert not errors and answers and set(answers) == {expected}


def test_pipeline_builds_its_index_on_first_use(fake_settings: Settings) -> None:
    pipeline = build_pipeline(fake_settings, WordsEmbedder())
    assert not pipeline.ready
    assert pipeline.ask("Nebensja").passages
    assert pipeline.ready and (Path(fake_settings.index.index_dir) / "CURRENT").exists()
