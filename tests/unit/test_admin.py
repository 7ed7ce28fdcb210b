"""Administration: the sessions API (list, kick) and the ``admin`` session app."""

from __future__ import annotations

import pytest

import auth
import gateway.web.admin
from gateway import GatewayError
from gateway import create_app
from gateway import hub_for
from gateway import socketio
from gateway.core.session import SessionUser
from gateway.web.admin import kick_event
from tests.helpers.support import csrf_token
from tests.helpers.support import wait_for
from tests.helpers.testapp import PASSWORD
from tests.helpers.testapp import PASSWORD_HASH
from tests.helpers.testapp import login_client


@pytest.fixture
def app_config(app_config):
    return dict(app_config, ADMIN_REFRESH_SECONDS=0.05)


def session_id(messages):
    return wait_for(lambda: messages.named("session"), 5, message="the session message")[0][
        "session"]


def close_of(messages, timeout=5):
    return wait_for(lambda: messages.named("close"), timeout, message="close")[0]


# -- the HTTP API ----------------------------------------------------------------


def test_the_api_is_for_admins_only(app):
    anonymous = app.test_client().get("/api/v1/sessions")
    assert anonymous.status_code == 401
    assert anonymous.get_json() == {"error": {"code": "unauthorized",
                                              "message": "Log in as an administrator first."}}
    forbidden = login_client(app, "alice").get("/api/v1/sessions")
    assert forbidden.status_code == 403 and forbidden.get_json()["error"]["code"] == "forbidden"
    kick = login_client(app, "alice").post("/api/v1/sessions/abcdefghijkl/kick")
    assert kick.status_code == 403
    ok = login_client(app, "root").get("/api/v1/sessions")
    assert ok.status_code == 200 and ok.get_json() == {"sessions": []}


def test_the_api_lists_live_sessions_of_every_user(app, connect):
    _, alice_msgs = connect("echo", user="alice")
    _, bob_msgs = connect("chat", user="bob")
    ids = {session_id(alice_msgs): "alice", session_id(bob_msgs): "bob"}
    rows = login_client(app, "root").get("/api/v1/sessions").get_json()["sessions"]
    assert {row["id"]: row["user"]["name"] for row in rows} == ids
    by_user = {row["user"]["name"]: row for row in rows}
    assert by_user["alice"]["app"] == "echo" and by_user["bob"]["app"] == "chat"
    assert by_user["bob"]["topics"] == ["lobby"] and by_user["alice"]["topics"] == []
    for row in rows:
        assert row["state"] == "attached" and row["worker"]
        assert row["created_at"] <= row["attached_at"] and row["detached_at"] is None
        assert set(row["user"]) == {"id", "name"}


def test_kick_closes_only_the_target_session(app, connect):
    alice, alice_msgs = connect("echo", user="alice")
    bob, bob_msgs = connect("echo", user="bob")
    root = login_client(app, "root")
    response = root.post(f"/api/v1/sessions/{session_id(alice_msgs)}/kick")
    assert response.status_code == 202 and response.get_json() == {"kicked": True}
    assert close_of(alice_msgs)["reason"] == "kicked"
    assert not alice.is_connected()
    assert bob.is_connected() and not bob_msgs.named("close")
    rows = root.get("/api/v1/sessions").get_json()["sessions"]
    assert [row["user"]["name"] for row in rows] == ["bob"]
    unknown = root.post(f"/api/v1/sessions/{session_id(alice_msgs)}/kick")
    assert unknown.status_code == 404
    assert unknown.get_json()["error"]["code"] == "unknown_session"


@pytest.fixture
def csrf_app(app_config):
    app = create_app(dict(app_config, WTF_CSRF_ENABLED=True))
    with app.app_context():
        for name, admin in (("alice", False), ("root", True)):
            auth.db.session.add(auth.User(name=name, is_admin=admin, password_hash=PASSWORD_HASH))
        auth.db.session.commit()
    yield app
    hub_for(app).shutdown()


def csrf_login(app, name):
    client = app.test_client()
    token = csrf_token(client.get("/login").get_data(as_text=True))
    response = client.post("/login", data={"name": name, "password": PASSWORD,
                                           "csrf_token": token})
    assert response.status_code == 302
    return client


def test_kick_needs_the_csrf_token(csrf_app):
    sio = socketio.test_client(csrf_app, flask_test_client=csrf_login(csrf_app, "alice"),
                               auth={"app": "echo"})
    try:
        (welcome,) = [m["args"][0] for m in sio.queue if m["name"] == "session"]
        root = csrf_login(csrf_app, "root")
        url = f"/api/v1/sessions/{welcome['session']}/kick"
        refused = root.post(url)
        assert refused.status_code == 400
        assert refused.get_json()["error"]["code"] == "bad_request"
        assert "X-CSRFToken" in refused.get_json()["error"]["message"]
        assert sio.is_connected()
        token = csrf_token(root.get("/").get_data(as_text=True))
        assert root.post(url, headers={"X-CSRFToken": token}).status_code == 202
        wait_for(lambda: not sio.is_connected(), 5, message="the kicked session to go")
    finally:
        if sio.is_connected():
            sio.disconnect()


# -- the admin session app -------------------------------------------------------


def tables(messages):
    return [c["args"]["content"] for c in messages.commands()
            if c["name"] == "output" and c["args"].get("kind") == "table"]


def test_the_admin_app_shows_new_sessions(app, connect, monkeypatch):
    looks = []
    real_rows = gateway.web.admin.session_rows
    monkeypatch.setattr(gateway.web.admin, "session_rows",
                        lambda hub: looks.append(1) or real_rows(hub))
    _, root_msgs = connect("admin", user="root")
    root_id = session_id(root_msgs)
    (first,) = wait_for(lambda: tables(root_msgs), 5, message="the first table")
    assert [row["session"] for row in first] == [root_id]
    assert first[0]["user"] == "root" and first[0]["app"] == "admin"
    _, alice_msgs = connect("chat", user="alice")
    alice_id = session_id(alice_msgs)
    # A refresh may land between alice's session starting and its joining the lobby:
    # wait for the table that shows both (each refresh that sees a change sends one).

    def alice_in_lobby() -> dict | None:
        rows = [row for table in tables(root_msgs)[1:] for row in table
                if row["session"] == alice_id and row["topics"] == "lobby"]
        return rows[-1] if rows else None

    alice_row = wait_for(alice_in_lobby, 5, message="a table with alice's session in the lobby")
    assert alice_row["user"] == "alice" and alice_row["app"] == "chat"
    # Each table replaces the previous one, and comes only when something changed.
    names = [c["name"] for c in root_msgs.commands()]
    assert names == ["clear", "output"] * len(tables(root_msgs))
    count, seen = len(tables(root_msgs)), len(looks)
    wait_for(lambda: len(looks) >= seen + 5, 5, message="five more refreshes")
    assert len(tables(root_msgs)) == count  # nothing changed: nothing sent


def test_the_admin_app_kicks_a_session(app, connect):
    root, root_msgs = connect("admin", user="root")
    alice, alice_msgs = connect("echo", user="alice")
    bob, bob_msgs = connect("echo", user="bob")
    target = session_id(alice_msgs)
    ack = root.emit("event", {"id": 1, "name": "kick", "data": {"session": target}},
                    callback=True)
    assert ack == {"ok": True, "result": {"kicked": True}}
    assert close_of(alice_msgs) == {"reason": "kicked",
                                    "message": "An administrator ended the session."}
    assert bob.is_connected() and not bob_msgs.named("close") and root.is_connected()
    again = root.emit("event", {"id": 2, "name": "kick", "data": {"session": target}},
                      callback=True)
    assert again["ok"] is False and again["error"]["code"] == "bad_request"
    bad = root.emit("event", {"id": 3, "name": "kick", "data": "x"}, callback=True)
    assert bad["ok"] is False and bad["error"]["code"] == "bad_request"


def test_a_non_admin_is_closed_at_once(app, connect):
    alice, alice_msgs = connect("admin", user="alice")
    assert close_of(alice_msgs) == {"reason": "kicked",
                                    "message": "The admin app is for administrators only."}
    assert not tables(alice_msgs)
    wait_for(lambda: len(hub_for(app).registry) == 0, 5,
             message="the session to be freed")


def test_a_non_admin_kick_event_is_refused(app, connect):
    class Stub:
        user = SessionUser(id="1", name="alice", is_admin=False)

    _, bob_msgs = connect("echo", user="bob")
    with app.app_context(), pytest.raises(GatewayError) as refused:
        kick_event(Stub(), {"session": session_id(bob_msgs)})
    assert refused.value.code == "unknown_event"
    assert not bob_msgs.named("close")


def test_the_index_lists_the_admin_app_for_admins_only(app):
    assert "/app/admin" not in login_client(app, "alice").get("/").get_data(as_text=True)
    assert "/app/admin" in login_client(app, "root").get("/").get_data(as_text=True)


def test_the_admin_page_is_forbidden_to_non_admins(app):
    assert login_client(app, "alice").get("/app/admin").status_code == 403
    assert login_client(app, "root").get("/app/admin").status_code == 200
