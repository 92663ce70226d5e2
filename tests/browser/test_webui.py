"""The web UI in a real browser: Debian's ``chromium`` driven by Selenium through ``chromedriver``,
against the real app under Uvicorn on loopback (in a thread of this process, so the fake
embedder registered by tests/conftest.py serves it) with the offline ``extractive`` model.

Each journey is asserted on what the page shows; screenshots land in tests/browser/screenshots/
(git-ignored; reviewed copies in docs/screenshots/, refreshed with DOMAINRAG_UPDATE_SCREENSHOTS=1)
for a reviewer (and docs/webui.png: the Ask view with a cited answer, for the README). Without a
chromium binary the tests skip — except in CI (``CI=true``), where they fail.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.integration

HERE = Path(__file__).resolve().parent
#: Every run's screenshots (git-ignored; CI keeps them for a reviewer). The reviewed copies in
#: docs/ are refreshed only on request: DOMAINRAG_UPDATE_SCREENSHOTS=1.
SHOTS = HERE / "screenshots"
DOCS_DIR = HERE.parent.parent / "docs"
UPDATE_DOCS = os.environ.get("DOMAINRAG_UPDATE_SCREENSHOTS") == "1"
README_SHOT = DOCS_DIR / "webui.png" if UPDATE_DOCS else SHOTS / "webui.png"
WAIT_S = 20

DOCS = {
    "refunds.md": "# Refund policy\n\nCustomers may return any product within 30 days of purchase for a full refund. "
                  "Refunds are paid to the original card within five business days.\n\n"
                  "## Exceptions\n\nGift cards and opened software are not refundable.\n",
    "shipping.md": "# Shipping\n\nStandard shipping takes three to five business days. Express shipping "
                   "arrives the next business day when ordered before noon.\n",
    "security.md": "# Security\n\nPasswords must be rotated every ninety days and must have at least "
                   "twelve characters.\n",
}
XSS = ('Hostile notes: <img src=x onerror="window.__pwned=1"> and <script>window.__pwned=2</script> '
       'plus <b onmouseover="window.__pwned=3">bold</b>. The quarantine code is ZEBRA-77.\n')
SUITE = [
    {"id": "q1", "question": "Within how many days can customers return a product?", "answers": ["30 days"],
     "gold": [{"doc_id": "policies-files/refunds.md"}], "scenario": ["refunds"]},
    {"id": "q2", "question": "How long does standard shipping take?", "answers": ["three to five business days"],
     "gold": [{"doc_id": "policies-files/shipping.md"}], "scenario": ["shipping"]},
    {"id": "q3", "question": "How often must passwords be rotated?", "answers": ["every ninety days"],
     "gold": [{"doc_id": "policies-files/security.md"}], "scenario": ["security"]},
]


# -- the browser -----------------------------------------------------------------------------

def _browser_paths() -> tuple[str, str]:
    """(chromium, chromedriver), or skip — fail in CI, where .ci/run installs them."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    missing = [name for name, path in (("chromium", chromium), ("chromedriver", driver)) if not path]
    try:
        import selenium  # noqa: F401
    except ImportError:
        missing.append("the selenium package")
    if missing:
        _missing(f"browser tests need {', '.join(missing)}: apt-get install -y chromium chromium-driver "
                 "and pip install -e '.[browser-test]'")
    assert chromium and driver
    return chromium, driver


def _missing(reason: str) -> None:
    """Skip for want of a part — but fail in CI, which installs every part (.ci/run)."""
    if os.environ.get("CI") == "true":
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture
def browser() -> Iterator[Any]:
    chromium, driver_path = _browser_paths()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,1000",
                "--disable-gpu", "--no-first-run", "--disable-extensions"):
        options.add_argument(arg)
    driver = webdriver.Chrome(options=options, service=Service(executable_path=driver_path))
    driver.set_page_load_timeout(WAIT_S)
    yield driver
    driver.quit()


def wait_for(driver: Any, condition: Callable[[Any], Any], what: str) -> Any:
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.support.ui import WebDriverWait

    try:  # a list re-rendered under the condition is looked at again
        return WebDriverWait(driver, WAIT_S, poll_frequency=0.1,
                             ignored_exceptions=[StaleElementReferenceException]).until(condition)
    except Exception as exc:
        status = driver.find_element("id", "status").text
        raise AssertionError(f"timed out waiting for {what}; the page's status line says {status!r}") from exc


def shot(driver: Any, name: str) -> None:
    for folder in (SHOTS, DOCS_DIR / "screenshots") if UPDATE_DOCS else (SHOTS,):
        folder.mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(folder / f"{name}.png"))


def by_id(driver: Any, element_id: str) -> Any:
    return driver.find_element("id", element_id)


def click_in_row(driver: Any, rows: str, text: str, target: str) -> bool:
    """Click ``target`` in the row of ``rows`` that shows ``text`` (False to retry while the list re-renders)."""
    from selenium.common.exceptions import StaleElementReferenceException

    try:
        row = next((r for r in driver.find_elements("css selector", rows) if text in r.text), None)
        if row is None:
            return False
        row.find_element("css selector", target).click()
        return True
    except StaleElementReferenceException:
        return False


def open_view(driver: Any, view: str) -> None:
    driver.find_element("css selector", f'.tab[data-view="{view}"]').click()
    wait_for(driver, lambda d: by_id(d, f"view-{view}").is_displayed(), f"the {view} view")


def _pdf(path: Path, pages: list[list[str]]) -> None:
    from reportlab.pdfgen import canvas

    pdf = canvas.Canvas(str(path))
    for lines in pages:
        for i, line in enumerate(lines):
            pdf.drawString(72, 720 - 24 * i, line)
        pdf.showPage()
    pdf.save()


# -- the server ------------------------------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def make_kb(tmp_path: Path) -> Iterator[Callable[..., Path]]:
    """A knowledge base folder built with the fake embedder from ``files`` (name → text)."""
    from domainrag import KnowledgeBase

    def make(name: str, files: dict[str, str], suite_runs: int = 0) -> Path:
        source = tmp_path / f"{name}-files"
        source.mkdir()
        for file, text in files.items():
            (source / file).write_text(text, encoding="utf-8")
        path = tmp_path / name
        settings = {"embedder.model": "fake-en:64", "chunking.target_tokens": 64, "chunking.overlap_tokens": 8}
        with KnowledgeBase.open(path, create=True, overrides=settings) as kb:
            report = kb.ingest([source])
            assert not report.failed, report.failed
            suite = tmp_path / "suite.jsonl"
            suite.write_text("".join(json.dumps(case) + "\n" for case in SUITE), encoding="utf-8")
            for i, mode in enumerate(("lexical", "hybrid")[:suite_runs]):
                kb.evaluate(suite, mode=mode, name=f"run-{i + 1}-{mode}")
        return path

    yield make


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[[dict[str, Path]], str]]:
    """Start the app under Uvicorn for collections ``{name: kb folder}``; returns its base URL."""
    import uvicorn

    servers: list[tuple[Any, threading.Thread]] = []

    def start(collections: dict[str, Path]) -> str:
        app = _app(tmp_path / "server-home", collections)
        port = _free_port()
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + WAIT_S
        while not server.started:
            assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.05)
        servers.append((server, thread))
        return f"http://127.0.0.1:{port}"

    yield start
    for server, thread in servers:
        server.should_exit = True
        thread.join(timeout=WAIT_S)


def _app(home: Path, collections: dict[str, Path]) -> Any:
    try:
        from domainrag.server.app import create_app
    except ImportError as exc:
        _missing(f"the web UI needs the server extra ({exc}): pip install -e '.[server]'")
    from domainrag.server.settings import CollectionSpec, ServerSettings

    specs = {name: CollectionSpec(path=path) for name, path in collections.items()}
    return create_app(ServerSettings(home=home, collections=specs))


# -- journeys --------------------------------------------------------------------------------

def test_ask_cite_and_open_the_highlighted_passage(browser: Any, make_kb: Callable[..., Path],
                                                    serve: Callable[[dict[str, Path]], str]) -> None:
    url = serve({"policies": make_kb("policies", DOCS)})
    browser.get(url)
    wait_for(browser, lambda d: by_id(d, "collection").get_attribute("value") == "policies", "the collection list")
    # Record what the answer box shows as it changes: the streamed text first, then the checked answer.
    browser.execute_script(
        "window.__seen = []; new MutationObserver((records) => { for (const r of records) window.__seen.push("
        "{text: [...r.addedNodes].map((n) => n.textContent).join(''), links: [...r.addedNodes].filter((n) => n.nodeName === 'A').length}); })"
        ".observe(document.getElementById('answer'), {childList: true});")
    by_id(browser, "question").send_keys("Within how many days can customers return a product for a refund?")
    browser.find_element("css selector", "#ask-form button[type=submit]").click()

    cite = wait_for(browser, lambda d: d.find_elements("css selector", "#answer a.cite"), "a cited answer")[0]
    seen = browser.execute_script("return window.__seen")
    streamed = [i for i, s in enumerate(seen) if s["text"] and not s["links"]]
    assert streamed and streamed[0] < len(seen) - 1, f"no streamed text before the checked answer: {seen}"
    assert seen[-1]["links"] >= 1  # the checked answer replaced it, its [n] as links
    answer = by_id(browser, "answer").text
    assert "30 days" in answer, answer
    assert "[1]" in answer
    assert "Abstained" not in by_id(browser, "answer-flags").text
    assert "refund" in by_id(browser, "citations").text.lower()
    shot(browser, "ask-answer")

    cite.click()
    mark = wait_for(browser, lambda d: d.find_elements("css selector", "#passage-text mark"), "the passage")[0]
    assert by_id(browser, "passage").is_displayed()
    assert "Refund policy" in by_id(browser, "passage-title").text
    assert "30 days" in mark.text, mark.text
    assert "Customers may return" in by_id(browser, "passage-text").text  # the document around it
    in_view = browser.execute_script(
        "const r = arguments[0].getBoundingClientRect(); const box = arguments[1].getBoundingClientRect();"
        "return r.height > 0 && r.top >= box.top && r.bottom <= box.bottom;", mark, by_id(browser, "passage-text"))
    assert in_view, "the highlighted passage is scrolled into view"
    shot(browser, "ask-passage")
    README_SHOT.parent.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(README_SHOT))


def test_abstention_is_shown_plainly(browser: Any, make_kb: Callable[..., Path],
                                     serve: Callable[[dict[str, Path]], str]) -> None:
    url = serve({"policies": make_kb("policies", DOCS)})
    browser.get(url)
    wait_for(browser, lambda d: by_id(d, "collection").get_attribute("value") == "policies", "the collection list")
    from selenium.webdriver.common.keys import Keys

    by_id(browser, "question").send_keys("What is the boiling point of liquid nitrogen at sea level?",
                                         Keys.CONTROL, Keys.ENTER)  # Ctrl+Enter asks
    flags = wait_for(browser, lambda d: by_id(d, "answer-flags").text, "the answer's flags")
    assert "Abstained" in flags, flags
    assert "abstained" in by_id(browser, "answer").get_attribute("class")
    assert not browser.find_elements("css selector", "#citations li")
    shot(browser, "ask-abstained")


def test_upload_job_progress_then_searchable(browser: Any, make_kb: Callable[..., Path],
                                             serve: Callable[[dict[str, Path]], str], tmp_path: Path) -> None:
    url = serve({"policies": make_kb("policies", DOCS)})
    upload = tmp_path / "upload"
    upload.mkdir()
    (upload / "travel.md").write_text("# Travel\n\nEmployees book flights through the Albatross portal; "
                                      "economy class for trips under six hours.\n", encoding="utf-8")
    (upload / "leave.txt").write_text("Parental leave is sixteen weeks at full pay.\n", encoding="utf-8")
    intro = [f"Section {i}: welcome to the employee handbook, read it before your first day at work." for i in range(12)]
    parking = [f"Rule {i}: park only in marked bays, keep the lanes clear and the gates closed." for i in range(12)]
    _pdf(upload / "handbook.pdf", [intro, [*parking, "The Kestrel badge opens the east garage."]])
    browser.get(url)
    wait_for(browser, lambda d: by_id(d, "collection").get_attribute("value") == "policies", "the collection list")
    open_view(browser, "documents")
    wait_for(browser, lambda d: len(d.find_elements("css selector", "#documents tr")) == len(DOCS), "the list")

    by_id(browser, "files").send_keys("\n".join(str(p) for p in sorted(upload.iterdir())))
    browser.find_element("css selector", "#upload-form button[type=submit]").click()
    wait_for(browser, lambda d: by_id(d, "job-state").get_attribute("data-state") == "done", "the job to finish")
    state = by_id(browser, "job-state").text
    assert "done" in state and "3/3 files" in state, state
    assert by_id(browser, "upload-progress").get_attribute("value") == "100"
    assert by_id(browser, "job-progress").get_attribute("value") == by_id(browser, "job-progress").get_attribute("max")
    wait_for(browser, lambda d: "travel.md" in by_id(d, "documents").text, "the uploaded file in the list")
    assert "leave.txt" in by_id(browser, "documents").text and "handbook.pdf" in by_id(browser, "documents").text
    shot(browser, "documents-uploaded")

    open_view(browser, "search")
    by_id(browser, "query").send_keys("Albatross portal flights")
    browser.find_element("css selector", "#search-form button[type=submit]").click()
    hit = wait_for(browser, lambda d: d.find_elements("css selector", "#hits li"), "search hits")[0]
    assert "Albatross portal" in hit.text, hit.text
    assert "travel" in hit.text.lower()
    assert hit.find_element("css selector", ".score").text.replace(".", "").isdigit()
    shot(browser, "search-uploaded")

    # A PDF hit names its page, and its passage opens on that page's text.
    by_id(browser, "query").clear()
    by_id(browser, "query").send_keys("Kestrel badge garage")
    browser.find_element("css selector", "#search-form button[type=submit]").click()
    wait_for(browser, lambda d: "Kestrel" in by_id(d, "hits").text, "the PDF hit")
    hit = next(h for h in browser.find_elements("css selector", "#hits li") if "Kestrel badge" in h.text)
    assert "p. 2" in hit.find_element("css selector", ".page").text, hit.text
    hit.find_element("css selector", ".hit-head a").click()
    mark = wait_for(browser, lambda d: d.find_elements("css selector", "#passage-text mark"), "the PDF passage")[0]
    assert "Kestrel badge" in mark.text
    assert "page 2" in by_id(browser, "passage-meta").text
    shot(browser, "search-pdf-passage")

    # Delete one uploaded file: it leaves the list and the search results.
    open_view(browser, "documents")
    wait_for(browser, lambda d: "leave.txt" in by_id(d, "documents").text, "the list")
    browser.execute_script("window.confirm = () => true;")
    wait_for(browser, lambda d: click_in_row(d, "#documents tr", "leave.txt", "button"), "the Delete button")
    wait_for(browser, lambda d: "leave.txt" not in by_id(d, "documents").text, "the deleted file to leave the list")
    assert "Deleted" in by_id(browser, "status").text
    assert "travel.md" in by_id(browser, "documents").text


def test_runs_report_and_compare(browser: Any, make_kb: Callable[..., Path],
                                 serve: Callable[[dict[str, Path]], str]) -> None:
    url = serve({"policies": make_kb("policies", DOCS, suite_runs=2)})
    browser.get(url)
    wait_for(browser, lambda d: by_id(d, "collection").get_attribute("value") == "policies", "the collection list")
    open_view(browser, "evaluation")
    rows = wait_for(browser, lambda d: d.find_elements("css selector", "#runs tr"), "the runs list")
    assert len(rows) == 2
    listing = by_id(browser, "runs").text
    assert "run-1-lexical" in listing and "run-2-hybrid" in listing, listing

    wait_for(browser, lambda d: click_in_row(d, "#runs tr", "run-1-lexical", "button.open-report"), "the Report button")
    wait_for(browser, lambda d: "run-1-lexical" in by_id(d, "report-title").text, "the report")
    browser.switch_to.frame(by_id(browser, "report"))
    report = wait_for(browser, lambda d: d.find_element("tag name", "body").text, "the report's content")
    assert "run-1-lexical" in report
    assert "ndcg" in report.lower()
    assert "refunds" in report  # a scenario of the suite
    browser.switch_to.default_content()
    shot(browser, "evaluation-report")

    # The list puts the newest first: new = run 2, baseline = run 1 (preselected); compare them.
    browser.find_element("css selector", "#compare-form button[type=submit]").click()
    wait_for(browser, lambda d: "Comparison" in by_id(d, "report-title").text, "the comparison")
    title = by_id(browser, "report-title").text
    browser.switch_to.frame(by_id(browser, "report"))
    comparison = wait_for(browser, lambda d: d.find_element("tag name", "body").text, "the comparison's content")
    browser.switch_to.default_content()
    ids = [r.get_attribute("value") for r in browser.find_elements("css selector", "#runs input[name=new]")]
    assert len(ids) == 2
    assert all(run_id in title for run_id in ids), title
    assert "verdict" in comparison.lower() or "no detectable difference" in comparison.lower(), comparison[:500]
    shot(browser, "evaluation-compare")


def test_api_key_is_sent_as_bearer(browser: Any, make_kb: Callable[..., Path],
                                   serve: Callable[[dict[str, Path]], str], tmp_path: Path) -> None:
    from domainrag.server.keys import KEYS_FILE, KeyStore

    home = tmp_path / "server-home"
    home.mkdir()
    with KeyStore(home / KEYS_FILE) as keys:
        secret = keys.create("reader", ["policies"], "read", None)[1]
    url = serve({"policies": make_kb("policies", DOCS)})
    browser.get(url)
    wait_for(browser, lambda d: by_id(d, "status").get_attribute("data-kind") == "error", "the refusal")
    assert "policies" not in by_id(browser, "collection").text
    by_id(browser, "api-key").send_keys(secret + "\t")  # change event
    wait_for(browser, lambda d: by_id(d, "collection").get_attribute("value") == "policies", "the collection list")
    assert browser.execute_script("return localStorage.getItem('domainrag.apiKey')") == secret
    browser.refresh()  # the key is remembered
    wait_for(browser, lambda d: by_id(d, "collection").get_attribute("value") == "policies", "the collection list")
    open_view(browser, "search")
    by_id(browser, "query").send_keys("refund")
    browser.find_element("css selector", "#search-form button[type=submit]").click()
    wait_for(browser, lambda d: "Refund policy" in by_id(d, "hits").text, "search hits with the key")


def test_hostile_document_text_stays_text(browser: Any, make_kb: Callable[..., Path],
                                          serve: Callable[[dict[str, Path]], str]) -> None:
    url = serve({"policies": make_kb("policies", {**DOCS, "hostile.txt": XSS})})
    browser.get(url)
    wait_for(browser, lambda d: by_id(d, "collection").get_attribute("value") == "policies", "the collection list")

    open_view(browser, "search")
    by_id(browser, "query").send_keys("quarantine code ZEBRA-77 hostile notes")
    browser.find_element("css selector", "#search-form button[type=submit]").click()
    hit = wait_for(browser, lambda d: d.find_elements("css selector", "#hits li"), "search hits")[0]
    assert '<img src=x onerror="window.__pwned=1">' in hit.text, hit.text
    hit.find_element("css selector", ".hit-head a").click()
    wait_for(browser, lambda d: d.find_elements("css selector", "#passage-text mark"), "the passage")
    passage = by_id(browser, "passage-text")
    assert "<script>window.__pwned=2</script>" in passage.text

    open_view(browser, "ask")
    by_id(browser, "question").send_keys("What is the quarantine code in the hostile notes?")
    browser.find_element("css selector", "#ask-form button[type=submit]").click()
    wait_for(browser, lambda d: by_id(d, "answer").get_attribute("aria-busy") == "false"
             and by_id(d, "answer-flags").text, "the answer")
    # No element from the documents was created anywhere; no handler ran.
    assert not browser.find_elements("css selector", "main img, aside img, main script, aside script, main b")
    assert browser.execute_script("return window.__pwned === undefined")
    shot(browser, "xss-document")


def test_the_documents_view_names_the_files_that_parsed_suspiciously(
        browser: Any, make_kb: Callable[..., Path], serve: Callable[[dict[str, Path]], str]) -> None:
    garbled = "Le cafÃ© de la gare sert des crÃªpes Ã  midi et le soir. " * 5
    url = serve({"policies": make_kb("policies", {**DOCS, "menu<b>.txt": garbled})})
    browser.get(url)
    wait_for(browser, lambda d: by_id(d, "collection").get_attribute("value") == "policies", "the collection list")
    open_view(browser, "documents")
    report = wait_for(browser, lambda d: d.find_elements("css selector", "#parse-report li"), "the parse report")
    assert len(report) == 1 and "menu<b>.txt" in report[0].text and "mojibake" in report[0].text, report[0].text
    assert not any(name in report[0].text for name in DOCS)   # the clean files are not named
    assert not browser.find_elements("css selector", "#parse-report b")   # a file name stays text
    shot(browser, "parse-report")
