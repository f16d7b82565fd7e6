"""Load articles from the corpus folder into :class:`Document` values, keeping their original text.

A document's ``text`` is the file's text after any YAML front matter; everything downstream refers to
it by character offsets. The news-wire quirks of the seed articles are recognised here and only move
the boundaries of answerable blocks, never the text itself:

- a leading ``date 2024-07`` prefix becomes the date and is not answerable;
- a dateline ``NEW YORK/MOSKAU (dpa-AFX) -`` names the source and is not part of the first sentence;
- a trailing author tag such as ``/scb/DP/he`` is cut from the last block;
- short one-line blocks without a closing full stop are headings, kept apart from the next sentence.

HTML and PDF files are read by :mod:`rag.ingest.extract`; their extracted text is the document's text.

At ~350 lines this module is over the house's ~300 on purpose: one document's whole path from bytes to
blocks (front matter, datelines, headings, the four formats' routes) reads in one place.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import unicodedata
from collections.abc import Collection
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path

import yaml

from rag.errors import BadDocumentError, CorpusError
from rag.ingest.extract import EXTRACTED_SUFFIXES, extract
from rag.text.language import detect_language
from rag.types import Block, Document, DocumentMeta

log = logging.getLogger(__name__)

SUPPORTED_SUFFIXES = (".txt", ".md", *EXTRACTED_SUFFIXES)
SUPPORTED_NAMES = ".txt, .md, .html, .htm or .pdf"
FRONT_MATTER = re.compile(r"\A---[ \t]*\r?\n(.*?)\r?\n---[ \t]*(?:\r?\n|\Z)", re.DOTALL)
_DATE_PREFIX = re.compile(r"\A\s*date[ \t]+(\d{4}-\d{2}(?:-\d{2})?)\b[ \t]*")
# "NEW YORK/MOSKAU/PJÖNGJANG (dpa-AFX) - ": upper-case places, the agency in brackets, a dash.
_DATELINE = re.compile(r"\A([A-ZÄÖÜ][A-ZÄÖÜ .'/-]{1,80}?)\s*\(([^()\n]{2,40})\)\s*[-–—]\s+")
# "/scb/DP/he" at the very end: two or more slash-led initials groups.
_AUTHOR_TAG = re.compile(r"(?<=[\s.!?\"“”»])(?:/[A-Za-z]{1,5}){2,}\s*\Z")
_BLOCK_SEP = re.compile(r"\n[ \t]*\n\s*")
_MD_HEADING = re.compile(r"\A#{1,6}[ \t]+")
_HEADING_MAX_WORDS = 12
_SENTENCE_END = (".", '"', "“", "”", "»", "«", "!", ":", ";", ",", ")")
_TAIL = 200  # characters at the end of a text searched for an author tag
# Metadata values are short texts; an article's front matter is a few lines.
META_LIMITS = {"title": 300, "date": 40, "source": 200, "language": 10, "url": 2000, "author": 200}
MAX_FRONT_MATTER = 16_384
URL = re.compile(r"https?://\S+\Z")


class _AliasError(yaml.YAMLError):
    pass


class _NoAliasLoader(yaml.SafeLoader):
    """PyYAML's safe loader without aliases: ``*a`` repeats an anchored value, and a few hundred bytes of
    nested aliases expand into millions of characters (a "billion laughs"); front matter never needs them."""

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        if self.check_event(yaml.AliasEvent):
            raise _AliasError("aliases are not allowed in front matter")
        return super().compose_node(parent, index)


@dataclass(frozen=True)
class Skipped:
    path: str
    reason: str


@dataclass(frozen=True)
class LoadResult:
    documents: list[Document]
    skipped: list[Skipped]


# Over 40 lines on purpose: one walk over the folder with each skip reason beside its check.
def load_corpus(corpus_dir: Path, indexed: Collection[str] = ()) -> LoadResult:
    """Load every supported file under ``corpus_dir``; unusable files are skipped with a logged reason.

    Two files with the same article text, or the same id, are one article: the file that was there first
    keeps it (one of ``indexed``, the paths the index already holds; else the older file; else the first
    by path), and the other is skipped as its duplicate, so a copy never hides the original.

    Raises:
        CorpusError: the folder does not exist, or holds no usable article.
    """
    corpus_dir = Path(corpus_dir)
    if not corpus_dir.is_dir():
        raise CorpusError(
            f"corpus folder {corpus_dir} does not exist: create it and put {SUPPORTED_NAMES} articles in it"
        )
    root = corpus_dir.resolve()
    loaded: list[tuple[Document, float]] = []
    skipped: list[Skipped] = []
    for path in sorted(corpus_dir.rglob("*")):
        rel = path.relative_to(corpus_dir).as_posix()
        if any(part.startswith(".") for part in path.relative_to(corpus_dir).parts):
            continue  # hidden files and folders (editor swap files, .git) are not articles
        if path.is_dir():
            continue
        try:
            loaded.append((_load_checked(path, rel, root), path.lstat().st_mtime))
        except BadDocumentError as exc:
            _skip(skipped, os.fsencode(rel).decode("utf-8", "replace"), exc.message)
    first = set(indexed)
    loaded.sort(key=lambda entry: (entry[0].path not in first, entry[1], entry[0].path))
    documents: list[Document] = []
    by_id: dict[str, str] = {}
    by_text: dict[str, str] = {}
    for doc, _ in loaded:
        key = text_hash(doc.text)
        if doc.doc_id in by_id:
            _skip(skipped, doc.path, f"its id {doc.doc_id!r} is already used by {by_id[doc.doc_id]}")
        elif key in by_text:
            _skip(skipped, doc.path, f"duplicate of {by_text[key]}")
        else:
            by_id[doc.doc_id] = by_text[key] = doc.path
            documents.append(doc)
    if not documents:
        raise CorpusError(
            f"corpus folder {corpus_dir} has no usable article: put {SUPPORTED_NAMES} files in it"
            + (f" ({len(skipped)} file(s) skipped)" if skipped else "")
        )
    documents.sort(key=lambda d: d.path)
    return LoadResult(documents, skipped)


def text_hash(text: str) -> str:
    """What makes two files the same article: the hash of their text (front matter aside)."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def _skip(skipped: list[Skipped], path: str, reason: str) -> None:
    skipped.append(Skipped(path, reason))
    log.warning("skipped %s: %s", path, reason)


def _load_checked(path: Path, rel: str, root: Path) -> Document:
    if os.fsencode(rel).decode("utf-8", "replace") != rel:  # an old Latin-1 archive's "café.txt"
        raise BadDocumentError("its file name is not UTF-8: rename the file")
    if path.is_symlink() and not path.resolve().is_relative_to(root):
        raise BadDocumentError("it is a link to a file outside the corpus folder")
    if path.suffix.lower() not in SUPPORTED_SUFFIXES:
        raise BadDocumentError(f"unsupported file type {path.suffix or '(none)'!r}: use {SUPPORTED_NAMES}")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise BadDocumentError(f"cannot be read ({exc.strerror or exc})") from exc
    return parse_document(data, rel)


def doc_id_for(rel_path: str) -> str:
    """A URL-safe id from the file's path inside the corpus: ``news/a b.md`` -> ``news--a-b``."""
    stem = rel_path.rsplit(".", 1)[0]
    parts = [re.sub(r"[^A-Za-z0-9_.-]+", "-", p).strip("-.") or "doc" for p in stem.split("/")]
    return "--".join(parts)


def decode_text(data: bytes, name: str = "the file") -> str:
    """UTF-8 (with or without BOM); Windows-1252/Latin-1 German text is decoded too, with a warning.

    Raises:
        BadDocumentError: binary content, or text that is not in either encoding.
    """
    if b"\x00" in data[:65536]:
        raise BadDocumentError("it is a binary file, not text")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    try:
        text = data.decode("cp1252")
    except UnicodeDecodeError as exc:
        raise BadDocumentError("it is neither UTF-8 nor Windows-1252/Latin-1 text") from exc
    log.warning("%s is not UTF-8; decoded it as Windows-1252 (Latin-1)", name)
    return text


def parse_document(data: bytes, rel_path: str) -> Document:
    """Parse one article's bytes; ``rel_path`` names it (its id comes from it)."""
    if rel_path.lower().endswith(EXTRACTED_SUFFIXES):
        return _extracted_document(data, rel_path)
    text = decode_text(data, rel_path)
    controls = sum(1 for ch in text[:65536] if ord(ch) < 32 and ch not in "\t\n\r\f")
    if controls > max(8, len(text[:65536]) // 100):
        raise BadDocumentError("it looks like a binary file, not text")
    meta_raw, body = _split_front_matter(text)
    if not body.strip():
        raise BadDocumentError("it is empty" if not text.strip() else "it has front matter but no text")
    blocks, found = _blocks(body, markdown=rel_path.lower().endswith(".md"))
    if not blocks:
        raise BadDocumentError("it has no answerable text")
    meta = _meta(meta_raw, found, body, rel_path)
    return Document(
        doc_id=doc_id_for(rel_path),
        path=rel_path,
        text=body,
        meta=meta,
        blocks=tuple(blocks),
        sha256=hashlib.sha256(data).hexdigest(),
    )


def _extracted_document(data: bytes, rel_path: str) -> Document:
    """An HTML or PDF article, its extracted text as its text; metadata found in the file that breaks
    :data:`META_LIMITS` is left out with a warning (a title is shortened)."""
    found = extract(data, rel_path)
    blocks, furniture = _blocks(found.text, markdown=False)
    if not blocks:
        raise BadDocumentError("it has no answerable text")
    raw: dict[str, str] = {}
    for name, value in found.meta.items():
        try:
            raw[name] = check_meta(name, _shortened(value) if name == "title" else value)
        except BadDocumentError as exc:
            log.warning("%s: leaving out the %s found in it: %s", rel_path, name, exc.message)
    return Document(
        doc_id=doc_id_for(rel_path),
        path=rel_path,
        text=found.text,
        meta=_meta(raw, furniture, found.text, rel_path),
        blocks=tuple(blocks),
        sha256=hashlib.sha256(data).hexdigest(),
        pages=found.pages,
    )


def _split_front_matter(text: str) -> tuple[dict[str, str], str]:
    match = FRONT_MATTER.match(text)
    if not match:
        return {}, text
    if len(match.group(1)) > MAX_FRONT_MATTER:
        raise BadDocumentError(f"its front matter is longer than {MAX_FRONT_MATTER} characters")
    try:
        raw = yaml.load(match.group(1), Loader=_NoAliasLoader) or {}
    except yaml.YAMLError as exc:
        why = "aliases are not allowed" if isinstance(exc, _AliasError) else exc.__class__.__name__
        raise BadDocumentError(f"its YAML front matter does not parse ({why})") from exc
    if not isinstance(raw, dict):
        raise BadDocumentError("its front matter is not a mapping of keys to values")
    unknown = set(map(str, raw)) - set(META_LIMITS)
    if unknown:
        log.warning("%s: ignoring unknown front matter keys %s", "front matter", sorted(unknown)[:10])
    meta = {k: check_meta(k, raw[k]) for k in META_LIMITS if raw.get(k) is not None}
    return {k: v for k, v in meta.items() if v}, text[match.end() :]


def check_meta(name: str, value: object) -> str:
    """A metadata value as the text it stands for, its white space folded, checked: a scalar, at most
    ``META_LIMITS[name]`` characters, no control characters, a URL only with http(s).

    Raises:
        BadDocumentError: the value breaks one of those rules.
    """
    if isinstance(value, bool) or not isinstance(value, str | int | float | date):
        raise BadDocumentError(f"its {name} must be text, not a {type(value).__name__}")
    text = " ".join((value.isoformat() if isinstance(value, date) else str(value)).split())
    if len(text) > META_LIMITS[name]:
        raise BadDocumentError(f"its {name} is longer than {META_LIMITS[name]} characters")
    if any(unicodedata.category(ch) in ("Cc", "Cs") for ch in text):
        # a YAML escape such as "\ud800" makes a string that cannot be written as UTF-8 (the index, JSON)
        raise BadDocumentError(f"its {name} holds a control character or a \\u escape that is no character")
    if name == "url" and text and not URL.match(text):
        raise BadDocumentError("its url must be an http:// or https:// address")
    return text


def _meta(raw: dict[str, str], found: dict[str, str], body: str, rel_path: str) -> DocumentMeta:
    title = raw.get("title") or _shortened(found.get("title") or _title_from_path(rel_path))
    language = (raw.get("language") or detect_language(body)).lower()[:2]
    return DocumentMeta(
        title=title,
        date=raw.get("date") or found.get("date"),
        source=raw.get("source") or found.get("source"),
        language=language if language in ("de", "en") else "de",
        url=raw.get("url"),
        author=raw.get("author"),
    )


def _shortened(title: str) -> str:
    """A title found in the text or the file name, cut at a word to at most ``META_LIMITS["title"]``."""
    title = title.strip()
    limit = META_LIMITS["title"]
    if len(title) <= limit:
        return title
    cut = title.rfind(" ", limit // 2, limit)
    return title[: cut if cut > 0 else limit - 1].rstrip() + "…"


def _title_from_path(rel_path: str) -> str:
    stem = rel_path.rsplit("/", 1)[-1].rsplit(".", 1)[0]
    return re.sub(r"[_-]+", " ", stem).strip() or stem


def _blocks(body: str, markdown: bool) -> tuple[list[Block], dict[str, str]]:
    """Cut the body into paragraph and heading blocks, stripping the wire-report furniture."""
    found: dict[str, str] = {}
    start, end = 0, len(body)
    date = _DATE_PREFIX.match(body)
    if date:
        found["date"] = date.group(1)
        start = date.end()
    tag = _AUTHOR_TAG.search(body, max(start, end - _TAIL))  # it ends the text: only the tail is searched
    if tag:
        end = tag.start()
    blocks: list[Block] = []
    pos = start
    for sep in [*_BLOCK_SEP.finditer(body, start, end), None]:
        stop = sep.start() if sep else end
        block = _trim(body, pos, stop)
        if block is not None:
            blocks.append(block)
        if sep:
            pos = sep.end()
    out: list[Block] = []
    for block in blocks:
        out.append(_classify(body, block, markdown, "source" not in found, found))
    return [b for b in out if b.end > b.start], found


def _classify(
    body: str, block: Block, markdown: bool, may_have_dateline: bool, found: dict[str, str]
) -> Block:
    text = body[block.start : block.end]
    if markdown:
        md = _MD_HEADING.match(text)
        if md:
            found.setdefault("title", text[md.end() :].strip())
            return Block(block.start + md.end(), block.end, "heading")
    dateline = _DATELINE.match(text) if may_have_dateline else None
    if dateline:
        found.setdefault("source", dateline.group(2).strip())
        return Block(block.start + dateline.end(), block.end, "paragraph")
    if "\n" not in text and len(text.split()) <= _HEADING_MAX_WORDS and not text.endswith(_SENTENCE_END):
        return replace(block, kind="heading")
    return block


def _trim(body: str, start: int, stop: int) -> Block | None:
    while start < stop and body[start].isspace():
        start += 1
    while stop > start and body[stop - 1].isspace():
        stop -= 1
    return Block(start, stop) if stop > start else None
