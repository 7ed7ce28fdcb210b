"""The bus: carries sends addressed to users, topics or everyone, control messages
(close a user's sessions, kick a session) and presence to every worker.

:class:`Bus` is what the hub needs of one; :func:`make_bus` picks the implementation.
Alone, a worker uses :class:`LocalBus`: there is nobody else to tell. With
``GATEWAY_MESSAGE_QUEUE=redis://...`` it uses :class:`~gateway.cluster.redis_bus.RedisBus`
(a Redis stream every worker reads). The worker that makes a send delivers it to its
own sessions directly (no round trip through Redis) and publishes it for the others.
The messages themselves are in :mod:`gateway.cluster.messages`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from typing import Protocol

from ..core.presence import PresenceSnapshot
from .messages import Gather
from .messages import Message

Deliver = Callable[[Message], Any]
Snapshot = Callable[[], PresenceSnapshot]
Spawn = Callable[[Callable[[], None]], Any]


class Bus(Protocol):
    """What the hub needs of a bus."""

    name: str
    #: This worker's id in the cluster.
    worker_id: str

    @property
    def healthy(self) -> bool:
        """Whether the bus reached its broker on its last tries (``/readyz``)."""

    def publish(self, message: Message) -> Any:
        """Send ``message`` to every other worker; raise BusUnavailable if it cannot."""

    def start(self, deliver: Deliver, snapshot: Snapshot, spawn: Spawn) -> None:
        """Deliver other workers' messages to ``deliver`` (in tasks made by ``spawn``) and
        publish this worker's presence (``snapshot()``) on a heartbeat."""

    def stop(self) -> None: ...

    def gather(self, what: str, workers: set[str], timeout: float) -> list[Any]:
        """The ``what`` rows of ``workers``, waiting at most ``timeout`` seconds."""

    def answer(self, request: Gather, rows: list[Any]) -> None:
        """Answer another worker's :meth:`gather`."""


class LocalBus:
    """The bus of a single worker: there are no other workers to tell."""

    name = "local"
    worker_id = "local"
    healthy = True

    def publish(self, message: Message) -> None:
        """Nothing to do: the hub has delivered to this worker's sessions already."""

    def start(self, deliver: Deliver, snapshot: Snapshot, spawn: Spawn) -> None:
        """Nothing to start for an in-process bus."""

    def stop(self) -> None:
        """Nothing to stop for an in-process bus."""

    def gather(self, what: str, workers: set[str], timeout: float) -> list[Any]:
        return []  # there are no other workers

    def answer(self, request: Gather, rows: list[Any]) -> None:
        """Nobody else asks."""


def make_bus(url: str | None, *, channel: str = "gateway", heartbeat: float = 5.0) -> Bus:
    """A :class:`~gateway.cluster.redis_bus.RedisBus` on ``url``, or a :class:`LocalBus`."""
    if not url:
        return LocalBus()
    from .redis_bus import RedisBus  # only a cluster needs redis

    return RedisBus(url, channel=channel, heartbeat=heartbeat)
