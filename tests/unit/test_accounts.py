"""Sessions follow the account: the login epoch in the cookie, the account check, the CLI."""

from __future__ import annotations

import sqlite3
import threading

import pytest
from argon2 import PasswordHasher

import auth
from auth.models import EPOCH_LIMIT
from auth.models import EPOCH_MIN
from auth.models import stale_logins
from gateway import create_app
from gateway import hub_for
from gateway.web.accounts import AccountCheck
from tests.helpers.support import wait_for
from tests.helpers.testapp import PASSWORD
from tests.helpers.testapp import login_client

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
    epoch = alice.auth_epoch
    assert EPOCH_MIN <= epoch < EPOCH_LIMIT  # random, not a counter from 0
    assert alice.get_id() == f"{alice.id}:{epoch}"
    with app.app_context():
        assert auth.load_user(f"{alice.id}:{epoch}").name == "alice"
        for stale in (f"{alice.id}:0", f"{alice.id}:{epoch + 1}", str(alice.id), f"{alice.id}:",
                      f"x:{epoch}", f"{alice.id}:-{epoch}"):
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
    before = user(app, "alice").auth_epoch
    out = cli(app, "passwd", "alice", "--password-stdin", input=NEW_PASSWORD + "\n")
    assert "Changed the password of alice" in out
    alice = user(app, "alice")
    assert alice.auth_epoch != before and alice.auth_epoch >= EPOCH_MIN
    with app.app_context():
        alice = auth.User.by_name("alice")
        assert alice.check_password(NEW_PASSWORD) and not alice.check_password(PASSWORD)
    short = app.test_cli_runner().invoke(args=["users", "passwd", "alice", "--password-stdin"],
                                         input="short\n")
    assert short.exit_code != 0 and user(app, "alice").auth_epoch == alice.auth_epoch


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
    old_hash, old_epoch = user(app, "alice").password_hash, user(app, "alice").auth_epoch
    login_client(app, "alice")
    assert user(app, "alice").password_hash != old_hash  # it did rehash
    assert user(app, "alice").auth_epoch == old_epoch
    assert client.get("/").status_code == 200


# -- the account check -----------------------------------------------------------


def test_stale_logins(app):
    with app.app_context():
        ids = {name: str(auth.User.by_name(name).id) for name in ("alice", "bob", "root")}
        epochs = {name: auth.User.by_name(name).auth_epoch for name in ("alice", "bob", "root")}
        bob = auth.User.by_name("bob")
        bob.disable()
        root = auth.User.by_name("root")
        root.end_logins()
        auth.db.session.commit()
        logins = {(ids["alice"], epochs["alice"]), (ids["alice"], 3),
                  (ids["bob"], bob.auth_epoch), (ids["root"], epochs["root"]),
                  (ids["root"], root.auth_epoch), ("999", 0), ("not-a-db-id", 0)}
        assert stale_logins(logins) == {(ids["alice"], 3), (ids["bob"], bob.auth_epoch),
                                        (ids["root"], epochs["root"]), ("999", 0)}
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
        hub_for(app).shutdown()


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
        assert user(app, "old").auth_epoch >= EPOCH_MIN  # moved off the counter scheme
    finally:
        hub_for(app).shutdown()


# -- ids and epochs are never shared between accounts ---------------------------


def test_a_deleted_users_cookie_does_not_open_the_next_account(app, refused):
    # root (an admin, the newest account) logs in, is deleted; a new admin is created.
    # Before: SQLite handed the new account root's id and both started in epoch 0, so
    # root's cookie ("3:0") opened the new admin's account.
    old_root = login_client(app, "root")
    assert old_root.get("/api/v1/sessions").status_code == 200
    old_id = user(app, "root").id
    cli(app, "delete", "root")
    cli(app, "create", "eve", "--password-stdin", "--admin", input=PASSWORD + "\n")
    assert user(app, "eve").id > old_id  # never reused
    page = old_root.get("/")
    assert page.status_code == 302 and "/login" in page.headers["Location"]
    assert old_root.get("/api/v1/sessions").status_code == 401
    assert refused({"app": "echo"}, flask_client=old_root)["data"]["code"] == "unauthorized"
    assert login_client(app, "eve").get("/api/v1/sessions").status_code == 200


def test_an_account_given_a_deleted_id_still_refuses_its_cookies(app, refused):
    # Even where an id does come back (a table rebuilt by hand, an id deleted before the
    # AUTOINCREMENT migration), the new account's random epoch refuses the old cookies.
    old_bob = login_client(app, "bob")
    with app.app_context():
        bob = auth.User.by_name("bob")
        bob_id = bob.id
        auth.db.session.delete(bob)
        auth.db.session.commit()
        auth.db.session.add(auth.User(id=bob_id, name="mallory",
                                      password_hash=auth.models._hasher.hash(PASSWORD)))
        auth.db.session.commit()
    assert user(app, "mallory").id == bob_id
    assert old_bob.get("/").status_code == 302
    assert refused({"app": "echo"}, flask_client=old_bob)["data"]["code"] == "unauthorized"


def test_end_logins_moves_to_a_new_random_epoch(app):
    with app.app_context():
        alice = auth.User.by_name("alice")
        seen = {alice.auth_epoch}
        for _ in range(20):
            alice.end_logins()
            assert alice.auth_epoch not in seen and EPOCH_MIN <= alice.auth_epoch < EPOCH_LIMIT
            seen.add(alice.auth_epoch)
        epochs = [auth.User.by_name(n).auth_epoch for n in ("alice", "bob", "root")]
        assert len(set(epochs)) == 3  # every account starts in its own random epoch


# The users table as create_all made it before AUTOINCREMENT (and random epochs).
OLD_USERS_TABLE = """CREATE TABLE users (
    id INTEGER NOT NULL, name VARCHAR(64) NOT NULL, password_hash VARCHAR(255) NOT NULL,
    is_admin BOOLEAN NOT NULL, disabled BOOLEAN NOT NULL, created_at DATETIME NOT NULL,
    auth_epoch INTEGER DEFAULT '0' NOT NULL, PRIMARY KEY (id))"""


def old_database(path):
    with sqlite3.connect(path) as db:
        db.execute(OLD_USERS_TABLE)
        db.execute("CREATE UNIQUE INDEX ix_users_name ON users (name)")
        hashed = auth.models._hasher.hash(PASSWORD)
        db.executemany("INSERT INTO users VALUES (?, ?, ?, ?, 0, ?, ?)", [
            (1, "old", hashed, 0, "2024-01-01 00:00:00.000000", 0),
            (2, "boss", hashed, 1, "2024-02-01 00:00:00.000000", 4),
            (3, "gone", hashed, 0, "2024-03-01 00:00:00.000000", 0)])
    db.close()


def users_table(path):
    with sqlite3.connect(path) as db:
        sql = db.execute("SELECT sql FROM sqlite_master WHERE name = 'users'").fetchone()[0]
        rows = db.execute("SELECT id, name, is_admin, created_at, auth_epoch FROM users "
                          "ORDER BY id").fetchall()
        indexes = [(row[1], row[2]) for row in db.execute("PRAGMA index_list(users)")]
    db.close()
    return sql, rows, indexes


def test_an_old_sqlite_users_table_is_rebuilt_with_autoincrement(app_config, tmp_path):
    path = tmp_path / "old.db"
    old_database(path)
    config = dict(app_config, GATEWAY_DATABASE_URL=f"sqlite:///{path}")
    app = create_app(config)
    try:
        sql, rows, indexes = users_table(path)
        assert "AUTOINCREMENT" in sql.upper()
        assert [row[:4] for row in rows] == [  # every row kept, as it was
            (1, "old", 0, "2024-01-01 00:00:00.000000"),
            (2, "boss", 1, "2024-02-01 00:00:00.000000"),
            (3, "gone", 0, "2024-03-01 00:00:00.000000")]
        epochs = [row[4] for row in rows]  # off the counter scheme: everyone logs in again
        assert all(EPOCH_MIN <= e < EPOCH_LIMIT for e in epochs) and len(set(epochs)) == 3
        assert indexes == [("ix_users_name", 1)]  # the unique index on the name is back
        with pytest.raises(sqlite3.IntegrityError):
            with sqlite3.connect(path) as db:
                db.execute("INSERT INTO users (name, password_hash, is_admin, disabled, "
                           "created_at) VALUES ('old', 'x', 0, 0, '2024-01-01')")
        # The newest account's cookie does not open the next one.
        gone = login_client(app, "gone")
        assert gone.get("/").status_code == 200 and login_client(app, "boss")
        cli(app, "delete", "gone")
        cli(app, "create", "next", "--password-stdin", input=PASSWORD + "\n")
        assert user(app, "next").id == 4
        assert gone.get("/").status_code == 302
    finally:
        hub_for(app).shutdown()
    # Starting again changes nothing (no second logout).
    app = create_app(config)
    hub_for(app).shutdown()
    assert users_table(path)[1][:2] == rows[:2]


def test_workers_starting_together_migrate_once(app_config, tmp_path):
    path = tmp_path / "old.db"
    old_database(path)
    app = create_app(dict(app_config, GATEWAY_DATABASE_URL=f"sqlite:///{path}",
                          GATEWAY_CREATE_TABLES="false"))
    errors, start = [], threading.Barrier(4)

    def worker():
        try:
            with app.app_context():
                start.wait()
                auth.models.upgrade_schema()
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
    finally:
        hub_for(app).shutdown()
    assert errors == []
    sql, rows, indexes = users_table(path)
    assert "AUTOINCREMENT" in sql.upper() and indexes == [("ix_users_name", 1)]
    assert [row[1] for row in rows] == ["old", "boss", "gone"]
    assert all(row[4] >= EPOCH_MIN for row in rows)
