"""Writing to the corpus folder: uploads stored under safe names, atomically, and removals.

An upload is validated with the same parser the loader uses before it is stored, so nothing unusable
lands in the corpus. The article's bytes are stored exactly as uploaded; metadata given beside an upload
(and not already in the file) goes into YAML front matter above them, which the loader strips again.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import yaml

from rag.errors import BadDocumentError, DocumentExistsError, DocumentNotFoundError, DocumentTooLargeError
from rag.files import write_atomically
from rag.ingest.extract import EXTRACTED_SUFFIXES
from rag.ingest.loading import (
    FRONT_MATTER,
    SUPPORTED_NAMES,
    SUPPORTED_SUFFIXES,
    decode_text,
    doc_id_for,
    parse_document,
    text_hash,
)
from rag.types import Document, DocumentMeta

_MAX_NAME = 100
_RESERVED = {"con", "prn", "aux", "nul", *(f"com{i}" for i in range(10)), *(f"lpt{i}" for i in range(10))}


def safe_filename(name: str) -> str:
    """A plain file name inside the corpus folder from whatever a client sent.

    Raises:
        BadDocumentError: no usable name, or an extension other than .txt, .md, .html, .htm or .pdf.
    """
    base = unicodedata.normalize("NFKC", name or "").replace("\\", "/").rsplit("/", 1)[-1]
    stem, dot, suffix = base.rpartition(".")
    if not dot or f".{suffix.lower()}" not in SUPPORTED_SUFFIXES:
        raise BadDocumentError(f"unsupported file type for {base[:60]!r}: upload a {SUPPORTED_NAMES} article")
    stem = re.sub(
        r"[^A-Za-z0-9_-]+", "-", unicodedata.normalize("NFKD", stem).encode("ascii", "ignore").decode()
    )
    stem = stem.strip("-_")[: _MAX_NAME - 4] or "article"
    if stem.lower() in _RESERVED:
        stem = f"article-{stem}"
    return f"{stem}.{suffix.lower()}"


class CorpusWriter:
    def __init__(self, root: Path) -> None:
        self.root = root

    def add(
        self,
        filename: str,
        data: bytes,
        meta: DocumentMeta | None,
        max_bytes: int,
        same_text: Callable[[str], Document | None] = lambda key: None,
        taken: Callable[[str], bool] = lambda doc_id: False,
    ) -> str:
        """Store one article; returns its path in the corpus. ``same_text`` finds an article already in
        the corpus by :func:`~rag.ingest.loading.text_hash`: an upload of its text under another name is
        refused before anything is stored, as is one whose document id is ``taken`` in the index (another
        server's folder may hold it)."""
        if len(data) > max_bytes:
            raise DocumentTooLargeError(f"the article is larger than the limit of {max_bytes} bytes")
        name = safe_filename(filename)
        payload = data
        if meta is not None and name.endswith(EXTRACTED_SUFFIXES):
            # front matter cannot go above HTML or PDF; their metadata is read from the file itself
            raise BadDocumentError(
                "title, date, source, language and url can be given with .txt and .md only"
            )
        if meta is not None and not FRONT_MATTER.match(decode_text(data)):
            fields = {k: v for k, v in asdict(meta).items() if v}
            head = "---\n" + yaml.safe_dump(fields, allow_unicode=True, sort_keys=False) + "---\n"
            payload = head.encode("utf-8") + data
        doc = parse_document(payload, name)  # raises BadDocumentError with the reason
        same = same_text(text_hash(doc.text))
        if same is not None:
            raise DocumentExistsError(
                f"this article is already in the corpus as {same.doc_id!r} ({same.path}); nothing was stored"
            )
        target = self.root / name
        if target.exists() or taken(doc.doc_id) or any(doc_id_for(p) == doc.doc_id for p in self.paths()):
            raise DocumentExistsError(f"an article named {name!r} already exists; delete it first")
        self.root.mkdir(parents=True, exist_ok=True)
        write_atomically(target, payload)
        return name

    def remove(self, doc_id: str, missing_ok: bool = False) -> None:
        for rel in self.paths():
            if doc_id_for(rel) == doc_id:
                (self.root / rel).unlink()
                return
        if not missing_ok:
            raise DocumentNotFoundError(f"no article with id {doc_id!r} in the corpus folder")

    def paths(self) -> list[str]:
        """The folder's files, relative to it (hidden ones left out, as the loader leaves them)."""
        if not self.root.is_dir():
            return []
        return [
            p.relative_to(self.root).as_posix()
            for p in self.root.rglob("*")
            if p.is_file() and not any(part.startswith(".") for part in p.relative_to(self.root).parts)
        ]
