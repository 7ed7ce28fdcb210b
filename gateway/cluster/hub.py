"""The gateway's runtime for one Flask app: sessions, apps, bus and connections together."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from ..core.apps import AppCatalog
from .bus import LocalBus
from .bus import RedisBus
from ..core.targets import Target
from .bus import close_message
from .bus import send_message
from ..core.delivery import command_size
from ..core.errors import BAD_REQUEST
from ..core.errors import BusUnavailable
from ..core.errors import SERVER_SHUTDOWN
from ..core.errors import TOO_MANY_SESSIONS
from ..core.errors import UNKNOWN_APP
from ..core.errors import GatewayError
from ..core.errors import ProtocolError
from ..core.errors import ReplayOverflow
from ..core.errors import SessionClosed
from ..metrics import GatewayMetrics
from ..settings import Settings
from ..core.presence import Presence
from ..core.presence import PresenceChange
from ..core.protocol import ConnectRequest
from ..core.protocol import failed
from ..core.protocol import parse_ack
from ..core.protocol import parse_connect
from ..core.protocol import parse_event
from ..core.registry import SessionRegistry
from ..core.session import Runtime
from ..core.session import Session
from ..core.session import SessionLimits
from ..core.session import SessionUser
from ..core.session import Transport
from ..core.streams import UserStreams

logger = logging.getLogger("gateway")


class Refused(GatewayError):
    """A connection the gateway will not accept; ``code`` is the protocol's refusal code."""


class Hub:
    """Owns this worker's :class:`SessionRegistry` and connects it to Socket.IO and the bus."""

    def __init__(self, settings: Settings, catalog: AppCatalog, *,
                 transport: Transport, runtime: Runtime,
                 task_context: Callable[[Callable[[], None]], Callable[[], None]] | None = None
                 ) -> None:
        self.settings = settings
        self.limits = SessionLimits.from_settings(settings)
        self.catalog = catalog
        self.registry = SessionRegistry()
        self.transport = transport
        self.runtime = runtime
        self.bus: LocalBus | RedisBus
        if settings.MESSAGE_QUEUE:
            self.bus = RedisBus(settings.MESSAGE_QUEUE, channel=settings.BUS_CHANNEL,
                                heartbeat=settings.PRESENCE_SECONDS)
            self.worker_id = self.bus.worker_id
        else:
            self.bus = LocalBus()
            self.worker_id = "local"
        self.presence = Presence(self.worker_id)
        self.presence.subscribe(self._tell_watchers)
        # Extra consumers of sends (the SSE user streams): fn(target, name, args).
        self.send_hooks: list[Callable[[Target, str, dict[str, Any]], None]] = []
        self.close_hooks: list[Callable[[Target, str], None]] = []
        self.streams = UserStreams(settings.REPLAY_LIMIT, settings.RESUME_SECONDS)
        self.send_hooks.append(self.streams.on_send)
        self.close_hooks.append(self.streams.on_close)
        # What other workers may ask this one for (hub.gather): name -> fn() -> rows.
        self.gatherers: dict[str, Callable[[], list[dict[str, Any]]]] = {}
        self.metrics = GatewayMetrics(self)
        self.draining = False  # set at shutdown: no new sessions
        self._task_context = task_context  # gives background tasks an app context
        self._periodic: list[tuple[str, float, Callable[[], None]]] = []
        self._stopping = threading.Event()
        self._started = False
        self._start_lock = threading.Lock()
        self.every("user streams expiry", 1.0, self.streams.expire)

    # -- background work ---------------------------------------------------

    def every(self, name: str, interval: float, fn: Callable[[], None]) -> None:
        """Run ``fn`` every ``interval`` seconds (in an app context) once started."""
        self._periodic.append((name, interval, fn))
        if self._started:
            self._spawn_periodic(name, interval, fn)

    @property
    def started(self) -> bool:
        return self._started

    def start(self) -> None:
        """Start the bus and the periodic tasks (idempotent; never after shutdown)."""
        with self._start_lock:
            if self._started or self.draining:
                return
            self._started = True
        self._stopping.clear()
        self.bus.start(self._deliver_remote, self._presence_snapshot, self._spawn)
        for name, interval, fn in self._periodic:
            self._spawn_periodic(name, interval, fn)

    def _spawn(self, fn: Callable[[], None]) -> None:
        self.runtime.spawn(self._task_context(fn) if self._task_context else fn)

    def _spawn_periodic(self, name: str, interval: float, fn: Callable[[], None]) -> None:
        def loop() -> None:
            while not self._stopping.wait(interval):
                try:
                    fn()
                except Exception:  # a failing check must not end the loop
                    logger.exception("periodic task %s failed", name)
        self._spawn(loop)

    def stop(self) -> None:
        """Stop the periodic tasks and the bus."""
        self._stopping.set()
        self._started = False
        self.bus.stop()

    # -- connections -----------------------------------------------------

    def connect(self, sid: str, user: SessionUser, auth: Any,
                info: dict[str, Any] | None = None) -> Session:
        """Open or resume the session a new connection asks for; raise Refused if not."""
        if self.draining:
            raise self.refuse(SERVER_SHUTDOWN, "The server is shutting down; try again shortly.")
        try:
            request = parse_connect(auth)
        except ProtocolError as exc:
            raise self.refuse(BAD_REQUEST, exc.message) from None
        spec = self.catalog.get(request.app)
        if spec is None:
            raise self.refuse(UNKNOWN_APP, f"There is no app named {request.app!r}.")
        reason = None
        if request.resume is not None:
            resumed, reason = self._resume(sid, user, request)
            if resumed is not None:
                self.metrics.connections.labels("resumed").inc()
                return resumed
            self.metrics.resume_failures.labels(reason).inc()
        if len(self.registry) >= self.settings.MAX_SESSIONS:
            raise self.refuse(TOO_MANY_SESSIONS, "This server is full; try again shortly.")
        if self.registry.count_for_user(user.id) >= self.settings.MAX_SESSIONS_PER_USER:
            raise self.refuse(
                TOO_MANY_SESSIONS,
                f"You already have {self.settings.MAX_SESSIONS_PER_USER} sessions open; "
                "close one first.",
            )
        session = Session(spec, user, transport=self.transport, runtime=self.runtime,
                          limits=self.limits, info=info, on_closed=self._closed,
                          on_topic=self._on_topic)
        self.metrics.connections.labels("new").inc()
        first_here = self.registry.add(session, sid)
        session.attach(sid, reason=reason)
        if first_here:
            self._presence_changed(user, None, True)
        logger.info("session %s opened: app=%s user=%s sid=%s%s", session.id, spec.name,
                    user.name, sid, f" (resume refused: {reason})" if reason else "")
        session.start(self._task_context)
        return session

    def refuse(self, code: str, message: str) -> Refused:
        """Count a refused connection and return the error to raise."""
        self.metrics.refusals.labels(code).inc()
        return Refused(message, code=code)

    def _closed(self, session: Session) -> None:
        for topic in self.registry.remove(session):
            self._presence_changed(session.user, topic, False)
        self.metrics.closes.labels(session.close_reason or "closed").inc()
        self.metrics.closed_commands += session.last_seq

    def _resume(self, sid: str, user: SessionUser,
                request: ConnectRequest) -> tuple[Session | None, str | None]:
        assert request.resume is not None
        wanted = request.resume
        session = self.registry.get(wanted.session)
        if session is None:
            tomb = self.registry.tombstone(wanted.session)
            if tomb is None:
                return None, "unknown"
            if tomb[0] != user.id:
                return None, "forbidden"
            return None, "replay_overflow" if tomb[1] == "slow_consumer" else "expired"
        if session.user.id != user.id or session.app != request.app \
                or not session.verify_token(wanted.token):
            logger.warning("resume of session %s refused for user %s: forbidden",
                           wanted.session, user.name)
            return None, "forbidden"
        try:
            old_sid = session.resume(sid, wanted.token, wanted.last_seq)
        except SessionClosed:
            return None, "expired"
        except ReplayOverflow:
            session.close("slow_consumer", "Commands were lost; starting a new session.")
            return None, "replay_overflow"
        self.registry.rebind(session, old_sid, sid)
        if old_sid is not None:
            # Still attached elsewhere: a reload racing its own disconnect, or a duplicated
            # tab (sessionStorage is copied). Tell the old connection, so a live duplicate
            # stops instead of resuming back and the two tabs taking turns.
            self.transport.emit(old_sid, "close", {
                "reason": "kicked", "message": "This session was resumed in another tab."})
            self.transport.disconnect(old_sid)
        logger.info("session %s resumed: sid=%s last_seq=%d", session.id, sid, wanted.last_seq)
        return session, None

    def disconnect(self, sid: str) -> None:
        """Connection ``sid`` is gone: detach its session for the resume window."""
        session = self.registry.unbind(sid)
        if session is not None and session.detach(sid):
            logger.info("session %s detached: sid=%s", session.id, sid)

    def event(self, sid: str, message: Any) -> dict[str, Any]:
        """Handle an ``event`` message and return its ack payload."""
        session = self.registry.by_sid(sid)
        if session is None:
            return failed("session_closed", "This connection has no open session.")
        started = time.perf_counter()
        try:
            ack = session.handle(parse_event(message, self.settings.MAX_EVENT_BYTES))
        except ProtocolError as exc:
            ack = session.refuse(exc.code, exc.message)
        self.metrics.event_seconds.observe(time.perf_counter() - started)
        self.metrics.events.labels("ok" if ack["ok"] else ack["error"]["code"]).inc()
        return ack

    def ack(self, sid: str, message: Any) -> None:
        """Handle a cumulative ``ack``; a malformed one counts against the event rate."""
        session = self.registry.by_sid(sid)
        if session is None:
            return
        try:
            session.acknowledge(parse_ack(message))
        except ProtocolError as exc:
            logger.info("session %s sent a bad ack: %s", session.id, exc.message)
            session.refuse(exc.code, exc.message)

    def malformed(self, sid: str, message: str = "Malformed message.") -> dict[str, Any]:
        """Connection ``sid`` sent something protocol v1 has no place for; its session
        (if any) counts it against the event rate, and so the abuse limit."""
        session = self.registry.by_sid(sid)
        if session is None:
            return failed(SESSION_CLOSED, "This connection has no open session.")
        return session.refuse(BAD_REQUEST, message)

    def _on_topic(self, session: Session, topic: str | None, joined: bool) -> None:
        if topic is None:  # watch_presence: the cluster's comings and goings
            self.registry.watch_online(session)
            return
        changed = (self.registry.join if joined else self.registry.leave)(session, topic)
        if changed:
            self._presence_changed(session.user, topic, joined)

    # -- presence ------------------------------------------------------------

    def _presence_changed(self, user: SessionUser, topic: str | None, present: bool) -> None:
        """This worker's presence changed: update the mirror and tell the other workers."""
        message = self.presence.local_change(user.to_dict(), topic, present)
        if self.bus.healthy:  # otherwise the next heartbeat's snapshot carries it
            try:
                self.bus.publish(message)
            except BusUnavailable:
                pass

    def _presence_snapshot(self) -> dict[str, Any]:
        return self.presence.snapshot_message(self.registry.presence())

    def _tell_watchers(self, change: PresenceChange) -> None:
        """Send ``presence`` to this worker's sessions that watch where ``change`` happened."""
        # Indexed both ways: never a scan of every session (a change comes with each
        # first connection of a user).
        sessions = (self.registry.online_watchers() if change.topic is None
                    else self.registry.in_topic(change.topic))
        watching = [s for s in sessions if change.topic in s.watching]
        if watching:
            self._send_to(watching, "presence", change.to_dict())

    # -- sends and control ------------------------------------------------

    def send(self, target: Target, name: str, args: dict[str, Any] | None = None) -> int:
        """Send a command to every session ``target`` names, on every worker.

        Returns how many sessions of this worker it reached. Raises BusUnavailable
        (and sends nothing) when other workers may hold such sessions and the bus is
        down. Raises ``ValueError`` when ``args`` is not JSON (NaN, Infinity): nothing
        is sent then either.
        """
        message = send_message(target, name, args)
        try:
            command_size(name, message["args"])
        except ValueError:
            raise ValueError(f"Command {name!r}: its args must be JSON, without NaN or "
                             "Infinity (a browser cannot parse them).") from None
        return self._dispatch(message)

    def close_user(self, user_id: str | int, reason: str, message: str) -> int:
        """Close every session of the user with this id with ``reason``, everywhere."""
        return self._dispatch(close_message(Target.of(user=user_id), reason, message))

    def kick(self, session_id: str, message: str = "An administrator ended the session.") -> int:
        """Close one session with reason ``kicked``, wherever it lives."""
        return self._dispatch(close_message(Target.of(session=session_id), "kicked", message))

    def _dispatch(self, message: dict[str, Any]) -> int:
        target = Target.from_dict(message["to"])
        if target.kind == "session" and self.registry.get(target.value or "") is not None:
            return self.deliver(message)  # session-local: never through Redis
        self.bus.publish(message)  # first, so a failed publish sends nothing anywhere
        self.metrics.bus_messages.labels("published", message["type"]).inc()
        return self.deliver(message)

    def gather(self, what: str, timeout: float = 1.0) -> list[dict[str, Any]]:
        """Rows of ``what`` (a registered gatherer) from every worker of the cluster."""
        rows = list(self.gatherers[what]())
        if isinstance(self.bus, RedisBus):
            others = set(self.presence.workers()) - {self.worker_id}
            rows += self.bus.gather(what, others, timeout)
        return rows

    def _deliver_remote(self, message: dict[str, Any]) -> None:
        """A message another worker (or an Emitter) published."""
        kind = message.get("type")
        if kind in ("send", "close", "presence", "gather"):
            self.metrics.bus_messages.labels("received", kind).inc()
        if kind == "gather":
            gatherer = self.gatherers.get(message.get("what", ""))
            if gatherer is not None and isinstance(self.bus, RedisBus):
                self.bus.answer(message, gatherer())
        elif kind == "presence":
            self.presence.apply_change(message)
        elif kind == "presence.snapshots":
            alive = {self.worker_id}
            for snapshot in message["snapshots"]:
                if snapshot.get("worker") != self.worker_id:
                    self.presence.apply_snapshot(snapshot)
                    alive.add(snapshot.get("worker"))
            self.presence.retain_workers(alive)
        else:
            self.deliver(message)

    def resolve(self, target: Target) -> list[Session]:
        """This worker's sessions that ``target`` names."""
        if target.kind == "session":
            session = self.registry.get(target.value or "")
            return [session] if session is not None else []
        if target.kind == "user":  # an id: never matched against names
            return self.registry.for_user(target.value or "")
        if target.kind == "user_name":  # a name: never matched against ids
            return self.registry.for_user_name(target.value or "")
        if target.kind == "topic":
            return self.registry.in_topic(target.value or "")
        if target.kind == "everyone":
            return self.registry.all()
        return []

    def deliver(self, message: dict[str, Any]) -> int:
        """Carry out a send or close on this worker's sessions; return how many it reached."""
        target = Target.from_dict(message["to"])
        sessions = self.resolve(target)
        if message["type"] == "send":
            for hook in self.send_hooks:
                hook(target, message["name"], message["args"])
            return self._send_to(sessions, message["name"], message["args"])
        if message["type"] == "close":
            for close_hook in self.close_hooks:
                close_hook(target, message["reason"])
            for session in sessions:
                session.close(message["reason"], message.get("message"))
            return len(sessions)
        logger.warning("unknown bus message type %r", message.get("type"))
        return 0

    @staticmethod
    def _send_to(sessions: list[Session], name: str, args: dict[str, Any]) -> int:
        """Queue the command to every session, then flush each: no task per session."""
        reached = []
        for session in sessions:
            try:
                session.enqueue(name, args)
            except SessionClosed:
                continue
            except (ValueError, TypeError, GatewayError) as exc:
                # Not JSON, or too large: refused whole (a local send was checked before;
                # this is one from the bus).
                logger.warning("command %r from the bus not sent: %s", name, exc)
                return 0
            reached.append(session)
        for session in reached:
            session.flush()
        return len(reached)

    def shutdown(self, reason: str = "server_shutdown") -> int:
        """Refuse new sessions and close every session (their on_close callbacks run)."""
        self.draining = True
        sessions = self.registry.all()
        for session in sessions:
            session.close(reason, "The server is shutting down.")
        self.streams.on_close(Target("everyone"), reason)
        self.stop()
        logger.info("shutdown: %d session(s) closed", len(sessions))
        return len(sessions)
