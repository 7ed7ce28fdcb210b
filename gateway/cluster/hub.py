"""The hub of one Flask app on one worker: its parts, wired together, started and stopped.

- :class:`~gateway.cluster.connections.Connections`: where a connection becomes a session;
- :class:`~gateway.cluster.routing.Router`: where a send goes, and what the bus brings;
- :class:`~gateway.cluster.scheduler.Scheduler`: periodic tasks.

The bus (a :class:`~gateway.cluster.bus.Bus`), the transport and the runtime are
passed in.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from ..core.apps import AppCatalog
from ..core.errors import KICKED
from ..core.errors import SERVER_SHUTDOWN
from ..core.presence import Presence
from ..core.registry import SessionRegistry
from ..core.session import Runtime
from ..core.session import Transport
from ..core.streams import UserStreams
from ..core.targets import Target
from ..metrics import GatewayMetrics
from ..settings import Settings
from .bus import Bus
from .connections import Connections
from .connections import Refused
from .routing import Router
from .scheduler import Scheduler
from .scheduler import TaskContext

__all__ = ["Hub", "Refused"]

logger = logging.getLogger("gateway")


class Hub:
    """This worker's sessions (``registry``), connections, routing, presence, SSE user
    streams, metrics and periodic tasks, for one app."""

    def __init__(self, settings: Settings, catalog: AppCatalog, *, bus: Bus,
                 transport: Transport, runtime: Runtime,
                 task_context: TaskContext | None = None) -> None:
        self.settings = settings
        self.catalog = catalog
        self.registry = SessionRegistry()
        self.bus = bus
        self.worker_id = bus.worker_id
        self.presence = Presence(self.worker_id)
        self.metrics = GatewayMetrics(self)
        self.router = Router(self.registry, bus, self.presence, self.metrics)
        self.connections = Connections(
            settings, catalog, self.registry, self.metrics, transport=transport,
            runtime=runtime, presence_changed=self.router.presence_changed,
            task_context=task_context)
        self.scheduler = Scheduler(runtime, task_context)
        self.streams = UserStreams(settings.REPLAY_LIMIT, settings.RESUME_SECONDS)
        self.router.send_hooks.append(self.streams.on_send)
        self.router.close_hooks.append(self.streams.on_close)
        self.every("user streams expiry", 1.0, self.streams.expire)
        self._start_lock = threading.Lock()

    # -- what apps, the API and the CLI use ------------------------------------

    def send(self, target: Target, name: str, args: dict[str, Any] | None = None) -> int:
        """See :meth:`Router.send`."""
        return self.router.send(target, name, args)

    def close_user(self, user_id: str | int, reason: str, message: str) -> int:
        """Close every session of the user with this id with ``reason``, everywhere."""
        return self.router.close(Target.of(user=user_id), reason, message)

    def kick(self, session_id: str, message: str = "An administrator ended the session.") -> int:
        """Close one session with reason ``kicked``, wherever it lives."""
        return self.router.close(Target.of(session=session_id), KICKED, message)

    def gather(self, what: str, timeout: float = 1.0) -> list[dict[str, Any]]:
        """See :meth:`Router.gather`."""
        return self.router.gather(what, timeout)

    def every(self, name: str, interval: float, fn: Callable[[], object]) -> None:
        """Run ``fn`` every ``interval`` seconds (in an app context) once started."""
        self.scheduler.every(name, interval, fn)

    # -- start and stop ----------------------------------------------------------

    @property
    def started(self) -> bool:
        return self.scheduler.started

    @property
    def draining(self) -> bool:
        return self.connections.draining

    def start(self) -> None:
        """Start the bus and the periodic tasks (idempotent; never after shutdown)."""
        with self._start_lock:
            if self.scheduler.started or self.draining:
                return
            self.scheduler.start()
        self.bus.start(self.router.receive, self.router.presence_snapshot, self.scheduler.spawn)

    def stop(self) -> None:
        """Stop the periodic tasks and the bus."""
        self.scheduler.stop()
        self.bus.stop()

    def shutdown(self, reason: str = SERVER_SHUTDOWN) -> int:
        """Refuse new sessions and close every session (their on_close callbacks run)."""
        self.connections.draining = True
        sessions = self.registry.all()
        for session in sessions:
            session.close(reason, "The server is shutting down.")
        self.streams.on_close(Target("everyone"), reason)
        self.stop()
        logger.info("shutdown: %d session(s) closed", len(sessions))
        return len(sessions)
