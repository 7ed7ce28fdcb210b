"""The Socket.IO layer through Flask-SocketIO's test client (login cookie carried over)."""

from __future__ import annotations

import pytest

from gateway import gateway
from tests.helpers.support import wait_for
from tests.helpers.testapp import login_client


def test_anonymous_is_refused_unauthorized(refused):
    assert refused({"app": "echo"}, user=None) == {
        "message": "unauthorized",
        "data": {"code": "unauthorized", "message": "Log in before connecting."},
    }


@pytest.mark.parametrize("auth_payload,code", [
    ({"app": "nope"}, "unknown_app"),
    ({"app": "Bad App"}, "bad_request"),
    ({"nothing": 1}, "bad_request"),
    ({"app": "echo", "resume": "yes"}, "bad_request"),
])
def test_connect_refusals_carry_their_code(refused, auth_payload, code):
    error = refused(auth_payload)
    assert error["message"] == code and error["data"]["code"] == code
    assert error["data"]["message"]


def test_too_many_sessions(connect, refused, set_limits):
    set_limits(MAX_SESSIONS_PER_USER=2)
    first, _ = connect("echo")
    second, _ = connect("echo")
    assert first.is_connected() and second.is_connected()
    assert refused({"app": "echo"})["data"]["code"] == "too_many_sessions"
    other, _ = connect("echo", user="bob")  # the limit is per user
    assert other.is_connected()


def test_session_message_comes_first(connect):
    sio, messages = connect("echo")
    first = messages.drain()[0]
    assert first["name"] == "session"
    welcome = first["args"][0]
    assert set(welcome) == {"session", "token", "app", "user", "resumed", "reason", "last_seq",
                           "event_memory"}
    assert welcome["app"] == "echo" and welcome["user"]["name"] == "alice"
    assert welcome["resumed"] is False and welcome["reason"] is None


def test_echo_acks_and_sends_output(connect):
    sio, messages = connect("echo")
    ack = sio.emit("event", {"id": 1, "name": "echo", "data": {"text": "hi"}}, callback=True)
    assert ack == {"ok": True, "result": "hi"}
    texts = [c["args"]["content"] for c in messages.wait_commands(2)]
    assert texts[-1] == "hi"
    assert [c["seq"] for c in messages.commands()] == [1, 2]


@pytest.mark.parametrize("message,code", [
    ({"id": 1, "name": "echo", "data": {"text": 5}}, "bad_request"),  # the app's own refusal
    ({"id": 1, "name": "nope"}, "unknown_event"),
    ({"id": "x", "name": "echo"}, "bad_request"),
    ("not an object", "bad_request"),
    ({"id": 1, "name": "echo", "data": {"text": "x" * 70_000}}, "too_large"),
])
def test_every_event_error_code(connect, message, code):
    sio, _ = connect("echo")
    ack = sio.emit("event", message, callback=True)
    assert ack["ok"] is False and ack["error"]["code"] == code
    assert isinstance(ack["error"]["message"], str) and ack["error"]["message"]
    # the session is still usable afterwards
    assert sio.emit("event", {"id": 9, "name": "echo", "data": {"text": "ok"}}, callback=True)["ok"]


def test_rate_limited(connect, set_limits):
    set_limits(EVENT_RATE=0.001, EVENT_BURST=3)
    sio, _ = connect("echo")
    acks = [sio.emit("event", {"id": i, "name": "echo", "data": {"text": "x"}}, callback=True)
            for i in range(1, 6)]
    assert [a["ok"] for a in acks] == [True, True, True, False, False]
    assert acks[3]["error"]["code"] == "rate_limited"


def test_session_closed_after_close(app, connect, hub):
    sio, messages = connect("echo")
    session_id = messages.named("session")[0]["session"]
    hub.registry.get(session_id).close("kicked", "bye")
    assert messages.named("close") == [{"reason": "kicked", "message": "bye"}]
    assert not sio.is_connected()


def test_other_message_types_are_bad_requests(connect):
    sio, _ = connect("echo")
    ack = sio.emit("hello", {"x": 1}, callback=True)
    assert ack["error"]["code"] == "bad_request"


def test_two_users_never_see_each_others_commands(connect, app):
    alice, alice_msgs = connect("echo", user="alice")
    bob, bob_msgs = connect("echo", user="bob")
    alice.emit("event", {"id": 1, "name": "echo", "data": {"text": "alice-secret"}}, callback=True)
    bob.emit("event", {"id": 1, "name": "echo", "data": {"text": "bob-secret"}}, callback=True)
    with app.app_context():
        gateway.send("output", {"kind": "text", "content": "for-alice"}, user_name="alice")
    alice_texts = [c["args"]["content"] for c in alice_msgs.wait_commands(3)]
    bob_texts = [c["args"]["content"] for c in bob_msgs.wait_commands(2)]
    assert "alice-secret" in alice_texts and "for-alice" in alice_texts
    assert not {"alice-secret", "for-alice"} & set(bob_texts)
    assert "bob-secret" not in alice_texts


def test_two_tabs_of_one_user_are_separate_sessions(connect):
    tab1, msgs1 = connect("echo")
    tab2, msgs2 = connect("echo")
    tab1.emit("event", {"id": 1, "name": "echo", "data": {"text": "tab1"}}, callback=True)
    assert "tab1" in [c["args"]["content"] for c in msgs1.wait_commands(2)]
    assert "tab1" not in [c["args"]["content"] for c in msgs2.commands()]
    assert msgs1.named("session")[0]["session"] != msgs2.named("session")[0]["session"]


def test_a_burst_of_events_is_handled_in_order_one_at_a_time(connect, set_limits):
    set_limits(EVENT_BURST=1000)
    seen: list[int] = []
    active = []

    @gateway.on("burst", app="burst")
    def burst(session, data):
        active.append(1)
        assert len(active) == 1, "two events of one session ran at once"
        seen.append(data)
        active.pop()
        return data

    sio, _ = connect("burst")
    for i in range(1, 201):
        sio.emit("event", {"id": i, "name": "burst", "data": i})
    wait_for(lambda: len(seen) == 200)
    assert seen == list(range(1, 201))


def test_hello_asks_and_greets(connect):
    sio, messages = connect("hello")
    (ask,) = messages.wait_commands(1)
    assert ask["name"] == "input" and ask["args"]["label"] == "Your name"
    reply = {"request": ask["args"]["request"], "value": "Ada"}
    assert sio.emit("event", {"id": 1, "name": "input.reply", "data": reply}, callback=True)["ok"]
    greeting = messages.wait_commands(2)[1]
    assert greeting["name"] == "output" and greeting["args"]["content"] == "Hello, Ada!"
    messages.ack_all()
    wait_for(lambda: messages.named("close"), message="close after the app finished")
    assert messages.named("close")[0]["reason"] == "closed"


def test_app_failure_shows_an_error_and_closes_cleanly(connect, hub):
    @gateway.app("crash")
    def crash(session):
        session.send("output", kind="text", content="about to fail")
        raise RuntimeError("internal detail")

    sio, messages = connect("crash")
    other, other_msgs = connect("echo", user="bob")
    wait_for(lambda: messages.named("close"))
    names = [c["name"] for c in messages.commands()]
    assert names == ["output", "error"]
    assert "internal detail" not in str(messages.items)
    still = {"id": 1, "name": "echo", "data": {"text": "still"}}
    assert other.emit("event", still, callback=True)["ok"]


def test_chat_relays_to_the_topic(connect):
    alice, alice_msgs = connect("chat", user="alice")
    bob, bob_msgs = connect("chat", user="bob")
    say = {"id": 1, "name": "chat.say", "data": {"text": "hi all"}}
    ack = alice.emit("event", say, callback=True)
    assert ack == {"ok": True, "result": 2}
    for msgs in (alice_msgs, bob_msgs):
        wait_for(lambda msgs=msgs: [c for c in msgs.commands() if c["name"] == "chat.message"])
        message = [c for c in msgs.commands() if c["name"] == "chat.message"][0]
        assert message["args"]["user"] == "alice" and message["args"]["text"] == "hi all"


def test_logout_closes_the_users_live_sessions(app, connect):
    client = login_client(app, "alice")
    from gateway import socketio
    sio = socketio.test_client(app, flask_test_client=client, auth={"app": "echo"})
    bob, bob_msgs = connect("echo", user="bob")
    assert sio.is_connected()
    response = client.post("/logout")
    assert response.status_code == 302
    assert not sio.is_connected()
    assert bob.is_connected() and not bob_msgs.named("close")


def test_disconnect_detaches_and_ack_frees_the_buffer(connect, hub):
    sio, messages = connect("echo")
    session = hub.registry.get(messages.named("session")[0]["session"])
    sio.emit("event", {"id": 1, "name": "echo", "data": {"text": "a"}}, callback=True)
    assert session.unacked == 2
    messages.ack_all()
    wait_for(lambda: session.unacked == 0)
    sio.disconnect()
    assert session.lifecycle.value == "detached"


def test_the_worker_session_cap(connect, refused, set_limits):
    set_limits(MAX_SESSIONS=2)
    connect("echo", user="alice")
    connect("echo", user="bob")
    error = refused({"app": "echo"}, user="root")
    assert error["data"] == {"code": "too_many_sessions",
                             "message": "This server is full; try again shortly."}


def test_flooding_ends_only_the_abusers_session(connect, set_limits, hub):
    import logging

    records: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: records.append(record.getMessage())
    logging.getLogger("gateway").addHandler(handler)
    set_limits(EVENT_RATE=0.001, EVENT_BURST=2, ABUSE_LIMIT=20)
    abuser, abuser_msgs = connect("echo", user="alice")
    victim, _ = connect("echo", user="bob")
    codes = [abuser.emit("event", {"id": i, "name": "echo", "data": {"text": "x"}},
                         callback=True)["ok"] for i in range(1, 25) if abuser.is_connected()]
    assert codes[:2] == [True, True] and not any(codes[2:])
    assert abuser_msgs.named("close") == [{"reason": "kicked",
                                           "message": "Too many events: the session was ended."}]
    assert not abuser.is_connected()
    assert victim.emit("event", {"id": 1, "name": "echo", "data": {"text": "fine"}},
                       callback=True) == {"ok": True, "result": "fine"}
    logging.getLogger("gateway").removeHandler(handler)
    assert sum("is over its event rate" in r for r in records) == 1  # once per burst
    assert sum("kept flooding: ending it" in r for r in records) == 1
