"""The ``Gateway`` Flask extension: session apps, and sending to sessions from anywhere.

``socketio`` and ``gateway`` are the two extension objects, created unbound here and
bound to an app in :func:`gateway.web.app.create_app`. The gateway stores itself in
``app.extensions["gateway"]``, as Flask's extensions do; what it runs for each app (the
:class:`Hub`, the connection guard) is kept per app and found with :func:`hub_for`.
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flask import Flask
from flask import current_app
from flask_socketio import SocketIO

from auth.signals import logged_out

from ..cluster.bus import make_bus
from ..cluster.hub import Hub
from ..core.admission import Admission
from ..core.apps import AppCatalog
from ..core.apps import EventHandler
from ..core.apps import MainFunction
from ..core.errors import LOGGED_OUT
from ..core.errors import BusUnavailable
from ..core.presence import Presence
from ..core.presence import PresenceChange
from ..core.registry import SessionRegistry
from ..core.targets import Target
from ..metrics import GuardCollector
from ..settings import Settings
from ..transport.guard import ConnectionGuard


class _SocketIOTransport:
    """Reaches this worker's connections through the Socket.IO server.

    ``ignore_queue``: a session's connection is always on this worker, so its
    commands go straight out. (With a message queue configured, a plain
    ``socketio.emit`` would publish every command to Redis and back.)
    """

    def __init__(self, socketio: SocketIO, guard: ConnectionGuard) -> None:
        self._server = socketio.server
        self._guard = guard

    def emit(self, sid: str, event: str, data: Any) -> None:
        self._server.emit(event, data, to=sid, namespace="/", ignore_queue=True)

    def disconnect(self, sid: str, hang_up: bool = False) -> None:
        """End the Socket.IO connection ``sid``; with ``hang_up``, its transport too
        (python-socketio leaves the Engine.IO connection open for the client to close)."""
        eio_sid = self._guard.eio_sid(sid)
        self._server.disconnect(sid, namespace="/", ignore_queue=True)
        if eio_sid is not None and hang_up:
            self._guard.hang_up(eio_sid)
        else:
            self._guard.released(eio_sid)


class _SocketIORuntime:
    """Starts tasks the way the configured async mode wants."""

    def __init__(self, socketio: SocketIO) -> None:
        self.spawn = socketio.start_background_task
        self.sleep = socketio.sleep


logger = logging.getLogger("gateway")

@dataclass
class AppRuntime:
    """What the gateway runs for one Flask app."""

    hub: Hub
    guard: ConnectionGuard
    #: The embedded server's bound on connections waiting for headers (for /metrics).
    header_waits: Any = None


class Gateway:
    """Session apps and the sends that reach them.

    ``@gateway.app(name)`` and ``@gateway.on(event, app=name)`` register at import
    time; the runtime (a :class:`Hub` per Flask app) is found with :func:`hub_for`.
    """

    def __init__(self, app: Flask | None = None, socketio: SocketIO | None = None) -> None:
        self.catalog = AppCatalog()
        self._presence_listeners: list[Callable[[PresenceChange], None]] = []
        self._runtimes: weakref.WeakKeyDictionary[Flask, AppRuntime] = \
            weakref.WeakKeyDictionary()
        if app is not None and socketio is not None:
            self.init_app(app, socketio)

    def init_app(self, app: Flask, socketio: SocketIO) -> Hub:
        """Create this app's hub; ``socketio`` must already be bound to ``app``."""
        def task_context(fn: Callable[[], None]) -> Callable[[], None]:
            def run() -> None:
                with app.app_context():
                    fn()
            return run

        settings: Settings = app.config["GATEWAY"]
        admission = Admission(settings.MAX_ANONYMOUS, settings.MAX_ANONYMOUS_PER_ADDRESS,
                              settings.HANDSHAKE_SECONDS)
        guard = ConnectionGuard(socketio.server, admission, socketio.sleep,
                                malformed=lambda sid: hub.connections.malformed(sid))
        guard.install()
        if settings.ASYNC_MODE == "eventlet":
            from ..transport.eventlet import install_websocket
            # A frame is one Socket.IO packet: an event's data and its envelope.
            max_frame = max(64 * 1024, 2 * settings.MAX_EVENT_BYTES)
            guard.websockets = install_websocket(socketio.server.eio, settings.INBOUND_RATE,
                                                 settings.INBOUND_BURST, max_frame)
        bus = make_bus(settings.MESSAGE_QUEUE, channel=settings.BUS_CHANNEL,
                       heartbeat=settings.PRESENCE_SECONDS)
        hub = Hub(settings, self.catalog, bus=bus,
                  transport=_SocketIOTransport(socketio, guard),
                  runtime=_SocketIORuntime(socketio),
                  task_context=task_context)
        hub.every("connections without a session", 1.0, guard.sweep)
        runtime = AppRuntime(hub, guard)
        hub.metrics.registry.register(GuardCollector(runtime))
        for listener in self._presence_listeners:
            hub.presence.subscribe(listener)
        self._runtimes[app] = runtime
        app.extensions["gateway"] = self
        return hub

    def runtime_for(self, app: Flask) -> AppRuntime:
        try:
            return self._runtimes[app]
        except KeyError:
            raise RuntimeError(
                "The gateway is not initialised on this app: call create_app()."
            ) from None

    # -- registration ----------------------------------------------------

    def app(self, name: str, *, keep_open: bool = False, title: str = "",
            description: str = "") -> Callable[[MainFunction], MainFunction]:
        """Register a session app: ``fn(session)`` runs once per session, in its own task.

        :param name: the app name clients connect with (``auth = {"app": name}``).
        :param keep_open: keep the session after ``fn`` returns, for reactive handlers.
        :param title: a human title for the index page.
        :param description: a line for the index page (default: the docstring).
        """
        def decorator(fn: MainFunction) -> MainFunction:
            self.catalog.register(name, fn, keep_open=keep_open, title=title,
                                  description=description)
            return fn
        return decorator

    def on_presence(self, fn: Callable[[PresenceChange], None]) -> Callable[[PresenceChange], None]:
        """Register ``fn(change)``, called on every worker for each cluster-wide presence
        change (a user online/offline, or joining/leaving a topic). To tell sessions,
        send to this worker's sessions only, or use ``session.join(topic, presence=True)``.
        """
        self._presence_listeners.append(fn)
        return fn

    def on(self, event: str, *, app: str) -> Callable[[EventHandler], EventHandler]:
        """Register ``fn(session, data)`` for ``event`` in ``app``; its return value is the
        ack result."""
        def decorator(fn: EventHandler) -> EventHandler:
            self.catalog.add_handler(app, event, fn)
            return fn
        return decorator

    # -- runtime, through current_app -------------------------------------

    @property
    def hub(self) -> Hub:
        """The current app's hub."""
        return hub_for()

    @property
    def presence(self) -> Presence:
        """Who is online across the cluster: ``online()``, ``members(topic)``, ``is_online(id)``."""
        return self.hub.presence

    @property
    def sessions(self) -> SessionRegistry:
        """This worker's live sessions."""
        return self.hub.registry

    def send(self, name: str, args: dict[str, Any] | None = None, *,
             session: str | None = None, user: str | int | None = None,
             user_name: str | None = None, topic: str | None = None,
             everyone: bool = False) -> int:
        """Send a command to a session, a user's sessions, a topic or everyone, on
        every worker, each through that session's sequenced stream.

        ``user`` is a user id (an int, or a string of digits), ``user_name`` a user
        name: ids and names are never matched against each other.

        Returns how many sessions of this worker it reached. Raises
        :class:`~gateway.core.errors.BusUnavailable` when the cluster's message queue is
        down: nothing was sent then.
        """
        target = Target.of(session=session, user=user, user_name=user_name, topic=topic,
                           everyone=everyone)
        return self.hub.send(target, name, args)

    def close_user(self, user: str | int, reason: str = LOGGED_OUT,
                   message: str = "You were logged out.") -> int:
        """Close every live session of the user with id ``user``, on every worker."""
        return self.hub.close_user(user, reason, message)

    def kick(self, session_id: str) -> int:
        """Close one session, wherever it lives, with reason ``kicked``."""
        return self.hub.kick(session_id)


@logged_out.connect
def _close_sessions_on_logout(app: Flask, *, user_id: int, name: str) -> int:
    """A user logged out: close every live session of the account, on every worker.

    With the bus down, this worker's sessions are closed all the same, and the other
    workers' within ``GATEWAY_ACCOUNT_CHECK_SECONDS`` (their account check sees the login
    epoch moved): the logout itself never fails for it."""
    hub = hub_for(app)
    reached = len(hub.router.resolve(Target.of(user=user_id)))
    try:
        return hub.close_user(user_id, LOGGED_OUT, "You logged out.")
    except BusUnavailable:
        logger.warning("logout of %s: the bus is down; other workers close the account's "
                       "sessions at their next account check", name)
        return reached


def runtime_for(app: Flask | None = None) -> AppRuntime:
    """What the gateway runs for ``app`` (default: the current app)."""
    app = app if app is not None else current_app._get_current_object()  # type: ignore[attr-defined]
    extension = app.extensions.get("gateway")
    if not isinstance(extension, Gateway):
        raise RuntimeError("The gateway is not initialised on this app: call create_app().")
    return extension.runtime_for(app)


def hub_for(app: Flask | None = None) -> Hub:
    """The :class:`Hub` of ``app`` (default: the current app): the one way to find it."""
    return runtime_for(app).hub


socketio = SocketIO()
gateway = Gateway()
