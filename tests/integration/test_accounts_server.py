"""Sessions follow the account on a real server, changed by the real CLI (``flask users``):
the changed account's sessions closed, its old cookie refused, the other users untouched."""

from __future__ import annotations

import subprocess

import pytest
import requests

from tests.helpers.support import PYTHON
from tests.helpers.support import ROOT
from tests.helpers.support import ProtocolClient
from tests.helpers.support import add_users
from tests.helpers.support import cookie_header
from tests.helpers.support import login
from tests.helpers.support import running_server
from tests.helpers.support import wait_for
from tests.helpers.testapp import PASSWORD

NEW_PASSWORD = "a brand new password"
USERS = ["alice", "bob", "carol", "dave", "erin"]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with running_server(tmp_path_factory, "accounts", [], PASSWORD,
                        GATEWAY_ACCOUNT_CHECK_SECONDS="0.5") as proc:
        add_users(proc, PASSWORD, USERS)
        yield proc
    assert "Traceback" not in proc.log(), proc.log()


def real_cli(server, *args, input=None):
    result = subprocess.run([PYTHON, "-m", "flask", "--app", "wsgi", "users", *args],
                            input=input, text=True, env=server.env, cwd=ROOT,
                            capture_output=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.fixture
def live(server):
    """``live(user)`` -> (HTTP session, connected echo client)."""
    made = []

    def _live(name):
        http = login(server.url, name, PASSWORD)
        client = ProtocolClient(server.url, cookie_header(http)).connect("echo")
        made.append(client)
        return http, client

    yield _live
    for client in made:
        client.close()


def logged_out(client):
    return wait_for(lambda: client.named("close"), timeout=10,
                    message="close logged_out")[0]


@pytest.mark.real
@pytest.mark.parametrize("victim,change", [
    ("alice", ["disable", "alice"]),
    ("carol", ["passwd", "carol", "--password-stdin"]),
    ("dave", ["delete", "dave"]),
])
def test_real_server_closes_the_sessions_of_a_changed_account(server, live, victim, change):
    http, client = live(victim)
    _, bystander = live("bob")
    real_cli(server, *change, input=NEW_PASSWORD + "\n")
    assert logged_out(client) == {"reason": "logged_out",
                                  "message": "Your account changed; log in again."}
    wait_for(lambda: client.disconnected, timeout=5, message="the disconnect")
    page = http.get(server.url + "/", allow_redirects=False, timeout=10)
    assert page.status_code == 302 and "/login" in page.headers["Location"]
    # The other user's session carries on.
    assert not bystander.named("close")
    assert bystander.event(1, "echo", {"text": "still here"}) == {"ok": True,
                                                                   "result": "still here"}
    if victim == "carol":  # the new password works, and its session stays
        fresh = ProtocolClient(server.url, cookie_header(login(server.url, "carol",
                                                               NEW_PASSWORD))).connect("echo")
        try:
            assert fresh.event(1, "echo", {"text": "hi"})["ok"]
        finally:
            fresh.close()


@pytest.mark.real
def test_real_server_old_cookie_cannot_open_a_session(server):
    http = login(server.url, "erin", PASSWORD)
    real_cli(server, "passwd", "erin", "--password-stdin", input=NEW_PASSWORD + "\n")
    error = ProtocolClient(server.url, cookie_header(http)).try_connect("echo")
    assert error["data"]["code"] == "unauthorized"
    assert requests.get(server.url + "/app/echo", cookies=http.cookies, allow_redirects=False,
                        timeout=10).status_code == 302
