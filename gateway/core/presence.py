"""Presence: who is online, and in which topics, across every worker of a cluster.

Each worker knows its own presence exactly (from its registry). It tells the others
through the bus: a ``presence`` message for every change (a user's first session
here, or their last one gone; a user's first session in a topic here, or their last
one out), and a full snapshot on a heartbeat. Every worker keeps the same mirror of
all workers' entries; an entry counts while any live worker has it. A worker whose
heartbeat stops (it died) is dropped after the heartbeat's time to live, and its
users leave with it.

Changes are versioned per worker, so a snapshot read late never undoes a newer change.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

logger = logging.getLogger("gateway")

Key = tuple[str | None, str]  # (topic or None, user id)


@dataclass(frozen=True)
class PresenceChange:
    """A user came online or went offline (``topic`` None), or joined or left a topic."""

    user: dict[str, str]  # {"id", "name"}
    topic: str | None
    present: bool

    def to_dict(self) -> dict[str, Any]:
        return {"user": self.user, "topic": self.topic, "present": self.present}


Listener = Callable[[PresenceChange], None]


@dataclass(frozen=True)
class PresenceUpdate:
    """One change of one worker's presence, versioned by that worker (a bus message)."""

    worker: str
    version: int
    user: dict[str, str]  # {"id", "name"}
    topic: str | None
    present: bool


@dataclass(frozen=True)
class PresenceSnapshot:
    """One worker's whole presence, as its heartbeat publishes it."""

    worker: str
    version: int
    entries: list[tuple[str | None, str, str]]  # (topic, user id, user name)


class _Worker:
    __slots__ = ("entries", "version")

    def __init__(self) -> None:
        self.entries: dict[Key, str] = {}  # key -> user name
        self.version = -1


class Presence:
    """The cluster's presence as this worker sees it; thread-safe."""

    def __init__(self, worker_id: str) -> None:
        self.worker_id = worker_id
        self._lock = threading.Lock()
        self._workers: dict[str, _Worker] = {}
        self._counts: dict[Key, int] = {}  # key -> how many workers have it
        self._names: dict[str, str] = {}  # user id -> name
        self._listeners: list[Listener] = []
        self._version = 0  # of this worker's own changes

    # -- reading ----------------------------------------------------------

    def online(self) -> list[dict[str, str]]:
        """Users with a session on any live worker, sorted by name."""
        with self._lock:
            users = [{"id": key[1], "name": self._names.get(key[1], key[1])}
                     for key in self._counts if key[0] is None]
        return sorted(users, key=lambda user: (user["name"], user["id"]))

    def members(self, topic: str) -> list[dict[str, str]]:
        """Users with a session in ``topic`` on any live worker."""
        with self._lock:
            users = [{"id": key[1], "name": self._names.get(key[1], key[1])}
                     for key in self._counts if key[0] == topic]
        return sorted(users, key=lambda user: (user["name"], user["id"]))

    def is_online(self, user_id: str) -> bool:
        with self._lock:
            return (None, str(user_id)) in self._counts

    def announced(self, user_id: str, topic: str | None = None) -> bool:
        """Whether this worker's own presence has the user (in ``topic``; None: online)."""
        with self._lock:
            worker = self._workers.get(self.worker_id)
            return worker is not None and (topic, str(user_id)) in worker.entries

    def workers(self) -> list[str]:
        with self._lock:
            return sorted(self._workers)

    def subscribe(self, listener: Listener) -> None:
        """Call ``listener(change)`` on this worker for every cluster-wide change."""
        self._listeners.append(listener)

    # -- this worker's own changes ---------------------------------------

    def local_change(self, user: dict[str, str], topic: str | None,
                     present: bool) -> PresenceUpdate:
        """Apply a change of this worker's presence; return the update announcing it."""
        with self._lock:
            self._version += 1
            version = self._version
        update = PresenceUpdate(self.worker_id, version, user, topic, present)
        self.apply_change(update)
        return update

    def snapshot(self, here: Callable[[], dict[Key, str]]) -> PresenceSnapshot:
        """This worker's full presence (``here()``, read from its registry), as the
        heartbeat publishes it. The version is read first: a change made while ``here()``
        runs makes the snapshot newer than its label, never older (a receiver that has
        the change already ignores an older snapshot; one that has not applies both)."""
        with self._lock:
            version = self._version
        entries = [(topic, user_id, name) for (topic, user_id), name in here().items()]
        return PresenceSnapshot(self.worker_id, version, entries)

    # -- what the bus brings ------------------------------------------------

    def apply_change(self, update: PresenceUpdate) -> None:
        """A presence update of some worker (this one included)."""
        key: Key = (update.topic, str(update.user["id"]))
        name = str(update.user.get("name", key[1]))
        changes = []
        with self._lock:
            worker = self._workers.setdefault(update.worker, _Worker())
            if update.version <= worker.version:
                return  # older than what we hold
            worker.version = update.version
            if update.present:
                if key not in worker.entries:
                    worker.entries[key] = name
                    changes += self._count(key, name, +1)
            elif worker.entries.pop(key, None) is not None:
                changes += self._count(key, name, -1)
        self._notify(changes)

    def apply_snapshot(self, snapshot: PresenceSnapshot) -> None:
        """A worker's heartbeat snapshot: replace its entries unless ours are newer."""
        entries = {(topic, str(user_id)): str(name)
                   for topic, user_id, name in snapshot.entries}
        changes = []
        with self._lock:
            worker = self._workers.setdefault(snapshot.worker, _Worker())
            if snapshot.version < worker.version:
                return
            worker.version = snapshot.version
            for key in [k for k in worker.entries if k not in entries]:
                changes += self._count(key, worker.entries.pop(key), -1)
            for key, name in entries.items():
                if key not in worker.entries:
                    worker.entries[key] = name
                    changes += self._count(key, name, +1)
        self._notify(changes)

    def retain_workers(self, alive: set[str]) -> list[str]:
        """Forget every worker not in ``alive`` (their heartbeats expired)."""
        changes = []
        with self._lock:
            dead = [w for w in self._workers if w not in alive and w != self.worker_id]
            for worker_id in dead:
                worker = self._workers.pop(worker_id)
                for key, name in worker.entries.items():
                    changes += self._count(key, name, -1)
        for worker_id in dead:
            logger.warning("presence: worker %s is gone; its %d entries dropped",
                           worker_id, sum(1 for c in changes if c.topic is None))
        self._notify(changes)
        return dead

    # -- internals ----------------------------------------------------------

    def _count(self, key: Key, name: str, delta: int) -> list[PresenceChange]:
        """Count ``key`` on one more or one fewer worker; the change it makes, if any."""
        before = self._counts.get(key, 0)
        after = before + delta
        if after > 0:
            self._counts[key] = after
            self._names[key[1]] = name
        else:
            self._counts.pop(key, None)
            if key[0] is None:
                self._names.pop(key[1], None)
        if (before == 0) == (after == 0):
            return []
        return [PresenceChange({"id": key[1], "name": name}, key[0], after > 0)]

    def _notify(self, changes: list[PresenceChange]) -> None:
        for change in changes:
            for listener in self._listeners:
                try:
                    listener(change)
                except Exception:
                    logger.exception("presence listener failed")
