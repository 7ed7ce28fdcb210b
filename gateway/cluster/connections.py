"""Where a connection becomes a session: opening, resuming and detaching sessions, and
the events and acks of their connections."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from ..core.apps import AppCatalog
from ..core.errors import BAD_REQUEST
from ..core.errors import CLOSED
from ..core.errors import EXPIRED
from ..core.errors import FORBIDDEN
from ..core.errors import KICKED
from ..core.errors import REPLAY_OVERFLOW
from ..core.errors import SERVER_SHUTDOWN
from ..core.errors import SESSION_CLOSED
from ..core.errors import SLOW_CONSUMER
from ..core.errors import TOO_MANY_SESSIONS
from ..core.errors import UNAUTHORIZED
from ..core.errors import UNKNOWN
from ..core.errors import UNKNOWN_APP
from ..core.errors import GatewayError
from ..core.errors import ProtocolError
from ..core.errors import ReplayOverflow
from ..core.errors import SessionClosed
from ..core.protocol import ConnectRequest
from ..core.protocol import failed
from ..core.protocol import parse_ack
from ..core.protocol import parse_connect
from ..core.protocol import parse_event
from ..core.registry import LimitReached
from ..core.registry import SessionRegistry
from ..core.session import Runtime
from ..core.session import Session
from ..core.session import SessionLimits
from ..core.session import SessionUser
from ..core.session import Transport
from ..metrics import GatewayMetrics
from ..settings import Settings
from .scheduler import TaskContext

logger = logging.getLogger("gateway")

#: ``fn(user, topic)``: this worker's presence of ``user`` in ``topic`` (None: online) may
#: have changed; the registry says how it is now.
PresenceChanged = Callable[[SessionUser, "str | None"], None]


class Refused(GatewayError):
    """A connection the gateway will not accept; ``code`` is the protocol's refusal code."""


class Connections:
    """This worker's connections and the sessions they carry (protocol v1's ``connect``,
    ``event``, ``ack``, and the disconnect)."""

    def __init__(self, settings: Settings, catalog: AppCatalog,
                 registry: SessionRegistry, metrics: GatewayMetrics, *,
                 transport: Transport, runtime: Runtime, presence_changed: PresenceChanged,
                 task_context: TaskContext | None = None) -> None:
        self.settings = settings
        self.limits = SessionLimits.from_settings(settings)
        self._catalog = catalog
        self._registry = registry
        self._metrics = metrics
        self._transport = transport
        self._runtime = runtime
        self._presence_changed = presence_changed
        self._task_context = task_context
        self.draining = False  # set at shutdown: no new sessions

    def connect(self, sid: str, user: SessionUser, auth: Any,
                info: dict[str, Any] | None = None) -> Session:
        """Open or resume the session a new connection asks for; raise Refused if not."""
        if self.draining:
            raise self.refuse(SERVER_SHUTDOWN, "The server is shutting down; try again shortly.")
        try:
            request = parse_connect(auth)
        except ProtocolError as exc:
            raise self.refuse(BAD_REQUEST, exc.message) from None
        spec = self._catalog.get(request.app)
        if spec is None:
            raise self.refuse(UNKNOWN_APP, f"There is no app named {request.app!r}.")
        reason = None
        if request.resume is not None:
            resumed, reason = self._resume(sid, user, request)
            if resumed is not None:
                self._metrics.connections.labels("resumed").inc()
                return resumed
            self._metrics.resume_failures.labels(reason).inc()
        session = Session(spec, user, transport=self._transport, runtime=self._runtime,
                          limits=self.limits, info=info, on_closed=self._closed,
                          on_topic=self._on_topic)
        try:  # the limits are checked as the session is added, under one lock
            first_here = self._registry.add(
                session, sid, max_sessions=self.settings.MAX_SESSIONS,
                max_per_user=self.settings.MAX_SESSIONS_PER_USER)
        except LimitReached as exc:
            raise self.refuse(TOO_MANY_SESSIONS, exc.message) from None
        self._metrics.connections.labels("new").inc()
        try:
            session.attach(sid, reason=reason)
        except SessionClosed as exc:
            # Closed between its registration and now (a logout, a kick, a shutdown):
            # closing took it out of every index; the connection is refused.
            code = SERVER_SHUTDOWN if exc.reason == SERVER_SHUTDOWN else UNAUTHORIZED
            raise self.refuse(code, f"The session was closed ({exc.reason}).") from None
        if first_here:
            self._presence_changed(user, None)
        logger.info("session %s opened: app=%s user=%s sid=%s%s", session.id, spec.name,
                    user.name, sid, f" (resume refused: {reason})" if reason else "")
        session.start(self._task_context)
        return session

    def refuse(self, code: str, message: str) -> Refused:
        """Count a refused connection and return the error to raise."""
        self._metrics.refusals.labels(code).inc()
        return Refused(message, code=code)

    def _closed(self, session: Session) -> None:
        for topic in self._registry.remove(session):
            self._presence_changed(session.user, topic)
        self._metrics.closes.labels(session.close_reason or CLOSED).inc()
        self._metrics.closed_commands += session.last_seq

    def _resume(self, sid: str, user: SessionUser,
                request: ConnectRequest) -> tuple[Session | None, str | None]:
        assert request.resume is not None
        wanted = request.resume
        session = self._registry.get(wanted.session)
        if session is None:
            tomb = self._registry.tombstone(wanted.session)
            if tomb is None:
                return None, UNKNOWN
            if tomb[0] != user.id:
                return None, FORBIDDEN
            return None, REPLAY_OVERFLOW if tomb[1] == SLOW_CONSUMER else EXPIRED
        if session.user.id != user.id or session.app != request.app \
                or not session.verify_token(wanted.token):
            logger.warning("resume of session %s refused for user %s: forbidden",
                           wanted.session, user.name)
            return None, FORBIDDEN
        try:
            old_sid = session.resume(sid, wanted.token, wanted.last_seq)
        except SessionClosed:
            return None, EXPIRED
        except ReplayOverflow:
            # A position this session cannot replay from: behind what was acknowledged (a
            # copy of another tab's storage: a duplicated tab), or past what was sent.
            # Nothing was lost by the session: it stays with the connection that holds
            # it, and this one starts a session of its own.
            return None, REPLAY_OVERFLOW
        if not self._registry.rebind(session, old_sid, sid):
            # Closed right after it resumed (the client was told: session, then close), or
            # resumed again by another connection, which told this one it was kicked.
            logger.info("session %s closed or resumed elsewhere while resuming", session.id)
        if old_sid is not None:
            # Still attached elsewhere: a reload racing its own disconnect, or a duplicated
            # tab (sessionStorage is copied). Tell the old connection, so a live duplicate
            # stops instead of resuming back and the two tabs taking turns.
            self._transport.emit(old_sid, "close", {
                "reason": KICKED, "message": "This session was resumed in another tab."})
            self._transport.disconnect(old_sid)
        logger.info("session %s resumed: sid=%s last_seq=%d", session.id, sid, wanted.last_seq)
        return session, None

    def disconnect(self, sid: str) -> None:
        """Connection ``sid`` is gone: detach its session for the resume window."""
        session = self._registry.unbind(sid)
        if session is not None and session.detach(sid):
            logger.info("session %s detached: sid=%s", session.id, sid)

    def event(self, sid: str, message: Any) -> dict[str, Any]:
        """Handle an ``event`` message and return its ack payload."""
        session = self._registry.by_sid(sid)
        if session is None:
            return failed(SESSION_CLOSED, "This connection has no open session.")
        started = time.perf_counter()
        try:
            ack = session.handle(parse_event(message, self.settings.MAX_EVENT_BYTES))
        except ProtocolError as exc:
            ack = session.refuse(exc.code, exc.message)
        self._metrics.event_seconds.observe(time.perf_counter() - started)
        self._metrics.events.labels("ok" if ack["ok"] else ack["error"]["code"]).inc()
        return ack

    def ack(self, sid: str, message: Any) -> None:
        """Handle a cumulative ``ack``; a malformed one counts against the event rate."""
        session = self._registry.by_sid(sid)
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
        session = self._registry.by_sid(sid)
        if session is None:
            return failed(SESSION_CLOSED, "This connection has no open session.")
        return session.refuse(BAD_REQUEST, message)

    def _on_topic(self, session: Session, topic: str | None, joined: bool) -> None:
        if topic is None:  # watch_presence: the cluster's comings and goings
            self._registry.watch_online(session)
            return
        changed = (self._registry.join if joined else self._registry.leave)(session, topic)
        if changed:
            self._presence_changed(session.user, topic)
