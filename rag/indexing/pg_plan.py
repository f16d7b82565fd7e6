"""An update of the postgres store planned under the writers' lock: the corpus against the live document
versions by content hash, and the index's configuration against the stored one (as the local store's
manifest checks): which versions stay, which are embedded anew, the generation it builds."""

from __future__ import annotations

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
    docs: list[Document]
    keep: set[str]
    live: dict[str, Live]
    vectors_ok: bool

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
) -> Plan | None:
    """What an update must do, under the writers' lock; None when the database is up to date."""
    latest = latest_generation(conn)
    discard_unfinished(conn, latest.number if latest else 0)
    live = _live(conn)
    loaded = load_corpus(corpus_dir, list(live))
    docs, report.skipped, report.files = loaded.documents, loaded.skipped, len(loaded.documents)
    stored = _config(conn)
    expected = expected_config(
        embedder.name,
        _dimension(stored, embedder),
        *chunking,
        corpus_language(docs),
    )
    vectors_ok = not force and stored is not None and _same(stored, expected, ("model", "chunking"))
    keep = _unchanged(docs, live) if vectors_ok and _same(stored or {}, expected, ("lexical",)) else set()
    if latest is not None and len(keep) == len(docs) == len(live):
        report.up_to_date, report.reused_files = True, len(docs)
        return None
    number = (latest.number if latest else 0) + 1
    report.removed_files = len(set(live) - {d.path for d in docs})
    return Plan(number, expected, docs, keep, live, vectors_ok)


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
