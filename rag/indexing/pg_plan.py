"""An update of the postgres store planned under the writers' lock: the corpus against the live document
versions by content hash, and the index's configuration against the stored one (as the local store's
manifest checks): which versions stay, which are embedded anew, the generation it builds."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

from rag.embedding.base import Embedder
from rag.indexing.build import BuildReport, corpus_language
from rag.indexing.pg_ingest import discard_unfinished
from rag.indexing.pg_rows import latest_generation
from rag.indexing.store import expected_config
from rag.ingest.loading import load_corpus
from rag.types import Document


@dataclass(frozen=True)
class Live:
    """A live document version in the database."""

    vid: int
    doc_id: str
    sha256: str

    def holds(self, doc: Document) -> bool:
        """This version is ``doc``: same content hash and id (its rows and vectors can stay)."""
        return (self.sha256, self.doc_id) == (doc.sha256, doc.doc_id)


@dataclass(frozen=True)
class Plan:
    """An update's plan: the generation it builds, the corpus, what stays and what was live."""

    number: int
    expected: dict[str, Any]
    docs: list[Document]  # the corpus's documents the update is about
    keep: set[str]  # paths whose live version stays: unchanged ones, and those outside the update
    live: dict[str, Live]
    vectors_ok: bool
    files: dict[str, str]  # every document of the new generation: path -> content hash

    @property
    def language(self) -> str:
        return str(self.expected["lexical"]["language"])

    @property
    def paths(self) -> set[str]:
        return {d.path for d in self.docs}

    @property
    def fresh(self) -> list[Document]:
        return [d for d in self.docs if d.path not in self.keep]

    @property
    def reanalyse(self) -> bool:
        """Some versions keep their vectors but need new postings (the lexical method changed)."""
        return self.vectors_ok and any(d.path in self.live and self.live[d.path].holds(d) for d in self.fresh)


def plan_update(
    conn: psycopg.Connection,
    corpus_dir: Path,
    embedder: Embedder,
    chunking: tuple[int, int],
    force: bool,
    report: BuildReport,
    only: Collection[str] | None = None,
) -> Plan | None:
    """What an update must do, under the writers' lock; None when the database is up to date.

    With ``only``, the update is about those corpus paths alone: each is added, replaced or (gone from
    the folder) removed, and every other live document stays as it is, whether or not this folder holds
    it, so that servers with folders of their own can share the database. The index keeps its language
    then; when the model, chunking or lexical method changed, the whole folder is indexed anew."""
    latest = latest_generation(conn)
    discard_unfinished(conn, latest.number if latest else 0)
    live = _live(conn)
    loaded = load_corpus(corpus_dir, list(live))
    docs, report.skipped = loaded.documents, loaded.skipped
    stored = _config(conn)
    dimension = _dimension(stored, embedder)
    expected = expected_config(embedder.name, dimension, *chunking, corpus_language(docs))
    others: dict[str, Live] = {}  # live documents outside the update: they stay
    if only is not None and stored is not None and not force:
        scoped = expected_config(embedder.name, dimension, *chunking, stored["lexical"]["language"])
        if _same(stored, scoped, ("model", "chunking", "lexical")):
            scope = set(only)
            expected, docs = scoped, [d for d in docs if d.path in scope]
            others = {p: v for p, v in live.items() if p not in scope}
    vectors_ok = not force and stored is not None and _same(stored, expected, ("model", "chunking"))
    keep = _unchanged(docs, live) if vectors_ok and _same(stored or {}, expected, ("lexical",)) else set()
    keep |= set(others)
    paths = {d.path for d in docs}
    within = set(live) - set(others)
    files = {**{p: v.sha256 for p, v in others.items()}, **{d.path: d.sha256 for d in docs}}
    report.files = len(files)
    if latest is not None and paths <= keep and within <= paths:
        report.up_to_date, report.reused_files = True, len(files)
        return None
    number = (latest.number if latest else 0) + 1
    report.removed_files = len(within - paths)
    return Plan(number, expected, docs, keep, live, vectors_ok, files)


def live_vid(live: Live | None) -> int | None:
    return live.vid if live is not None else None


def _unchanged(docs: list[Document], live: dict[str, Live]) -> set[str]:
    """Paths whose live version has the same content hash and id: their rows stay as they are."""
    return {d.path for d in docs if d.path in live and live[d.path].holds(d)}


def _live(conn: psycopg.Connection) -> dict[str, Live]:
    rows = conn.execute("SELECT path, vid, doc_id, sha256 FROM rag_documents WHERE died IS NULL").fetchall()
    return {r[0]: Live(int(r[1]), r[2], r[3]) for r in rows}


def _config(conn: psycopg.Connection) -> dict[str, Any] | None:
    row = conn.execute("SELECT value FROM rag_config WHERE key = 'build'").fetchone()
    return row[0] if row else None


def _dimension(stored: dict[str, Any] | None, embedder: Embedder) -> int:
    """The model's dimension, from the database when it names the same model (no model load needed)."""
    model = (stored or {}).get("model", {})
    if model.get("name") == embedder.name and isinstance(model.get("dimension"), int):
        return int(model["dimension"])
    return embedder.dimension


def _same(stored: dict[str, Any], expected: dict[str, Any], keys: tuple[str, ...]) -> bool:
    return all(stored.get(k) == expected[k] for k in keys)
