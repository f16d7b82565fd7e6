"""HTML pages and PDFs as real publishers and printers make them, built in the test (fpdf2, pypdfium2's
pdfium for reading): a news page with navigation, teasers and a footer; a multi-page PDF; and the bad
inputs (a scan without a text layer, an encrypted PDF, a page of links, truncated files, a PDF bomb)."""

from __future__ import annotations

import zlib
from datetime import UTC, datetime

from fpdf import FPDF
from PIL import Image

TITLE = "Bundestag beschließt neues Heizungsgesetz"
ARTICLE = [
    "Der Bundestag hat am Donnerstag nach monatelangem Streit das neue Gebäudeenergiegesetz beschlossen. "
    "Für den Entwurf stimmten 399 Abgeordnete, dagegen 275, es gab fünf Enthaltungen.",
    "Das Gesetz sieht vor, dass neu eingebaute Heizungen ab 2025 zu mindestens 65 Prozent mit erneuerbaren "
    "Energien betrieben werden. Für bestehende Gebäude gelten lange Übergangsfristen.",
    "Die Regierung will den Umstieg mit Zuschüssen von bis zu 70 Prozent der Kosten fördern. "
    "Bauministerin Klara Geywitz sprach von einem wichtigen Schritt für den Klimaschutz.",
    "Die Opposition kritisierte das Verfahren scharf. Der Entwurf sei handwerklich schlecht gemacht und "
    "verunsichere die Bürger, sagte ein Sprecher der Union.",
]
# what a news page has around its article, none of which may reach the article's text
FURNITURE = [
    "Startseite",
    "Wirtschaft",
    "Wärmepumpen: Was Hausbesitzer jetzt wissen müssen",
    "Kommentar: Ein Gesetz mit Folgen",
    "Strompreise steigen im Winter erneut",
    "Bahnstreik: Was Pendler wissen müssen",
    "Alle Rechte vorbehalten",
    "Impressum",
    "Newsletter abonnieren",
]

_TEASERS = """
<aside class="teaser-box"><h3>Mehr zum Thema</h3>
  <ul><li><a href="/waermepumpen">Wärmepumpen: Was Hausbesitzer jetzt wissen müssen</a></li>
      <li><a href="/kommentar">Kommentar: Ein Gesetz mit Folgen</a></li></ul></aside>"""


def news_page(paragraphs: list[str] = ARTICLE, closed: bool = True) -> bytes:
    """A publisher's article page: header navigation, the article with a teaser box in its middle, a
    "related" list, a newsletter box and a footer."""
    body = "\n".join(f"<p>{p}</p>" for p in paragraphs[:2])
    body += _TEASERS + "\n<h2>Förderung für Hausbesitzer</h2>\n"
    body += "\n".join(f"<p>{p}</p>" for p in paragraphs[2:])
    page = f"""<!DOCTYPE html>
<html lang="de">
<head>
<meta charset="utf-8">
<title>{TITLE} | Tagesblatt</title>
<meta property="og:site_name" content="Tagesblatt">
<meta property="og:title" content="{TITLE}">
<meta name="author" content="Anna Beispiel">
<meta property="article:published_time" content="2024-03-14T09:30:00+01:00">
<link rel="canonical" href="https://www.tagesblatt.example/politik/heizungsgesetz-123.html">
</head>
<body>
<header class="site-header">
  <a class="logo" href="/">Tagesblatt</a>
  <nav><ul><li><a href="/">Startseite</a></li><li><a href="/politik">Politik</a></li>
  <li><a href="/wirtschaft">Wirtschaft</a></li><li><a href="/sport">Sport</a></li></ul></nav>
</header>
<main>
<article>
<h1>{TITLE}</h1>
<p class="byline">Von Anna Beispiel, 14. März 2024</p>
{body}
</article>
<section class="related"><h2>Das könnte Sie auch interessieren</h2>
  <ul><li><a href="/strom">Strompreise steigen im Winter erneut</a></li>
      <li><a href="/bahn">Bahnstreik: Was Pendler wissen müssen</a></li></ul></section>
<div class="newsletter"><a href="/newsletter">Newsletter abonnieren</a></div>
</main>
<footer><p>© 2024 Tagesblatt Verlag GmbH. Alle Rechte vorbehalten.</p>
  <a href="/impressum">Impressum</a> <a href="/datenschutz">Datenschutz</a></footer>
</body>
"""
    return (page + ("</html>\n" if closed else "")).encode("utf-8")


def front_page() -> bytes:
    """A section front: navigation and a list of teasers linking to articles, no article of its own."""
    items = "".join(
        f'<li><a href="/a{i}"><h3>{t}</h3></a><span>vor {i + 1} Stunden</span></li>'
        for i, t in enumerate(FURNITURE[2:6] * 3)
    )
    return (
        "<!DOCTYPE html><html><head><title>Tagesblatt - Nachrichten</title></head><body>"
        '<nav><a href="/">Startseite</a> <a href="/politik">Politik</a></nav>'
        f"<main><h1>Politik</h1><ul>{items}</ul></main>"
        "<footer>Impressum | Datenschutz</footer></body></html>"
    ).encode()


PDF_TITLE = "Hafen Hamburg meldet Rekordumschlag"
PAGE_ONE = [
    "Der Hamburger Hafen hat im vergangenen Jahr so viele Container umgeschlagen wie nie zuvor. Die "
    "Hafengesellschaft meldete am Montag einen Umschlag von 9,8 Millionen Standardcontainern.",
    "Besonders stark wuchs der Verkehr mit Asien. Die Reedereien setzten größere Schiffe ein, die nur bei "
    "Flut in den Hafen einlaufen können.",
]
PAGE_TWO = [
    "Der Leuchtturm auf der Insel Neuwerk wurde im Jahr 1310 fertiggestellt und ist damit das älteste "
    "Bauwerk Hamburgs. Er diente zugleich als Wehrturm gegen Seeräuber.",
    "Die Elbvertiefung bleibt umstritten. Umweltverbände klagen gegen die nächste Baggerrunde.",
]
PAGE_THREE = ["Im Hafenmuseum erinnert eine Ausstellung an die Geschichte der Schauerleute."]


def news_pdf(pages: list[list[str]] | None = None, password: str | None = None) -> bytes:
    """A PDF article of several pages, a bold heading first, paragraphs set apart by white space, the
    third page's text hyphenated at a line end ("Bundes-" / "regierung")."""
    pdf = FPDF()
    pdf.set_creation_date(datetime(2024, 3, 14, tzinfo=UTC))  # the same bytes on every call
    pdf.set_title(PDF_TITLE)
    pdf.set_author("Max Muster")
    for number, paragraphs in enumerate(pages or [PAGE_ONE, PAGE_TWO, PAGE_THREE], 1):
        pdf.add_page()
        if number == 1:
            pdf.set_font("Helvetica", "B", 16)
            pdf.multi_cell(0, 8, PDF_TITLE)
            pdf.ln(4)
        pdf.set_font("Helvetica", size=11)
        for text in paragraphs:
            pdf.multi_cell(0, 6, text)
            pdf.ln(4)
        if number == 3:
            pdf.multi_cell(0, 6, "Das Museum wird von der Bundes-\nregierung gefördert.")
    if password:
        pdf.set_encryption(owner_password=password + "-owner", user_password=password)
    return bytes(pdf.output())


def scanned_pdf(pages: int = 2) -> bytes:
    """What a scanner makes: each page one image, no text layer."""
    pdf = FPDF()
    for _ in range(pages):
        pdf.add_page()
        pdf.image(Image.new("L", (600, 800), 235), x=10, y=10, w=180)
    return bytes(pdf.output())


def bomb_pdf(megabytes: int) -> bytes:
    """A one-page PDF whose content stream inflates to ``megabytes`` MB of text operators (1 MB of
    operators compresses to ~3 KB)."""
    line = b"BT /F1 12 Tf 72 700 Td (Hallo Welt) Tj ET\n"
    deflate = zlib.compressobj(9)
    stream = b"".join(deflate.compress(line * (2**20 // len(line))) for _ in range(megabytes))
    stream += deflate.flush()
    return raw_pdf(b"/Filter /FlateDecode /Length %d" % len(stream), stream)


def raw_pdf(stream_dict: bytes, stream: bytes) -> bytes:
    """A minimal one-page PDF around a content stream, with a correct cross-reference table."""
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Resources << /Font << /F1 5 0 R >> >> "
        b"/Contents 4 0 R >>",
        b"<< " + stream_dict + b" >>\nstream\n" + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)
