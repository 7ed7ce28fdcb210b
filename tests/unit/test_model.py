"""A model of protocol v1, tested (issue "Exactly once under every interleaving").

A stateful property test drives one worker (Connections, Router and the registry, over
fakes) through random sequences of what clients, apps and the rest of the server do, and
checks the contract of docs' Protocol, Guarantees and Session lifecycle after every step.

Clients are three tabs (two of alice's, one of bob's) that keep their books as the
protocol says (``ClientState``: session, token, last applied seq, next event id, events
awaiting their ack), fed by what the transport recorded for their connection, in order:
``session``, ``commands`` batches, ``close``, the server's hang-up, and the acks of their
events. What a tab has not read when its connection drops is lost. A reload is a drop and
a resume from storage; a duplicated tab copies another's storage (or a tampered one). Two
apps: ``keep`` (keep_open) and ``fin`` (its main sends ``bye`` and returns: the app
finishes); both handle the event ``work``, whose handler records its run, sends to its
own session, another session or every session of its user, and returns a result derived
from the data.

Rules: connect, disconnect (seen now or later), reload, duplicate, read (acking, or not;
or everything settles and each tab must have applied all its session was sent), ack
(forward, backward, beyond), event (sent, or queued while not ready), resend, send from
elsewhere (to a session or a user; the bus may go down), end (logout, kick, the app's own
close), background tasks (flushes, app mains, expiry and grace timers), and race: two
threads acting on one session at once.

The threading runtime's interleavings are played in one thread, deterministically. Tasks
wait in a ManualRuntime until a rule runs them (the resume window is 0: an expiry task that
runs closes its session unless it was resumed). Each operation may be pre-empted: other
threads' steps (a resume, an expiry, a send, a close, a logout, an ack, an event, a
disconnect, a flush, an app main) on the session it is about run at the k-th moment it
lets go of every lock (tests.helpers.interleave.PreemptionPoints wraps the locks).

Invariants, after every step and as each message is emitted:

* per session, seqs 1..n, each command given one seq; per connection, ``session`` first,
  then commands contiguous from the resume point, each equal to what was sent to that
  session, nothing after ``close``; per tab, the commands applied are seq 1..n of its
  session, in order, once each, equal to what was sent (and at ``settle``, all of them);
* each event's handler runs at most once per session, and every ack of it (first, resends)
  is the same; other answers only when legitimate: ``session_closed`` when the connection
  no longer carries a live session, ``result_forgotten`` when ``event_memory`` newer events
  were handled since (or the id is below those), ``event_id_reused`` when the id was
  another event's (a duplicated tab); never ``rate_limited`` (no flood here);
* a ``resumed: false`` answer to a resume has a reason, and the right one: ``unknown``
  (never existed), ``forbidden`` (another user or app, a wrong token), ``expired`` (closed),
  ``replay_overflow`` (behind what was acked, past what was sent, or a slow consumer);
* no live session after its close or its user's logout (the bus up or down); expired only
  from detached; slow_consumer only after an overflow; a finished app's session closes once
  everything is acked; a detached session has its expiry timer, waiting commands a flush;
* the registry's indexes agree (a live sid carries its session, closed sessions are in
  none), sends reach each live session they name once and no other, and the presence
  mirror says a user is online exactly when they have a session here.

``make test`` runs a bounded number of examples (about 10 s here); more on demand:
``MODEL_EXAMPLES=5000 .venv/bin/python -m pytest tests/unit/test_model.py`` (and
``MODEL_STEPS``; ``MODEL_SHRINK=0`` reports a failing sequence as found, unshrunk).
"""

from __future__ import annotations

import copy
import functools
import os
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import field
from typing import Any
from unittest import mock

from hypothesis import HealthCheck
from hypothesis import Phase
from hypothesis import event as tally
from hypothesis import note
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine
from hypothesis.stateful import initialize
from hypothesis.stateful import invariant
from hypothesis.stateful import precondition
from hypothesis.stateful import rule

from gateway.client_state import ClientState
from gateway.cluster import connections as connections_module
from gateway.cluster.bus import LocalBus
from gateway.cluster.connections import Connections
from gateway.cluster.connections import Refused
from gateway.cluster.routing import Router
from gateway.core.apps import AppCatalog
from gateway.core.delivery import CommandStream
from gateway.core.errors import CLOSED
from gateway.core.errors import EXPIRED
from gateway.core.errors import KICKED
from gateway.core.errors import LOGGED_OUT
from gateway.core.errors import SLOW_CONSUMER
from gateway.core.errors import BusUnavailable
from gateway.core.errors import GatewayError
from gateway.core.errors import ReplayOverflow
from gateway.core.presence import Presence
from gateway.core.registry import SessionRegistry
from gateway.core.session import Session
from gateway.core.session import SessionState
from gateway.core.session import SessionUser
from gateway.core.session import hash_token
from gateway.core.targets import Target
from gateway.metrics import GatewayMetrics
from gateway.settings import Settings
from tests.helpers.fakes import ManualRuntime
from tests.helpers.fakes import RecordingTransport
from tests.helpers.interleave import PreemptionPoints

ALICE = SessionUser("1", "alice")
BOB = SessionUser("2", "bob")
USERS = {"1": ALICE, "2": BOB}
TABS = {"a1": ALICE, "a2": ALICE, "b1": BOB}
#: Tabs whose client keeps no more events awaiting their ack than the session remembers
#: (GatewayClient); the others send as they please (gateway.js does not count).
CAREFUL = {"a1"}
SETTINGS = {
    "RESUME_SECONDS": 0,  # an expiry task that runs finds its session detached too long
    "REPLAY_LIMIT": 4,  # small: slow consumers happen
    "MAX_BATCH": 2,  # small: replays and flushes go in several messages
    "EVENT_MEMORY": 2,  # small: results are forgotten
    "EVENT_BURST": 100_000,  # no rate limit in the model: rate_limited is never legitimate
}
RESUME_REASONS = {"expired", "unknown", "forbidden", "replay_overflow"}

#: Rules an example may leave out (swarm testing: each example uses some of the rules, so
#: that each is frequent in some examples).
OPTIONAL = ("disconnect", "reload", "duplicate", "ack", "resend", "send", "end",
            "background")


#: What two threads may do to one session at once (the rule ``race``): resume it (a tab
#: that stores it reloads, or connects), run its expiry timer, send to it, close it, log
#: its user out, ack or send an event from its tab, notice its connection is gone, run a
#: flush, run its app's main. Resumes and closes are the usual parties of a race: more.
RACERS = ("resume", "resume", "resume", "expire", "send", "close", "close", "logout", "ack",
          "event", "notice", "flush", "main")
#: The pre-emptions of an operation: at the ``skip``-th point after the previous one,
#: another thread's step (a racer) on the session the operation is about (or else the
#: newest), at that point and the ``repeat`` next ones. Most operations have a few
#: points: a large skip is no pre-emption.
PREEMPT = st.lists(st.tuples(st.sampled_from([0, 0, 1, 2, 3, 4, 6, 99]), st.sampled_from(RACERS),
                             st.sampled_from([0, 0, 5])), max_size=3)


def unless_off(name: str) -> Callable[[Any], Any]:
    return precondition(lambda self: name not in self.off)


class ModelStream(CommandStream):
    """A replay buffer that tells the model each command it numbers, and remembers having
    overflowed (a slow consumer's close is legitimate only then)."""

    overflowed = False

    def __init__(self, replay_limit: int, replay_bytes: int,
                 pushed: Callable[[dict[str, Any]], None]) -> None:
        super().__init__(replay_limit, replay_bytes)
        self.pushed = pushed

    def push(self, name: str, args: dict[str, Any], size: int = 0) -> dict[str, Any]:
        try:
            command = super().push(name, args, size)
        except ReplayOverflow:
            self.overflowed = True
            raise
        self.pushed(command)
        return command


def reporting(method: Callable[..., Any]) -> Callable[..., Any]:
    """A check that may run inside the worker's code, where an exception can be caught (an
    event handler's becomes an internal_error ack, an app main's a close): its failures
    are also kept for the invariant ``no_problem``."""

    @functools.wraps(method)
    def checked(self: ProtocolModel, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except AssertionError as exc:
            self.problems.append(f"{method.__name__}: {exc}")
            raise

    return checked


class ModelBus(LocalBus):
    """A single worker's bus that can be down."""

    def __init__(self) -> None:
        self.down = False

    @property
    def healthy(self) -> bool:  # type: ignore[override]
        return not self.down

    def publish(self, message: Any) -> None:
        if self.down:
            raise BusUnavailable("The message queue is unreachable.")


class ModelTransport(RecordingTransport):
    """Records what the worker emits, and hands each message to the model as it goes."""

    def __init__(self, model: ProtocolModel) -> None:
        super().__init__()
        self.model = model

    def emit(self, sid: str, event: str, data: Any) -> None:
        super().emit(sid, event, copy.deepcopy(data))
        self.model.emitted(sid, event, copy.deepcopy(data))

    def disconnect(self, sid: str, hang_up: bool = False) -> None:
        super().disconnect(sid, hang_up)
        self.model.emitted(sid, "_disconnect", None)


@dataclass
class Tab:
    """A browser tab: its stored books (sessionStorage) and its connection, if any."""

    name: str
    user: SessionUser
    state: ClientState = field(default_factory=ClientState)
    app: str = "keep"  # the app of its stored session
    applied: list[tuple[int, str, Any]] = field(default_factory=list)  # of state.session_id
    sid: str | None = None
    cursor: int = 0  # messages of ``sid`` read so far
    ready: bool = False  # its connection's `session` message was read


@dataclass
class Connection:
    """What the model knows of one connection (a Socket.IO sid)."""

    tab: str
    user: SessionUser
    app: str
    resume: dict[str, Any] | None  # the resume asked for
    last_seq_at_start: int | None  # of the session asked for, when the connect began
    messages: list[tuple[str, Any]] = field(default_factory=list)
    session: str | None = None  # from its `session` message
    next_seq: int = 0  # the seq its next `commands` entry must have
    closed: bool = False  # a `close` was emitted
    gone: bool = False  # the server disconnected it


def result_of(data: dict[str, Any]) -> dict[str, Any]:
    """What the handler ``work`` returns for ``data``."""
    return {"echo": data["n"], "tab": data["tab"]}


def summary(ack: dict[str, Any]) -> Any:
    return ("ok", ack["result"]) if ack["ok"] else ("error", ack["error"]["code"])


class ProtocolModel(RuleBasedStateMachine):
    """One worker and three tabs; see the module's docstring."""

    def __init__(self) -> None:
        super().__init__()
        self.points = PreemptionPoints()
        self.runtime = ManualRuntime()
        self.transport = ModelTransport(self)
        self.registry = SessionRegistry()
        self.registry._lock = self.points.wrap(self.registry._lock)  # type: ignore[assignment]
        self.bus = ModelBus()
        self.presence = Presence("local")
        self.metrics = GatewayMetrics(self)  # type: ignore[arg-type]
        self.router = Router(self.registry, self.bus, self.presence, self.metrics)
        self.router._presence_lock = self.points.wrap(self.router._presence_lock)  # type: ignore[assignment]
        self.catalog = AppCatalog()
        self.catalog.register("keep", self._keep_main, keep_open=True)
        self.catalog.register("fin", self._fin_main)
        for app in ("keep", "fin"):
            self.catalog.add_handler(app, "work", self._work)
        self.connections = Connections(
            Settings(**SETTINGS), self.catalog, self.registry, self.metrics,
            transport=self.transport, runtime=self.runtime,
            presence_changed=self.router.presence_changed)
        self.limits = self.connections.limits
        model = self

        class ModelSession(Session):
            """A session with deterministic id and token, its locks wrapped, its pushes
            and closes recorded."""

            def __init__(self, *args: Any, **kwargs: Any) -> None:
                super().__init__(*args, **kwargs)
                n = len(model.sessions) + 1
                self.id = f"session{n:04d}"
                self._token = f"token-of-session-{n:04d}"
                self._token_hash = hash_token(self._token)
                self._stream = ModelStream(self.limits.replay_limit, self.limits.replay_bytes,
                                           functools.partial(model.pushed_command, self))
                self._cond = model.points.wrap(self._cond)
                self._flush_lock = model.points.wrap(self._flush_lock)
                self._handling = model.points.wrap(self._handling, inbound=True)
                model.sessions.append(self)
                model.by_id[self.id] = self

            def close(self, reason: str = CLOSED, message: str | None = None, **kw: Any) -> None:
                before = self.lifecycle
                super().close(reason, message, **kw)
                if before is not SessionState.CLOSED and self.closed:
                    model.closed_session(self, reason, before)

        self._patch = mock.patch.object(connections_module, "Session", ModelSession)
        self._patch.start()
        self.sessions: list[Session] = []  # every session made, in order
        self.by_id: dict[str, Session] = {}
        self.pushed: dict[str, dict[int, tuple[str, Any]]] = defaultdict(dict)
        self.nonce_to: dict[int, list[str]] = defaultdict(list)  # nonce -> sessions pushed to
        self.runs: dict[tuple[str, int], list[Any]] = defaultdict(list)  # handler runs
        self.outcome: dict[tuple[str, int], Any] = {}  # what each run's ack must say
        self.recorded: dict[str, list[int]] = defaultdict(list)  # event ids run, in order
        self.first_ack: dict[tuple[str, int], tuple[Any, dict[str, Any]]] = {}
        self.conns: dict[str, Connection] = {}
        self.tabs = {name: Tab(name, user) for name, user in TABS.items()}
        self.zombies: list[str] = []  # connections gone whose disconnect the server has not seen
        self.counter = 0
        self.busy: set[str] = set()  # tabs in the middle of the operation being pre-empted
        self.problems: list[str] = []  # failed checks, wherever they ran
        self.off: set[str] = set()
        self.focus: Session | None = None  # the session the operation under way is about

    def teardown(self) -> None:
        self._patch.stop()

    @initialize(off=st.sets(st.sampled_from(OPTIONAL), max_size=6))
    def swarm(self, off: set[str]) -> None:
        """Which rules this example leaves out."""
        self.off = off

    def _next(self) -> int:
        self.counter += 1
        return self.counter

    # -- the apps ----------------------------------------------------------------

    def _keep_main(self, session: Session) -> None:
        session.send("hello", {"nonce": self._next()})

    def _fin_main(self, session: Session) -> None:
        session.send("bye", {"nonce": self._next()})  # then it returns: the app finishes

    @reporting
    def _work(self, session: Session, data: Any) -> Any:
        key = (session.id, data["id"])
        self.runs[key].append(data)
        tally(f"handler run: {data['mode']}")
        self.recorded[session.id].append(data["id"])
        try:
            if data["mode"] == "self":
                session.send("did", {"nonce": self._next()})
            elif data["mode"] == "peer":  # another session, perhaps closed: SessionClosed
                peer = self.sessions[data["peer"] % len(self.sessions)]
                peer.send("told", {"nonce": self._next()})
            else:  # every session of the user, through the router (bus down: BusUnavailable)
                self.routed_send(Target.of(user=session.user.id), "fan")
        except GatewayError as exc:
            self.outcome[key] = ("error", exc.code)
            raise
        self.outcome[key] = ("ok", result_of(data))
        return result_of(data)

    # -- what the worker does, recorded ------------------------------------------

    @reporting
    def pushed_command(self, session: Session, command: dict[str, Any]) -> None:
        log = self.pushed[session.id]
        seq = command["seq"]
        assert seq == len(log) + 1, f"{session.id}: seq {seq} after {len(log)}"
        log[seq] = (command["name"], copy.deepcopy(command["args"]))
        self.nonce_to[command["args"].get("nonce", 0)].append(session.id)

    @reporting
    def closed_session(self, session: Session, reason: str, before: SessionState) -> None:
        if reason == EXPIRED:
            assert before is SessionState.DETACHED, (
                f"{session.id} closed as expired while {before.value}")
        if reason == SLOW_CONSUMER:
            assert session._stream.overflowed, f"{session.id} closed slow_consumer, no overflow"

    @reporting
    def emitted(self, sid: str, event: str, data: Any) -> None:
        """Checks of each message as the worker emits it, read by its tab or not."""
        conn = self.conns.get(sid)
        assert conn is not None, f"{event} emitted to a connection never made: {sid}"
        assert not conn.gone, f"{event} emitted to {sid} after it was disconnected"
        if event != "_disconnect":
            assert not conn.closed, f"{event} emitted to {sid} after its close"
        conn.messages.append((event, data))
        if event == "session":
            tally(f"welcome: resumed={data['resumed']} reason={data['reason']}")
            assert conn.session is None, f"a second session message on {sid}"
            self.check_welcome(conn, data)
            conn.session = data["session"]
            conn.next_seq = (data["last_seq"] if data["resumed"] else 0) + 1
        elif event == "commands":
            assert conn.session is not None, f"commands before the session message on {sid}"
            assert isinstance(data, list) and 0 < len(data) <= self.limits.max_batch
            for command in data:
                seq = command["seq"]
                assert seq == conn.next_seq, (
                    f"{sid} ({conn.session}) got seq {seq} where {conn.next_seq} was due")
                conn.next_seq += 1
                pushed = self.pushed[conn.session].get(seq)
                assert pushed == (command["name"], command["args"]), (
                    f"{conn.session} seq {seq} sent as {command}, pushed as {pushed}")
        elif event == "close":
            tally(f"close: {data['reason']}")
            assert conn.session is not None, f"close before the session message on {sid}"
            session = self.by_id[conn.session]
            if data["reason"] != KICKED or session.sid == sid:
                assert session.closed and data["reason"] == session.close_reason, (
                    f"{sid} told {data}, its session {session.close_reason}")
            # else: a connection the session was resumed away from (a duplicated tab)
            conn.closed = True
        elif event == "_disconnect":
            conn.gone = True

    def check_welcome(self, conn: Connection, data: dict[str, Any]) -> None:
        wanted = conn.resume
        if wanted is None:
            assert not data["resumed"] and data["reason"] is None, data
            return
        if data["resumed"]:
            assert data["session"] == wanted["session"] and data["reason"] is None, data
            assert data["last_seq"] == wanted["last_seq"], data
            return
        reason = data["reason"]
        assert reason in RESUME_REASONS, f"resumed: false without a reason: {data}"
        assert data["session"] != wanted["session"], data
        asked = self.by_id.get(wanted["session"])
        if reason == "unknown":
            assert asked is None, f"{wanted['session']} exists, yet unknown"
            return
        assert asked is not None, f"{wanted['session']} never existed, yet {reason}"
        if reason == "forbidden":
            assert (asked.user.id != conn.user.id or asked.app != conn.app
                    or wanted["token"] != asked._token), f"a good resume called forbidden: {data}"
        elif reason == "expired":
            assert asked.closed, f"{asked.id} is live, yet expired"
        else:  # replay_overflow
            assert asked.close_reason == SLOW_CONSUMER or (
                wanted["last_seq"] < asked._stream.acked
                or wanted["last_seq"] > (conn.last_seq_at_start or 0)
            ), f"resume of {asked.id} from {wanted['last_seq']} called replay_overflow"

    # -- the clients ---------------------------------------------------------------

    def connect(self, tab: Tab, app: str) -> None:
        """Open a connection for ``tab``: a resume from its stored books, if it has any."""
        resume = tab.state.resume_request()
        app = tab.app if resume is not None else app
        sid = f"c{self._next()}"
        asked = self.by_id.get(resume["session"]) if resume else None
        self.conns[sid] = Connection(tab.name, tab.user, app, resume,
                                     asked._stream.last_seq if asked else None)
        fired = self.points.fired
        had = len(self.registry._by_user.get(tab.user.id, ()))
        try:
            self.connections.connect(sid, tab.user, {"app": app, "resume": resume})
        except Refused as exc:
            note(f"{sid} refused: {exc.code}")
            tally(f"refused: {exc.code}")
            if exc.code == "too_many_sessions":
                limit = self.connections.settings.MAX_SESSIONS_PER_USER
                assert had >= limit or self.points.fired > fired, (had, limit)
            else:  # closed between its registration and its attach: only if pre-empted
                assert exc.code == "unauthorized" and self.points.fired > fired, exc.code
            assert sid not in self.registry._by_sid
            return
        tab.sid, tab.cursor, tab.ready, tab.app = sid, 0, False, app

    def drop(self, tab: Tab) -> None:
        """The tab's connection is cut: what it has not read is lost."""
        if tab.sid is not None:
            self.zombies.append(tab.sid)
            tab.sid, tab.ready = None, False

    def notice(self, sid: str) -> None:
        """The server sees that connection ``sid`` is gone."""
        self.zombies.remove(sid)
        self.connections.disconnect(sid)
        assert sid not in self.registry._by_sid

    def deliver(self, tab: Tab, count: int, auto_ack: bool = True) -> None:
        """``tab`` reads up to ``count`` messages of its connection, as gateway.js does."""
        while count > 0 and tab.sid is not None:
            messages = self.conns[tab.sid].messages
            if tab.cursor >= len(messages):
                return
            event, data = messages[tab.cursor]
            tab.cursor += 1
            count -= 1
            if event == "session":
                if not data["resumed"]:
                    tab.applied = []
                tab.state.welcome(data)
                tab.ready = True
                for event_id, message in tab.state.unsettled():  # resent after a resume
                    assert message["id"] == event_id
                    self.send_event(tab, message)
                    if tab.sid is None:
                        return
            elif event == "commands":
                assert tab.ready
                for command in data:
                    assert command["seq"] == tab.state.last_seq + 1, (
                        f"tab {tab.name} at {tab.state.last_seq} got seq {command['seq']}")
                    for applied in tab.state.accept([command]):
                        tab.applied.append((applied["seq"], applied["name"], applied["args"]))
                if auto_ack:
                    self.connections.ack(tab.sid, {"seq": tab.state.last_seq})
            elif event == "close":  # storage cleared; the client hangs up
                tab.state, tab.applied = ClientState(), []
                self.drop(tab)
            elif event == "_disconnect":
                self.drop(tab)
            elif event == "_ack":  # the answer to an event: it is settled
                message, ack = data
                tab.state.settle(message["id"], message)

    def new_event(self, tab: Tab, mode: str, peer: int) -> None:
        if tab.name in CAREFUL and not tab.state.has_room():
            return  # the client waits for an ack before it sends more
        message: dict[str, Any] = {"name": "work", "data": {
            "tab": tab.name, "n": self._next(), "mode": mode, "peer": peer}}
        event_id = tab.state.track(message)
        message["id"] = message["data"]["id"] = event_id
        if tab.ready:
            self.send_event(tab, message)

    def send_event(self, tab: Tab, message: dict[str, Any]) -> None:
        """Send ``message`` on the tab's connection and check its ack, which reaches the
        tab after what the worker emitted before it (lost if the connection drops first)."""
        assert tab.sid is not None and tab.ready
        sid, session_id = tab.sid, tab.state.session_id
        assert session_id is not None
        session = self.by_id[session_id]
        carried = self.registry._by_sid.get(sid)
        assert carried is None or carried is session, f"{sid} carries {carried}, not {session}"
        ack = self.connections.event(sid, copy.deepcopy(message))
        self.check_ack(session, sid, message, ack)
        self.conns[sid].messages.append(("_ack", (message, ack)))

    def check_ack(self, session: Session, sid: str, message: dict[str, Any],
                  ack: dict[str, Any]) -> None:
        """Each event's handler runs at most once, and every ack of it is the same; or the
        ack is a refusal the moment makes legitimate."""
        assert not self.problems, self.problems[0]
        key = (session.id, message["id"])
        data = message["data"]
        first = self.first_ack.get(key)
        runs = self.runs.get(key, [])
        code = None if ack["ok"] else ack["error"]["code"]
        tally(f"ack: {code or 'ok'}")
        if first is not None and first[0] == data and ack == first[1]:
            tally("ack: a resend answered again")
            return  # a resend, answered as the first time
        if code == "session_closed" and (self.registry._by_sid.get(sid) is not session
                                         or session.closed):
            return  # the connection has no session any more
        if code == "result_forgotten":  # newer results pushed its own out
            recorded = self.recorded[session.id]
            assert recorded and message["id"] <= max(recorded) and \
                message["id"] not in recorded[-self.limits.event_memory:], (
                    f"{key} forgotten too soon: {recorded}")
            return
        if code == "event_id_reused":
            assert runs and runs[0] != data, f"{key} called reused, but it is a resend"
            return
        assert first is None, f"{key}: ack {ack}, first answered {first[1] if first else None}"
        assert runs == [data], f"{key}: ack {ack} but handler runs {runs}"
        assert summary(ack) == self.outcome[key], f"{key}: ack {ack}, outcome {self.outcome[key]}"
        self.first_ack[key] = (data, ack)

    def routed_send(self, target: Target, name: str) -> None:
        """Router.send, checked: it reaches each session the target names that lives
        through it, once, and no other; with the bus down, none."""
        nonce = self._next()
        named = [s for s in list(self.registry._by_id.values()) if self.names(target, s)]
        try:
            self.router.send(target, name, {"nonce": nonce})
        except BusUnavailable:
            assert not self.nonce_to.get(nonce), "a send that failed reached sessions"
            raise
        reached = self.nonce_to.get(nonce, [])
        assert len(reached) == len(set(reached)), f"send {nonce} pushed twice: {reached}"
        assert all(self.names(target, self.by_id[s]) for s in reached), (target, reached)
        missed = [s.id for s in named if not s.closed and s.id not in reached]
        assert not missed, f"send to {target} missed {missed}"

    @staticmethod
    def names(target: Target, session: Session) -> bool:
        return session.id == target.value if target.kind == "session" \
            else session.user.id == target.value

    # -- another thread's step -----------------------------------------------------

    def target(self, which: int) -> Target:
        """Alice, bob, the newest session, or one of the sessions ever made."""
        if which % 4 < 2 or not self.sessions:
            return Target.of(user=sorted(USERS)[which % 2])
        if which % 4 == 2:
            return Target.of(session=self.sessions[-1].id)
        return Target.of(session=self.sessions[which // 4 % len(self.sessions)].id)

    def operate(self, preempt: Any, operation: Any, *busy: str,
                focus: Session | None = None) -> None:
        """Run ``operation``, pre-empted by other threads' steps as ``preempt`` says.
        ``focus``: the session it is about (by default, that of its tab's storage)."""
        if focus is None and busy:
            focus = self.by_id.get(self.tabs[busy[0]].state.session_id or "")
        self.focus = focus
        for skip, racer, repeat in preempt or ():
            for first in [True] + [False] * repeat:
                self.points.arm(skip if first else 0, functools.partial(self.racing, racer),
                                needs_inbound=racer == "event")
        self.busy = set(busy)
        self.points.enabled = True
        try:
            operation()
        finally:
            self.points.enabled = False
            self.points.disarm()
            self.busy = set()

    def logout(self, user_id: str) -> None:
        """Router.close of the user's sessions, as a logout does (the bus may be down)."""
        before = [s for s in self.registry._by_id.values() if s.user.id == user_id]
        try:
            self.router.close(Target.of(user=user_id), LOGGED_OUT, "You logged out.")
        except BusUnavailable:
            pass
        live = [s.id for s in before if not s.closed]
        assert not live, f"{live} live after the logout of user {user_id}"

    def kick(self, session: Session, reason: str) -> None:
        if reason == CLOSED:  # the app closes its own session
            session.close(CLOSED, "The app closed the session.")
        else:
            try:
                self.router.close(Target.of(session=session.id), reason, "Kicked.")
            except BusUnavailable:
                assert session.closed or session.id not in self.registry._by_id
                return
        assert session.closed, f"{session.id} live after its close"

    def run_task(self, which: int, *names: str, main: bool = False) -> None:
        """Run one of the tasks waiting (of those running one of ``names``, if given; an
        even ``which`` prefers those whose session waits for them: an expiry timer of the
        current detachment, a flush with commands to send)."""
        tasks = self.runtime.tasks
        indexes = [i for i, (fn, _) in enumerate(tasks) if not names or fn.__name__ in names]
        if which % 2 == 0:
            indexes = [i for i in indexes if self.due(*tasks[i])] or indexes
            which //= 2
        fn, args = tasks.pop(indexes[which % len(indexes)])
        note(f"  task {fn.__name__}{args} of {getattr(fn, '__self__', None)}")
        if main:  # the operation, not a pre-empting step: it is about the task's session
            self.focus = getattr(fn, "__self__", None)
        fn(*args)

    @staticmethod
    def due(fn: Any, args: tuple[Any, ...]) -> bool:
        session = getattr(fn, "__self__", None)
        if fn.__name__ == "_expire_after":
            return session.lifecycle is SessionState.DETACHED \
                and session._detach_generation == args[0]
        if fn.__name__ == "flush":
            return bool(session._pending)
        return True

    def waiting(self, *names: str) -> bool:
        return any(fn.__name__ in names for fn, _ in self.runtime.tasks)

    # -- rules -----------------------------------------------------------------------
    # A tab is chosen among those a rule applies to (``which`` modulo their number).

    def idle(self) -> list[Tab]:
        return [t for t in self.tabs.values() if t.sid is None]

    def online(self) -> list[Tab]:
        return [t for t in self.tabs.values() if t.sid is not None]

    def ready(self) -> list[Tab]:
        return [t for t in self.tabs.values() if t.ready]

    def unread(self) -> list[Tab]:
        return [t for t in self.online() if t.cursor < len(self.conns[t.sid or ""].messages)]

    @staticmethod
    def pick(tabs: list[Tab], which: int) -> Tab:
        return tabs[which % len(tabs)]

    @precondition(lambda self: self.idle())
    @rule(which=st.integers(0, 2), app=st.sampled_from(["keep", "fin"]),
          start=st.booleans(), read=st.sampled_from([0, 1, 100]), preempt=PREEMPT)
    def connect_tab(self, which: int, app: str, start: bool, read: int, preempt: Any) -> None:
        """A tab connects: a new session, or a resume from its storage (its app's main
        may start at once), and reads what came, or some of it."""
        tab = self.pick(self.idle(), which)
        self.operate(preempt, lambda: self.connect(tab, app), tab.name)
        while start and self.waiting("_run_app"):
            self.run_task(0, "_run_app")
        self.operate(None, lambda: self.deliver(tab, read))

    @unless_off("reload")
    @precondition(lambda self: self.online())
    @rule(which=st.integers(0, 2), noticed_first=st.booleans(), read=st.sampled_from([0, 100]),
          preempt=PREEMPT)
    def reload(self, which: int, noticed_first: bool, read: int, preempt: Any) -> None:
        """A reload: the old connection drops, a new one resumes from storage (its
        disconnect may reach the server after the new connection)."""
        tab = self.pick(self.online(), which)
        sid = tab.sid
        self.drop(tab)
        if noticed_first and sid is not None:
            self.notice(sid)
        self.operate(preempt, lambda: self.connect(tab, "keep"), tab.name)
        self.operate(None, lambda: self.deliver(tab, read))

    @unless_off("duplicate")
    @precondition(lambda self: any(t.state.session_id for t in self.tabs.values()))
    @rule(source=st.integers(0, 2), which=st.integers(0, 1),
          variant=st.sampled_from(["copy", "copy", "copy", "token", "unknown"]),
          now=st.sampled_from([0, 1, 100, None]), queued=st.booleans(), preempt=PREEMPT)
    def duplicate(self, source: int, which: int, variant: str, now: int | None,
                  queued: bool, preempt: Any) -> None:
        """A duplicated tab: a copy of another's storage (or a tampered one), which
        connects now or later (when the original may have moved on), perhaps with an
        event queued first (its id follows the copy's: the original may have used it).
        A copy to bob's tab is a stolen storage: forbidden."""
        copied = self.pick([t for t in self.tabs.values() if t.state.session_id], source)
        tab = self.pick([t for t in self.tabs.values() if t is not copied], which)
        self.drop(tab)
        tab.state = copy.deepcopy(copied.state)
        tab.applied = list(copied.applied)
        tab.app = copied.app
        if variant == "token":
            tab.state.token = "forged-token-0000000"
        elif variant == "unknown":
            tab.state.resume_from("session-from-elsewhere", "some-token-00000000", 0)
            tab.applied = []
        if queued:
            self.new_event(tab, "self", 0)
        if now is not None:  # (it reads that many messages at once)
            self.operate(preempt, lambda: self.connect(tab, "keep"), tab.name)
            self.operate(None, lambda: self.deliver(tab, now))

    @precondition(lambda self: self.unread() or (self.online() and self.waiting("flush")))
    @rule(which=st.integers(0, 2), count=st.sampled_from([1, 2, 3, 100]),
          auto_ack=st.sampled_from([True, True, False]),
          flushes=st.sampled_from([True, True, False]),
          settle=st.sampled_from([False] * 5 + [True]), preempt=PREEMPT)
    def read(self, which: int, count: int, auto_ack: bool, flushes: bool, settle: bool,
             preempt: Any) -> None:
        """The tab reads messages of its connection (acking each batch, or not: the ack
        is lost if the connection drops first), after the flushes waiting ran, or not.
        Or everything settles (each task runs, each tab reads all), and is checked."""
        if settle:
            self.settle()
            return
        tab = self.pick(self.unread() or self.online(), which)

        def read() -> None:
            while flushes and self.waiting("flush"):
                self.run_task(0, "flush")
            self.deliver(tab, count, auto_ack)

        self.operate(preempt, read, tab.name)

    @unless_off("ack")
    @precondition(lambda self: self.ready())
    @rule(which=st.integers(0, 2), how=st.sampled_from(["forward", "backward", "beyond"]),
          by=st.integers(1, 3), preempt=PREEMPT)
    def ack(self, which: int, how: str, by: int, preempt: Any) -> None:
        """An ack: of what the tab applied, behind it, or beyond it (a client that lies)."""
        tab = self.pick(self.ready(), which)
        sid, last = tab.sid or "", tab.state.last_seq
        seq = {"forward": last, "backward": max(0, last - by), "beyond": last + by}[how]
        self.operate(preempt, lambda: self.connections.ack(sid, {"seq": seq}), tab.name)

    @precondition(lambda self: self.ready())
    @rule(which=st.integers(0, 2), mode=st.sampled_from(["self", "self", "peer", "user"]),
          peer=st.integers(0, 7), preempt=PREEMPT)
    def event(self, which: int, mode: str, peer: int, preempt: Any) -> None:
        """A new event from a ready tab."""
        tab = self.pick(self.ready(), which)
        self.operate(preempt, lambda: self.new_event(tab, mode, peer), tab.name)

    @precondition(lambda self: any(not t.ready for t in self.tabs.values()))
    @rule(which=st.integers(0, 2), mode=st.sampled_from(["self", "peer", "user"]),
          peer=st.integers(0, 7))
    def queue_event(self, which: int, mode: str, peer: int) -> None:
        """A new event from a tab that is not ready: queued, sent once its session message
        comes (after a resume, with those awaiting their ack)."""
        tab = self.pick([t for t in self.tabs.values() if not t.ready], which)
        self.new_event(tab, mode, peer)

    @unless_off("resend")
    @precondition(lambda self: any(t.state.unacked_events for t in self.ready()))
    @rule(which=st.integers(0, 2), preempt=PREEMPT)
    def resend(self, which: int, preempt: Any) -> None:
        """The tab sends its unacked events again, with the same ids, on the same
        connection (a client that retries)."""
        tab = self.pick([t for t in self.ready() if t.state.unacked_events], which)

        def resend_all() -> None:
            for _, message in tab.state.unsettled():
                if not tab.ready:
                    return
                self.send_event(tab, message)

        self.operate(preempt, resend_all, tab.name)

    @unless_off("send")
    @rule(to=st.integers(0, 11), bus=st.sampled_from(["", "", "", "down", "up"]),
          preempt=PREEMPT)
    def send(self, to: int, bus: str, preempt: Any) -> None:
        """A send from elsewhere in the server: to a user, or a session (perhaps closed);
        the message queue may have gone down (then it stays down), or come back."""
        self.bus.down = {"down": True, "up": False}.get(bus, self.bus.down)
        target = self.target(to)

        def send() -> None:
            try:
                self.routed_send(target, "output")
            except BusUnavailable:
                pass

        self.operate(preempt, send, focus=self.by_id.get(target.value or ""))

    @unless_off("end")
    @precondition(lambda self: self.registry._by_id)
    @rule(how=st.sampled_from(["logout", KICKED, CLOSED]), which=st.integers(0, 7),
          preempt=PREEMPT)
    def end(self, how: str, which: int, preempt: Any) -> None:
        """A logout (Router.close of the user's sessions), an administrator's kick
        (Router.close of one), or an app closing its own session."""
        live = [s for s in self.sessions if not s.closed]
        session = live[which % len(live)]
        if how == "logout":
            self.operate(preempt, lambda: self.logout(session.user.id), focus=session)
        else:
            self.operate(preempt, lambda: self.kick(session, how), focus=session)

    @reporting
    def racing(self, what: str) -> None:
        """Another thread's step, on the session the operation it pre-empts is about (or
        the newest: perhaps the one that operation is opening)."""
        session = self.focus or (self.sessions[-1] if self.sessions else None)
        if session is not None:
            tally(f"pre-empted by {what}")
            self.race_step(what, session)

    def race_step(self, what: str, session: Session) -> None:
        """One thread's part in a race on ``session`` (nothing if it does not apply)."""
        note(f"  {what} on {session.id}")
        tabs = [t for t in self.tabs.values()
                if t.state.session_id == session.id and t.name not in self.busy]
        ready = [t for t in tabs if t.ready and self.registry._by_sid.get(t.sid or "") is session]
        own = [fn for fn, _ in self.runtime.tasks if getattr(fn, "__self__", None) is session]
        if what == "resume" and tabs:
            self.busy.add(tabs[0].name)
            self.drop(tabs[0])
            self.connect(tabs[0], session.app)
        elif what in ("expire", "flush", "main"):
            name = {"expire": "_expire_after", "flush": "flush", "main": "_run_app"}[what]
            if what == "expire" and not any(
                    fn.__name__ == name and self.due(fn, args) for fn, args in self.runtime.tasks
                    if getattr(fn, "__self__", None) is session):
                # Not detached: its connection drops, then its resume window passes.
                self.race_step("notice", session)
                own = [fn for fn, _ in self.runtime.tasks
                       if getattr(fn, "__self__", None) is session]
            if any(fn.__name__ == name for fn in own):
                index = next(i for i, (fn, _) in enumerate(self.runtime.tasks)
                             if fn.__name__ == name and getattr(fn, "__self__", None) is session)
                fn, args = self.runtime.tasks.pop(index)
                fn(*args)
        elif what == "send":
            try:
                self.routed_send(Target.of(session=session.id), "output")
            except BusUnavailable:
                pass
        elif what == "close":
            self.kick(session, KICKED)
        elif what == "logout":
            self.logout(session.user.id)
        elif what == "ack" and ready:
            self.connections.ack(ready[0].sid or "", {"seq": ready[0].state.last_seq})
        elif what == "event" and ready:
            self.busy.add(ready[0].name)
            self.new_event(ready[0], "self", 0)
        elif what == "notice":
            sids = [sid for sid in self.zombies if self.registry._by_sid.get(sid) is session]
            if not sids and ready:  # its tab's connection drops now
                sids = [ready[0].sid or ""]
                self.drop(ready[0])
            for sid in sids[:1]:
                self.notice(sid)

    @precondition(lambda self: self.registry._by_id)
    @rule(which=st.integers(0, 7), first=st.sampled_from(RACERS),
          second=st.sampled_from(RACERS), skip=st.sampled_from([0, 0, 1, 2, 3, 4, 6]))
    def race(self, which: int, first: str, second: str, skip: int) -> None:
        """Two threads act on one session at once: ``first`` runs, and ``second`` lands
        at its ``skip``-th pre-emption point."""
        live = list(self.registry._by_id.values())
        session = live[which % len(live)]
        self.points.arm(skip, lambda: self.race_step(second, session),
                        needs_inbound=second == "event")
        self.operate(None, lambda: self.race_step(first, session), focus=session)

    @unless_off("disconnect")
    @precondition(lambda self: self.online() or self.zombies)
    @rule(which=st.integers(0, 3), how=st.sampled_from(["later", "now", "now", "seen"]),
          preempt=PREEMPT)
    def disconnect(self, which: int, how: str, preempt: Any) -> None:
        """A tab's connection drops, and the server sees it now or later; or the server
        sees one that dropped before: its session detaches for the resume window."""
        if how == "seen" and self.zombies or not self.online():
            sid = self.zombies[which % len(self.zombies)]
        else:
            tab = self.pick(self.online(), which)
            sid = tab.sid or ""
            self.drop(tab)
            if how == "later":
                return
        self.operate(preempt, lambda: self.notice(sid), focus=self.registry._by_sid.get(sid))

    @unless_off("background")
    @precondition(lambda self: self.runtime.tasks)
    @rule(kind=st.sampled_from(["any", "time", "main"]), which=st.integers(0, 7),
          preempt=PREEMPT)
    def background(self, kind: str, which: int, preempt: Any) -> None:
        """A background task runs: any (a flush, an app's main, an expiry, a grace); or
        time passes (a detached session's resume window: its expiry task closes it unless
        it was resumed meanwhile; or a finished app's grace); or an app's main runs (keep's
        sends hello; fin's sends bye and returns: its session closes once bye is acked)."""
        names = {"any": (), "time": ("_expire_after", "_close_after_grace"),
                 "main": ("_run_app",)}[kind]
        if not self.waiting(*names):
            names = ()
        self.operate(preempt, lambda: self.run_task(which, *names, main=True))

    def settle(self) -> None:
        """Everything runs and every tab reads everything: each tab whose connection
        carries its session has applied every command its session was sent."""
        for _ in range(2000):
            if self.runtime.tasks:
                self.run_task(0)
            elif self.unread():
                self.deliver(self.unread()[0], 1)
            else:
                break
        else:
            raise AssertionError("the model does not settle")
        for tab in self.ready():
            session = self.registry._by_sid.get(tab.sid or "")
            if session is not None:
                assert session.id == tab.state.session_id
                log = self.pushed[session.id]
                assert tab.applied == [(seq, *log[seq]) for seq in sorted(log)], (
                    f"tab {tab.name} applied {len(tab.applied)} of {len(log)} commands")

    # -- invariants, after every step ----------------------------------------------

    @invariant()
    def no_problem(self) -> None:
        """Checks that ran inside the worker's code passed; each handler ran at most once
        per event id and session."""
        assert not self.problems, self.problems[0]
        twice = {key: runs for key, runs in self.runs.items() if len(runs) > 1}
        assert not twice, f"handlers ran more than once: {twice}"

    @invariant()
    def registry_is_consistent(self) -> None:
        by_id, by_sid = self.registry._by_id, self.registry._by_sid
        sid_of, by_user = self.registry._sid_of, self.registry._by_user
        for session_id, session in by_id.items():
            assert session.id == session_id and not session.closed, session
            assert session.lifecycle is not SessionState.NEW, f"{session} never attached"
            assert session_id in by_user.get(session.user.id, ()), session
            if session.lifecycle is SessionState.ATTACHED:
                assert by_sid.get(session.sid or "") is session, session
                assert sid_of.get(session_id) == session.sid, session
            else:
                assert session.sid is None and session_id not in sid_of, session
        for sid, session in by_sid.items():
            assert by_id.get(session.id) is session, f"{sid} carries {session}, not indexed"
            assert session.sid == sid, f"{sid} indexed for {session}, which is on {session.sid}"
        for user_id, ids in by_user.items():
            assert ids and all(by_id[i].user.id == user_id for i in ids), (user_id, ids)
        for session in self.sessions:
            if session.closed:
                assert session.id not in by_id and session.sid is None, session
        for user_id in USERS:
            online = self.presence.is_online(user_id)
            assert online == (user_id in by_user), (
                f"user {user_id} online: {online}, sessions: {by_user.get(user_id)}")

    @invariant()
    def commands_are_sequenced(self) -> None:
        for session in self.sessions:
            log = self.pushed[session.id]
            assert sorted(log) == list(range(1, len(log) + 1)), f"{session.id}: seqs {sorted(log)}"
            assert session._stream.last_seq == len(log)
            nonces = [args["nonce"] for _, args in log.values()]
            assert len(nonces) == len(set(nonces)), f"{session.id}: a command pushed twice"
        for tab in self.tabs.values():
            session_id = tab.state.session_id
            assert len(tab.applied) == tab.state.last_seq, tab
            if session_id in self.by_id:
                log = self.pushed[session_id]
                assert tab.applied == [(seq, *log.get(seq, ())) for seq, _, _ in tab.applied], (
                    f"tab {tab.name} applied {tab.applied}, sent {log}")
                assert [seq for seq, _, _ in tab.applied] == list(
                    range(1, len(tab.applied) + 1))

    @invariant()
    def nothing_is_left_waiting(self) -> None:
        """A finished app's session closes once its commands are acknowledged; a detached
        session has its expiry timer; commands waiting for an attached connection have
        their flush coming."""
        tasks = self.runtime.tasks
        for session in self.registry._by_id.values():
            if session._run.finished and not session.spec.keep_open:
                assert session._stream, f"{session}: its app finished, all acked, still open"
            if session.lifecycle is SessionState.DETACHED:
                generation = session._detach_generation
                assert any(getattr(fn, "__self__", None) is session
                           and fn.__name__ == "_expire_after" and args == (generation,)
                           for fn, args in tasks), f"{session} detached without an expiry timer"
            if session._pending:
                assert session.lifecycle is SessionState.ATTACHED, session
                assert any(getattr(fn, "__self__", None) is session and fn.__name__ == "flush"
                           for fn, _ in tasks), f"{session}: commands waiting, no flush coming"


#: Bounded for ``make test``; ``MODEL_EXAMPLES`` and ``MODEL_STEPS`` run it longer, and
#: ``MODEL_SHRINK=0`` reports the first failing sequence as found (shrinking a long one
#: takes minutes). Derandomized: the same examples on every run.
EXAMPLES = int(os.environ.get("MODEL_EXAMPLES", "300"))
STEPS = int(os.environ.get("MODEL_STEPS", "50"))
PHASES = [Phase.explicit, Phase.generate] + (
    [Phase.shrink] if os.environ.get("MODEL_SHRINK", "1") != "0" else [])
ProtocolModel.TestCase.settings = settings(
    max_examples=EXAMPLES, stateful_step_count=STEPS, deadline=None, derandomize=True,
    database=None, phases=PHASES, suppress_health_check=[HealthCheck.too_slow],
    print_blob=False)
TestProtocolModel = ProtocolModel.TestCase
