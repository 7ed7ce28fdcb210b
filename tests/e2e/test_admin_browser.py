"""The admin page in a real browser: the sessions table and its Kick buttons (admin.js)."""

from __future__ import annotations

import pytest

from tests.helpers.browser import CHROMIUM_ARGS
from tests.helpers.browser import chromium_path
from tests.helpers.support import ProtocolClient
from tests.helpers.support import add_users
from tests.helpers.support import cookie_header
from tests.helpers.support import login
from tests.helpers.support import running_server
from tests.helpers.support import wait_for

PASSWORD = "admin-browser-password"


@pytest.mark.real
def test_an_admin_kicks_a_session_from_the_page(tmp_path_factory):
    chromium = chromium_path()
    from playwright.sync_api import sync_playwright

    with running_server(tmp_path_factory, "admin-browser", [], PASSWORD,
                        FLASK_ADMIN_REFRESH_SECONDS="0.1") as server, \
            sync_playwright() as playwright:
        add_users(server, PASSWORD, ["alice"], admins=["root"])
        alice = ProtocolClient(server.url, cookie_header(login(server.url, "alice", PASSWORD)))
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            alice.connect("echo")
            target = wait_for(lambda: alice.named("session"), 5)[0]["session"]
            page = browser.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto(f"{server.url}/login?next=/app/admin")
            page.fill("#name", "root")
            page.fill("#password", PASSWORD)
            page.click("#login-submit")
            page.wait_for_url(f"{server.url}/app/admin", timeout=10_000)
            row = page.locator("tr", has_text=target)
            row.wait_for(timeout=10_000)
            assert page.locator("td", has_text="this tab").count() == 1  # root's own row
            row.get_by_role("button", name=f"Kick session {target}").click()
            assert wait_for(lambda: alice.named("close"), 10)[0]["reason"] == "kicked"
            page.locator("#admin-result", has_text=f"Session {target} ended.").wait_for(
                timeout=10_000)
            page.locator("tr", has_text=target).wait_for(state="detached", timeout=10_000)
            assert errors == [], errors
        finally:
            alice.close()
            browser.close()
