"""The HTTP API on one worker: push with API tokens, presence, the SSE stream, the CLIs."""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest
from flask import Flask

from auth.tokens import ApiToken
from gateway.hub import Hub

from .conftest import login_client
from .support import wait_for


@pytest.fixture
def token(app: Flask) -> str:
    with app.app_context():
        return ApiToken.issue("ci")


def push(app: Flask, body: Any, token: str | None = None, raw: bytes | None = None,
         **headers: str) -> Any:
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    data = raw if raw is not None else json.dumps(body)
    return app.test_client().post("/api/v1/push", data=data, headers=headers,
                                  content_type="application/json")


def test_push_reaches_the_users_sessions_in_order(app, connect, token):
    sio, messages = connect("echo", user="alice")
    other, other_messages = connect("echo", user="bob")
    for n in range(5):
        response = push(app, {"to": {"user": "alice"}, "name": "toast",
                              "args": {"level": "info", "text": f"n{n}"}}, token)
        assert response.status_code == 202 and response.get_json() == {"accepted": True}
    cmds = messages.wait_commands(5)
    assert [c["args"]["text"] for c in cmds if c["name"] == "toast"] == [f"n{n}" for n in range(5)]
    assert [c["seq"] for c in cmds] == sorted(c["seq"] for c in cmds)
    assert not [c for c in other_messages.commands() if c["name"] == "toast"]


@pytest.mark.parametrize("body, status, code", [
    ({"to": {"user": "alice"}}, 400, "bad_request"),  # no name
    ({"to": {"nobody": "x"}, "name": "toast"}, 400, "bad_request"),
    ({"to": {"everyone": False}, "name": "toast"}, 400, "bad_request"),
    ({"to": {"user": "alice"}, "name": "toast", "args": [1]}, 400, "bad_request"),
    ({"to": {"user": "alice"}, "name": "toast", "extra": 1}, 400, "bad_request"),
    ([1, 2], 400, "bad_request"),
    ({"to": {"user": "alice"}, "name": ""}, 400, "bad_request"),
])
def test_push_refuses_a_bad_body_with_the_error_shape(app, token, body, status, code):
    response = push(app, body, token)
    assert response.status_code == status
    assert response.get_json()["error"]["code"] == code
    assert response.get_json()["error"]["message"]


def test_push_refuses_bad_json_and_oversize_bodies(app, token):
    response = push(app, None, token, raw=b"{not json")
    assert response.status_code == 400 and response.get_json()["error"]["code"] == "bad_request"
    big = json.dumps({"to": {"everyone": True}, "name": "x", "args": {"t": "a" * 1_100_000}})
    response = push(app, None, token, raw=big.encode())
    assert response.status_code == 413 and response.get_json()["error"]["code"] == "too_large"


def test_push_needs_a_valid_token(app, token):
    body = {"to": {"everyone": True}, "name": "toast", "args": {}}
    missing = push(app, body)
    assert missing.status_code == 401 and missing.headers["WWW-Authenticate"].startswith("Bearer")
    assert push(app, body, "gwt_not-a-real-token").status_code == 401
    assert push(app, body, token[:-1] + ("A" if token[-1] != "A" else "B")).status_code == 401
    assert push(app, body, Authorization="Basic abc").status_code == 401
    # A login cookie is not a token (and would be a CSRF hole): 403.
    response = login_client(app, "alice").post("/api/v1/push", json=body)
    assert response.status_code == 403 and response.get_json()["error"]["code"] == "forbidden"


def test_tokens_are_stored_hashed_and_revocable(app):
    runner = app.test_cli_runner()
    created = runner.invoke(args=["tokens", "create", "deploy"])
    assert created.exit_code == 0, created.output
    token = created.stdout.strip().splitlines()[-1]
    assert token.startswith("gwt_") and len(token) > 40
    with app.app_context():
        row = ApiToken.verify(token)
        assert row is not None and row.name == "deploy" and token not in row.token_hash
    body = {"to": {"everyone": True}, "name": "toast", "args": {}}
    assert push(app, body, token).status_code == 202
    assert runner.invoke(args=["tokens", "create", "deploy"]).exit_code != 0  # no duplicates
    listed = runner.invoke(args=["tokens", "list"])
    assert "deploy" in listed.output and token not in listed.output
    assert runner.invoke(args=["tokens", "revoke", "deploy"]).exit_code == 0
    assert push(app, body, token).status_code == 401
    assert runner.invoke(args=["tokens", "revoke", "deploy"]).exit_code != 0


def test_flask_send_without_a_queue_fails_loudly(app):
    result = app.test_cli_runner().invoke(args=["send", "--user", "alice", "toast", "{}"])
    assert result.exit_code != 0 and "GATEWAY_MESSAGE_QUEUE" in result.output
    bad = app.test_cli_runner().invoke(args=["send", "--user", "alice", "toast", "{nope"])
    assert bad.exit_code == 2 and "JSON" in bad.output
    two = app.test_cli_runner().invoke(args=["send", "--user", "a", "--everyone", "toast"])
    assert two.exit_code == 2 and "exactly one" in two.output


def test_presence_across_topics_and_its_notifications(app, hub: Hub, connect, token):
    changes: list[dict[str, Any]] = []
    hub.presence.subscribe(lambda change: changes.append(change.to_dict()))
    alice, alice_messages = connect("chat", user="alice")
    wait_for(lambda: hub.presence.members("lobby"), message="alice in the lobby")
    bob, _ = connect("chat", user="bob")
    wait_for(lambda: len(hub.presence.members("lobby")) == 2, message="two in the lobby")
    assert [u["name"] for u in hub.presence.online()] == ["alice", "bob"]
    # alice watches the lobby: she is told bob came, once.
    wait_for(lambda: [c for c in alice_messages.commands() if c["name"] == "presence"
                      and c["args"]["user"]["name"] == "bob"], message="presence of bob")
    response = app.test_client().get("/api/v1/presence?topic=lobby",
                                      headers={"Authorization": f"Bearer {token}"})
    assert [u["name"] for u in response.get_json()["users"]] == ["alice", "bob"]
    # Not for plain users; yes for admins.
    assert login_client(app, "alice").get("/api/v1/presence").status_code == 403
    assert login_client(app, "root").get("/api/v1/presence").status_code == 200
    bob.disconnect()  # detached: still present until the session closes
    assert hub.presence.is_online(next(u["id"] for u in hub.presence.online()
                                       if u["name"] == "bob"))
    hub.close_user("bob", "logged_out", "bye")
    wait_for(lambda: len(hub.presence.members("lobby")) == 1, message="bob gone")
    wait_for(lambda: [c for c in alice_messages.commands() if c["name"] == "presence"
                      and not c["args"]["present"]], message="bob left, told to alice")
    assert {"user": {"id": changes[-1]["user"]["id"], "name": "bob"}, "topic": None,
            "present": False} in changes
    kinds = [(c["user"]["name"], c["topic"], c["present"]) for c in changes]
    assert kinds.count(("bob", "lobby", True)) == 1 and kinds.count(("bob", None, False)) == 1


def read_events(response: Any, count: int, timeout: float = 10) -> list[dict[str, str]]:
    """Parse ``count`` SSE events (not comments) from a streamed test response."""
    events: list[dict[str, str]] = []
    buffer = ""
    chunks = iter(response.response)
    done = threading.Event()
    timer = threading.Timer(timeout, done.set)
    timer.start()
    try:
        while len(events) < count and not done.is_set():
            chunk = next(chunks)
            buffer += chunk.decode() if isinstance(chunk, bytes) else chunk
            while "\n\n" in buffer:
                block, buffer = buffer.split("\n\n", 1)
                fields = dict(line.split(": ", 1) for line in block.splitlines()
                              if ": " in line and not line.startswith(":"))
                if "data" in fields:
                    events.append(fields)
    finally:
        timer.cancel()
    assert len(events) >= count, f"only {len(events)} events"
    return events


def test_sse_stream_of_the_users_commands_resumes_from_last_event_id(app, hub: Hub, token):
    http = login_client(app, "alice")
    response = http.get("/api/v1/stream", buffered=False)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/event-stream")
    assert response.headers["X-Accel-Buffering"] == "no"
    wait_for(lambda: len(hub.streams) == 1, message="the stream")
    for n in range(3):
        hub.send(hub_target("user", "alice"), "toast", {"text": f"t{n}"})
    hub.send(hub_target("user", "bob"), "toast", {"text": "not for alice"})
    hub.send(hub_target("everyone"), "bad name\nid: 99", {"text": "everyone"})
    events = read_events(response, 4)
    assert [e["id"] for e in events] == ["1", "2", "3", "4"]
    assert [json.loads(e["data"]).get("text") for e in events[:3]] == ["t0", "t1", "t2"]
    assert events[0]["event"] == "toast"
    # An unsafe name cannot inject SSE fields: it comes as a "command" event.
    assert events[3]["event"] == "command"
    assert json.loads(events[3]["data"])["name"] == "bad name\nid: 99"
    response.close()
    # Reconnect with Last-Event-ID: only what came after.
    hub.send(hub_target("user", "alice"), "toast", {"text": "t4"})
    again = http.get("/api/v1/stream", headers={"Last-Event-ID": "2"}, buffered=False)
    events = read_events(again, 3)
    assert [e["id"] for e in events] == ["3", "4", "5"]
    assert json.loads(events[2]["data"]) == {"text": "t4"}
    # Logging out ends the stream with a close event.
    hub.close_user("alice", "logged_out", "bye")
    closing = read_events(again, 1)
    assert closing[0]["event"] == "close"
    assert json.loads(closing[0]["data"]) == {"reason": "logged_out"}
    again.close()


def test_sse_stream_unknown_last_event_id_and_auth(app, hub: Hub):
    assert app.test_client().get("/api/v1/stream").status_code == 401
    http = login_client(app, "bob")
    response = http.get("/api/v1/stream", headers={"Last-Event-ID": "41"}, buffered=False)
    hub.send(hub_target("user", "bob"), "toast", {"text": "after"})
    events = read_events(response, 2)
    assert events[0]["event"] == "reset" and json.loads(events[0]["data"]) == {"reason": "unknown"}
    assert events[1]["id"] == "1"
    response.close()


def hub_target(kind: str, value: str | None = None) -> Any:
    from gateway.bus import Target

    return Target(kind, value)


def test_sse_stream_ends_when_the_account_changes(app, hub: Hub):
    from auth import User
    from auth import db
    from gateway.accounts import AccountCheck

    http = login_client(app, "bob")
    response = http.get("/api/v1/stream", buffered=False)
    wait_for(lambda: len(hub.streams) == 1, message="the stream")
    with app.app_context():
        user = User.by_name("bob")
        user.change_password("a brand new password")
        db.session.commit()
        AccountCheck(hub)()
    events = read_events(response, 1)
    assert events[0]["event"] == "close" and json.loads(events[0]["data"])["reason"] == "logged_out"
    response.close()


def test_a_session_watching_presence_is_told_who_comes_online(app, hub: Hub, connect):
    alice, alice_messages = connect("echo", user="alice")
    session = wait_for(lambda: hub.registry.for_user("alice"), message="alice's session")[0]
    session.watch_presence()
    bob, _ = connect("echo", user="bob")
    told = wait_for(lambda: [c["args"] for c in alice_messages.commands()
                             if c["name"] == "presence"], message="told of bob")
    assert told == [{"user": {"id": told[0]["user"]["id"], "name": "bob"}, "topic": None,
                     "present": True}]
    hub.close_user("bob", "logged_out", "bye")
    wait_for(lambda: len([c for c in alice_messages.commands() if c["name"] == "presence"]) == 2,
             message="told bob left")
    assert [c["args"]["present"] for c in alice_messages.commands()
            if c["name"] == "presence"] == [True, False]
