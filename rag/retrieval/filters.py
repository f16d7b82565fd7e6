"""Filters: which articles a question is answered from, resolved once per question into chunk rows.

The rule for dates: an article's date stands for the whole period it names. ``2024-07-15`` is that day,
``2024-07`` every day of July 2024, ``2024`` the whole year (front matter, a leading ``date 2024-07`` line
and htmldate all give one of these; anything after the day, such as a time, is ignored). An article is in a
date range when its period overlaps it: ``2024-07`` is kept by ``date_from 2024-07-15`` (its last days are
in the range) and by ``date_to 2024-07-01``, and left out by ``date_to 2024-06-30``. An article without a
date, or with one that does not start with such a year, month or day, is left out by any date filter, and
counted (:attr:`Scope.undated_excluded`). Sources compare case-insensitively, with runs of white space as
one space; document ids exactly.

Retrieval searches only the matching chunks (:attr:`Scope.rows`, handed to
:meth:`rag.indexing.protocol.IndexSnapshot.dense_search` and applied to the lexical scores), so a filter
never leaves fewer than ``top_k`` passages while more matching ones exist.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date

import numpy as np

from rag.errors import NothingMatchesError
from rag.indexing.protocol import IndexSnapshot
from rag.types import Filters

_DATE = re.compile(r"(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?(?![\d-])")
_ROWS = "filters.doc_rows"  # the per-snapshot cache of each document's chunk rows


@dataclass(frozen=True)
class Scope:
    """A question's filters resolved against one snapshot."""

    filters: Filters
    rows: np.ndarray  # the chunk rows of the matching documents, ascending
    documents: int  # matching documents
    undated_excluded: int  # documents left out only because a date filter cannot place them


def date_period(text: str | None) -> tuple[date, date] | None:
    """The first and last day an article's date names (``2024-07``: July 1 and 31), or None without one."""
    found = _DATE.match(text.strip()) if text else None
    if not found:
        return None
    year, month, day = (int(g) if g else None for g in found.groups())
    assert year is not None  # the pattern always captures it
    try:
        if month is None:
            return date(year, 1, 1), date(year, 12, 31)
        if day is None:
            return date(year, month, 1), date(year, month, calendar.monthrange(year, month)[1])
        return date(year, month, day), date(year, month, day)
    except ValueError:  # 2024-13, 2024-02-30: not a date
        return None


def resolve(snap: IndexSnapshot, filters: Filters) -> Scope:
    """The documents and chunk rows ``filters`` leave in ``snap``.

    Raises:
        NothingMatchesError: no article matches (the message says why, undated articles counted).
    """
    sources = {_fold(s) for s in filters.sources}
    ids = set(filters.doc_ids)
    kept: list[str] = []
    undated = 0
    for doc in snap.documents.values():
        if (sources and _fold(doc.meta.source or "") not in sources) or (ids and doc.doc_id not in ids):
            continue
        period = date_period(doc.meta.date)
        if filters.by_date and period is None:
            undated += 1
        elif _in_range(period, filters):
            kept.append(doc.doc_id)
    if not kept:
        raise NothingMatchesError(_nothing(filters, undated, len(snap.documents)))
    by_doc = _doc_rows(snap)
    rows = np.sort(np.concatenate([by_doc.get(d, np.zeros(0, np.int64)) for d in kept]))
    return Scope(filters, rows, len(kept), undated)


def describe(filters: Filters) -> str:
    """The filters in words, for messages: ``dates 2024-07-01 to any, sources dpa-AFX``."""
    parts = []
    if filters.by_date:
        start, end = filters.date_from or "any", filters.date_to or "any"
        parts.append(f"dates {start} to {end}")
    if filters.sources:
        parts.append("sources " + ", ".join(filters.sources))
    if filters.doc_ids:
        parts.append(
            "documents " + ", ".join(filters.doc_ids[:5]) + (" …" if len(filters.doc_ids) > 5 else "")
        )
    return "; ".join(parts)


def _in_range(period: tuple[date, date] | None, filters: Filters) -> bool:
    if period is None:
        return True  # only reached without a date filter
    first, last = period
    after = filters.date_from is None or last >= filters.date_from
    before = filters.date_to is None or first <= filters.date_to
    return after and before


def _fold(source: str) -> str:
    return " ".join(source.split()).casefold()


def _nothing(filters: Filters, undated: int, total: int) -> str:
    why = f"no article matches the filters ({describe(filters)}) among the {total} articles"
    if undated:
        has, are = ("has", "is") if undated == 1 else ("have", "are")
        why += f"; {undated} of the others {has} no date and {are} left out by a date filter"
    return why + ": widen the filters (GET /documents lists each article's date and source)"


def _doc_rows(snap: IndexSnapshot) -> Mapping[str, np.ndarray]:
    """Each document's chunk rows, computed once per snapshot (a snapshot never changes)."""
    cached = snap.extras.get(_ROWS)
    if cached is None:
        grouped: dict[str, list[int]] = {}
        for row, doc_id in enumerate(snap.chunk_doc):
            grouped.setdefault(doc_id, []).append(row)
        cached = {d: np.asarray(r, dtype=np.int64) for d, r in grouped.items()}
        snap.extras[_ROWS] = cached
    return cached
