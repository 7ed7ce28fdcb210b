"""Where a send goes: to this worker's sessions at once, and to the other workers through
the bus; what the bus brings, dispatched by message type; presence between workers."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from ..core.delivery import command_size
from ..core.errors import BusUnavailable
from ..core.errors import GatewayError
from ..core.errors import SessionClosed
from ..core.presence import Presence
from ..core.presence import PresenceChange
from ..core.presence import PresenceSnapshot
from ..core.presence import PresenceUpdate
from ..core.registry import SessionRegistry
from ..core.session import Session
from ..core.session import SessionUser
from ..core.targets import Target
from ..metrics import GatewayMetrics
from .bus import Bus
from .messages import TYPES
from .messages import Close
from .messages import Gather
from .messages import Message
from .messages import Send
from .messages import Snapshots

logger = logging.getLogger("gateway")


class Router:
    """Sends and closes addressed to sessions, users, topics or everyone, across the
    cluster; presence and gathers between workers."""

    def __init__(self, registry: SessionRegistry, bus: Bus, presence: Presence,
                 metrics: GatewayMetrics) -> None:
        self._registry = registry
        self._bus = bus
        self._presence = presence
        self._metrics = metrics
        self.worker_id = bus.worker_id
        self._presence_lock = threading.Lock()  # orders the announcements of presence
        # Extra consumers of sends (the SSE user streams): fn(target, name, args).
        self.send_hooks: list[Callable[[Target, str, dict[str, Any]], None]] = []
        self.close_hooks: list[Callable[[Target, str], None]] = []
        # What other workers may ask this one for (gather): name -> fn() -> rows.
        self.gatherers: dict[str, Callable[[], list[dict[str, Any]]]] = {}
        #: The one dispatch table of what the bus brings.
        self._receivers: dict[type, Callable[[Any], Any]] = {
            Send: self._deliver_send,
            Close: self._deliver_close,
            PresenceUpdate: self._presence.apply_change,
            Snapshots: self._apply_snapshots,
            Gather: self._answer,
        }
        presence.subscribe(self._tell_watchers)

    # -- sends and control ------------------------------------------------

    def send(self, target: Target, name: str, args: dict[str, Any] | None = None) -> int:
        """Send a command to every session ``target`` names, on every worker.

        Returns how many sessions of this worker it reached. Raises BusUnavailable
        (and sends nothing) when other workers may hold such sessions and the bus is
        down. Raises ``ValueError`` when ``args`` is not JSON (NaN, Infinity): nothing
        is sent then either.
        """
        message = Send.of(target, name, args)
        try:
            command_size(name, message.args)
        except ValueError:
            raise ValueError(f"Command {name!r}: its args must be JSON, without NaN or "
                             "Infinity (a browser cannot parse them).") from None
        return self._dispatch(message)

    def close(self, target: Target, reason: str, message: str) -> int:
        """Close every session ``target`` names with ``reason``, everywhere: this
        worker's first, so a bus that is down (BusUnavailable, raised after) never keeps
        them open here."""
        return self._dispatch(Close(target, reason, message))

    def _dispatch(self, message: Send | Close) -> int:
        target = message.to
        if target.kind == "session" and self._registry.get(target.value or "") is not None:
            return self.deliver(message)  # session-local: never through Redis
        if isinstance(message, Close):
            reached = self.deliver(message)
            self._publish(message)
            return reached
        self._publish(message)  # first, so a failed publish sends nothing anywhere
        return self.deliver(message)

    def _publish(self, message: Send | Close) -> None:
        self._bus.publish(message)
        self._metrics.bus_messages.labels("published", TYPES[type(message)]).inc()

    def gather(self, what: str, timeout: float = 1.0) -> list[dict[str, Any]]:
        """Rows of ``what`` (a registered gatherer) from every worker of the cluster."""
        rows = list(self.gatherers[what]())
        others = set(self._presence.workers()) - {self.worker_id}
        return rows + self._bus.gather(what, others, timeout)

    # -- what the bus brings --------------------------------------------------

    def receive(self, message: Message) -> None:
        """A message another worker (or an Emitter) published, or the heartbeat's read."""
        kind = type(message)
        if kind is not Snapshots:
            self._metrics.bus_messages.labels("received", TYPES[kind]).inc()
        self._receivers[kind](message)

    def deliver(self, message: Send | Close) -> int:
        """Carry out a send or close on this worker's sessions; return how many it reached."""
        if isinstance(message, Send):
            return self._deliver_send(message)
        return self._deliver_close(message)

    def _deliver_send(self, message: Send) -> int:
        for hook in self.send_hooks:
            hook(message.to, message.name, message.args)
        return self._send_to(self.resolve(message.to), message.name, message.args)

    def _deliver_close(self, message: Close) -> int:
        for close_hook in self.close_hooks:
            close_hook(message.to, message.reason)
        sessions = self.resolve(message.to)
        for session in sessions:
            session.close(message.reason, message.message)
        return len(sessions)

    def _answer(self, request: Gather) -> None:
        gatherer = self.gatherers.get(request.what)
        if gatherer is not None:
            self._bus.answer(request, gatherer())

    def _apply_snapshots(self, message: Snapshots) -> None:
        alive = {self.worker_id}
        for snapshot in message.snapshots:
            if snapshot.worker != self.worker_id:
                self._presence.apply_snapshot(snapshot)
                alive.add(snapshot.worker)
        self._presence.retain_workers(alive)

    def resolve(self, target: Target) -> list[Session]:
        """This worker's sessions that ``target`` names."""
        if target.kind == "session":
            session = self._registry.get(target.value or "")
            return [session] if session is not None else []
        if target.kind == "user":  # an id: never matched against names
            return self._registry.for_user(target.value or "")
        if target.kind == "user_name":  # a name: never matched against ids
            return self._registry.for_user_name(target.value or "")
        if target.kind == "topic":
            return self._registry.in_topic(target.value or "")
        if target.kind == "everyone":
            return self._registry.all()
        return []

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

    # -- presence ------------------------------------------------------------

    def presence_changed(self, user: SessionUser, topic: str | None) -> None:
        """This worker's presence of ``user`` in ``topic`` (None: online) may have changed:
        make the mirror say what the registry says now, and tell the other workers.

        What the registry says, not what the caller saw: two changes racing (a user's last
        session closing as a new one opens, a close landing as a connect completes) may
        announce in either order, and each reads the registry again under one lock, so the
        last leaves the mirror as the registry is. The bus is written outside that lock.
        """
        with self._presence_lock:
            present = self._registry.present(user.id, topic)
            if present == self._presence.announced(user.id, topic):
                return
            update = self._presence.local_change(user.to_dict(), topic, present)
        if self._bus.healthy:  # otherwise the next heartbeat's snapshot carries it
            try:
                self._bus.publish(update)
            except BusUnavailable:
                pass

    def presence_snapshot(self) -> PresenceSnapshot:
        return self._presence.snapshot(self._registry.presence)

    def _tell_watchers(self, change: PresenceChange) -> None:
        """Send ``presence`` to this worker's sessions that watch where ``change`` happened."""
        # Indexed both ways: never a scan of every session (a change comes with each
        # first connection of a user).
        sessions = (self._registry.online_watchers() if change.topic is None
                    else self._registry.in_topic(change.topic))
        watching = [s for s in sessions if change.topic in s.watching]
        if watching:
            self._send_to(watching, "presence", change.to_dict())
