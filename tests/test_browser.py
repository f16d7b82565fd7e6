"""The product in a real browser: `rag serve` on the seed corpus with the real model, driven by Chromium.

Debian's Chromium (``make browser`` installs it; never a Playwright browser download). Every request the
page makes is recorded and must stay on the local server; a screenshot lands in ``test-artifacts/``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Locator, Page, sync_playwright

from bench.common import rag_serve

from .conftest import CORPUS, ROOT

pytestmark = [pytest.mark.browser, pytest.mark.model, pytest.mark.timeout(600)]

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = ROOT / "test-artifacts"
KEY = "browser-test-key"
QUESTION = "Wann wurde Nordkorea gegründet?"
MD_LINK = "[Foto](javascript:window.__pwned='md')"
ENTITIES = "&amp; &lt;i&gt;Bild&lt;/i&gt; &#60;b&#62;"
EVIL = (
    "Der Leuchtturm von Beispielhausen wurde 1888 gebaut und ist <b>40 Meter</b> hoch, "
    f"{MD_LINK} {ENTITIES}.\n\n"
    '<script>window.__pwned = "script"</script><img src="/pwned.png" onerror="window.__pwned = \'img\'">\n\n'
    "<a href=\"javascript:window.__pwned='a'\">Mehr</a> [Karte](javascript:window.__pwned='md2')\n\n"
    "Der Leuchtturm von Beispielhausen steht seit 1975 unter Denkmalschutz.\n"
)


@dataclass
class Server:
    url: str
    process: subprocess.Popen[str]
    log: Path


@dataclass
class Recorder:
    """Every URL the page asks for (documents, scripts, fonts, XHR, event streams, websockets)."""

    urls: list[str] = field(default_factory=list)
    blocked: list[str] = field(default_factory=list)  # what the Content-Security-Policy refused

    def outside(self, base: str) -> list[str]:
        return [u for u in self.urls if not u.startswith((base, "data:", "blob:", "about:"))]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    base = tmp_path_factory.mktemp("served")
    shutil.copytree(CORPUS, base / "corpus")
    env = {**os.environ, "RAG_API_KEY": KEY, "HF_HUB_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False"}
    env.pop("RAG_MODEL", None)  # the product as shipped
    log = base / "server.log"
    try:
        with rag_serve(base / "corpus", base / "index", log, env, timeout=300) as (url, process):
            yield Server(url, process, log)
    except RuntimeError as exc:  # raised while starting: the server exited or never became ready
        pytest.fail(f"`rag serve`: {exc}")


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail("Chromium is not installed at /usr/bin/chromium: run `make browser` (Debian's package)")
    with sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=str(CHROMIUM),
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        yield b
        b.close()


@pytest.fixture
def session(browser: Browser, server: Server) -> Iterator[tuple[Page, Recorder]]:
    context = browser.new_context(viewport={"width": 1360, "height": 1250}, locale="de-DE")
    recorder = Recorder()
    context.on("request", lambda request: recorder.urls.append(request.url))
    page = context.new_page()
    page.on("websocket", lambda ws: recorder.urls.append(ws.url))
    page.on(
        "console",
        lambda m: recorder.blocked.append(m.text) if "Content Security Policy" in m.text else None,
    )
    page.on("dialog", lambda dialog: pytest.fail(f"the page opened a dialog: {dialog.message}"))
    page.goto(server.url, wait_until="networkidle")
    page.wait_for_selector("#rag-question textarea", timeout=60_000)
    yield page, recorder
    context.close()


def _ask(page: Page, question: str) -> Locator:
    count = page.locator(".rag-msg").count()
    page.fill("#rag-question textarea", question)
    page.keyboard.press("Enter")
    page.wait_for_function(f"document.querySelectorAll('.rag-msg').length > {count}", timeout=120_000)
    return page.locator(".rag-msg").last


def test_a_german_question_is_answered_and_its_citation_checked_in_the_article(
    session: tuple[Page, Recorder], server: Server
) -> None:
    page, recorder = session
    expected = httpx.post(f"{server.url}/ask", json={"question": QUESTION}, timeout=60).json()
    quote = expected["citations"][0]["quote"]

    reply = _ask(page, QUESTION)
    shown = " ".join(reply.locator(".rag-answer-text").inner_text().split())
    assert "rag-answered" in (reply.get_attribute("class") or ""), shown
    assert shown == " ".join(expected["answer"].split())  # the UI shows the API's answer
    assert "1948" in shown, shown
    assert reply.locator(".rag-ref").first.inner_text() == "[1]"
    source = reply.locator(".rag-source").first
    assert expected["citations"][0]["title"] in source.locator(".rag-title").inner_text()
    assert source.locator("blockquote mark.rag-cite").inner_text() == quote

    source.locator("details.rag-article > summary").click()
    mark = source.locator("details.rag-article[open] .rag-article-text mark.rag-cite")
    mark.wait_for(state="visible")
    assert mark.inner_text() == quote
    background = mark.evaluate("m => getComputedStyle(m).backgroundColor")
    assert background not in ("rgba(0, 0, 0, 0)", "transparent")
    box = source.locator(".rag-article-text").bounding_box()
    marked = mark.bounding_box()
    # scrolled into view (sub-pixel layout can put the mark's top a fraction of a pixel above the box's)
    assert box and marked and box["y"] - 2 <= marked["y"] < box["y"] + box["height"]

    _scroll_chat_to_top(page)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "chat.png"))

    page.get_by_text("Who is Nebensja?", exact=True).click()  # an example question, asked on click
    page.wait_for_function("document.querySelectorAll('.rag-msg').length >= 2", timeout=120_000)
    english = page.locator(".rag-msg").last.inner_text()
    assert (
        "SOURCES" in english.upper() and "Open the whole article" in english and "UN-Botschafter" in english
    )

    assert recorder.urls and recorder.outside(server.url) == []
    assert recorder.blocked == []  # the page works under the server's Content-Security-Policy


def test_markup_inside_an_article_is_shown_as_text_and_never_runs(
    session: tuple[Page, Recorder], server: Server
) -> None:
    page, recorder = session
    upload = httpx.post(
        f"{server.url}/documents",
        files={"file": ("leuchtturm.txt", EVIL.encode())},
        headers={"X-API-Key": KEY},
        timeout=120,
    )
    assert upload.status_code == 201, upload.text

    reply = _ask(page, "Wann wurde der Leuchtturm von Beispielhausen gebaut?")
    source = reply.locator(".rag-source").first
    source.locator("details.rag-article > summary").click()
    article = source.locator(".rag-article-text")
    article.wait_for(state="visible")
    text = article.inner_text()
    assert '<script>window.__pwned = "script"</script>' in text and "<b>40 Meter</b>" in text
    assert MD_LINK in text and ENTITIES in text and "<a href=" in text  # shown as typed, not decoded
    answer = reply.locator(".rag-answer-text").inner_text()
    assert MD_LINK in answer and ENTITIES in answer and "<b>40 Meter</b>" in answer
    for link in page.locator("a").all():
        assert "javascript:" not in (link.get_attribute("href") or "").lower()
    assert page.evaluate("window.__pwned") is None
    assert article.locator("script, img, b, a, i").count() == 0
    assert not any("pwned" in u for u in recorder.urls)
    assert recorder.outside(server.url) == []


def _scroll_chat_to_top(page: Page) -> None:
    """Show the question above its answer in the screenshot (the chat scrolls itself to the end)."""
    page.wait_for_timeout(1000)  # let the chat's own smooth scroll to the end finish first
    page.evaluate(
        """() => {
          const scrolls = (el) => /auto|scroll/.test(getComputedStyle(el).overflowY);
          let el = document.querySelector('.rag-msg');
          while (el && !(el.scrollHeight > el.clientHeight + 4 && scrolls(el))) el = el.parentElement;
          if (el) { el.style.scrollBehavior = 'auto'; el.scrollTop = 0; }
        }"""
    )
    page.wait_for_timeout(300)
