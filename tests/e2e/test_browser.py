"""A real browser: Debian's Chromium, driven by Playwright, against ``python wsgi.py``."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from tests.helpers.browser import CHROMIUM_ARGS
from tests.helpers.browser import chromium_path
from tests.helpers.support import ServerProcess
from tests.helpers.support import running_server

PASSWORD = "browser-test-password"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with running_server(tmp_path_factory, "browser", ["pat"], PASSWORD,
                        FLASK_DEMO_PROGRESS_SECONDS="0.05") as proc:
        yield proc


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    chromium = chromium_path()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser, server):
    context = browser.new_context()
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    yield page
    context.close()
    assert errors == [], f"JavaScript errors on the page: {errors}"


def log_in(page, server: ServerProcess, next_path: str = "/") -> None:
    page.goto(f"{server.url}/login?next={next_path}")
    page.fill("#name", "pat")
    page.fill("#password", PASSWORD)
    page.click("#login-submit")
    page.wait_for_url(f"{server.url}{next_path}", timeout=10_000)


def test_login_answer_hello_and_see_the_greeting(page, server):
    log_in(page, server, "/app/hello")
    field = page.locator("form.gw-input input[name=value]")
    field.wait_for(timeout=10_000)
    assert page.locator("form.gw-input label").first.inner_text().strip().startswith("Your name")
    field.fill("Grace <b>Hopper</b>")
    page.locator("form.gw-input button[type=submit]").click()
    greeting = page.locator(".gw-output", has_text="Hello, Grace")
    greeting.wait_for(timeout=10_000)
    # text output is never parsed as HTML
    assert greeting.inner_text().strip() == "Hello, Grace <b>Hopper</b>!"
    assert page.locator(".gw-output b").count() == 0
    page.locator("#gw-start-again").wait_for(timeout=10_000)


def test_index_lists_the_demo_apps_and_wrong_password_is_refused(page, server):
    page.goto(f"{server.url}/login")
    page.fill("#name", "pat")
    page.fill("#password", "wrong password")
    page.click("#login-submit")
    assert "Wrong name or password" in page.locator(".flash-error").inner_text()
    log_in(page, server)
    text = page.inner_text("body")
    for title in ("Hello", "Echo", "Chat", "Progress"):
        assert title in text


@pytest.fixture(scope="module")
def slow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A server whose progress demo runs 60 steps of 0.1 s: time to go offline and reload."""
    with running_server(tmp_path_factory, "browser-resume", ["pat"], PASSWORD,
                        FLASK_DEMO_PROGRESS_STEPS="60", FLASK_DEMO_PROGRESS_SECONDS="0.1") as proc:
        yield proc


RECORDER = """
// Records every status and every seq the page's client applies, in order.
window.__statuses = [];
window.__applied = [];
document.addEventListener('DOMContentLoaded', () => {
  const client = window.gatewayClient;
  if (!client) return;  // not an app page
  client.onStatus((s) => window.__statuses.push(s));
  const socketOf = () => client.socket;
  const hook = setInterval(() => {
    const socket = socketOf();
    if (!socket) return;
    clearInterval(hook);
    socket.on('commands', () => window.__applied.push(client.lastSeq));
  }, 5);
});
"""


def test_progress_survives_offline_cuts_and_a_reload(browser, slow_server):
    from tests.helpers.chaos import CuttingProxy

    proxy = CuttingProxy(slow_server.port)
    context = browser.new_context()
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.add_init_script(RECORDER)
    progress = page.locator(".gw-progress[data-id=job] progress")

    def value() -> float:
        return float(progress.get_attribute("value") or 0) if progress.count() else 0.0

    try:
        page.goto(f"{proxy.url}/login?next=/app/progress")
        page.fill("#name", "pat")
        page.fill("#password", PASSWORD)
        page.click("#login-submit")
        page.wait_for_url(f"{proxy.url}/app/progress", timeout=10_000)
        page.wait_for_function("document.querySelector('.gw-progress progress')?.value >= 5",
                               timeout=15_000)
        session_id = page.evaluate("window.gatewayClient.sessionId")

        context.set_offline(True)  # the network goes away...
        proxy.cut()  # ...and takes the open connection with it
        page.wait_for_function("window.__statuses.includes('reconnecting')", timeout=10_000)
        context.set_offline(False)
        page.wait_for_function("window.__statuses.includes('resumed')", timeout=20_000)
        assert page.locator("#gw-status").get_attribute("data-state") in ("resumed", "connected")
        page.wait_for_function("document.querySelector('.gw-progress progress')?.value >= 25",
                               timeout=15_000)

        page.reload()  # same tab: sessionStorage keeps the session
        page.wait_for_function("window.__statuses.includes('resumed')", timeout=20_000)
        assert page.evaluate("window.gatewayClient.sessionId") == session_id
        proxy.cut()  # and one more cut after the reload
        page.locator(".gw-output", has_text="Done: all steps completed.").wait_for(timeout=30_000)
        assert value() == 60
        assert page.locator(".gw-output", has_text="Done: all steps completed.").count() == 1
        assert page.locator(".gw-output", has_text="Working through 60 steps").count() == 1
        assert page.locator(".gw-progress").count() == 1
        assert "expired" not in page.evaluate("window.__statuses")
        # seqs applied since the reload: in order, ending with the intro, 60 progress
        # steps and the final output applied once each (seq 62)
        applied = page.evaluate("window.__applied")
        assert applied == sorted(applied) and applied[-1] == 62
    finally:
        context.close()
        proxy.close()
    assert errors == [], errors


def test_echo_and_a_two_tab_chat(browser, server):
    tabs = []
    try:
        for _ in range(2):
            context = browser.new_context()
            page = context.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda exc, errors=errors: errors.append(str(exc)))
            log_in(page, server, "/app/chat")
            tabs.append((context, page, errors))
        (_, first, _), (_, second, _) = tabs
        for page in (first, second):
            page.locator(".gw-output", has_text="You joined #lobby").wait_for(timeout=10_000)
        first.fill("#chat-form input[name=text]", "hello <i>lobby</i>")
        first.press("#chat-form input[name=text]", "Enter")
        for page in (first, second):
            line = page.locator("#chat-log li", has_text="hello <i>lobby</i>")
            line.wait_for(timeout=10_000)
            assert line.inner_text() == "pat: hello <i>lobby</i>"
        assert second.locator("#chat-log i").count() == 0

        second.goto(f"{server.url}/app/echo")
        second.fill("#echo-form input[name=text]", "ping")
        second.click("#echo-form button[type=submit]")
        second.locator("#echo-result", has_text="Server acknowledged: ping").wait_for(
            timeout=10_000)
        second.locator(".gw-output", has_text="ping").wait_for(timeout=10_000)
    finally:
        for context, _, _ in tabs:
            context.close()
    for _, _, errors in tabs:
        assert errors == [], errors


# Before any script of the page runs: sessionStorage as another tab had it, once (a reload
# of the duplicate keeps what the duplicate itself stored since).
COPY_STORAGE = """
(() => {
  const copied = %s;
  try {
    if (location.origin !== %s || sessionStorage.getItem('test:copied')) return;
    for (const [key, value] of Object.entries(copied)) sessionStorage.setItem(key, value);
    sessionStorage.setItem('test:copied', '1');
  } catch (err) { /* about:blank */ }
})();
"""


def watch_errors(page) -> list[str]:
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    return errors


def echo(page, text: str) -> object:
    return page.evaluate("(text) => window.gatewayClient.send('echo', {text})", text)


def test_a_duplicated_tab_gets_a_session_of_its_own(browser, server):
    """A duplicated tab starts with a copy of the original's sessionStorage: it must open a
    session of its own, the original keeps its session, and each gets its own answers."""
    context = browser.new_context()
    try:
        first = context.new_page()
        first_errors = watch_errors(first)
        first.add_init_script(RECORDER)
        log_in(first, server, "/app/echo")
        first.wait_for_function("window.__statuses.includes('connected')", timeout=10_000)
        assert echo(first, "from the first tab") == "from the first tab"
        first.locator(".gw-output", has_text="from the first tab").wait_for(timeout=10_000)
        session = first.evaluate("window.gatewayClient.sessionId")
        stored = first.evaluate("Object.fromEntries(Object.entries(sessionStorage))")
        assert json.loads(stored["gateway:echo"])["session"] == session

        copy = context.new_page()  # the duplicate, while the first tab stays open
        copy_errors = watch_errors(copy)
        copy.add_init_script(COPY_STORAGE % (json.dumps(stored), json.dumps(server.url)))
        copy.add_init_script(RECORDER)
        copy.goto(f"{server.url}/app/echo")
        copy.wait_for_function("window.__statuses.includes('connected')", timeout=10_000)
        copied = copy.evaluate("window.gatewayClient.sessionId")
        assert copied and copied != session
        copy.locator(".gw-note[data-kind=duplicate]").wait_for(timeout=10_000)

        # each tab is answered in its own session, with its own results
        copy.fill("#echo-form input[name=text]", "from the copy")
        copy.click("#echo-form button[type=submit]")
        copy.locator("#echo-result", has_text="Server acknowledged: from the copy").wait_for(
            timeout=10_000)
        assert echo(first, "first again") == "first again"
        first.locator(".gw-output", has_text="first again").wait_for(timeout=10_000)
        assert copy.locator(".gw-output", has_text="first again").count() == 0
        assert first.locator(".gw-output", has_text="from the copy").count() == 0
        # the first tab kept its session: never kicked, closed or cut
        assert first.evaluate("window.gatewayClient.sessionId") == session
        statuses = set(first.evaluate("window.__statuses"))
        assert not statuses & {"closed", "reconnecting", "expired", "resumed"}, statuses
        assert first.locator("#gw-status").get_attribute("data-state") == "connected"

        # a reload of either tab resumes its own session (no other tab claims it)
        for page, own in ((copy, copied), (first, session)):
            page.reload()
            page.wait_for_function("window.__statuses.includes('resumed')", timeout=10_000)
            assert page.evaluate("window.gatewayClient.sessionId") == own
            assert "expired" not in page.evaluate("window.__statuses")
        assert echo(copy, "copy after reload") == "copy after reload"
        assert echo(first, "first after reload") == "first after reload"
    finally:
        context.close()
    assert first_errors == [] and copy_errors == [], (first_errors, copy_errors)


def test_events_a_reload_could_not_deliver_are_shown(page, server):
    """Two events wait in storage when the tab reloads, and the session cannot be resumed
    (its token is wrong): the fresh session's page says they were not delivered."""
    log_in(page, server, "/app/echo")
    page.wait_for_function("window.gatewayClient.status === 'connected'", timeout=10_000)
    page.evaluate("""() => {
      const client = window.gatewayClient;
      client.close();  // offline: the events wait in storage
      for (const text of ['one', 'two']) client.send('echo', {text}).catch(() => {});
      const state = JSON.parse(sessionStorage.getItem(client.storageKey));
      state.token = state.token.split('').reverse().join('');  // well formed, not its token
      sessionStorage.setItem(client.storageKey, JSON.stringify(state));
    }""")
    page.reload()
    note = page.locator(".gw-note[data-kind=lost]")
    note.wait_for(timeout=10_000)
    assert note.inner_text() == ("2 actions you took before the reconnect were not "
                                 "delivered, or not confirmed: echo ×2.")
    assert page.locator("#gw-status").get_attribute("data-state") == "expired"
    assert page.evaluate("window.gatewayClient.pendingCount") == 0
    assert echo(page, "after") == "after"
