"""The benchmark scripts still run: each one's --quick mode with the instant fake embedder."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import backends, incremental, ingest, pg_refresh, pg_scale, query, scale, start
from bench.common import variant, xquad


@pytest.fixture(autouse=True)
def _fake_model(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAG_MODEL", "test:words")


def _run(main, tmp_path: Path, *extra: str) -> dict:  # type: ignore[no-untyped-def]
    out = tmp_path / "figures.json"
    main(["--quick", "--json", str(out), *extra])
    return json.loads(out.read_text())


def test_ingest(tmp_path: Path) -> None:
    figures = _run(ingest.main, tmp_path)
    assert figures["chunks"] > 0 and figures["build.chunks_per_s"] > 0


def test_incremental_equals_a_full_rebuild(tmp_path: Path) -> None:
    figures = _run(incremental.main, tmp_path)
    assert all(v for k, v in figures.items() if k.startswith("equals_full_rebuild.")), figures


def test_start(tmp_path: Path) -> None:
    figures = _run(start.main, tmp_path)
    assert 0 < figures["rag_ask.first_answer_s.median"] < 60
    assert figures["rag_serve.peak_rss_mb"] > figures["rag_ask.peak_rss_mb"] > 10


def test_query(tmp_path: Path) -> None:
    figures = _run(query.main, tmp_path, "--clients", "2")
    assert figures["single.http_ms.median"] > 0 and figures["clients2.throughput"] > 0


def test_scale(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(scale, "RESULTS", tmp_path / "cache")
    figures = _run(scale.main, tmp_path)
    assert {"n=1000.exact.query_ms.median", "n=3000.hnsw.recall@10"} <= set(figures)


def test_backends(tmp_path: Path) -> None:
    figures = _run(backends.main, tmp_path, "--backends", "torch,onnx")
    assert figures["onnx.eval.hit@1_delta_points"] == 0.0  # the fake model is the same for every backend


@pytest.mark.postgres
@pytest.mark.usefixtures("pg_server")  # the session's server: it removes the system user the bench may need
def test_pg_scale(tmp_path: Path) -> None:
    figures = _run(pg_scale.main, tmp_path, "--bulk")
    assert figures["n=1000.ratio.retrieve"] > 0 and figures["n=1000.postgres.hnsw_overlap@10"] > 0.5


@pytest.mark.postgres
@pytest.mark.usefixtures("pg_server")
def test_pg_refresh(tmp_path: Path) -> None:
    figures = _run(pg_refresh.main, tmp_path)
    assert figures["equals_whole_read"] is True and figures["read_after_commit_s.median"] > 0


def test_helpers() -> None:
    squad = xquad()
    copy = variant(squad.articles[0], 3)
    assert copy.doc_id != squad.articles[0].doc_id and copy.text != squad.articles[0].text
    assert sorted(copy.text.split("\n\n"))[0].startswith("Fassung 3 des Berichts.")
