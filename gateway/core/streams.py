"""User streams: the commands addressed to a user (or to everyone), for SSE readers.

A client that cannot run Socket.IO (an ``EventSource`` dashboard, ``curl``) reads
``GET /api/v1/stream``: every command sent with ``user=`` (that user's id),
``user_name=`` (that user's name) or ``everyone=True`` on any worker, numbered per
user on this worker. The SSE ``id:`` is ``LIFE-N``: the stream's life (random, new each
time the stream is made) and the command's number, so a reader that reconnects with
``Last-Event-ID`` gets what it missed, from a replay buffer of ``GATEWAY_REPLAY_LIMIT``
commands, and an id from an earlier life of the stream (it expired, or the worker
restarted) is never read as a position in this one. A stream lives while it has readers
and ``GATEWAY_RESUME_SECONDS`` after the last one left.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

from .errors import LOGGED_OUT
from .errors import SERVER_SHUTDOWN
from .targets import Target


@dataclass
class Batch:
    """What a reader gets from :meth:`UserStream.read`."""

    commands: list[tuple[int, str, dict[str, Any]]]
    closed: str | None = None  # the close reason, once the stream is closed
    missed: bool = False  # the reader asked for commands no longer buffered


class UserStream:
    """One user's numbered commands on this worker."""

    def __init__(self, user_id: str, name: str, limit: int, auth_epoch: int = 0) -> None:
        self.user_id, self.name = user_id, name
        self.auth_epoch = auth_epoch  # of the login that opened it (see gateway.web.accounts)
        self.life = secrets.token_hex(4)  # this life of the stream: part of every event id
        self.seq = 0
        self._buffer: deque[tuple[int, str, dict[str, Any]]] = deque(maxlen=limit)
        self._cond = threading.Condition()
        self.readers = 0
        self.idle_since = time.monotonic()
        self.closed: str | None = None

    def push(self, name: str, args: dict[str, Any]) -> None:
        with self._cond:
            if self.closed:
                return
            self.seq += 1
            self._buffer.append((self.seq, name, args))
            self._cond.notify_all()

    def close(self, reason: str) -> None:
        with self._cond:
            self.closed = reason
            self._cond.notify_all()

    def read(self, after: int, timeout: float) -> Batch:
        """Commands numbered above ``after``; wait up to ``timeout`` s for the first."""
        with self._cond:
            self._cond.wait_for(lambda: self.seq > after or self.closed, timeout)
            if self.closed:
                return Batch([], closed=self.closed)
            oldest = self._buffer[0][0] if self._buffer else self.seq + 1
            return Batch([c for c in self._buffer if c[0] > after], missed=after + 1 < oldest)

    def attach(self) -> None:
        with self._cond:
            self.readers += 1

    def detach(self) -> None:
        with self._cond:
            self.readers -= 1
            self.idle_since = time.monotonic()


class UserStreams:
    """This worker's user streams; fed by the hub's sends and closes."""

    def __init__(self, replay_limit: int, keep_seconds: float) -> None:
        self.replay_limit = replay_limit
        self.keep_seconds = keep_seconds
        self._lock = threading.Lock()
        self._streams: dict[str, UserStream] = {}  # user id -> stream

    def open(self, user_id: str, name: str, auth_epoch: int = 0) -> UserStream:
        with self._lock:
            stream = self._streams.get(user_id)
            if stream is None or stream.closed or stream.auth_epoch != auth_epoch:
                if stream is not None:
                    stream.close(LOGGED_OUT)
                stream = self._streams[user_id] = UserStream(user_id, name, self.replay_limit,
                                                             auth_epoch)
            stream.attach()
            return stream

    def _matching(self, target: Target) -> list[UserStream]:
        with self._lock:
            if target.kind == "everyone":
                return list(self._streams.values())
            if target.kind == "user":  # by id only
                stream = self._streams.get(target.value or "")
                return [stream] if stream is not None else []
            if target.kind == "user_name":  # by name only
                return [s for s in self._streams.values() if s.name == target.value]
            return []

    def on_send(self, target: Target, name: str, args: dict[str, Any]) -> None:
        for stream in self._matching(target):
            stream.push(name, args)

    def on_close(self, target: Target, reason: str) -> None:
        if reason in (LOGGED_OUT, SERVER_SHUTDOWN):
            for stream in self._matching(target):
                stream.close(reason)

    def expire(self) -> None:
        """Forget streams that have had no reader for ``keep_seconds``."""
        now = time.monotonic()
        with self._lock:
            for user_id, stream in list(self._streams.items()):
                if stream.closed or (stream.readers == 0
                                     and now - stream.idle_since > self.keep_seconds):
                    del self._streams[user_id]

    def all(self) -> list[UserStream]:
        with self._lock:
            return [s for s in self._streams.values() if not s.closed]

    def readers(self) -> int:
        """Open SSE readers on this worker, all streams together (``gateway_sse_readers``)."""
        with self._lock:
            return sum(s.readers for s in self._streams.values())

    def __len__(self) -> int:
        with self._lock:
            return len(self._streams)
