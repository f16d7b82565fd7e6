"""The `rag` command as a user runs it: subprocesses, the fake embedder, one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .conftest import ROOT

RAG = [sys.executable, "-m", "rag.cli"]


def run(args: list[str], tmp_path: Path, env: dict[str, str] | None = None, stdin: str | None = None):
    full_env = {**os.environ, "RAG_MODEL": "test:words", "RAG_INDEX_DIR": str(tmp_path / "ix"), **(env or {})}
    return subprocess.run(
        RAG + args, capture_output=True, text=True, env=full_env, cwd=ROOT, input=stdin, timeout=120
    )


def test_help_is_instant_and_lists_the_commands(tmp_path: Path) -> None:
    started = time.perf_counter()
    out = run(["--help"], tmp_path)
    assert out.returncode == 0
    for command in ("index", "ask", "serve"):
        assert command in out.stdout
    # `rag --help` must not import torch or the model (a generous bound, not a benchmark)
    assert time.perf_counter() - started < 10
    probe = subprocess.run(
        [sys.executable, "-c", "import sys, rag.cli; print('torch' in sys.modules, 'faiss' in sys.modules)"],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert probe.stdout.split() == ["False", "False"]


def test_index_then_ask(seed_corpus: Path, tmp_path: Path) -> None:
    built = run(["index", "--corpus", str(seed_corpus)], tmp_path)
    assert built.returncode == 0, built.stderr
    assert "2 files" in built.stdout and "2 embedded" in built.stdout and "0 reused" in built.stdout
    again = run(["index", "--corpus", str(seed_corpus)], tmp_path)
    assert "already up to date" in again.stdout and "2 reused" in again.stdout

    asked = run(["ask", "Wer ist der russische UN-Botschafter?", "--corpus", str(seed_corpus)], tmp_path)
    assert asked.returncode == 0, asked.stderr
    assert "Nebensja" in asked.stdout and "[1]" in asked.stdout and "Quellen:" in asked.stdout

    as_json = run(
        [
            "ask",
            "Wer ist der russische UN-Botschafter?",
            "--json",
            "--top-k",
            "3",
            "--corpus",
            str(seed_corpus),
        ],
        tmp_path,
    )
    payload = json.loads(as_json.stdout)
    assert len(payload["passages"]) == 3 and payload["citations"][0]["quote"] in payload["answer"]


def test_interactive_session_answers_until_an_empty_line(seed_corpus: Path, tmp_path: Path) -> None:
    out = run(
        ["ask", "--corpus", str(seed_corpus)],
        tmp_path,
        stdin="Wer ist der russische UN-Botschafter?\nWann wurde Nordkorea gegründet?\n\nNicht gefragt\n",
    )
    assert out.returncode == 0, out.stderr
    assert "Nebensja" in out.stdout and "1948" in out.stdout
    assert out.stdout.count("? ") == 3  # two answers, then the empty line ends the session


def test_skipped_files_are_reported(seed_corpus: Path, tmp_path: Path) -> None:
    (seed_corpus / "leer.txt").write_bytes(b"")
    out = run(["index", "--corpus", str(seed_corpus)], tmp_path)
    assert out.returncode == 0
    assert "skipped leer.txt: it is empty" in out.stderr and "1 skipped" in out.stdout


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (
            ["ask", "Frage?", "--corpus", "/nonexistent/folder"],
            {},
            "corpus folder /nonexistent/folder does not exist",
        ),
        (["ask", "   "], {}, "the question is empty"),
        (["index"], {"RAG_CHUNK_TOKENS": "5"}, "invalid setting: chunk_tokens"),
        (["index"], {"RAG_MODEL": "test:nope"}, "unknown test embedder"),
    ],
)
def test_errors_are_one_line_without_traceback(
    seed_corpus: Path, tmp_path: Path, args: list[str], env: dict[str, str], message: str
) -> None:
    if "--corpus" not in args:
        args = [*args, "--corpus", str(seed_corpus)]
    out = run(args, tmp_path, env)
    assert out.returncode != 0
    assert "Traceback" not in out.stderr
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and message in lines[0], out.stderr


def test_index_built_with_another_model_is_a_clear_error(seed_corpus: Path, tmp_path: Path) -> None:
    assert run(["index", "--corpus", str(seed_corpus)], tmp_path).returncode == 0
    from rag.indexing.store import expected_config, load_snapshot

    with pytest.raises(Exception, match="run `rag index`"):
        load_snapshot(tmp_path / "ix", expected_config("test:words-32", 32, 200, 1, "de"))
    # the product itself rebuilds rather than serving vectors of another model
    rebuilt = run(["index", "--corpus", str(seed_corpus)], tmp_path, {"RAG_MODEL": "test:words-32"})
    assert rebuilt.returncode == 0 and "2 embedded" in rebuilt.stdout
    assert (  # and says why
        "re-embedding the whole corpus now, because the index was built with model test:words (64 "
        "dimensions), but the settings ask for test:words-32 (32 dimensions)"
    ) in rebuilt.stderr


def test_ask_filters_by_date_source_and_document(tmp_path: Path) -> None:
    corpus = ROOT / "tests" / "data" / "dated"
    question = "Wie viele Liegeplätze hat der Hafen von Beispielstadt?"
    both = run(["ask", question, "--corpus", str(corpus)], tmp_path)
    assert both.returncode == 0, both.stderr
    assert "Quellen (neueste zuerst):" in both.stdout and "2024-08-20" in both.stdout
    assert both.stdout.index("2024-08-20 (") < both.stdout.index("2024-07 (")

    july = run(["ask", question, "--corpus", str(corpus), "--to", "2024-07-31", "--json"], tmp_path)
    body = json.loads(july.stdout)
    assert body["filters"] == {"documents": 1, "undated_excluded": 1}
    assert {c["date"] for c in body["citations"]} == {"2024-07"}

    text = run(["ask", question, "--corpus", str(corpus), "--source", "Reuters", "--source", "x"], tmp_path)
    assert text.returncode == 0 and "(filtered: 1 matching articles searched)" in text.stdout
    doc = body["citations"][0]["doc_id"]
    one = run(["ask", question, "--corpus", str(corpus), "--doc", doc, "--json"], tmp_path)
    assert {c["doc_id"] for c in json.loads(one.stdout)["citations"]} == {doc}


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--from", "2030-01-01"], "error: no article matches the filters (dates 2030-01-01 to any)"),
        (["--from", "2024-07"], "--from takes a day written YYYY-MM-DD"),
        (["--from", "2024-08-01", "--to", "2024-07-01"], "--from is after --to"),
    ],
)
def test_ask_with_a_bad_or_empty_filter_says_so(tmp_path: Path, flags: list[str], message: str) -> None:
    corpus = ROOT / "tests" / "data" / "dated"
    out = run(["ask", "Wie viele Liegeplätze?", "--corpus", str(corpus), *flags], tmp_path)
    assert out.returncode != 0 and message in out.stderr and "Traceback" not in out.stderr
