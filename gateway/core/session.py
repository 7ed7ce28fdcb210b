"""One live session: lifecycle, command sequencing, inbox and the app's blocking calls.

IO-free: the session talks to its connection through a :class:`Transport` and starts
tasks through a :class:`Runtime`, both passed in, so it runs under eventlet (where
``threading`` is monkey-patched into green primitives), under real threads, and in
unit tests with fakes.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import itertools
import logging
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable
from collections.abc import Iterator
from dataclasses import dataclass
from dataclasses import field
from typing import TYPE_CHECKING
from typing import Any
from typing import Protocol
from typing import cast

from .delivery import Command
from .delivery import CommandStream
from .delivery import EventLedger
from .delivery import TokenBucket
from .delivery import command_size
from .errors import BAD_REQUEST
from .errors import CLOSE_REASONS
from .errors import CLOSED
from .errors import EXPIRED
from .errors import INTERNAL_ERROR
from .errors import KICKED
from .errors import RATE_LIMITED
from .errors import SESSION_CLOSED
from .errors import SLOW_CONSUMER
from .errors import TOO_LARGE
from .errors import UNKNOWN_EVENT
from .errors import GatewayError
from .errors import IllegalTransition
from .errors import ProtocolError
from .errors import ReplayOverflow
from .errors import SessionClosed
from .protocol import EventMessage
from .protocol import failed
from .protocol import ok

if TYPE_CHECKING:
    from .apps import AppSpec

logger = logging.getLogger("gateway.session")

REPLY_EVENTS = frozenset({"input.reply", "buttons.reply"})

#: Set while this thread (or green thread) runs an ``@gateway.on`` handler: it is its
#: connection's reader, which must not block (see :meth:`SessionDriver._refuse_to_block`).
_in_handler = threading.local()


class Transport(Protocol):
    """How a session reaches its connection (a Socket.IO sid)."""

    def emit(self, sid: str, event: str, data: Any) -> None: ...

    def disconnect(self, sid: str, hang_up: bool = False) -> None: ...


class Runtime(Protocol):
    """How a session starts background tasks (green threads or threads), and yields."""

    def spawn(self, fn: Callable[..., Any], *args: Any) -> Any: ...

    def sleep(self, seconds: float) -> None: ...


class SessionState(enum.Enum):
    NEW = "new"  # made, not yet attached to its first connection
    ATTACHED = "attached"  # a live connection carries it
    DETACHED = "detached"  # no connection; waits up to RESUME_SECONDS for one
    CLOSED = "closed"  # finished for good; every blocking call raises SessionClosed


_TRANSITIONS = {
    # NEW -> CLOSED: closed (a logout, a shutdown) before its first connection was bound.
    SessionState.NEW: {SessionState.ATTACHED, SessionState.CLOSED},
    SessionState.ATTACHED: {SessionState.ATTACHED, SessionState.DETACHED, SessionState.CLOSED},
    SessionState.DETACHED: {SessionState.ATTACHED, SessionState.CLOSED},
    SessionState.CLOSED: set(),
}


@dataclass(frozen=True)
class SessionUser:
    id: str
    name: str
    is_admin: bool = False
    auth_epoch: int = 0  # the account's login epoch when the session began (auth.User)

    def to_dict(self) -> dict[str, str]:
        return {"id": self.id, "name": self.name}


@dataclass(frozen=True)
class Event:
    """An event from the browser, as the app's ``receive`` returns it."""

    name: str
    data: Any
    id: int = 0


@dataclass(frozen=True)
class SessionLimits:
    """A session's bounds. Their defaults are declared once, with the ``GATEWAY_*``
    settings (``gateway.settings``): build this with :meth:`from_settings`."""

    resume_seconds: float
    replay_limit: int
    replay_bytes: int
    inbox_limit: int
    event_memory: int
    max_batch: int
    event_rate: float
    event_burst: int
    abuse_limit: int

    @classmethod
    def from_settings(cls, settings: Any) -> SessionLimits:
        """From the gateway's settings (a ``gateway.settings.Settings``, which the core
        does not import)."""
        return cls(
            resume_seconds=settings.RESUME_SECONDS,
            replay_limit=settings.REPLAY_LIMIT,
            replay_bytes=settings.REPLAY_BYTES,
            inbox_limit=settings.INBOX_LIMIT,
            event_memory=settings.EVENT_MEMORY,
            max_batch=settings.MAX_BATCH,
            event_rate=settings.EVENT_RATE,
            event_burst=settings.EVENT_BURST,
            abuse_limit=settings.ABUSE_LIMIT,
        )


def hash_token(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


@dataclass
class _Waiter:
    """An ``ask`` waiting for its reply event."""

    done: bool = False
    value: Any = None


@dataclass
class _AppRun:
    """Whether the session app's main function is still running."""

    started: bool = False
    finished: bool = False
    waiters: dict[str, _Waiter] = field(default_factory=dict)  # request id -> waiter


class SessionDriver:
    """What drives a session, for the hub and the transport: its lifecycle (``attach``,
    ``resume``, ``detach``, ``close``), commands out (``enqueue``, ``flush``,
    ``acknowledge``), events in (``handle``, ``refuse``) and its app's task (``start``).
    Apps see the :class:`Session` API instead."""

    # Thousands live in one worker: no per-instance __dict__ (``state`` is the app's own).
    __slots__ = (
        "id", "_token", "_token_hash", "spec", "app", "user", "info", "state", "topics",
        "watching", "lifecycle", "close_reason", "sid", "limits", "_transport", "_runtime",
        "_on_closed", "_on_topic", "_close_callbacks", "_cond", "_stream", "_ledger",
        "_bucket", "_refused_in_a_row", "_pending", "_flush_scheduled", "_batch_owner",
        "_inbox", "_run", "_requests", "_detach_generation", "_flush_lock", "_handling",
        "__weakref__",
    )

    def __init__(self, spec: AppSpec, user: SessionUser, *, transport: Transport,
                 runtime: Runtime, limits: SessionLimits,
                 info: dict[str, Any] | None = None,
                 on_closed: Callable[[Session], None] | None = None,
                 on_topic: Callable[[Session, str | None, bool], None] | None = None) -> None:
        self.id = secrets.token_urlsafe(12)
        self._token = secrets.token_urlsafe(24)  # handed out once, then only its hash is kept
        self._token_hash = hash_token(self._token)
        self.spec = spec
        self.app = spec.name
        self.user = user
        self.info: dict[str, Any] = dict(info or {}, created_at=time.time())
        self.state: dict[str, Any] = {}  # free for the app's own use
        self.topics: set[str] = set()
        self.watching: set[str | None] = set()  # presence it is told about (None: online)
        self.lifecycle = SessionState.NEW
        self.close_reason: str | None = None
        self.sid: str | None = None  # the connection carrying the session, if attached
        self.limits = limits
        self._transport = transport
        self._runtime = runtime
        self._on_closed = on_closed
        self._on_topic = on_topic
        self._close_callbacks: list[Callable[[Session], Any]] = []
        self._cond = threading.Condition()  # guards everything below
        self._stream = CommandStream(limits.replay_limit, limits.replay_bytes)
        self._ledger = EventLedger(limits.event_memory)
        self._bucket = TokenBucket(limits.event_rate, limits.event_burst)
        self._refused_in_a_row = 0  # refusals since the bucket was last full (abuse limit)
        self._pending: list[Command] = []  # sent, not yet emitted to the connection
        self._flush_scheduled = False
        self._batch_owner: int | None = None  # thread that will flush at the end of a handler
        self._inbox: deque[Event] | None = None  # made on first use: most apps never need one
        self._run = _AppRun()
        self._requests = itertools.count(1)
        self._detach_generation = 0
        self._flush_lock = threading.Lock()  # keeps emits of this session in seq order
        self._handling = threading.Lock()  # one inbound event at a time

    def __repr__(self) -> str:
        state = self.lifecycle.value
        return f"<Session {self.id} app={self.app} user={self.user.name} {state}>"

    # -- lifecycle -------------------------------------------------------

    @property
    def closed(self) -> bool:
        return self.lifecycle is SessionState.CLOSED

    def _transition(self, to: SessionState) -> None:
        if to not in _TRANSITIONS[self.lifecycle]:
            current = self.lifecycle.value
            raise IllegalTransition(
                f"Session {self.id} cannot go from {current} to {to.value}."
            )
        self.lifecycle = to

    def verify_token(self, token: str) -> bool:
        """Constant-time check of a resume token."""
        return hmac.compare_digest(self._token_hash, hash_token(token))

    def _welcome(self, token: str, resumed: bool, reason: str | None) -> dict[str, Any]:
        return {
            "session": self.id, "token": token, "app": self.app,
            "user": self.user.to_dict(), "resumed": resumed, "reason": reason,
            "last_seq": self._stream.acked if resumed else 0,
            # The most events a client may have waiting for their ack: results older
            # than the newest this many are forgotten (a resend is not run again).
            "event_memory": self.limits.event_memory,
        }

    def attach(self, sid: str, reason: str | None = None) -> None:
        """Bind a new session to its first connection and greet it, then send it what was
        sent to the session before (a send may land between the session's registration and
        this call). Raises SessionClosed if the session was closed in between."""
        with self._flush_lock:
            with self._cond:
                if self.closed:
                    raise SessionClosed(self.close_reason or CLOSED)
                self._transition(SessionState.ATTACHED)
                self.sid = sid
                early = self._stream.replay_after(0)  # nothing acked yet: every command
                self.info["attached_at"] = time.time()
            self._transport.emit(sid, "session", self._welcome(self._token, False, reason))
            self._emit_batches(sid, early)

    def _emit_batches(self, sid: str, commands: list[Command]) -> None:
        for start in range(0, len(commands), self.limits.max_batch):
            self._transport.emit(sid, "commands", commands[start:start + self.limits.max_batch])

    def resume(self, sid: str, token: str, last_seq: int) -> str | None:
        """Move the session to connection ``sid`` and replay what follows ``last_seq``.

        Returns the previous connection's sid, if it was still attached (a reload
        racing its own disconnect): the caller drops that connection.
        """
        with self._flush_lock:
            with self._cond:
                if self.closed:
                    raise SessionClosed(self.close_reason or CLOSED)
                if not self._stream.can_resume_from(last_seq):
                    raise ReplayOverflow(f"Commands after seq {last_seq} are gone.")
                old_sid = self.sid
                self._transition(SessionState.ATTACHED)
                self.sid = sid
                self._detach_generation += 1  # cancels the expiry timer
                self._cond.notify_all()
                replay = self._stream.replay_after(last_seq)
                self._pending = []  # all of them are in the replay
                self._flush_scheduled = False
                self.info["attached_at"] = time.time()
                self.info["resumes"] = self.info.get("resumes", 0) + 1
                # Its app finished and this resume acknowledges everything it sent.
                finished = self._run.finished and not self.spec.keep_open and not replay
            self._transport.emit(sid, "session", self._welcome(token, True, None))
            self._emit_batches(sid, replay)
        if finished:
            self.close(CLOSED, "The app has finished.")
        return old_sid if old_sid != sid else None

    def detach(self, sid: str) -> bool:
        """The connection ``sid`` went away: keep the session for the resume window."""
        with self._cond:
            if self.closed or self.sid != sid:
                return False
            self._transition(SessionState.DETACHED)
            self.sid = None
            self._pending = []  # kept in the stream for the replay
            self._detach_generation += 1
            generation = self._detach_generation
            self.info["detached_at"] = time.time()
        self._runtime.spawn(self._expire_after, generation)
        return True

    def _expire_after(self, generation: int) -> None:
        def resumed_or_closed() -> bool:
            return not (self.lifecycle is SessionState.DETACHED
                        and self._detach_generation == generation)

        if self._linger(resumed_or_closed, self.limits.resume_seconds):
            return
        # Checked again when closing, under the same lock: a resume that completed after
        # the wait timed out keeps its session.
        self.close(EXPIRED, "The session was disconnected for too long.",
                   unless=resumed_or_closed)

    def _linger(self, done: Callable[[], bool], seconds: float) -> bool:
        """Wait up to ``seconds`` for ``done()`` or the close; True unless it timed out."""
        deadline = time.monotonic() + seconds
        with self._cond:
            while not (self.closed or done()):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(remaining)
        return True

    def close(self, reason: str = CLOSED, message: str | None = None, *,
              hang_up: bool = False, unless: Callable[[], bool] | None = None) -> None:
        """End the session: tell the client why, wake the app, run ``on_close``.

        The client is expected to hang up; if it does not, the connection is closed
        ``GATEWAY_HANDSHAKE_SECONDS`` later. ``hang_up`` (for a client that floods) ends
        it at once instead: nothing more it sends is read. Only then, because a hang-up
        with the client's data unread makes TCP reset the connection, which can lose the
        ``close`` the client has yet to read. ``unless()``, checked under the session's
        lock, keeps the session open when true.
        """
        if reason not in CLOSE_REASONS:
            raise ValueError(f"Close reason {reason!r} is not one of protocol v1's: "
                             f"{', '.join(sorted(CLOSE_REASONS))}.")
        with self._flush_lock:
            with self._cond:
                if self.closed or (unless is not None and unless()):
                    return
                self._transition(SessionState.CLOSED)
                self.close_reason = reason
                sid, self.sid = self.sid, None
                pending, self._pending = self._pending, []
                self._inbox = None
                self._cond.notify_all()
            if sid is not None:
                self._emit_batches(sid, pending)
                self._transport.emit(sid, "close", {"reason": reason, "message": message})
        # Out of every index first, so nothing finds a closed session while the
        # connection is dropped and the app's callbacks (which may take a while) run.
        if self._on_closed is not None:
            self._on_closed(cast(Session, self))
        if sid is not None:
            self._transport.disconnect(sid, hang_up=hang_up)
        logger.info("session %s closed: %s", self.id, reason)
        for callback in self._close_callbacks:
            try:
                callback(cast(Session, self))
            except Exception:
                logger.exception("on_close callback of session %s failed", self.id)

    # -- commands to the browser ----------------------------------------

    def enqueue(self, name: str, args: dict[str, Any]) -> int:
        """Like :meth:`send`, but leave the flush to the caller (who must call :meth:`flush`):
        a send to many sessions queues to each, then flushes each, with no task per session."""
        return self._push(name, args, schedule=False)

    def _push(self, name: str, payload: dict[str, Any], schedule: bool) -> int:
        if not isinstance(name, str) or not name:
            raise TypeError("A command name must be a non-empty string.")
        try:
            size = command_size(name, payload)
        except ValueError:
            raise ValueError(f"Command {name!r}: its args must be JSON, without NaN or "
                             "Infinity (a browser cannot parse them).") from None
        if size > self.limits.replay_bytes:
            raise GatewayError(f"Command {name!r} is {size} bytes, more than the "
                               f"{self.limits.replay_bytes} a session may keep "
                               "(GATEWAY_REPLAY_BYTES).", code=TOO_LARGE)
        flush_now = False
        may_schedule, schedule = schedule, False
        with self._cond:
            if self.closed:
                raise SessionClosed(self.close_reason or CLOSED)
            try:
                command = self._stream.push(name, payload, size)
            except ReplayOverflow:
                overflow = True
            else:
                overflow = False
                if self.sid is not None:
                    self._pending.append(command)
                    if len(self._pending) >= self.limits.max_batch:
                        flush_now = True
                    elif may_schedule and not self._flush_scheduled \
                            and self._batch_owner != threading.get_ident():
                        self._flush_scheduled = schedule = True
        if overflow:
            logger.warning("session %s is a slow consumer: closing it", self.id)
            self.close(SLOW_CONSUMER, "Too many commands were not acknowledged.")
            raise SessionClosed(SLOW_CONSUMER)
        if flush_now:
            self.flush()
            # A full batch went out: let other connections have their turn before this
            # task produces the next (under eventlet a loop of sends never yields).
            self._runtime.sleep(0)
        elif schedule:
            # Runs once this task yields, so commands produced together share a message.
            self._runtime.spawn(self.flush)
        seq: int = command["seq"]
        return seq

    def flush(self) -> None:
        """Emit the commands waiting for the connection, in ``commands`` messages of at
        most ``max_batch`` (more than that may be waiting: sends of other threads can land
        between the one that filled a batch and its flush)."""
        with self._flush_lock:
            with self._cond:
                batch, self._pending = self._pending, []
                self._flush_scheduled = False
                sid = self.sid
            if sid is not None:
                self._emit_batches(sid, batch)

    def acknowledge(self, seq: int) -> None:
        """The client applied every command up to ``seq``."""
        with self._cond:
            if self.closed:
                return
            self._stream.ack(seq)
            finished = self._run.finished and not self.spec.keep_open and not self._stream
        if finished:
            self.close(CLOSED, "The app has finished.")

    @property
    def unacked(self) -> int:
        """Commands kept for replay: sent but not acknowledged."""
        with self._cond:
            return len(self._stream)

    @property
    def last_seq(self) -> int:
        with self._cond:
            return self._stream.last_seq

    # -- events from the browser ----------------------------------------

    def handle(self, event: EventMessage) -> dict[str, Any]:
        """Handle one inbound event and return its ack; one at a time, in arrival order."""
        with self._handling:
            if self.closed:
                return failed(SESSION_CLOSED, "The session is closed.")
            try:
                recalled = self._ledger.recall(event.id, event.digest)
            except ProtocolError as exc:
                return failed(exc.code, exc.message)
            if recalled is not None:
                return recalled  # a resent event: answer again, do not run again
            if not self._bucket.take():
                return self._rate_limited()
            if self._bucket.full():
                # Back within its rate for a whole burst's time: the refusals so far were
                # a burst, not a flood. (An event let through now and then while the
                # bucket trickles back does not count: a flood keeps it empty.)
                self._refused_in_a_row = 0
            self._batch_owner = threading.get_ident()
            _in_handler.active = True
            try:
                ack, consumed = self._dispatch(event)
            finally:
                _in_handler.active = False
                self._batch_owner = None
                self.flush()  # the commands a handler sent go out before its ack
            if consumed:  # it ran (whatever its outcome): a resend is answered, not run
                self._ledger.record(event.id, ack, event.digest)
            return ack

    def refuse(self, code: str, message: str) -> dict[str, Any]:
        """Answer an event or ack the client got wrong (malformed, unknown): it counts
        against the event rate like any event, so a flood of them meets the rate limit
        and then the abuse limit instead of costing the worker a log line each."""
        with self._handling:
            if self.closed:
                return failed(SESSION_CLOSED, "The session is closed.")
            if not self._bucket.take():
                return self._rate_limited()
            return failed(code, message)

    def _rate_limited(self) -> dict[str, Any]:
        self._refused_in_a_row += 1
        if self._refused_in_a_row == 1:  # once per burst, not once per event
            logger.warning("session %s of %s is over its event rate", self.id, self.user.name)
        if self._refused_in_a_row >= self.limits.abuse_limit:
            logger.warning("session %s of %s kept flooding: ending it", self.id, self.user.name)
            self.close(KICKED, "Too many events: the session was ended.", hang_up=True)
        return failed(RATE_LIMITED, "Too many events; slow down.")

    def _dispatch(self, event: EventMessage) -> tuple[dict[str, Any], bool]:
        """The ack of ``event``, and whether it was consumed (run by its handler, taken
        into the inbox, or answered for good): a resend of a consumed event is answered
        from the ledger; one that was not (the inbox was full) may be tried again."""
        if event.name in REPLY_EVENTS:
            return self._reply(event), True
        handler = self.spec.handlers.get(event.name)
        if handler is not None:
            try:
                return ok(handler(cast(Session, self), event.data)), True
            except SessionClosed as exc:  # e.g. a send to another, closed, session
                return failed(SESSION_CLOSED, exc.message), True
            except GatewayError as exc:
                return failed(exc.code, exc.message), True
            except Exception:
                logger.exception("handler %r of app %r failed in session %s",
                                 event.name, self.app, self.id)
                return failed(INTERNAL_ERROR, "The event handler failed."), True
        with self._cond:
            # Events no handler takes go to the main function's inbox, unless main is
            # only a set-up hook (keep_open) or is not running.
            if self.spec.keep_open or not self._run.started or self._run.finished:
                return failed(UNKNOWN_EVENT,
                              f"The app {self.app!r} has no event {event.name!r}."), True
            if self._inbox is None:
                self._inbox = deque()
            if len(self._inbox) >= self.limits.inbox_limit:
                return failed(RATE_LIMITED, "The app is not keeping up with events."), False
            self._inbox.append(Event(event.name, event.data, event.id))
            self._cond.notify_all()
        return ok(None), True

    def _reply(self, event: EventMessage) -> dict[str, Any]:
        data = event.data
        if not isinstance(data, dict) or not isinstance(data.get("request"), str):
            return failed(BAD_REQUEST, f'{event.name} needs {{"request": ID, "value": ...}}.')
        with self._cond:
            waiter = self._run.waiters.pop(data["request"], None)
            if waiter is None:
                return failed(BAD_REQUEST,
                              f"No question is waiting for request {data['request']!r}.")
            waiter.done, waiter.value = True, data.get("value")
            self._cond.notify_all()
        return ok(None)

    # -- waiting, for the app's blocking calls ----------------------------

    @staticmethod
    def _refuse_to_block(call: str, timeout: float | None) -> None:
        """An event handler runs in its connection's reader (events are handled in order,
        one at a time): a blocking call there would freeze the connection, and an ``ask``
        would wait for a reply that reader can never read. Refused at once instead."""
        if getattr(_in_handler, "active", False) and (timeout is None or timeout > 0):
            raise RuntimeError(
                f"session.{call}() blocks, and an @gateway.on handler must not: it runs in "
                "its connection's reader. Block in the app's main function instead.")

    def _wait(self, ready: Callable[[], bool], timeout: float | None) -> bool:
        """Wait until ``ready()``; raise SessionClosed if the session closes first."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while True:
                if ready():
                    return True
                if self.closed:
                    raise SessionClosed(self.close_reason or CLOSED)
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self._cond.wait(remaining)

    # -- running the app -------------------------------------------------

    def start(self, wrap: Callable[[Callable[[], None]], Callable[[], None]] | None = None) -> None:
        """Run the app's main function as a background task (``wrap`` adds context)."""
        if self.spec.main is None:
            return
        with self._cond:
            self._run.started = True
        task = self._run_app if wrap is None else wrap(self._run_app)
        self._runtime.spawn(task)

    def _run_app(self) -> None:
        try:
            assert self.spec.main is not None
            self.spec.main(cast(Session, self))
        except SessionClosed:
            pass
        except Exception:
            logger.exception("app %r failed in session %s", self.app, self.id)
            try:
                self._push("error", {"code": INTERNAL_ERROR, "message":
                                     "The app stopped because of an internal error."},
                           schedule=True)
            except SessionClosed:
                pass
            self.close(CLOSED, "The app stopped because of an internal error.")
            return
        self._finished()

    def _finished(self) -> None:
        with self._cond:
            self._run.finished = True
            if self.closed or self.spec.keep_open:
                return
            done = not self._stream
        if done:
            self.close(CLOSED, "The app has finished.")
        else:
            # Wait for the client to acknowledge the last commands, but not forever.
            self._runtime.spawn(self._close_after_grace)

    def _close_after_grace(self) -> None:
        if not self._linger(lambda: False, self.limits.resume_seconds):
            self.close(CLOSED, "The app has finished.")


class Session(SessionDriver):
    """A browser tab's server-side session, as its app sees it: ``send``, ``ask``,
    ``receive``/``events``, ``sleep``, topics and presence, ``state`` (the app's own
    dict), ``on_close``; ``id``, ``user``, ``app`` and ``info`` to read. Owned by a
    :class:`~gateway.core.registry.SessionRegistry`; what the hub calls is in
    :class:`SessionDriver`."""

    __slots__ = ()

    def on_close(self, callback: Callable[[Session], Any]) -> Callable[[Session], Any]:
        """Register ``callback(session)`` to run once when the session closes."""
        self._close_callbacks.append(callback)
        return callback

    # -- commands to the browser ------------------------------------------

    def send(self, name: str, args: dict[str, Any] | None = None, /, **kwargs: Any) -> int:
        """Send the command ``name`` with ``args`` (or keyword arguments); return its seq."""
        return self._push(name, dict(args or {}, **kwargs), schedule=True)

    # -- events from the browser, and replies -----------------------------

    def receive(self, timeout: float | None = None) -> Event | None:
        """Next event for the app; None after ``timeout`` seconds; SessionClosed if closed."""
        self._refuse_to_block("receive", timeout)
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:  # checked and taken under one hold: a close cannot come between
            while True:
                if self._inbox:
                    return self._inbox.popleft()
                if self.closed:
                    raise SessionClosed(self.close_reason or CLOSED)
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return None
                self._cond.wait(remaining)

    def events(self) -> Iterator[Event]:
        """Every event, as it comes, until the session closes."""
        while True:
            event = self.receive()
            if event is not None:
                yield event

    def ask(self, command: str, args: dict[str, Any] | None = None, /, *,
            timeout: float | None = None, **kwargs: Any) -> Any:
        """Send an ``input``/``buttons`` command and wait for the browser's reply value."""
        self._refuse_to_block("ask", timeout)
        request = f"r{next(self._requests)}"
        waiter = _Waiter()
        with self._cond:
            self._run.waiters[request] = waiter
        try:
            self.send(command, dict(args or {}, **kwargs, request=request))
            if not self._wait(lambda: waiter.done, timeout):
                raise TimeoutError(f"No reply to {command!r} within {timeout} s.")
        finally:
            with self._cond:
                self._run.waiters.pop(request, None)
        return waiter.value

    def sleep(self, seconds: float) -> None:
        """Wait ``seconds``; wake early with SessionClosed if the session closes."""
        self._refuse_to_block("sleep", seconds)
        self._wait(lambda: False, seconds)

    # -- topics and presence ----------------------------------------------

    def join(self, topic: str, *, presence: bool = False) -> None:
        """Receive what is sent to ``topic``.

        With ``presence=True`` the session is also sent a ``presence`` command
        ``{"user": {"id", "name"}, "topic", "present"}`` whenever a user joins or
        leaves ``topic`` anywhere in the cluster.
        """
        with self._cond:
            if self.closed:
                raise SessionClosed(self.close_reason or CLOSED)
            self.topics.add(topic)
            if presence:
                self.watching.add(topic)
        if self._on_topic is not None:
            self._on_topic(self, topic, True)

    def watch_presence(self) -> None:
        """Be sent ``presence`` (with ``topic`` null) when a user comes online or goes offline."""
        with self._cond:
            if self.closed:
                raise SessionClosed(self.close_reason or CLOSED)
            self.watching.add(None)
        if self._on_topic is not None:
            self._on_topic(self, None, True)  # None: the cluster itself, not a topic

    def leave(self, topic: str) -> None:
        with self._cond:
            self.topics.discard(topic)
            self.watching.discard(topic)
        if self._on_topic is not None:
            self._on_topic(self, topic, False)
