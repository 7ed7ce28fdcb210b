"""The session state machine, sequencing, inbox and blocking calls, without a server."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from gateway.core.apps import AppSpec
from gateway.core.delivery import TokenBucket
from gateway.core.errors import SessionClosed
from gateway.core.protocol import EventMessage
from gateway.core.session import Session
from gateway.core.session import SessionState
from gateway.core.session import SessionUser
from tests.helpers.fakes import ManualClock
from tests.helpers.fakes import ManualRuntime
from tests.helpers.fakes import RecordingTransport
from tests.helpers.fakes import ThreadRuntime
from tests.helpers.fakes import session_limits
from tests.helpers.support import wait_for

ALICE = SessionUser("1", "alice")


def make(main: Any = None, handlers: dict | None = None, keep_open: bool = False,
         runtime: Any = None, **limits: Any) -> tuple[Session, RecordingTransport, Any, list]:
    transport, closed = RecordingTransport(), []
    runtime = runtime or ThreadRuntime()
    spec = AppSpec(name="t", main=main, keep_open=keep_open, handlers=handlers or {})
    session = Session(spec, ALICE, transport=transport, runtime=runtime,
                      limits=session_limits(**limits), on_closed=closed.append)
    return session, transport, runtime, closed


def event(i: int, name: str, data: Any = None) -> EventMessage:
    return EventMessage(id=i, name=name, data=data)


def test_attach_greets_with_the_session_message():
    session, transport, _, _ = make()
    session.attach("sid1")
    (welcome,) = transport.messages("sid1", "session")
    assert welcome["session"] == session.id and welcome["resumed"] is False
    assert welcome["user"] == {"id": "1", "name": "alice"} and welcome["last_seq"] == 0
    assert session.verify_token(welcome["token"])
    assert not session.verify_token("x" * 32)
    assert session.lifecycle is SessionState.ATTACHED


def test_sends_are_sequenced_and_batched_into_one_message():
    session, transport, runtime, _ = make(runtime=ManualRuntime())
    session.attach("sid1")
    seqs = [session.send("output", kind="text", content=str(i)) for i in range(3)]
    assert seqs == [1, 2, 3]
    assert transport.commands("sid1") == []  # not before the producing task yields
    assert runtime.run_pending() == 1  # one flush task for the three sends
    assert [len(b) for b in transport.messages("sid1", "commands")] == [3]
    assert [c["seq"] for c in transport.commands("sid1")] == [1, 2, 3]
    assert transport.commands("sid1")[0] == {"seq": 1, "name": "output",
                                              "args": {"kind": "text", "content": "0"}}


def test_a_full_batch_is_flushed_at_once():
    session, transport, runtime, _ = make(max_batch=4, runtime=ManualRuntime())
    session.attach("s")
    for i in range(10):
        session.send("c", i=i)
    assert [len(b) for b in transport.messages("s", "commands")] == [4, 4]
    runtime.run_pending()
    assert [len(b) for b in transport.messages("s", "commands")] == [4, 4, 2]
    assert [c["seq"] for c in transport.commands("s")] == list(range(1, 11))


def test_handler_commands_go_out_before_its_ack_in_one_message():
    def handler(session, data):
        session.send("output", text=data)
        session.send("output", text=data + "!")
        return data
    session, transport, _, _ = make(handlers={"echo": handler}, keep_open=True)
    session.attach("s")
    ack = session.handle(event(1, "echo", "hi"))
    assert ack == {"ok": True, "result": "hi"}
    assert [len(b) for b in transport.messages("s", "commands")] == [2]


def test_a_resent_event_is_answered_without_running_again():
    calls = []
    session, _, _, _ = make(handlers={"count": lambda s, d: calls.append(d) or len(calls)})
    session.attach("s")
    first = session.handle(event(1, "count", "a"))
    again = session.handle(event(1, "count", "a"))
    assert first == again == {"ok": True, "result": 1}
    assert calls == ["a"]


def test_handler_errors_become_error_acks_and_the_session_lives_on():
    def boom(session, data):
        raise ValueError("secret detail")
    session, _, _, _ = make(handlers={"boom": boom}, keep_open=True)
    session.attach("s")
    ack = session.handle(event(1, "boom"))
    assert ack["ok"] is False and ack["error"]["code"] == "internal_error"
    assert "secret" not in ack["error"]["message"]
    assert not session.closed


def test_unknown_event_and_rate_limit():
    session, _, _, _ = make(handlers={"x": lambda s, d: None}, event_rate=0.001, event_burst=2)
    session.attach("s")
    assert session.handle(event(1, "nope"))["error"]["code"] == "unknown_event"
    assert session.handle(event(2, "x"))["ok"] is True
    limited = session.handle(event(3, "x"))
    assert limited["error"]["code"] == "rate_limited"


def test_ask_waits_for_the_reply_event():
    answers = []
    session, transport, runtime, _ = make(
        main=lambda s: answers.append(s.ask("input", label="Name")))
    session.attach("s")
    session.start()
    command = wait_for(lambda: transport.commands("s"))[0]
    assert command["name"] == "input" and command["args"]["label"] == "Name"
    request = command["args"]["request"]
    assert session.handle(event(1, "input.reply", {"request": "other", "value": 1}))["ok"] is False
    assert session.handle(event(2, "input.reply", {"request": request, "value": "Ann"}))["ok"]
    wait_for(lambda: answers == ["Ann"])


def test_receive_gets_events_in_order_and_close_wakes_it():
    got, ended = [], threading.Event()

    def main(session):
        try:
            for e in session.events():
                got.append(e.data)
        finally:
            ended.set()
    session, _, _, closed = make(main=main)
    session.attach("s")
    session.start()
    wait_for(lambda: session._run.started)
    for i in range(1, 6):
        assert session.handle(event(i, "tick", i))["ok"]
    wait_for(lambda: got == [1, 2, 3, 4, 5])
    session.close("kicked")
    assert ended.wait(5)
    assert closed == [session]


def test_app_return_closes_once_its_commands_are_acked():
    session, transport, _, closed = make(main=lambda s: s.send("output", content="bye"))
    session.attach("s")
    session.start()
    wait_for(lambda: transport.commands("s"))
    assert not session.closed  # the last command is not acknowledged yet
    session.acknowledge(1)
    wait_for(lambda: session.closed)
    assert transport.messages("s", "close") == [{"reason": "closed",
                                                 "message": "The app has finished."}]
    assert transport.disconnected == ["s"]


def test_app_exception_sends_an_error_command_and_closes():
    def main(session):
        raise RuntimeError("boom")
    session, transport, _, closed = make(main=main)
    session.attach("s")
    session.start()
    wait_for(lambda: session.closed)
    assert [c["name"] for c in transport.commands("s")] == ["error"]
    assert transport.messages("s", "close")[0]["reason"] == "closed"


def test_close_is_final_and_illegal_transitions_fail_loudly():
    session, transport, _, closed = make()
    session.attach("s")
    session.close("kicked", "bye")
    session.close("expired")  # idempotent: one close message
    assert transport.messages("s", "close") == [{"reason": "kicked", "message": "bye"}]
    with pytest.raises(SessionClosed):
        session.send("x")
    with pytest.raises(SessionClosed):  # closed for good: never attached again
        session.attach("s2")
    other, _, _, _ = make()
    with pytest.raises(ValueError, match="not one of protocol v1"):
        other.close("bored")  # only the reasons of the protocol reach clients
    assert session.handle(event(1, "x"))["error"]["code"] == "session_closed"


def test_detach_buffers_and_resume_replays_in_order():
    session, transport, _, _ = make(resume_seconds=30)
    session.attach("a")
    session.send("c", n=1)
    session.flush()
    session.acknowledge(1)
    assert session.detach("a")
    session.send("c", n=2)
    session.send("c", n=3)
    assert transport.commands("b") == []
    token = transport.messages("a", "session")[0]["token"]
    assert session.resume("b", token, 1) is None
    assert transport.messages("b", "session")[0]["resumed"] is True
    assert [c["seq"] for c in transport.commands("b")] == [2, 3]
    assert session.lifecycle is SessionState.ATTACHED


def test_a_detached_session_expires_after_the_window():
    session, transport, _, closed = make(resume_seconds=0.05)
    session.attach("a")
    session.detach("a")
    wait_for(lambda: closed == [session], timeout=5)
    assert session.close_reason == "expired"


def test_slow_consumer_is_closed_at_the_replay_limit():
    session, transport, _, _ = make(replay_limit=5, keep_open=True)
    session.attach("a")
    for i in range(5):
        session.send("c", i=i)
    with pytest.raises(SessionClosed):
        session.send("c", i=5)
    assert session.close_reason == "slow_consumer"
    assert session.unacked <= 5


def test_a_command_that_is_not_json_is_refused_before_it_takes_a_seq():
    session, transport, _, _ = make(runtime=ManualRuntime())
    session.attach("sid1")
    with pytest.raises(ValueError, match="NaN"):
        session.send("output", value=float("nan"))
    assert session.send("output", value=1.5) == 1  # nothing was numbered for it


def test_a_command_larger_than_the_byte_bound_is_refused_whole():
    from gateway.core.errors import GatewayError

    session, _, _, _ = make(runtime=ManualRuntime(), replay_bytes=1000)
    session.attach("sid1")
    with pytest.raises(GatewayError) as caught:
        session.send("output", content="x" * 2000)
    assert caught.value.code == "too_large" and not session.closed


def test_unacked_bytes_past_the_bound_close_a_slow_consumer():
    session, transport, _, closed = make(runtime=ManualRuntime(), replay_bytes=10_000)
    session.attach("sid1")
    with pytest.raises(SessionClosed):
        for _ in range(10):
            session.send("output", content="x" * 3000)
    assert session.close_reason == "slow_consumer" and closed == [session]
    # Told, not hung up: a reset would lose the close it has yet to read.
    assert transport.messages("sid1", "close")[0]["reason"] == "slow_consumer"
    assert transport.disconnected == ["sid1"] and transport.hung_up == []


def test_only_a_close_for_flooding_hangs_up_the_transport():
    kicked, transport, _, _ = make()  # by an administrator: told, then let hang up
    kicked.attach("s1")
    kicked.close("kicked")
    assert transport.disconnected == ["s1"] and transport.hung_up == []
    flooder, transport, _, _ = make()
    flooder.attach("s2")
    flooder.close("kicked", hang_up=True)
    assert transport.disconnected == ["s2"] and transport.hung_up == ["s2"]


def test_malformed_messages_count_against_the_rate_and_then_the_abuse_limit():
    session, transport, _, _ = make(event_rate=0.001, event_burst=3, abuse_limit=5)
    session.attach("s")
    answers = [session.refuse("bad_request", "no")["error"]["code"] for _ in range(9)]
    assert answers[:3] == ["bad_request"] * 3  # within the burst: answered as they are
    assert answers[3:8] == ["rate_limited"] * 5  # the fifth in a row ends the session
    assert session.close_reason == "kicked" and transport.hung_up == ["s"]
    assert answers[8] == "session_closed"


def test_a_flood_is_kicked_although_the_bucket_lets_an_event_through_now_and_then():
    # 1,000 events a second against 50 allowed: every 20th is let through, and that
    # must not clear the count (it did: the flood was never kicked).
    session, transport, _, _ = make(keep_open=True, handlers={"e": lambda s, d: d},
                                    event_rate=50, event_burst=5, abuse_limit=100)
    clock = ManualClock()
    session._bucket = TokenBucket(50, 5, clock=clock)
    session.attach("s")
    answers = []
    for i in range(1, 1000):
        clock.now += 0.001
        answers.append(session.handle(event(i, "e", i)))
        if session.closed:
            break
    assert session.close_reason == "kicked" and transport.hung_up == ["s"]
    assert any(a["ok"] for a in answers[5:])  # some got through meanwhile
    assert len(answers) < 200


def test_a_burst_then_calm_is_not_counted_towards_the_abuse_limit():
    session, _, _, _ = make(keep_open=True, handlers={"e": lambda s, d: d},
                            event_rate=50, event_burst=5, abuse_limit=10)
    clock = ManualClock()
    session._bucket = TokenBucket(50, 5, clock=clock)
    session.attach("s")
    ids = iter(range(1, 10_000))
    for _ in range(20):  # a burst over the limit, eight refusals, then a calm second
        clock.now += 1.0
        answers = [session.handle(event(next(ids), "e", 1)) for _ in range(13)]
        assert sum(not a["ok"] for a in answers) == 8
        clock.now += 1.0
        assert session.handle(event(next(ids), "e", 1))["ok"]
    assert not session.closed
