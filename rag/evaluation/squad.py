"""Evaluation data: SQuAD-format files as documents and gold spans, and question sets for abstention.

Each article of a SQuAD file becomes one document, its paragraphs in order separated by a blank line, so a
gold answer's offset in the document is its paragraph's offset plus ``answer_start``. Questions may come
from a second, parallel file (the same articles and question ids in another language), which measures
e.g. English questions over German documents.

A question set (``tests/data/seed_questions.json``) lists ``answerable`` questions, each with a fragment a
correct answer quotes and optionally the document it comes from, and ``unanswerable`` ones.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from rag.errors import BadRequestError
from rag.evaluation.metrics import Gold, Region
from rag.ingest.loading import doc_id_for, parse_document

PARAGRAPH_SEP = "\n\n"
T = TypeVar("T")


@dataclass(frozen=True)
class Article:
    doc_id: str
    filename: str
    title: str
    text: str  # the document text: the paragraphs joined by PARAGRAPH_SEP


@dataclass(frozen=True)
class Question:
    qid: str
    text: str
    gold: Gold


@dataclass(frozen=True)
class SquadSet:
    articles: list[Article]
    questions: list[Question]


@dataclass(frozen=True)
class SetQuestion:
    text: str
    answer: str | None  # a fragment a correct answer quotes; None = the articles cannot answer it
    doc_id: str | None = None  # the document the fragment must be quoted from, when known


@dataclass(frozen=True)
class FollowUp:
    """A question that needs the chat before it ("Und wann war das?")."""

    history: tuple[str, ...]  # the user's earlier questions, oldest first
    question: SetQuestion


def read_json(path: Path) -> Any:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except ValueError as exc:
        raise BadRequestError(f"{path} is not valid JSON ({exc})") from exc


def is_squad(data: Any) -> bool:
    return isinstance(data, dict) and isinstance(data.get("data"), list)


def load_squad(data: Any, questions_from: Any = None) -> SquadSet:
    """Articles and questions of a SQuAD v1.1 payload; ``questions_from`` swaps in parallel question texts.

    Raises:
        BadRequestError: the payload is not SQuAD-shaped, or a gold answer is not where it says.
    """
    if not is_squad(data):
        raise BadRequestError("the file is not in SQuAD format (a 'data' list of articles)")
    texts = _question_texts(questions_from) if questions_from is not None else {}
    articles: list[Article] = []
    questions: list[Question] = []
    for a_i, entry in enumerate(data["data"]):
        title = str(entry.get("title") or f"article {a_i}")
        filename = f"{a_i:03d}_{re.sub(r'[^A-Za-z0-9]+', '-', title).strip('-')[:60] or 'article'}.txt"
        doc_id = doc_id_for(filename)
        offset = 0
        contexts: list[str] = []
        for paragraph in entry.get("paragraphs", []):
            context = str(paragraph["context"])
            region = Region(doc_id, offset, offset + len(context))
            questions.extend(_question(qa, context, region, texts) for qa in paragraph.get("qas", []))
            contexts.append(context)
            offset += len(context) + len(PARAGRAPH_SEP)
        articles.append(Article(doc_id, filename, title.replace("_", " "), PARAGRAPH_SEP.join(contexts)))
    if not questions:
        raise BadRequestError("the SQuAD file has no questions")
    return SquadSet(articles, questions)


def _question_texts(data: Any) -> dict[str, str]:
    if not is_squad(data):
        raise BadRequestError("the questions file is not in SQuAD format")
    return {
        str(qa["id"]): str(qa["question"])
        for entry in data["data"]
        for paragraph in entry.get("paragraphs", [])
        for qa in paragraph.get("qas", [])
    }


def _question(qa: dict[str, Any], context: str, region: Region, texts: dict[str, str]) -> Question:
    qid = str(qa.get("id", ""))
    spans: list[Region] = []
    answers: list[str] = []
    for answer in qa.get("answers", []):
        start, text = int(answer["answer_start"]), str(answer["text"])
        if context[start : start + len(text)] != text:
            raise BadRequestError(
                f"question {qid}: gold answer {text!r} is not at offset {start} of its paragraph"
            )
        spans.append(Region(region.doc_id, region.start + start, region.start + start + len(text)))
        answers.append(text)
    if not answers:
        raise BadRequestError(f"question {qid} has no gold answer (SQuAD v2 unanswerables are not supported)")
    if texts and qid not in texts:
        raise BadRequestError(f"question {qid} is missing from the questions file: it must be parallel")
    return Question(qid, texts.get(qid, str(qa["question"])), Gold(region, tuple(spans), tuple(answers)))


def sample(items: Sequence[T], limit: int | None, seed: int) -> list[T]:
    """All items, or ``limit`` of them drawn with ``seed`` (kept in their order)."""
    if limit is None or limit >= len(items):
        return list(items)
    chosen = sorted(random.Random(seed).sample(range(len(items)), limit))
    return [items[i] for i in chosen]


def write_corpus(articles: Sequence[Article], folder: Path) -> dict[str, str]:
    """Write one file per article; returns each document's text, checked to read back exactly as written.

    Raises:
        BadRequestError: the loader would read a document differently from what was written.
    """
    folder.mkdir(parents=True, exist_ok=True)
    originals: dict[str, str] = {}
    for article in articles:
        head = "---\n" + json.dumps({"title": article.title}, ensure_ascii=False) + "\n---\n"
        data = (head + article.text).encode("utf-8")
        (folder / article.filename).write_bytes(data)
        doc = parse_document(data, article.filename)
        if doc.text != article.text or doc.doc_id != article.doc_id:
            raise BadRequestError(f"article {article.title!r} would not be read back as written")
        originals[doc.doc_id] = article.text
    return originals


def load_question_set(data: Any) -> list[SetQuestion]:
    """Questions of a question-set file: ``{"answerable": [...], "unanswerable": [...]}``, or a plain list
    (all unanswerable). Items are strings or objects with ``question`` (answerable ones also ``answer``,
    optionally ``doc``)."""
    if isinstance(data, list):
        data = {"unanswerable": data}
    if not isinstance(data, dict) or not {"answerable", "unanswerable"} & set(data):
        raise BadRequestError(
            "a question set is a list of questions, or has 'answerable' and 'unanswerable' lists"
        )
    out = [
        SetQuestion(str(i["question"]), str(i["answer"]), i.get("doc")) for i in data.get("answerable", [])
    ]
    for item in data.get("unanswerable", []):
        out.append(SetQuestion(str(item["question"] if isinstance(item, dict) else item), None))
    return out


def load_followups(data: Any) -> list[FollowUp]:
    """The ``followups`` of a question-set file: ``{"history": [...], "question", "answer", "doc"}`` each."""
    items = data.get("followups", []) if isinstance(data, dict) else []
    return [
        FollowUp(
            tuple(map(str, i["history"])), SetQuestion(str(i["question"]), str(i["answer"]), i.get("doc"))
        )
        for i in items
    ]
