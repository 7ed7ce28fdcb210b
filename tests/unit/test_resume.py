"""Detach, resume, replay and exactly-once events, through the protocol test client."""

from __future__ import annotations

from gateway import gateway
from gateway.testing import SessionTestClient
from tests.helpers.support import wait_for
from tests.helpers.testapp import login_client


def tab(app, app_name="echo", user="alice") -> SessionTestClient:
    return SessionTestClient(app, login_client(app, user), app_name)


def test_resume_replays_what_was_sent_while_detached(app, hub):
    t = tab(app)
    t.wait_commands(1)
    t.ack()
    t.drop()
    session = hub.registry.get(t.session_id)
    assert session.lifecycle.value == "detached"
    with app.app_context():
        for i in range(5):
            gateway.send("output", {"kind": "text", "content": f"while away {i}"},
                         session=t.session_id)
    t.connect()
    assert t.session["resumed"] is True and t.session["reason"] is None
    assert t.session["session"] == session.id and t.session["last_seq"] == 1
    t.wait_commands(6)
    assert [c["seq"] for c in t.applied] == [1, 2, 3, 4, 5, 6]
    assert t.duplicates == 0


def test_unacked_commands_are_replayed_and_dropped_by_the_client(app):
    t = tab(app)
    t.wait_commands(1)
    t.emit_event("echo", {"text": "a"})
    t.wait_commands(2)
    t.drop()  # neither command was acknowledged
    t.connect(last_seq=1)  # as if the client had applied only the first
    t.wait_commands(2)
    assert [c["seq"] for c in t.applied] == [1, 2]
    assert t.duplicates == 1  # seq 2 came again and the client dropped it: applied once


def test_a_resent_event_is_not_run_twice(app):
    runs = []

    @gateway.on("count", app="counter")
    def count(session, data):
        runs.append(data)
        return len(runs)

    t = tab(app, "counter")
    first = t.emit_event("count", "x")
    t.drop()
    t.connect()
    assert t.session["resumed"]
    again = t.emit_event("count", "x", event_id=1)  # the client never saw the first ack
    assert first == again == {"ok": True, "result": 1}
    assert runs == ["x"]
    assert t.emit_event("count", "y") == {"ok": True, "result": 2}


def test_a_foreign_token_is_forbidden(app):
    t = tab(app)
    old = t.session_id
    t.drop()
    t.connect(token="A" * 32)
    assert t.session["resumed"] is False and t.session["reason"] == "forbidden"
    assert t.session["session"] != old


def test_another_users_session_is_forbidden(app, hub):
    alice = tab(app, user="alice")
    alice.drop()
    bob = SessionTestClient(app, login_client(app, "bob"), "echo", connect=False)
    bob.session_id, bob.token = alice.session_id, alice.token  # stolen id and token
    bob.connect()
    assert bob.session["resumed"] is False and bob.session["reason"] == "forbidden"
    assert hub.registry.get(alice.session_id).lifecycle.value == "detached"  # untouched


def test_an_unknown_session(app):
    t = SessionTestClient(app, login_client(app, "alice"), "echo", connect=False)
    t.session_id, t.token = "NoSuchSession123", "B" * 32
    t.connect()
    assert t.session["resumed"] is False and t.session["reason"] == "unknown"


def test_the_window_expires(app, hub, set_limits):
    set_limits(RESUME_SECONDS=0.2)
    t = tab(app)
    session = hub.registry.get(t.session_id)
    t.drop()
    wait_for(lambda: session.closed, message="expiry")
    assert session.close_reason == "expired" and len(hub.registry) == 0
    t.connect()
    assert t.session["resumed"] is False and t.session["reason"] == "expired"


def test_an_overflowed_buffer(app, hub, set_limits):
    set_limits(REPLAY_LIMIT=10)
    t = tab(app)
    t.drop()
    with app.app_context():
        for i in range(10):
            gateway.send("output", {"content": i}, session=t.session_id)
    assert hub.registry.get(t.session_id) is None  # closed as a slow consumer
    t.connect()
    assert t.session["resumed"] is False and t.session["reason"] == "replay_overflow"


def test_resume_from_a_point_already_acknowledged_is_a_gap(app):
    t = tab(app)
    t.wait_commands(1)
    t.emit_event("echo", {"text": "a"})
    t.ack()  # acked up to 2
    t.drop()
    t.connect(last_seq=0)  # claims less than it acknowledged: cannot be filled
    assert t.session["resumed"] is False and t.session["reason"] == "replay_overflow"


def test_a_reload_racing_its_own_disconnect_takes_the_session_over(app, hub):
    old = tab(app)
    new = SessionTestClient(app, old.flask_client, "echo", connect=False)
    new.session_id, new.token = old.session_id, old.token
    new.connect()  # the old connection is still attached
    assert new.session["resumed"] is True
    wait_for(lambda: not old.connected, message="old connection dropped")
    old.poll()
    assert old.closed == {"reason": "kicked", "message": "This session was resumed in another tab."}
    assert new.emit_event("echo", {"text": "here"})["ok"]


def test_a_stalled_client_cannot_grow_memory(app, hub, set_limits):
    set_limits(REPLAY_LIMIT=200)

    @gateway.app("firehose")
    def firehose(session):
        while True:
            session.send("output", kind="text", content="x" * 100)
            session.sleep(0)

    t = tab(app, "firehose")  # never acknowledges
    session = hub.registry.get(t.session_id)
    peak = [0]

    def watch():
        peak[0] = max(peak[0], session.unacked)
        return session.closed

    wait_for(watch, message="slow consumer closed")
    assert session.close_reason == "slow_consumer"
    assert peak[0] <= 200
    t.poll()
    assert t.closed == {"reason": "slow_consumer",
                        "message": "Too many commands were not acknowledged."}
    assert wait_for(lambda: len(hub.registry) == 0, message="the registry empty")


def test_progress_survives_drops(app, app_config):
    t = tab(app, "progress")
    t.wait_commands(2)
    t.drop()
    t.connect()
    assert t.session["resumed"]
    steps = app_config["DEMO_PROGRESS_STEPS"]
    t.wait_commands(steps + 2)
    values = [c["args"]["value"] for c in t.applied if c["name"] == "progress"]
    assert values == list(range(1, steps + 1))
    assert t.applied[-1]["args"]["content"] == "Done: all steps completed."
