"""Exactly once under every interleaving: each race found in review, forced into a
deterministic test (issue "Exactly once under every interleaving", items by number).

Races that need pre-emption between two statements (possible under the threading runtime)
are forced with :func:`tests.helpers.interleave.after_release`: the other thread's step runs
at the exact moment the lock is let go. Nothing here waits on time.
"""

from __future__ import annotations

from collections import deque
from typing import Any

import pytest
from flask import Flask

from gateway import hub_for
from gateway import socketio
from gateway.cluster.bus import LocalBus
from gateway.cluster.connections import Connections
from gateway.cluster.connections import Refused
from gateway.cluster.routing import Router
from gateway.core.apps import AppCatalog
from gateway.core.apps import AppSpec
from gateway.core.errors import BusUnavailable
from gateway.core.errors import SessionClosed
from gateway.core.presence import Presence
from gateway.core.presence import PresenceUpdate
from gateway.core.protocol import EventMessage
from gateway.core.registry import SessionRegistry
from gateway.core.session import Event
from gateway.core.session import Session
from gateway.core.session import SessionState
from gateway.core.session import SessionUser
from gateway.core.targets import Target
from gateway.metrics import GatewayMetrics
from gateway.settings import Settings
from tests.conftest import Messages
from tests.helpers.fakes import ManualRuntime
from tests.helpers.fakes import RecordingTransport
from tests.helpers.fakes import ThreadRuntime
from tests.helpers.fakes import session_limits
from tests.helpers.interleave import after_release
from tests.helpers.testapp import login_client

ALICE = SessionUser("1", "alice")


def make(main: Any = None, handlers: dict | None = None, keep_open: bool = False,
         runtime: Any = None, **limits: Any) -> tuple[Session, RecordingTransport, Any]:
    transport = RecordingTransport()
    runtime = runtime or ThreadRuntime()
    spec = AppSpec(name="t", main=main, keep_open=keep_open, handlers=handlers or {})
    session = Session(spec, ALICE, transport=transport, runtime=runtime,
                      limits=session_limits(**limits))
    return session, transport, runtime


class RecordingBus(LocalBus):
    """A single worker's bus that keeps what it was asked to publish."""

    def __init__(self) -> None:
        self.published: list[Any] = []

    def publish(self, message: Any) -> None:
        self.published.append(message)


class Worker:
    """A worker's Connections, Router and registry over fakes (no Flask, no Socket.IO)."""

    def __init__(self, **settings: Any) -> None:
        self.transport = RecordingTransport()
        self.runtime = ThreadRuntime()
        self.registry = SessionRegistry()
        self.catalog = AppCatalog()
        self.catalog.register("t", lambda session: None, keep_open=True)
        self.presence = Presence("local")
        self.metrics = GatewayMetrics(self)  # read at scrape only
        self.bus = RecordingBus()
        self.router = Router(self.registry, self.bus, self.presence, self.metrics)
        self.connections = Connections(
            Settings(**settings), self.catalog, self.registry, self.metrics,
            transport=self.transport, runtime=self.runtime,
            presence_changed=self.router.presence_changed)

    def welcome(self, sid: str) -> dict[str, Any]:
        (message,) = self.transport.messages(sid, "session")
        return message


# 1. A send between registry.add and session.attach --------------------------------------

def test_1_a_send_before_attach_reaches_the_client_as_seq_1():
    worker = Worker()
    add = worker.registry.add

    def add_then_a_send_lands(session: Session, sid: str, **limits: Any) -> bool:
        first = add(session, sid, **limits)
        session.enqueue("output", {"text": "early"})  # a send from elsewhere (Router)
        session.flush()
        return first

    worker.registry.add = add_then_a_send_lands
    session = worker.connections.connect("c1", ALICE, {"app": "t"})
    session.send("output", text="later")
    session.flush()
    assert [c["seq"] for c in worker.transport.commands("c1")] == [1, 2]
    # The welcome comes first, then the commands: nothing before the client knows its session.
    assert [event for sid, event, _ in worker.transport.sent][:2] == ["session", "commands"]


# 2. Logout while the bus is down ---------------------------------------------------------

def test_2_logout_with_the_bus_down_closes_this_workers_sessions_and_succeeds(app: Flask):
    client = login_client(app, "alice")
    sio = socketio.test_client(app, flask_test_client=client, auth={"app": "echo"})
    messages = Messages(sio)
    hub = hub_for(app)

    def down(message: Any) -> None:
        raise BusUnavailable("The message queue is unreachable.")

    hub.bus.publish = down
    response = client.post("/logout")
    assert response.status_code == 302
    assert messages.named("close") == [{"reason": "logged_out", "message": "You logged out."}]
    assert hub.registry.for_user("1") == []


# 3. A handler failing with session_closed is recorded ------------------------------------

def test_3_a_handler_that_fails_with_session_closed_is_not_run_again_on_resend():
    runs = []
    peer, _, _ = make()
    peer.attach("p")
    peer.close("kicked")

    def tell_peer(session: Session, data: Any) -> Any:
        runs.append(data)
        return peer.send("output", text=data)  # the peer is closed: SessionClosed

    session, _, _ = make(handlers={"tell": tell_peer})
    session.attach("s")
    first = session.handle(EventMessage(1, "tell", "hi"))
    again = session.handle(EventMessage(1, "tell", "hi"))  # the ack was lost: a resend
    assert first["error"]["code"] == "session_closed"
    assert again == first and runs == ["hi"]


def test_3_an_event_refused_because_the_inbox_is_full_may_be_sent_again():
    session, _, _ = make(main=lambda s: s.sleep(3600), inbox_limit=1)
    session.attach("s")
    session.start()
    assert session.handle(EventMessage(1, "a", None))["ok"]
    refused = session.handle(EventMessage(2, "b", None))
    assert refused["error"]["code"] == "rate_limited"
    session.receive(timeout=0)  # the app takes one: there is room again
    assert session.handle(EventMessage(2, "b", None))["ok"]  # not answered from memory
    session.close()


# 5. The expiry timer checks, then acts ---------------------------------------------------

def test_5_a_resume_completing_as_the_expiry_times_out_keeps_its_session():
    session, transport, runtime = make(runtime=ManualRuntime(), resume_seconds=0)
    session.attach("s1")
    token = transport.messages("s1", "session")[0]["token"]
    assert session.detach("s1")
    # The expiry task's wait times out; before it closes, the client resumes.
    hook = after_release(session, "_cond",
                         lambda: session.resume("s2", token, 0),
                         when=lambda: session.lifecycle is SessionState.DETACHED)
    runtime.run_pending()
    assert hook.fired.is_set()
    assert transport.messages("s2", "session")[0]["resumed"] is True
    assert session.lifecycle is SessionState.ATTACHED and session.close_reason is None
    assert transport.messages("s2", "close") == []


# 6. close() before attach() --------------------------------------------------------------

def test_6_a_session_closed_before_its_attach_is_never_attached():
    session, transport, _ = make()
    session.close("logged_out", "You logged out.")  # NEW -> CLOSED: no IllegalTransition
    assert session.lifecycle is SessionState.CLOSED
    with pytest.raises(SessionClosed):
        session.attach("s1")
    assert session.sid is None and transport.sent == []


def test_6_a_logout_between_registration_and_attach_refuses_the_connection():
    worker = Worker()
    add = worker.registry.add
    closed: list[Session] = []

    def add_then_logout(session: Session, sid: str, **limits: Any) -> bool:
        first = add(session, sid, **limits)
        worker.router.close(Target.of(user=1), "logged_out", "bye")
        closed.append(session)
        return first

    worker.registry.add = add_then_logout
    with pytest.raises(Refused) as refused:
        worker.connections.connect("c1", ALICE, {"app": "t"})
    assert refused.value.code == "unauthorized"
    assert closed[0].closed and len(worker.registry) == 0
    assert worker.registry.by_sid("c1") is None
    assert not worker.presence.is_online("1")  # online, then offline: never left online


# 8. A resume that acknowledges everything of a finished app ------------------------------

def test_8_a_finished_app_closes_on_a_resume_that_acknowledges_everything():
    session, transport, runtime = make(main=lambda s: s.send("output", text="bye"))
    session.attach("s1")
    token = transport.messages("s1", "session")[0]["token"]
    session.start()
    for thread in runtime.threads:
        thread.join(5)
    assert not session.closed  # its last command is not acknowledged yet
    session.detach("s1")
    session.resume("s2", token, 1)  # acknowledges seq 1, the last
    assert session.closed and session.close_reason == "closed"
    assert transport.messages("s2", "close") == [
        {"reason": "closed", "message": "The app has finished."}]


# 9. receive() racing close() -------------------------------------------------------------

def test_9_receive_racing_close_returns_the_event_or_raises_session_closed():
    session, _, _ = make(keep_open=True)
    session.attach("s1")
    session._inbox = deque([Event("a", None, 1)])
    after_release(session, "_cond", lambda: session.close("kicked"),
                  when=lambda: not session.closed)
    try:
        got = session.receive(timeout=1)
    except SessionClosed:
        got = None
    assert got is None or got.name == "a"  # never an AssertionError
    with pytest.raises(SessionClosed):
        session.receive(timeout=1)


# 10. A close between session.resume and registry.rebind ----------------------------------

def test_10_a_session_closed_as_it_resumes_is_not_indexed_under_the_new_connection():
    worker = Worker()
    session = worker.connections.connect("c1", ALICE, {"app": "t"})
    token = worker.welcome("c1")["token"]
    worker.connections.disconnect("c1")
    # An administrator's kick lands right after the resume let go of the session.
    after_release(session, "_flush_lock", lambda: session.close("kicked"),
                  when=lambda: session.sid == "c2")
    worker.connections.connect("c2", ALICE, {"app": "t", "resume": {
        "session": session.id, "token": token, "last_seq": 0}})
    assert session.closed
    assert worker.registry.by_sid("c2") is None and len(worker.registry) == 0


# 11. A presence snapshot is never labelled newer than its content ------------------------

def test_11_a_snapshot_taken_during_a_change_never_undoes_it_elsewhere():
    worker = Worker()
    session = worker.connections.connect("c1", ALICE, {"app": "t"})  # alice online: v1
    entries = worker.registry.presence

    def entries_then_alice_leaves() -> dict:
        here = entries()
        session.close("logged_out")  # her last session: offline, v2
        return here

    worker.registry.presence = entries_then_alice_leaves
    snapshot = worker.router.presence_snapshot()
    updates = [m for m in worker.bus.published if isinstance(m, PresenceUpdate)]
    assert [(u.version, u.present) for u in updates] == [(1, True), (2, False)]
    other = Presence("other")  # another worker, told of both changes
    for update in updates:
        other.apply_change(update)
    other.apply_snapshot(snapshot)  # then the heartbeat that raced the second
    assert not other.is_online("1")


# 12. The Python client handles messages in arrival order ---------------------------------

def _message(event: str, data: Any) -> str:
    """A Socket.IO EVENT packet for namespace "/", as Engine.IO hands it to the client."""
    import json
    return "2" + json.dumps([event, data])


def test_12_the_python_client_handles_a_new_sessions_commands_after_its_session():
    from gateway.client import GatewayClient

    client = GatewayClient("http://127.0.0.1:9", "t", reconnect=False)
    client.state.resume_from("old-session-id", "t" * 24, 7)  # it followed an old session
    eio = client.sio.eio
    with client._lock:  # a handler in another thread would wait here: none may
        eio._trigger_event("message", _message("session", {
            "session": "new-session-id", "token": "n" * 24, "app": "t", "resumed": False,
            "reason": "expired", "user": {"id": "1", "name": "alice"}, "last_seq": 0}),
            run_async=True)
        eio._trigger_event("message", _message("commands", [
            {"seq": 1, "name": "output", "args": {}}]), run_async=True)
        # Handled as they came, before anything else: seq 1 of the new session applied.
        assert client.session_id == "new-session-id"
        assert [c["seq"] for c in client.applied] == [1] and client.duplicates == 0


# 7. A resent event older than the memory ---------------------------------------------

def test_7_a_resent_event_whose_result_is_forgotten_is_not_called_a_bad_request():
    runs = []
    session, transport, _ = make(handlers={"n": lambda s, d: runs.append(d) or d},
                                 event_memory=2)
    session.attach("s")
    assert transport.messages("s", "session")[0]["event_memory"] == 2  # clients are told
    for i in (1, 2, 3):
        assert session.handle(EventMessage(i, "n", i))["ok"]
    again = session.handle(EventMessage(1, "n", 1))  # its ack was lost long ago
    assert again["error"]["code"] == "result_forgotten" and runs == [1, 2, 3]


def test_7_a_client_never_has_more_events_awaiting_an_ack_than_the_session_remembers():
    from gateway.client_state import ClientState

    state = ClientState()
    state.welcome({"session": "s" * 16, "token": "t" * 24, "resumed": False,
                   "last_seq": 0, "event_memory": 2})
    first, second = object(), object()
    state.track(first)
    assert state.has_room()
    state.track(second)
    assert not state.has_room()  # a third would push the first out of the server's memory
    state.settle(1, first)
    assert state.has_room()


# 4. A duplicated tab numbers its events from a copy of the original's storage ------------

def test_4a_an_event_reusing_another_events_id_is_refused_not_answered_with_its_result():
    from gateway.core.protocol import parse_event

    runs = []
    session, _, _ = make(handlers={"say": lambda s, d: runs.append(d) or f"said {d}"})
    session.attach("s")
    original = session.handle(parse_event({"id": 7, "name": "say", "data": "from tab A"}, 1024))
    resent = session.handle(parse_event({"id": 7, "name": "say", "data": "from tab A"}, 1024))
    reused = session.handle(parse_event({"id": 7, "name": "say", "data": "from tab B"}, 1024))
    assert original == resent == {"ok": True, "result": "said from tab A"}  # a resend
    assert reused["error"]["code"] == "event_id_reused"  # another event: not its result
    assert runs == ["from tab A"]


def test_4b_a_duplicated_tab_behind_the_original_gets_a_session_of_its_own():
    worker = Worker()
    original = worker.connections.connect("tab-a", ALICE, {"app": "t"})
    token = worker.welcome("tab-a")["token"]
    for n in range(3):
        original.send("output", n=n)
    original.flush()
    original.acknowledge(3)  # tab A applied everything; the copy's storage says 1
    worker.connections.connect("tab-b", ALICE, {"app": "t", "resume": {
        "session": original.id, "token": token, "last_seq": 1}})
    welcome_b = worker.welcome("tab-b")
    assert welcome_b["resumed"] is False and welcome_b["reason"] == "replay_overflow"
    assert welcome_b["session"] != original.id  # a session of its own
    assert not original.closed and original.sid == "tab-a"  # tab A keeps its session
    assert worker.transport.messages("tab-a", "close") == []


def test_12_a_server_disconnect_handled_in_the_read_loop_does_not_wait_for_itself():
    """Handled in arrival order, in the read loop: the server's DISCONNECT packet makes
    python-socketio disconnect Engine.IO from there, which must not join its own thread
    (it raised "cannot join current thread" and left the client half closed)."""
    import queue
    import threading

    from gateway.client import GatewayClient

    client = GatewayClient("http://127.0.0.1:9", "t", reconnect=False)
    sio, eio = client.sio, client.sio.eio
    eio.state, eio.current_transport, eio.queue = "connected", "polling", queue.Queue()
    eio.read_loop_task = threading.current_thread()  # this thread plays the read loop
    sio.connected, sio.namespaces = True, {"/": "sid"}
    eio._trigger_event("message", "1", run_async=True)  # DISCONNECT for namespace "/"
    assert eio.state == "disconnected" and not sio.connected


# Reasoned: session limits were check-then-act ---------------------------------------------

@pytest.mark.parametrize("at_release", [1, 2, 3])
def test_two_connections_at_once_cannot_both_take_a_users_last_place(at_release: int):
    worker = Worker(MAX_SESSIONS_PER_USER=1)
    other: list[Any] = []

    def the_other_connects() -> None:
        try:
            worker.connections.connect("c2", ALICE, {"app": "t"})
            other.append("accepted")
        except Refused as exc:
            other.append(exc.code)

    # The other connection runs as this one lets go of the registry for the Nth time
    # (before: once after reading the count of sessions, once after the user's).
    releases = iter(range(1, 100))
    hook = after_release(worker.registry, "_lock", the_other_connects,
                         when=lambda: next(releases) == at_release)
    try:
        worker.connections.connect("c1", ALICE, {"app": "t"})
        mine = "accepted"
    except Refused as exc:
        mine = exc.code
    if not hook.disarm():
        the_other_connects()  # no Nth release: the other comes after
    assert sorted([mine, *other]) == ["accepted", "too_many_sessions"]
    assert worker.registry.count_for_user("1") == 1


# Reasoned: a blocking call inside an @gateway.on handler froze its connection's reader --

def test_a_blocking_call_in_an_event_handler_is_refused_not_frozen():
    def asks(session: Session, data: Any) -> Any:
        return session.ask("input", label="Name?")  # its reply could never be read

    session, _, _ = make(handlers={"asks": asks, "naps": lambda s, d: s.sleep(30),
                                   "quick": lambda s, d: s.sleep(0) or "ok"})
    session.attach("s")
    for i, name in enumerate(("asks", "naps"), 1):
        ack = session.handle(EventMessage(i, name, None))  # returns at once
        assert ack["error"]["code"] == "internal_error"
    assert session.handle(EventMessage(3, "quick", None)) == {"ok": True, "result": "ok"}

# Found by the model of the protocol (tests/unit/test_model.py) ---------------------------

def test_14_commands_sent_while_a_batch_is_flushed_go_out_max_batch_at_a_time():
    session, transport, _ = make(runtime=ManualRuntime(), max_batch=2)
    session.attach("s")
    session.enqueue("output", {"n": 1})
    # The second command fills the batch; another thread's send lands before it is flushed.
    after_release(session, "_cond", lambda: session.enqueue("output", {"n": 3}),
                  when=lambda: len(session._pending) == 2)
    session.enqueue("output", {"n": 2})
    session.flush()
    batches = transport.messages("s", "commands")
    assert [c["seq"] for batch in batches for c in batch] == [1, 2, 3]
    assert all(len(batch) <= 2 for batch in batches), batches


def _hook_new_sessions(worker: Worker, hook: Any) -> None:
    """Call ``hook(session)`` on each session as it is registered, before its attach."""
    add = worker.registry.add

    def add_then_hook(session: Session, sid: str, **limits: Any) -> bool:
        first = add(session, sid, **limits)
        hook(session)
        return first

    worker.registry.add = add_then_hook


def test_15_a_session_closed_as_its_connect_completes_leaves_its_user_offline():
    worker = Worker()
    # The session is attached; a logout lands before the connection announces alice online.
    _hook_new_sessions(worker, lambda session: after_release(
        session, "_flush_lock",
        lambda: worker.router.close(Target.of(user=1), "logged_out", "bye"),
        when=lambda: session.sid is not None))
    session = worker.connections.connect("c1", ALICE, {"app": "t"})
    assert session.closed and len(worker.registry) == 0
    assert not worker.presence.is_online("1")


def test_15_a_session_opening_as_the_users_last_one_closes_leaves_the_user_online():
    worker = Worker()
    first = worker.connections.connect("c1", ALICE, {"app": "t"})
    remove = worker.registry.remove
    second: list[Session] = []

    def remove_then_another_tab_connects(session: Session) -> list:
        gone = remove(session)  # alice's last session here: gone, not yet announced
        second.append(worker.connections.connect("c2", ALICE, {"app": "t"}))
        return gone

    worker.registry.remove = remove_then_another_tab_connects
    first.close("kicked")
    assert not second[0].closed and worker.registry.for_user("1") == [second[0]]
    assert worker.presence.is_online("1")


def test_16_two_resumes_racing_leave_the_session_indexed_under_the_last_one_only():
    worker = Worker()
    session = worker.connections.connect("c1", ALICE, {"app": "t"})
    resume = {"session": session.id, "token": worker.welcome("c1")["token"], "last_seq": 0}
    # Tab A reloads (c2): its resume has moved the session and not yet indexed c2 when
    # tab B, a duplicate with the same storage, resumes it too (c3).
    after_release(session, "_flush_lock",
                  lambda: worker.connections.connect("c3", ALICE, {"app": "t", "resume": resume}),
                  when=lambda: session.sid == "c2")
    worker.connections.connect("c2", ALICE, {"app": "t", "resume": resume})
    assert session.sid == "c3" and worker.registry.by_sid("c3") is session
    assert worker.transport.messages("c2", "close")[0]["reason"] == "kicked"
    assert worker.registry.by_sid("c2") is None  # told it was kicked: carries nothing
    assert worker.registry.by_sid("c1") is None
    session.close("kicked")
    assert [worker.registry.by_sid(sid) for sid in ("c1", "c2", "c3")] == [None, None, None]
