"""End to end on the seed corpus with a real model: the answers as a user gets them (see seed_pipeline)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rag.pipeline import Pipeline

from .conftest import DATA, ROOT

pytestmark = pytest.mark.model

QUESTIONS = json.loads((DATA / "seed_questions.json").read_text(encoding="utf-8"))
ANSWERABLE = QUESTIONS["answerable"]
UNANSWERABLE = QUESTIONS["unanswerable"]
# Questions marked "known_gap" fail today; they count in the rates below and are named in the README, but a
# per-question test would only restate that. Every other question must pass, one by one.
STRICT_ANSWERABLE = [q for q in ANSWERABLE if not q.get("known_gap")]
STRICT_UNANSWERABLE = [q for q in UNANSWERABLE if not q.get("known_gap")]
# Share answered correctly and share abstained, per question language, at the shipped defaults
# (multilingual-e5-small, abstention threshold 0.5), as measured on 2026-11-30 with
# `rag eval tests/data/seed_questions.json`: German 26/29 correct, 18/21 abstained; English 17/19, 12/16.
# These floors catch regressions; the target of 0.95 for both is not reached.
FLOORS = {"de": (0.89, 0.85), "en": (0.89, 0.75)}


@pytest.fixture(scope="module")
def seed_pipeline(real_pipeline: Pipeline) -> Pipeline:
    """The seed corpus answered by the product as shipped."""
    return real_pipeline


def _norm(text: str) -> str:
    return " ".join(text.lower().split())


def _verbatim(pipeline: Pipeline, answer) -> None:
    for c in answer.citations:
        assert pipeline.document(c.doc_id).text[c.start : c.end] == c.quote
        assert f"{c.quote} [{c.n}]" in answer.answer


def test_the_question_sets_are_big_enough() -> None:
    assert len(ANSWERABLE) >= 12
    assert {q["lang"] for q in ANSWERABLE} == {"de", "en"}
    assert len(UNANSWERABLE) >= 20
    assert len(STRICT_ANSWERABLE) >= 12 and {q["lang"] for q in STRICT_ANSWERABLE} == {"de", "en"}


def _correct(pipeline: Pipeline, case: dict) -> bool:
    answer = pipeline.ask(case["question"])
    _verbatim(pipeline, answer)
    supporting = [c for c in answer.citations if _norm(case["answer"]) in _norm(c.quote)]
    return bool(supporting) and (not case.get("doc") or supporting[0].doc_id == case["doc"])


@pytest.mark.parametrize("case", STRICT_ANSWERABLE, ids=[q["question"] for q in STRICT_ANSWERABLE])
def test_answerable_seed_question(seed_pipeline: Pipeline, case: dict) -> None:
    answer = seed_pipeline.ask(case["question"])
    assert not answer.abstained, f"abstained; closest passage: {answer.passages[0].text[:120]}"
    assert _norm(case["answer"]) in _norm(answer.answer), answer.answer
    supporting = [c for c in answer.citations if _norm(case["answer"]) in _norm(c.quote)]
    assert supporting, "no cited sentence contains the answer"
    if case.get("doc"):
        assert supporting[0].doc_id == case["doc"]
    assert answer.language == case["lang"]
    _verbatim(seed_pipeline, answer)


@pytest.mark.parametrize("case", STRICT_UNANSWERABLE, ids=[q["question"] for q in STRICT_UNANSWERABLE])
def test_unanswerable_seed_question_abstains(seed_pipeline: Pipeline, case: dict) -> None:
    answer = seed_pipeline.ask(case["question"])
    assert answer.abstained, answer.answer
    assert not answer.citations and answer.passages
    expected = "Dazu steht nichts" if case.get("lang", "de") == "de" else "The articles do not say"
    assert answer.answer.startswith(expected)


@pytest.mark.parametrize("lang", sorted(FLOORS))
def test_rates_over_all_seed_questions(seed_pipeline: Pipeline, lang: str) -> None:
    answerable = [q for q in ANSWERABLE if q["lang"] == lang]
    unanswerable = [q for q in UNANSWERABLE if q.get("lang", "de") == lang]
    correct = sum(_correct(seed_pipeline, q) for q in answerable) / len(answerable)
    abstained = sum(seed_pipeline.ask(q["question"]).abstained for q in unanswerable) / len(unanswerable)
    min_correct, min_abstained = FLOORS[lang]
    assert correct >= min_correct, correct
    assert abstained >= min_abstained, abstained


def test_cli_json_answer_points_at_nebensja(tmp_path: Path) -> None:
    """The issue's acceptance check, as a user types it (a fresh process, the real model)."""
    env = {**os.environ, "RAG_INDEX_DIR": str(tmp_path / "ix")}
    out = subprocess.run(
        [sys.executable, "-m", "rag.cli", "ask", "Wer ist der russische UN-Botschafter?", "--json"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    payload = json.loads(out.stdout)
    cited = next(c for c in payload["citations"] if "Nebensja" in c["quote"])
    original = (ROOT / "corpus" / f"{cited['doc_id']}.md").read_text(encoding="utf-8")
    body = original.split("---\n", 2)[2]  # the article after its front matter
    assert body[cited["start"] : cited["end"]] == cited["quote"]
    assert "Nebensja" in payload["answer"]
