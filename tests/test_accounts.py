"""Sessions follow the account: the login epoch in the cookie, the account check, the CLI."""

from __future__ import annotations

import sqlite3
import subprocess

import pytest
import requests
from argon2 import PasswordHasher

import auth
from auth.models import stale_logins
from gateway import create_app
from gateway.accounts import AccountCheck

from .conftest import PASSWORD
from .conftest import login_client
from .support import PYTHON
from .support import ROOT
from .support import ProtocolClient
from .support import add_users
from .support import cookie_header
from .support import login
from .support import running_server
from .support import wait_for

NEW_PASSWORD = "a brand new password"


@pytest.fixture
def app_config(app_config):
    # The tests below run the check themselves; the periodic one would race them.
    return dict(app_config, GATEWAY_ACCOUNT_CHECK_SECONDS="3600")


def cli(app, *args, input=None):
    result = app.test_cli_runner().invoke(args=["users", *args], input=input)
    assert result.exit_code == 0, result.output
    return result.output


def user(app, name):
    with app.app_context():
        return auth.User.by_name(name)


def closes(messages):
    return messages.named("close")


# -- the login cookie ------------------------------------------------------------


def test_the_cookie_carries_the_login_epoch(app):
    alice = user(app, "alice")
    assert alice.get_id() == f"{alice.id}:0"
    with app.app_context():
        assert auth.load_user(f"{alice.id}:0").name == "alice"
        for stale in (f"{alice.id}:1", str(alice.id), f"{alice.id}:", "x:0", f"{alice.id}:-1"):
            assert auth.load_user(stale) is None, stale


@pytest.mark.parametrize("change", [
    ("passwd", "alice", "--password-stdin"), ("disable", "alice"), ("delete", "alice")])
def test_an_account_change_ends_the_http_login(app, client, change):
    assert client.get("/").status_code == 200
    cli(app, *change, input=NEW_PASSWORD + "\n")
    response = client.get("/")
    assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_enabling_again_needs_a_new_login(app, client):
    cli(app, "disable", "alice")
    assert app.test_client().post(
        "/login", data={"name": "alice", "password": PASSWORD}).status_code == 401
    cli(app, "enable", "alice")
    assert client.get("/").status_code == 302  # the old cookie stays dead
    assert login_client(app, "alice").get("/").status_code == 200


def test_passwd_sets_the_new_password(app):
    out = cli(app, "passwd", "alice", "--password-stdin", input=NEW_PASSWORD + "\n")
    assert "Changed the password of alice" in out
    alice = user(app, "alice")
    assert alice.auth_epoch == 1
    with app.app_context():
        alice = auth.User.by_name("alice")
        assert alice.check_password(NEW_PASSWORD) and not alice.check_password(PASSWORD)
    short = app.test_cli_runner().invoke(args=["users", "passwd", "alice", "--password-stdin"],
                                         input="short\n")
    assert short.exit_code != 0 and user(app, "alice").auth_epoch == 1


def test_users_list_and_unknown_names(app):
    cli(app, "disable", "bob")
    lines = cli(app, "list").splitlines()
    assert [line.split("\t")[:2] for line in lines] == [
        ["alice", "-"], ["bob", "disabled"], ["root", "admin"]]
    for command in ("disable", "enable", "delete"):
        result = app.test_cli_runner().invoke(args=["users", command, "nobody"])
        assert result.exit_code != 0 and "no user named 'nobody'" in result.output


class AlwaysRehash(PasswordHasher):
    def check_needs_rehash(self, hash: str) -> bool:
        return True


def test_a_rehash_on_login_does_not_end_logins(app, client, monkeypatch):
    # check_password rehashes outdated hashes with set_password: not a password change.
    monkeypatch.setattr(auth.models, "_hasher", AlwaysRehash())
    old_hash = user(app, "alice").password_hash
    login_client(app, "alice")
    assert user(app, "alice").password_hash != old_hash  # it did rehash
    assert user(app, "alice").auth_epoch == 0
    assert client.get("/").status_code == 200


# -- the account check -----------------------------------------------------------


def test_stale_logins(app):
    with app.app_context():
        ids = {name: str(auth.User.by_name(name).id) for name in ("alice", "bob", "root")}
        bob = auth.User.by_name("bob")
        bob.disable()
        root = auth.User.by_name("root")
        root.end_logins()
        auth.db.session.commit()
        logins = {(ids["alice"], 0), (ids["alice"], 3), (ids["bob"], 0), (ids["root"], 0),
                  (ids["root"], 1), ("999", 0), ("not-a-db-id", 0)}
        assert stale_logins(logins) == {(ids["alice"], 3), (ids["bob"], 0), (ids["root"], 0),
                                        ("999", 0)}
        assert stale_logins([]) == set()


def test_the_check_closes_only_stale_sessions(app, hub, connect):
    old_alice, old_alice_msgs = connect("echo", user="alice")
    bob, bob_msgs = connect("echo", user="bob")
    cli(app, "passwd", "alice", "--password-stdin", input=NEW_PASSWORD + "\n")
    # alice logs in again with the new password: that session must stay.
    fresh = app.test_client()
    assert fresh.post("/login", data={"name": "alice", "password": NEW_PASSWORD}
                      ).status_code == 302
    from gateway import socketio
    new_alice = socketio.test_client(app, flask_test_client=fresh, auth={"app": "echo"})
    try:
        with app.app_context():
            assert AccountCheck(hub)() == 1
        assert closes(old_alice_msgs) == [{"reason": "logged_out",
                                           "message": "Your account changed; log in again."}]
        assert not old_alice.is_connected()
        assert new_alice.is_connected() and bob.is_connected() and not closes(bob_msgs)
        assert [s.user.name for s in hub.registry.all()].count("alice") == 1
        with app.app_context():
            assert AccountCheck(hub)() == 0  # nothing more to do
    finally:
        new_alice.disconnect()


def test_the_check_runs_periodically(app_config):
    app = create_app(dict(app_config, GATEWAY_ACCOUNT_CHECK_SECONDS="0.1"))
    from gateway import socketio
    try:
        with app.app_context():
            auth.db.session.add(auth.User(name="erin", password_hash=auth.models._hasher.hash(
                PASSWORD)))
            auth.db.session.commit()
        sio = socketio.test_client(app, flask_test_client=login_client(app, "erin"),
                                   auth={"app": "echo"})
        assert sio.is_connected()
        cli(app, "disable", "erin")
        wait_for(lambda: any(m["name"] == "close" for m in sio.queue), timeout=5,
                 message="the periodic check to close erin's session")
        (close,) = [m["args"][0] for m in sio.queue if m["name"] == "close"]
        assert close["reason"] == "logged_out"
    finally:
        app.extensions["gateway"].shutdown()


def test_an_old_database_gains_the_epoch_column(app_config, tmp_path):
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as db:  # the users table as it was before auth_epoch
        db.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, name VARCHAR(64) UNIQUE, "
                   "password_hash VARCHAR(255), is_admin BOOLEAN, disabled BOOLEAN, "
                   "created_at DATETIME)")
        db.execute("INSERT INTO users VALUES (1, 'old', ?, 0, 0, '2024-01-01 00:00:00')",
                   (auth.models._hasher.hash(PASSWORD),))
    app = create_app(dict(app_config, GATEWAY_DATABASE_URL=f"sqlite:///{path}"))
    try:
        assert login_client(app, "old").get("/").status_code == 200
        assert user(app, "old").auth_epoch == 0
    finally:
        app.extensions["gateway"].shutdown()


# -- a real server and the real CLI ----------------------------------------------

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
