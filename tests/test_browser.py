"""A real browser: Debian's Chromium, driven by Playwright, against ``python wsgi.py``."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest

from .support import IN_CI
from .support import ServerProcess
from .support import create_user
from .support import server_env

PASSWORD = "browser-test-password"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-sync",
                 "--disable-quic"]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    tmp = tmp_path_factory.mktemp("browser")
    env = server_env(str(tmp / "gateway.db"), FLASK_DEMO_PROGRESS_SECONDS="0.05")
    create_user(env, "pat", PASSWORD)
    proc = ServerProcess.embedded(env, str(tmp / "server.log")).start()
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    chromium = shutil.which("chromium")
    if chromium is None:
        assert not IN_CI, "Debian's chromium is required in CI (make test installs it as root)"
        pytest.skip("chromium is not installed")
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
