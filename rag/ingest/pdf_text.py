"""The text of a PDF article, as paragraphs with the offset of each page (run in rag.ingest.extract's worker).

pdfium's text layer, page by page. Lines are joined into paragraphs with single spaces; a paragraph ends
where the white space above the next line exceeds the page's usual white space between lines (its lower
quartile, so that a few wide gaps do not raise it; at most half a font height) by over
:data:`PARAGRAPH_GAP` font heights, or where the font height changes by over a fifth (a heading). A hyphen
pdfium marks as a line-end break is dropped before a lower-case letter ("Bundes-|regierung"). Every page
starts a new paragraph, and :attr:`~rag.ingest.extracted.Extracted.pages` records where each page starts, so
that
a citation knows its page. The title and author come from the document's properties (else a short first
line is the title); the date is not guessed, since a PDF's creation date is when it was printed.
"""

from __future__ import annotations

import itertools
import re
from typing import Any

from rag.errors import BadDocumentError
from rag.ingest.extracted import MAX_CHARS, Extracted, clean_text

MAX_PAGES = 1000
# White space between two lines' font boxes, in font heights: ~0.3 inside a paragraph of 11 pt type on 17 pt
# lines; a paragraph break adds at least half a line to the page's usual white space.
PARAGRAPH_GAP = 0.5
_SOFT_HYPHEN = re.compile("\x02(?=[a-zäöüß])")
_ERRORS = {  # pdfium's FPDF_ERR_* codes
    3: "it is not a readable PDF (damaged or truncated)",
    4: "it is an encrypted PDF that needs a password: add a copy without the password",
    5: "it is an encrypted PDF with a security handler pdfium cannot open: add an unencrypted copy",
}


def read_pdf(data: bytes) -> Extracted:
    """The text of a PDF's pages.

    Raises:
        BadDocumentError: encrypted, damaged, no text layer, over :data:`MAX_PAGES` pages or
            :data:`~rag.ingest.extracted.MAX_CHARS` characters.
    """
    import pypdfium2 as pdfium

    try:
        doc = pdfium.PdfDocument(data)
    except pdfium.PdfiumError as exc:
        code = int(getattr(exc, "err_code", None) or 0)
        raise BadDocumentError(_ERRORS.get(code, "it is not a readable PDF")) from exc
    try:
        if len(doc) > MAX_PAGES:
            raise BadDocumentError(f"it has {len(doc)} pages, more than {MAX_PAGES}")
        pages: list[str] = []
        total = 0
        for index in range(len(doc)):
            page = doc[index]
            textpage = page.get_textpage()
            pages.append("\n\n".join(_paragraphs(textpage)))
            textpage.close()
            page.close()
            total += len(pages[-1])
            if total > MAX_CHARS:
                raise BadDocumentError(f"its text is longer than {MAX_CHARS} characters")
        info = doc.get_metadata_dict(skip_empty=True)
    finally:
        doc.close()
    return _joined(pages, info)


def _joined(pages: list[str], info: dict[str, str]) -> Extracted:
    starts: list[int] = []
    parts: list[str] = []
    pos = 0
    for text in pages:
        if text and parts:
            pos += 2  # the blank line between two pages' text
        starts.append(pos)
        if text:
            parts.append(text)
            pos += len(text)
    text = "\n\n".join(parts)
    if not text.strip():
        raise BadDocumentError("it has no text layer (a scanned PDF?): run OCR on it first, then add it")
    first = parts[0].split("\n\n", 1)[0]
    heading = len(first) <= 300 and len(first.split()) <= 15 and not first.endswith(".")
    meta = {"title": info.get("Title") or (first if heading else ""), "author": info.get("Author", "")}
    return Extracted(text, {k: " ".join(v.split()) for k, v in meta.items() if v.strip()}, tuple(starts))


def _paragraphs(textpage: Any) -> list[str]:
    """One page's text as paragraphs, its lines joined with single spaces."""
    lines = _lines(textpage)
    if not lines:
        return []
    pairs = list(itertools.pairwise(lines))
    spaces = sorted(a[2] - b[1] for a, b in pairs if a[1] > b[1])
    usual = spaces[len(spaces) // 4] if spaces else 0.0
    paragraphs: list[list[str]] = [[lines[0][0]]]
    for (_, top, bottom), (text, next_top, next_bottom) in pairs:
        height, next_height = top - bottom, next_top - next_bottom
        up = next_top >= top  # the next column
        size = max(height, next_height)
        # the usual space, but at most half a line: a page of two paragraphs has no usual space of its own
        wide = bottom - next_top > min(usual, size / 2) + PARAGRAPH_GAP * size
        if up or wide or abs(next_height - height) > 0.2 * max(height, next_height):
            paragraphs.append([])
        paragraphs[-1].append(text)
    joined = (_SOFT_HYPHEN.sub("", " ".join(p)).replace("\x02", "-") for p in paragraphs)
    return [clean_text(" ".join(p.split())) for p in joined if p.strip()]


def _lines(textpage: Any) -> list[tuple[str, float, float]]:
    """The page's lines as pdfium orders them: (text, top, bottom of its first character's font box)."""
    import pypdfium2.raw as pdfium_c

    lines: list[tuple[str, float, float]] = []
    chars: list[str] = []
    box: tuple[float, float] | None = None
    for index in range(textpage.count_chars()):
        code = pdfium_c.FPDFText_GetUnicode(textpage, index)
        if code == 10:  # pdfium's generated "\r\n" ends a line
            if box is not None:
                lines.append(("".join(chars), *box))
            chars, box = [], None
        elif code not in (0, 13):
            chars.append(chr(code) if code < 0xD800 or code > 0xDFFF else "\ufffd")
            if box is None and not chars[-1].isspace():
                _, bottom, _, top = textpage.get_charbox(index, loose=True)
                box = (top, bottom)
    if box is not None:
        lines.append(("".join(chars), *box))
    return lines
