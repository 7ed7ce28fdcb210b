"""The HTTP API on one worker: push with API tokens, presence, the SSE stream, the CLIs."""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest
from flask import Flask

from auth.tokens import ApiToken
from gateway.cluster.hub import Hub
from gateway.web.accounts import AccountCheck
from tests.helpers.support import wait_for
from tests.helpers.testapp import login_client


@pytest.fixture
def token(app: Flask) -> str:
    with app.app_context():
        return ApiToken.issue("ci")


def user_id(app: Flask, name: str) -> str:
    from auth import User

    with app.app_context():
        return str(User.by_name(name).id)


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
        response = push(app, {"to": {"user": {"name": "alice"}}, "name": "toast",
                              "args": {"level": "info", "text": f"n{n}"}}, token)
        assert response.status_code == 202 and response.get_json() == {"accepted": True}
    cmds = messages.wait_commands(5)
    assert [c["args"]["text"] for c in cmds if c["name"] == "toast"] == [f"n{n}" for n in range(5)]
    assert [c["seq"] for c in cmds] == sorted(c["seq"] for c in cmds)
    assert not [c for c in other_messages.commands() if c["name"] == "toast"]


@pytest.mark.parametrize("body, status, code", [
    ({"to": {"user": {"name": "alice"}}}, 400, "bad_request"),  # no name
    ({"to": {"nobody": "x"}, "name": "toast"}, 400, "bad_request"),
    ({"to": {"everyone": False}, "name": "toast"}, 400, "bad_request"),
    ({"to": {"user": {"name": "alice"}}, "name": "toast", "args": [1]}, 400, "bad_request"),
    ({"to": {"user": {"name": "alice"}}, "name": "toast", "extra": 1}, 400, "bad_request"),
    ([1, 2], 400, "bad_request"),
    ({"to": {"user": {"name": "alice"}}, "name": ""}, 400, "bad_request"),
])
def test_push_refuses_a_bad_body_with_the_error_shape(app, token, body, status, code):
    response = push(app, body, token)
    assert response.status_code == status
    assert response.get_json()["error"]["code"] == code
    assert response.get_json()["error"]["message"]


def toast_texts(messages: Any) -> list[str]:
    return [c["args"]["text"] for c in messages.commands() if c["name"] == "toast"]


def test_push_to_a_user_says_whether_it_is_an_id_or_a_name(app, connect, token):
    alice, alice_messages = connect("echo", user="alice")
    bob, bob_messages = connect("echo", user="bob")
    alice_id = int(user_id(app, "alice"))
    for n, to in enumerate([{"user": {"id": alice_id}}, {"user": {"name": "alice"}},
                            {"user": alice_id}]):  # a bare number is an id
        response = push(app, {"to": to, "name": "toast", "args": {"text": f"t{n}"}}, token)
        assert response.status_code == 202, response.get_json()
    wait_for(lambda: toast_texts(alice_messages) == ["t0", "t1", "t2"], message="3 toasts")
    # A bare string could be either: refused, saying how to write each.
    for bare in ("alice", str(alice_id)):
        response = push(app, {"to": {"user": bare}, "name": "toast", "args": {}}, token)
        assert response.status_code == 400
        error = response.get_json()["error"]
        assert error["code"] == "bad_request"
        assert '{"id": ID}' in error["message"] and '{"name": NAME}' in error["message"]
    for bad in ({"id": "alice"}, {"name": ""}, {"name": 5}, {"id": True}, {"nick": "alice"},
                {"id": alice_id, "name": "alice"}, {"id": -1}, True, None, [alice_id]):
        response = push(app, {"to": {"user": bad}, "name": "toast"}, token)
        assert response.status_code == 400, bad
        assert response.get_json()["error"]["code"] == "bad_request"
    assert toast_texts(bob_messages) == []


def test_a_user_named_like_another_users_id_is_never_taken_for_them(app, hub: Hub, connect,
                                                                    token):
    from auth import User
    from auth import db
    from tests.helpers.testapp import PASSWORD_HASH

    bob_id = user_id(app, "bob")
    with app.app_context():
        db.session.add(User(name=bob_id, password_hash=PASSWORD_HASH))  # named "2"
        db.session.commit()
    impostor_http = login_client(app, bob_id)
    impostor, impostor_messages = connect("echo", user=bob_id)
    stream = impostor_http.get("/api/v1/stream", buffered=False)
    wait_for(lambda: len(hub.streams) == 1, message="the impostor's stream")
    # Bob has no session on this worker (his may be on another): sends to his id, and
    # his logout, reach nobody here. Before, they found the user named like his id.
    for to in ({"user": {"id": int(bob_id)}}, {"user": int(bob_id)}):
        assert push(app, {"to": to, "name": "toast", "args": {"text": "for bob"}},
                    token).status_code == 202
    assert login_client(app, "bob").post("/logout").status_code == 302
    with app.app_context():
        AccountCheck(hub)()
    # The user named "2" is addressed by that name, and only so.
    assert push(app, {"to": {"user": {"name": bob_id}}, "name": "toast",
                      "args": {"text": "for the user named so"}}, token).status_code == 202
    wait_for(lambda: toast_texts(impostor_messages), message="the name's toast")
    assert toast_texts(impostor_messages) == ["for the user named so"]
    assert impostor.is_connected() and not impostor_messages.named("close")
    events = read_events(stream, 1)
    assert [json.loads(e["data"]) for e in events] == [{"text": "for the user named so"}]
    stream.close()


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
    # --user is a name, --user-id an id; a name given as an id is refused.
    by_id = app.test_cli_runner().invoke(args=["send", "--user-id", "1", "toast", "{}"])
    assert by_id.exit_code != 0 and "GATEWAY_MESSAGE_QUEUE" in by_id.output
    not_an_id = app.test_cli_runner().invoke(args=["send", "--user-id", "alice", "toast"])
    assert not_an_id.exit_code == 2 and "--user NAME" in not_an_id.output
    both = app.test_cli_runner().invoke(args=["send", "--user", "a", "--user-id", "1", "x"])
    assert both.exit_code == 2 and "exactly one" in both.output


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
    hub.close_user(user_id(app, "bob"), "logged_out", "bye")
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
        hub.send(hub_target("user_name", "alice"), "toast", {"text": f"t{n}"})
    hub.send(hub_target("user_name", "bob"), "toast", {"text": "not for alice"})
    hub.send(hub_target("everyone"), "bad name\nid: 99", {"text": "everyone"})
    events = read_events(response, 4)
    life = hub.streams.all()[0].life  # ids are LIFE-N: this life of the stream, then N
    assert [e["id"] for e in events] == [f"{life}-{n}" for n in (1, 2, 3, 4)]
    assert [json.loads(e["data"]).get("text") for e in events[:3]] == ["t0", "t1", "t2"]
    assert events[0]["event"] == "toast"
    # An unsafe name cannot inject SSE fields: it comes as a "command" event.
    assert events[3]["event"] == "command"
    assert json.loads(events[3]["data"])["name"] == "bad name\nid: 99"
    response.close()
    # Reconnect with Last-Event-ID: only what came after.
    hub.send(hub_target("user", user_id(app, "alice")), "toast", {"text": "t4"})
    again = http.get("/api/v1/stream", headers={"Last-Event-ID": f"{life}-2"},
                     buffered=False)
    events = read_events(again, 3)
    assert [e["id"] for e in events] == [f"{life}-{n}" for n in (3, 4, 5)]
    assert json.loads(events[2]["data"]) == {"text": "t4"}
    # Logging out ends the stream with a close event.
    hub.close_user(user_id(app, "alice"), "logged_out", "bye")
    closing = read_events(again, 1)
    assert closing[0]["event"] == "close"
    assert json.loads(closing[0]["data"]) == {"reason": "logged_out"}
    again.close()


def test_sse_stream_unknown_last_event_id_and_auth(app, hub: Hub):
    assert app.test_client().get("/api/v1/stream").status_code == 401
    http = login_client(app, "bob")
    response = http.get("/api/v1/stream", headers={"Last-Event-ID": "41"}, buffered=False)
    hub.send(hub_target("user_name", "bob"), "toast", {"text": "after"})
    events = read_events(response, 2)
    assert events[0]["event"] == "reset" and json.loads(events[0]["data"]) == {"reason": "unknown"}
    assert events[1]["id"] == f"{hub.streams.all()[0].life}-1"
    response.close()


def test_an_sse_id_from_an_earlier_life_of_the_stream_is_reset_not_read(app, hub: Hub):
    """Item 13: a stream that expired and was made again numbers from 1 again; an id
    of its earlier life must not be read as a position in the new one (commands skipped,
    no reset)."""
    http = login_client(app, "bob")
    first = http.get("/api/v1/stream", buffered=False)
    wait_for(lambda: len(hub.streams) == 1, message="the stream")
    for n in range(3):
        hub.send(hub_target("user_name", "bob"), "toast", {"text": f"old {n}"})
    last_id = read_events(first, 3)[-1]["id"]  # "<old life>-3"
    first.close()
    wait_for(lambda: hub.streams.readers() == 0, message="the reader gone")
    hub.streams.keep_seconds = -1.0
    hub.streams.expire()  # the stream expires with no reader
    assert len(hub.streams) == 0
    again = http.get("/api/v1/stream", headers={"Last-Event-ID": last_id}, buffered=False)
    wait_for(lambda: len(hub.streams) == 1, message="a new stream")
    for n in range(4):
        hub.send(hub_target("user_name", "bob"), "toast", {"text": f"new {n}"})
    events = read_events(again, 5)
    assert events[0]["event"] == "reset" and json.loads(events[0]["data"]) == {"reason": "unknown"}
    assert [json.loads(e["data"])["text"] for e in events[1:]] == [f"new {n}" for n in range(4)]
    again.close()


def hub_target(kind: str, value: str | None = None) -> Any:
    from gateway.core.targets import Target

    return Target(kind, value)


def test_sse_stream_ends_when_the_account_changes(app, hub: Hub):
    from auth import User
    from auth import db
    from gateway.web.accounts import AccountCheck

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
    session = wait_for(lambda: hub.registry.for_user_name("alice"),
                       message="alice's session")[0]
    session.watch_presence()
    bob, _ = connect("echo", user="bob")
    told = wait_for(lambda: [c["args"] for c in alice_messages.commands()
                             if c["name"] == "presence"], message="told of bob")
    assert told == [{"user": {"id": told[0]["user"]["id"], "name": "bob"}, "topic": None,
                     "present": True}]
    hub.close_user(user_id(app, "bob"), "logged_out", "bye")
    wait_for(lambda: len([c for c in alice_messages.commands() if c["name"] == "presence"]) == 2,
             message="told bob left")
    assert [c["args"]["present"] for c in alice_messages.commands()
            if c["name"] == "presence"] == [True, False]


# -- bad input: strict JSON bodies, Last-Event-ID, event names, errors under /api/ ------

EVERYONE = '{"to": {"everyone": true}, "name": "toast", "args": %s}'


@pytest.mark.parametrize("raw", [
    pytest.param((EVERYONE % '{"n": NaN}').encode(), id="NaN"),
    pytest.param((EVERYONE % '{"n": Infinity}').encode(), id="Infinity"),
    pytest.param((EVERYONE % '{"n": [-Infinity]}').encode(), id="-Infinity"),
    pytest.param((EVERYONE % '{"n": 1e999}').encode(), id="1e999"),  # Python reads it as inf
    pytest.param((EVERYONE % ('{"n": ' + "[" * 100_000 + "]" * 100_000 + "}")).encode(),
                 id="arrays-100000-deep"),  # was a 500 (RecursionError)
    pytest.param((EVERYONE % ('{"n": ' + '{"a":' * 100_000 + "1" + "}" * 100_000 + "}"))
                 .encode(), id="objects-100000-deep"),
    pytest.param((EVERYONE % ('{"n": ' + "[" * 100_000)).encode(), id="truncated-deep"),
    pytest.param((EVERYONE % '{"n": "\xff"}').encode("latin-1"), id="not-utf8"),
    pytest.param((EVERYONE % "{}").encode("utf-16"), id="utf16"),  # json.loads(bytes) guesses
    pytest.param(b"\xef\xbb\xbf" + (EVERYONE % "{}").encode(), id="bom"),
    pytest.param(b"", id="empty"),
    b"null", b'"toast"', b"[1]", b"42", b"{} {}",
])
def test_push_refuses_a_malformed_body_with_a_json_400(app, token, raw):
    response = push(app, None, token, raw=raw)
    assert response.status_code == 400, response.get_data(as_text=True)[:200]
    assert response.content_type == "application/json"
    error = response.get_json()["error"]
    assert error["code"] == "bad_request" and error["message"]


def test_push_takes_a_body_32_deep_and_refuses_33(app, token):
    # The body is 2 deep around "n" (the body, then args): 30 arrays make 32.
    ok = EVERYONE % ('{"n": ' + "[" * 30 + "]" * 30 + "}")
    assert push(app, None, token, raw=ok.encode()).status_code == 202
    too_deep = EVERYONE % ('{"n": ' + "[" * 31 + "]" * 31 + "}")
    response = push(app, None, token, raw=too_deep.encode())
    assert response.status_code == 400
    assert "deeper than 32" in response.get_json()["error"]["message"]


@pytest.mark.parametrize("content_type", [
    None, "text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x",
    "application/json; charset=latin-1",
])
def test_push_needs_the_json_content_type(app, token, content_type):
    headers = {"Authorization": f"Bearer {token}"}
    if content_type:
        headers["Content-Type"] = content_type
    body = (EVERYONE % "{}").encode()
    response = app.test_client().post("/api/v1/push", data=body, headers=headers)
    assert response.status_code == 400 and response.get_json()["error"]["code"] == "bad_request"
    assert "Content-Type" in response.get_json()["error"]["message"] or "UTF-8" in \
        response.get_json()["error"]["message"]
    headers["Content-Type"] = "application/json; charset=UTF-8"
    assert app.test_client().post("/api/v1/push", data=body, headers=headers).status_code == 202


@pytest.mark.parametrize("headers, query", [
    # '²'.isdigit() is True and int('²') raises: these were 500s.
    pytest.param({"Last-Event-ID": "\u00b2"}, "", id="superscript-header"),
    pytest.param({}, "last_event_id=%C2%B2", id="superscript-query"),
    # Arabic-Indic 12: int() takes it, but it is no id of ours (it was read as 12).
    pytest.param({}, "last_event_id=%D9%A1%D9%A2", id="arabic-indic-digits"),
    pytest.param({"Last-Event-ID": "1" * 19}, "", id="19-digits"),
    pytest.param({"Last-Event-ID": "-1"}, "", id="minus"),
    pytest.param({"Last-Event-ID": "+7"}, "", id="plus"),
    pytest.param({}, "last_event_id=7%0A", id="trailing-newline"),
])
def test_a_malformed_last_event_id_counts_as_none(app, hub: Hub, headers, query):
    http = login_client(app, "bob")
    response = http.get("/api/v1/stream", headers=headers, query_string=query, buffered=False)
    assert response.status_code == 200
    wait_for(lambda: len(hub.streams) == 1, message="the stream")
    hub.send(hub_target("everyone"), "toast", {"text": "first"})
    events = read_events(response, 1)
    # No reset: the stream starts from the beginning, as without an id.
    assert events[0].get("event") == "toast" and events[0]["id"].endswith("-1")
    response.close()


def test_an_sse_event_name_with_a_trailing_newline_comes_as_a_command_event(app, hub: Hub):
    http = login_client(app, "alice")
    response = http.get("/api/v1/stream", buffered=False)
    wait_for(lambda: len(hub.streams) == 1, message="the stream")
    hub.send(hub_target("everyone"), "toast\n", {"text": "x"})
    hub.send(hub_target("everyone"), "toast", {"text": "y"})
    events = read_events(response, 2)
    # "event: toast\n\n" would end the event early and send its data as a "message".
    assert events[0].get("event") == "command" and events[0]["id"].endswith("-1")
    assert json.loads(events[0]["data"]) == {"name": "toast\n", "args": {"text": "x"}}
    assert events[1].get("event") == "toast" and events[1]["id"].endswith("-2")
    response.close()


def test_a_head_request_leaves_no_stream_reader_behind(app, hub: Hub):
    http = login_client(app, "alice")
    limit = hub.settings.MAX_SESSIONS_PER_USER
    for _ in range(limit + 5):  # each used to hold a reader slot for good
        response = http.head("/api/v1/stream")
        assert response.status_code == 200
        response.close()
    assert sum(stream.readers for stream in hub.streams.all()) == 0
    response = http.get("/api/v1/stream", buffered=False)
    assert response.status_code == 200  # not 429: the slots are free
    response.close()
    assert sum(stream.readers for stream in hub.streams.all()) == 0


def test_every_api_error_has_the_json_shape(app, hub: Hub, monkeypatch):
    admin = login_client(app, "root")
    monkeypatch.setitem(app.config, "WTF_CSRF_ENABLED", True)
    # The CSRF check reads the form, which is over the size limit: a 413 from Werkzeug.
    response = admin.post("/api/v1/sessions/x/kick", data="x=" + "y" * 1_100_000,
                          content_type="application/x-www-form-urlencoded")
    assert response.status_code == 413 and response.content_type == "application/json"
    assert response.get_json()["error"]["code"] == "too_large"
    monkeypatch.setitem(app.config, "WTF_CSRF_ENABLED", False)
    # A bug answers the shape as well, never an HTML page.
    monkeypatch.setitem(app.config, "PROPAGATE_EXCEPTIONS", False)

    def broken() -> Any:
        raise RuntimeError("a bug")

    monkeypatch.setattr(hub.presence, "online", broken)
    response = admin.get("/api/v1/presence")
    assert response.status_code == 500 and response.content_type == "application/json"
    assert response.get_json()["error"]["code"] == "internal_error"
    # Pages outside /api/ keep their own error pages.
    assert app.test_client().get("/no-such-page").content_type.startswith("text/html")


@pytest.mark.parametrize("json_args", ['{"n": NaN}', '{"n": -Infinity}', '{"n": 1e999}',
                                       '{"n": ' + "[" * 10_000 + "]" * 10_000 + "}"])
def test_flask_send_reads_strict_json_args(app, json_args):
    result = app.test_cli_runner().invoke(args=["send", "--everyone", "toast", json_args])
    assert result.exit_code == 2 and "JSON_ARGS is not valid JSON" in result.output
