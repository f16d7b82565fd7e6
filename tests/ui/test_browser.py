"""The product in a real browser: `rag serve` on the seed corpus with the real model, driven by Chromium.

Debian's Chromium (``make browser`` installs it; never a Playwright browser download) at a laptop's
1400 x 1000 and a phone's 390 x 844, in light and dark mode; axe-core (``make axe``, from the npm registry)
is injected into the page. Every request the page makes is recorded and must stay on the local server.
Screenshots land in ``test-artifacts/``.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Locator, Page, sync_playwright

from bench.common import rag_serve

from ..conftest import CORPUS, ROOT

pytestmark = [pytest.mark.browser, pytest.mark.model, pytest.mark.timeout(900)]

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
AXE = ROOT / "tests" / "axe" / "node_modules" / "axe-core" / "axe.min.js"
ARTIFACTS = ROOT / "test-artifacts"
KEY = "browser-test-key"
LAPTOP = {"width": 1400, "height": 1000}
PHONE = {"width": 390, "height": 844}
QUESTION = "Wann wurde Nordkorea gegründet?"
# a reporter's session: answered, answered, a follow-up, declined (it names its own subject, so it is no
# follow-up of the questions before), English
SESSION = [
    QUESTION,
    "Wer ist der russische UN-Botschafter?",
    "Was sagte er über die Sanktionen?",
    "Wer ist der Bundeskanzler?",
    "Who is Maria Zakharova?",
]
MD_LINK = "[Foto](javascript:window.__pwned='md')"
ENTITIES = "&amp; &lt;i&gt;Bild&lt;/i&gt; &#60;b&#62;"
EVIL = (
    "Der Leuchtturm von Beispielhausen wurde 1888 gebaut und ist <b>40 Meter</b> hoch, "
    f"{MD_LINK} {ENTITIES}.\n\n"
    '<script>window.__pwned = "script"</script><img src="/pwned.png" onerror="window.__pwned = \'img\'">\n\n'
    "<a href=\"javascript:window.__pwned='a'\">Mehr</a> [Karte](javascript:window.__pwned='md2')\n\n"
    "Der Leuchtturm von Beispielhausen steht seit 1975 unter Denkmalschutz.\n"
)
# What the page measures about itself: layout shifts (not those right after input), the moment Enter is
# pressed in the question box and the moment each answered turn appears.
PROBES = """
window.__cls = 0;
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) if (!e.hadRecentInput) window.__cls += e.value;
}).observe({ type: "layout-shift", buffered: true });
window.__enter = [];
window.__answered = [];
const now = (list) => list.push(performance.now());
document.addEventListener("keydown", (e) => {
  if (e.key === "Enter" && e.target.closest && e.target.closest("#rag-question")) now(window.__enter);
}, true);
new MutationObserver((records) => {
  for (const r of records) for (const n of r.addedNodes)
    if (n.nodeType === 1 && n.matches(".rag-turn:not(.rag-pending)")) now(window.__answered);
}).observe(document, { childList: true, subtree: true });
"""
# Where the newest turn's first line is: the decline badge or the answer's first line, against the view
# and the question box pinned at its bottom.
IN_VIEW = """() => {
  const turn = [...document.querySelectorAll(".rag-turn")].pop();
  const first = turn.querySelector(".rag-status, .rag-answer-text");
  const line = first.getClientRects()[0];
  const box = document.querySelector("#rag-question").getBoundingClientRect();
  return { question: turn.querySelector("h2").getBoundingClientRect().top, top: line.top,
           bottom: line.bottom, box: box.top, height: innerHeight };
}"""
NESTED_SCROLLERS = """() => [...document.querySelectorAll("body *")].filter((el) => {
  const style = getComputedStyle(el);
  const scrolls = /auto|scroll/.test(style.overflowY) && el.scrollHeight > el.clientHeight + 1;
  return scrolls && el.tagName !== "TEXTAREA" && el.getClientRects().length;
}).map((el) => el.id || el.className)"""
RINGLESS = """() => {
  const el = document.activeElement;
  if (!el || el === document.body) return []; // past the last stop, the browser's own
  const style = getComputedStyle(el.closest("#rag-question") || el); // the question box rings its frame
  const ringed = style.outlineStyle !== "none" && parseFloat(style.outlineWidth) >= 2;
  return ringed ? [] : [el.outerHTML.slice(0, 80)];
}"""
SMALL_TARGETS = """() => [...document.querySelectorAll("#rag-main a, #rag-main button, #rag-main summary")]
  .map((el) => [el, el.getBoundingClientRect()])
  .filter(([el, r]) => r.width > 2 && (r.width < 24 || r.height < 24))
  .map(([el, r]) => `${el.outerHTML.slice(0, 80)} ${r.width}x${r.height}`)"""


@dataclass
class Server:
    url: str
    process: subprocess.Popen[str]
    log: Path


@dataclass
class Recorder:
    """Every URL the page asks for (documents, scripts, fonts, XHR, event streams, websockets), and the
    bodies of the events it sends."""

    urls: list[str] = field(default_factory=list)
    blocked: list[str] = field(default_factory=list)  # what the Content-Security-Policy refused
    events: list[dict[str, Any]] = field(default_factory=list)

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
            for question in SESSION:  # warm: the word list compiles on the first English question
                httpx.post(f"{url}/ask", json={"question": question}, timeout=120).raise_for_status()
            yield Server(url, process, log)
    except RuntimeError as exc:  # raised while starting: the server exited or never became ready
        pytest.fail(f"`rag serve`: {exc}")


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail("Chromium is not installed at /usr/bin/chromium: run `make browser` (Debian's package)")
    if not AXE.exists():
        pytest.fail(f"axe-core is missing at {AXE}: run `make axe` (npm ci in tests/axe)")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield b
        b.close()


@dataclass
class Session:
    page: Page
    context: BrowserContext
    recorder: Recorder
    name: str

    def shot(self, label: str) -> None:
        ARTIFACTS.mkdir(exist_ok=True)
        self.page.screenshot(path=str(ARTIFACTS / f"{self.name}-{label}.png"))


@pytest.fixture
def open_page(browser: Browser, server: Server) -> Iterator[Any]:
    contexts: list[BrowserContext] = []

    def open_(viewport: dict[str, int] = LAPTOP, scheme: str = "light") -> Session:
        context = browser.new_context(
            viewport=viewport,  # type: ignore[arg-type]
            locale="de-DE",
            color_scheme=scheme,  # type: ignore[arg-type]
            permissions=["clipboard-read", "clipboard-write"],
        )
        contexts.append(context)
        recorder = Recorder()
        context.on("request", lambda request: recorder.urls.append(request.url))
        context.on("request", lambda r: _record_event(recorder, r.url, r.post_data))
        page = context.new_page()
        page.add_init_script(PROBES)
        page.on("websocket", lambda ws: recorder.urls.append(ws.url))
        page.on(
            "console",
            lambda m: recorder.blocked.append(m.text) if "Content Security Policy" in m.text else None,
        )
        page.on("dialog", lambda dialog: pytest.fail(f"the page opened a dialog: {dialog.message}"))
        page.goto(server.url, wait_until="load")
        page.wait_for_selector("body.rag-ready #rag-question textarea", timeout=60_000)
        page.wait_for_timeout(800)  # what the page loads after it is shown (the article list) is in
        size = "phone" if viewport["width"] < 700 else "laptop"
        return Session(page, context, recorder, f"{size}-{scheme}")

    yield open_
    for context in contexts:
        context.close()


def _record_event(recorder: Recorder, url: str, body: str | None) -> None:
    if "/gradio_api/queue/join" in url and body:
        recorder.events.append({"bytes": len(body.encode()), **json.loads(body)})


def _ask(page: Page, question: str) -> Locator:
    count = page.locator(".rag-turn:not(.rag-pending)").count()
    page.fill("#rag-question textarea", question)
    page.keyboard.press("Enter")
    page.wait_for_function(
        f"document.querySelectorAll('.rag-turn:not(.rag-pending)').length > {count}", timeout=120_000
    )
    page.wait_for_timeout(150)  # the scroll to the new turn happens on the next frame
    return page.locator(".rag-turn").last


def _axe(page: Page) -> list[dict[str, Any]]:
    """axe-core's serious and critical violations on the page as it is."""
    if not page.evaluate("Boolean(window.axe)"):
        page.add_script_tag(content=AXE.read_text(encoding="utf-8"))
    found = page.evaluate(
        """async () => (await axe.run(document, { resultTypes: ["violations"] })).violations
             .map((v) => ({ id: v.id, impact: v.impact, nodes: v.nodes.map((n) => n.target.join(" ")) }))"""
    )
    return [v for v in found if v["impact"] in ("serious", "critical")]


def _plain(text: str) -> str:
    return " ".join(text.split())


# --- asking, citing, checking, copying


def test_a_question_is_answered_its_citation_opened_and_its_quote_copied(
    open_page: Any, server: Server
) -> None:
    s = open_page()
    page = s.page
    expected = httpx.post(f"{server.url}/ask", json={"question": QUESTION}, timeout=60).json()
    citation = expected["citations"][0]

    turn = _ask(page, QUESTION)
    assert "rag-answered" in (turn.locator(".rag-msg").get_attribute("class") or "")
    assert _plain(turn.locator(".rag-answer-text").inner_text()) == _plain(expected["answer"])
    assert turn.locator("strong.rag-key").first.inner_text() == "1948"  # what "wann" asks for
    assert "Sicherheit: hoch" in turn.locator(".rag-confidence").inner_text()

    link = turn.locator("a.rag-ref").first
    assert link.inner_text() == "[1]"
    assert link.get_attribute("aria-label") == f"Quelle 1: {citation['title']}"
    link.hover()  # a preview of the source under the line
    tip = turn.locator(".rag-tip").first
    tip.wait_for(state="visible")
    assert citation["quote"] in tip.inner_text() and citation["title"] in tip.inner_text()

    link.click()  # opens the article beside the chat, the cited sentence marked and in view
    panel = page.locator("#rag-panel .rag-panel")
    mark = panel.locator("mark.rag-cite")
    mark.wait_for(state="visible")
    assert mark.inner_text() == citation["quote"] and panel.locator("h2").inner_text() == citation["title"]
    box, marked = panel.bounding_box(), mark.bounding_box()
    assert (
        box
        and marked
        and box["y"] <= marked["y"]
        and marked["y"] + marked["height"] <= box["y"] + box["height"]
    )
    assert page.evaluate("document.activeElement.id") == "rag-panel-title"
    s.shot("article")
    page.keyboard.press("Escape")
    panel.wait_for(state="hidden")
    assert page.evaluate("document.activeElement.classList.contains('rag-ref')")  # focus back where it was

    turn.locator("summary").click()  # "Quellen (1)"
    card = turn.locator(".rag-card").first
    assert card.locator("mark.rag-cite").inner_text() == citation["quote"]
    assert "Zeichen" in card.locator(".rag-offsets").inner_text()
    card.get_by_role("button", name="Zitat kopieren").click()
    copied = page.evaluate("navigator.clipboard.readText()")
    where = f"{citation['doc_id']}, Zeichen {citation['start']}–{citation['end']}"
    assert (
        copied == f"„{citation['quote']}“\n— {citation['title']}, {citation['date'] or 'ohne Datum'}; {where}"
    )
    turn.get_by_role("button", name="Antwort kopieren").click()
    copied = page.evaluate("navigator.clipboard.readText()")
    assert copied.startswith(f"{QUESTION}\n\n{expected['answer']}\n\nQuellen:\n[1] {citation['title']}")
    assert "<" not in copied and where in copied  # clean text with a reference list, not the page's HTML
    s.shot("sources")

    assert s.recorder.urls and s.recorder.outside(server.url) == []
    assert s.recorder.blocked == []  # the page works under the server's Content-Security-Policy


def test_an_example_is_asked_on_click_in_the_empty_chat(open_page: Any) -> None:
    page = open_page(PHONE).page
    page.get_by_text("Who is Nebensja?", exact=True).click()
    page.wait_for_selector(".rag-turn:not(.rag-pending)", timeout=120_000)
    english = page.locator(".rag-turn").last.inner_text()
    assert "Who is Nebensja?" in english and "UN-Botschafter" in english and "SOURCES (" in english.upper()
    assert page.locator("#rag-examples").is_hidden()  # the examples belong to the empty chat


# --- the answer in view, on a laptop and on a phone


@pytest.mark.parametrize("viewport", [LAPTOP, PHONE], ids=["laptop", "phone"])
def test_each_answer_is_in_view_and_the_page_does_not_shift(open_page: Any, viewport: dict[str, int]) -> None:
    s = open_page(viewport)
    page = s.page
    loading = page.evaluate("window.__cls")
    print(f"cumulative layout shift while loading at {viewport['width']} px: {loading:.3f}")
    assert loading < 0.1  # it was 0.89
    s.shot("0-empty")
    for n, question in enumerate(SESSION, start=1):
        turn = _ask(page, question)
        where = page.evaluate(IN_VIEW)
        # the question sits at the top, the first line of its answer (or the decline badge) under it, in view
        assert 0 <= where["question"] <= 0.15 * where["height"], (question, where)
        assert where["question"] < where["top"] and where["bottom"] <= where["box"], (question, where)
        assert turn.locator(".rag-confidence").is_visible()
        s.shot(f"{n}")
    follow, declined = page.locator(".rag-turn").nth(2), page.locator(".rag-turn").nth(3)
    understood = follow.locator(".rag-understood").inner_text()
    assert understood.startswith("Verstanden als:") and "UN-Botschafter" in understood
    assert declined.locator(".rag-status").inner_text() == "Keine Antwort in den Artikeln"
    assert declined.locator(".rag-understood").count() == 0  # it names its own subject

    if viewport is PHONE:
        assert page.evaluate(NESTED_SCROLLERS) == []
        answered = page.locator(".rag-turn").nth(1)
        answered.locator("summary").click()
        card = answered.locator(".rag-card").first
        card.scroll_into_view_if_needed()
        mark = card.locator("mark.rag-cite")
        marked, shown = mark.bounding_box(), card.bounding_box()
        assert marked and shown and marked["y"] >= 0 and marked["y"] + marked["height"] <= viewport["height"]
        assert shown["y"] <= marked["y"] and marked["y"] + marked["height"] <= shown["y"] + shown["height"]
        assert page.evaluate(NESTED_SCROLLERS) == [] and page.evaluate(SMALL_TARGETS) == []
        s.shot("card")
    assert page.evaluate("window.__cls") < 0.1


# --- accessibility


@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("viewport", [LAPTOP, PHONE], ids=["laptop", "phone"])
def test_axe_finds_nothing_serious_empty_answered_declined_and_with_an_article_open(
    open_page: Any, viewport: dict[str, int], scheme: str
) -> None:
    s = open_page(viewport, scheme)
    page = s.page
    states = {"empty": _axe(page)}
    for question in SESSION[:2]:
        _ask(page, question)
    for summary in page.locator(".rag-turn summary").all():
        summary.click()
    states["answers with sources"] = _axe(page)
    _ask(page, "Wer ist der Bundeskanzler?").locator("summary").click()
    states["declined"] = _axe(page)
    s.shot("axe-declined")
    page.locator(".rag-turn").first.locator("a.rag-ref").first.click()
    page.locator("#rag-panel mark").wait_for(state="visible")
    states["article open"] = _axe(page)
    s.shot("axe-article")
    assert {state: found for state, found in states.items() if found} == {}


def test_the_keyboard_reaches_the_question_box_through_the_skip_link_with_a_visible_ring(
    open_page: Any,
) -> None:
    page = open_page().page
    _ask(page, QUESTION)
    page.evaluate("window.scrollTo(0, 0)")
    page.mouse.click(3, 3)  # the page's start: where a keyboard user begins
    page.keyboard.press("Tab")
    skip = page.locator(".rag-skip")
    assert page.evaluate("document.activeElement.classList.contains('rag-skip')") and skip.is_visible()
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement === document.querySelector('#rag-question textarea')")
    ring = page.evaluate("getComputedStyle(document.querySelector('#rag-question')).outlineWidth")
    assert float(ring.removesuffix("px")) >= 2
    page.keyboard.press("Shift+Tab")
    for _ in range(12):  # back to the answer's [1]: a ring on the link and its preview open
        if page.evaluate("document.activeElement.classList.contains('rag-ref')"):
            break
        page.keyboard.press("Shift+Tab")
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineWidth")
    tip = page.evaluate("document.activeElement.getAttribute('aria-describedby')")  # its own preview
    assert float(outline.removesuffix("px")) >= 2 and page.locator(f"#{tip}").is_visible()

    page.locator(".rag-turn summary").first.click()  # the sources open: their buttons take focus too
    page.mouse.click(3, 3)
    unringed = []
    for _ in range(30):  # every stop of the Tab order shows a ring (the question box's is on its frame)
        page.keyboard.press("Tab")
        unringed += page.evaluate(RINGLESS)
    assert unringed == []


# --- lighter turns


def test_enter_to_answer_stays_flat_over_ten_turns(open_page: Any) -> None:
    s = open_page()
    page = s.page
    asked = (SESSION * 3)[:12]  # turns 1-3 and 10-12 ask the same questions, so they do the same work
    for question in asked:
        _ask(page, question)
    times = page.evaluate(
        "window.__answered.map((t, i) => t - window.__enter[i])"
    )  # Enter to the answer on the page, in ms
    first, tenth = statistics.median(times[:3]), statistics.median(times[9:12])
    print(f"Enter->answer: turns 1-3 {first:.0f} ms, turns 10-12 {tenth:.0f} ms, ratio {tenth / first:.2f}")
    assert len(times) == 12 and tenth <= 1.5 * first, times
    sizes = [e["bytes"] for e in s.recorder.events if e.get("data") and e["data"][0] in asked]
    assert len(sizes) == 12 and max(sizes) < 1000, sizes  # a turn sends its question, not the conversation


# --- managing articles and exporting, from the page

LIGHTHOUSE = "Leuchtturm von Beispielhausen"
LIGHTHOUSE_TEXT = (
    '---\ntitle: Der Leuchtturm von Beispielhausen\ndate: "2024-05-02"\n---\n'
    "Der Leuchtturm von Beispielhausen wurde 1888 gebaut und ist 40 Meter hoch.\n\n"
    "Seit 1975 steht er unter Denkmalschutz.\n"
)


def test_an_article_is_uploaded_asked_about_deleted_and_the_chat_exported(
    open_page: Any, server: Server
) -> None:
    s = open_page()
    page = s.page
    title = f"Der {LIGHTHOUSE}"
    corpus, status = page.locator("#rag-corpus"), page.locator("#rag-manage-status")
    page.fill("#rag-key input", KEY)
    page.set_input_files(
        "#rag-upload-file",
        files=[{"name": "leuchtturm.md", "mimeType": "text/markdown", "buffer": LIGHTHOUSE_TEXT.encode()}],
    )
    page.get_by_role("button", name="Hochladen · Upload", exact=True).click()
    page.wait_for_function(
        f"document.querySelector('#rag-corpus').innerText.includes({json.dumps(title)})", timeout=120_000
    )  # the list updates in place: no reload
    assert f"Hinzugefügt · Added: {title}" in status.inner_text()
    status.scroll_into_view_if_needed()
    s.shot("manage-uploaded")

    question = f"Wann wurde der {LIGHTHOUSE} gebaut?"
    expected = httpx.post(f"{server.url}/ask", json={"question": question}, timeout=60).json()
    citation = expected["citations"][0]
    turn = _ask(page, question)
    link = turn.locator("a.rag-ref").first
    assert citation["title"] == title and link.get_attribute("aria-label") == f"Quelle 1: {title}"
    turn.locator("summary").click()
    card = turn.locator(".rag-card").first
    assert card.locator("mark.rag-cite").inner_text() == citation["quote"]
    assert "2024-05-02" in card.inner_text()
    s.shot("manage-cited")

    named = corpus.get_by_role("button", name=f"Löschen: {title}")
    delete = corpus.locator(f"[data-delete='{named.get_attribute('data-delete')}']")
    delete.click()
    assert delete.inner_text() == "Wirklich löschen?"  # asks once more, on the button itself
    delete.click()
    page.wait_for_function(
        f"!document.querySelector('#rag-corpus').innerText.includes({json.dumps(title)})", timeout=120_000
    )
    assert f"Gelöscht · Deleted: {title}" in status.inner_text()
    gone = httpx.get(f"{server.url}/documents", timeout=10).json()
    assert title not in {d["title"] for d in gone["documents"]}

    with page.expect_download() as download:
        page.get_by_role("button", name="Gespräch exportieren · Export the chat (Markdown)").click()
    assert download.value.suggested_filename.endswith(".md")
    markdown = Path(download.value.path()).read_text(encoding="utf-8")
    where = f"`{citation['doc_id']}`, Zeichen {citation['start']}–{citation['end']}"
    assert f"## 1. {question}" in markdown and expected["answer"] in markdown
    assert f"[1] **{title}**, 2024-05-02; {where}" in markdown and f"  > {citation['quote']}" in markdown
    status.scroll_into_view_if_needed()
    s.shot("manage-deleted")

    page.fill("#rag-key input", "not-the-key")  # a wrong key changes nothing and is said to be wrong
    corpus.locator(f"[data-delete='{gone['documents'][0]['doc_id']}']").dblclick()
    page.wait_for_function(
        "document.querySelector('#rag-manage-status').innerText.includes('stimmt nicht')", timeout=60_000
    )
    assert httpx.get(f"{server.url}/documents", timeout=10).json()["count"] == gone["count"]
    html = page.content() + markdown
    assert KEY not in html and "not-the-key" not in html  # the key is never echoed into the page
    assert KEY not in server.log.read_text(encoding="utf-8")  # nor logged
    assert s.recorder.outside(server.url) == [] and s.recorder.blocked == []


# --- safety: the article's markup stays text (this uploads an article, so it runs last)


def test_markup_inside_an_article_is_shown_as_text_and_never_runs(open_page: Any, server: Server) -> None:
    s = open_page()
    page = s.page
    upload = httpx.post(
        f"{server.url}/documents",
        files={"file": ("leuchtturm.txt", EVIL.encode())},
        headers={"X-API-Key": KEY},
        timeout=120,
    )
    assert upload.status_code == 201, upload.text

    turn = _ask(page, "Wann wurde der Leuchtturm von Beispielhausen gebaut?")
    answer = turn.locator(".rag-answer-text").inner_text()
    assert MD_LINK in answer and ENTITIES in answer and "<b>40 Meter</b>" in answer
    turn.locator("a.rag-ref").first.click()
    article = page.locator("#rag-panel .rag-article-body")
    article.wait_for(state="visible")
    text = article.inner_text()
    assert '<script>window.__pwned = "script"</script>' in text and "<b>40 Meter</b>" in text
    assert MD_LINK in text and ENTITIES in text and "<a href=" in text  # shown as typed, not decoded
    for link in page.locator("a").all():
        assert "javascript:" not in (link.get_attribute("href") or "").lower()
    assert page.evaluate("window.__pwned") is None
    assert article.locator("script, img, b, a, i").count() == 0
    assert not any("pwned" in u for u in s.recorder.urls)
    assert s.recorder.outside(server.url) == []
