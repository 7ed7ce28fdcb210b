"""The bus: carries sends addressed to users, topics or everyone, control messages
(close a user's sessions, kick a session) and presence to every worker.

Alone, a worker uses :class:`LocalBus`: there is nobody else to tell. With
``GATEWAY_MESSAGE_QUEUE=redis://...`` it uses :class:`RedisBus`, whose messages go
through one Redis *stream* (``<channel>:bus``) rather than pub/sub: each worker
reads the stream from the last entry it has seen, so a worker that lost its
connection catches up on what was published meanwhile instead of going silently
deaf, and a message published while no worker happened to be listening is not
lost. The worker that makes a send delivers it to its own sessions directly (no
round trip through Redis) and publishes it for the others; it skips its own
entries when they come back.

:class:`~gateway.cluster.emitter.Emitter` publishes the same messages from outside the
server.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from ..core.errors import BusUnavailable
from ..core.errors import GatewayError
from ..core.errors import BAD_REQUEST
from ..core.targets import Target
from ..core.jsonsafe import dumps_strict

logger = logging.getLogger("gateway")

#: Entries the stream keeps (approximately): how far a worker can fall behind.
STREAM_MAXLEN = 10_000

Deliver = Callable[[dict[str, Any]], Any]
Snapshot = Callable[[], dict[str, Any]]
Spawn = Callable[[Callable[[], None]], Any]


def send_message(target: Target, name: str, args: dict[str, Any] | None) -> dict[str, Any]:
    """The bus message of a send."""
    if not isinstance(name, str) or not name:
        raise GatewayError("A command name must be a non-empty string.", code=BAD_REQUEST)
    if args is not None and not isinstance(args, dict):
        raise GatewayError("A command's args must be an object.", code=BAD_REQUEST)
    return {"type": "send", "to": target.to_dict(), "name": name, "args": args or {}}


def close_message(target: Target, reason: str, message: str) -> dict[str, Any]:
    """The bus message that closes the sessions ``target`` names."""
    return {"type": "close", "to": target.to_dict(), "reason": reason, "message": message}


class LocalBus:
    """The bus of a single worker: there are no other workers to tell."""

    name = "local"
    healthy = True

    def publish(self, message: dict[str, Any]) -> None:
        """Nothing to do: the hub has delivered to this worker's sessions already."""

    def start(self, deliver: Deliver, snapshot: Snapshot, spawn: Spawn) -> None:
        """Nothing to start for an in-process bus."""

    def stop(self) -> None:
        """Nothing to stop for an in-process bus."""


class RedisStream:
    """Publishing to the cluster's stream: shared by :class:`RedisBus` and :class:`Emitter`."""

    def __init__(self, url: str, channel: str = "gateway", timeout: float = 2.0) -> None:
        import redis  # only a cluster needs it

        self.url = url
        self.channel = channel
        self.key = f"{channel}:bus"
        self._errors = (redis.RedisError, OSError)
        self.redis = redis.Redis.from_url(url, socket_connect_timeout=timeout,
                                          socket_timeout=timeout)

    def publish(self, message: dict[str, Any]) -> str:
        """Append ``message`` to the stream; return its entry id or raise BusUnavailable."""
        data = dumps_strict(message)  # NaN or Infinity would reach a browser as invalid JSON
        try:
            entry = self.redis.xadd(self.key, {"m": data}, maxlen=STREAM_MAXLEN,
                                    approximate=True)
        except self._errors as exc:
            raise BusUnavailable(
                f"The message queue is unreachable ({exc.__class__.__name__}); "
                "nothing was sent."
            ) from None
        return entry.decode() if isinstance(entry, bytes) else str(entry)

    def close(self) -> None:
        self.redis.close()


class RedisBus:
    """The bus of a cluster member, on a Redis stream; see the module docstring.

    Two tasks run while started: the *reader* follows the stream (blocking reads of
    at most ``block`` seconds) and the *heartbeat* publishes this worker's presence
    snapshot every ``heartbeat`` seconds under a key that expires after three beats,
    and reads the other workers' snapshots (a worker whose key expired is gone).
    Either one failing marks the bus unhealthy (``/readyz`` answers 503) and retries
    with exponential back-off up to ``max_backoff`` seconds.
    """

    name = "redis"

    def __init__(self, url: str, *, worker_id: str | None = None, channel: str = "gateway",
                 heartbeat: float = 5.0, block: float = 1.0, max_backoff: float = 2.0) -> None:
        import redis

        self.worker_id = worker_id or uuid.uuid4().hex[:12]
        self.stream = RedisStream(url, channel)
        self.heartbeat = heartbeat
        self.ttl = 3 * heartbeat
        self.block = block
        self.max_backoff = max_backoff
        self._errors = (redis.RedisError, OSError)
        # The reader's connection blocks in XREAD: its timeout must outlast the block.
        self._reader = redis.Redis.from_url(url, socket_connect_timeout=2.0,
                                            socket_timeout=block + 5.0)
        self._stopping = threading.Event()
        self._reader_ok = False
        self._writer_ok = False
        self._down_since: float | None = None
        self._deliver: Deliver | None = None
        self._snapshot: Snapshot | None = None

    @property
    def healthy(self) -> bool:
        """Both the reader and the heartbeat reached Redis on their last try."""
        return self._reader_ok and self._writer_ok

    def publish(self, message: dict[str, Any]) -> str:
        return self.stream.publish(dict(message, origin=self.worker_id))

    def start(self, deliver: Deliver, snapshot: Snapshot, spawn: Spawn) -> None:
        self._deliver, self._snapshot = deliver, snapshot
        self._stopping.clear()
        spawn(self._read_loop)
        spawn(self._heartbeat_loop)

    def stop(self) -> None:
        if self._stopping.is_set():
            return
        self._stopping.set()
        try:  # leave the cluster now rather than when the heartbeat expires
            self.stream.redis.delete(self._worker_key(self.worker_id))
        except self._errors:
            pass

    # -- reading the stream -------------------------------------------------

    def _read_loop(self) -> None:
        last_id: str | None = None
        backoff = 0.1
        while not self._stopping.is_set():
            try:
                if last_id is None:  # start after what is already there
                    newest = self._reader.xrevrange(self.stream.key, count=1)
                    last_id = newest[0][0].decode() if newest else "0-0"
                batches = self._reader.xread({self.stream.key: last_id}, count=500,
                                             block=int(self.block * 1000))
                self._set_ok("reader", True)
                backoff = 0.1
            except self._errors as exc:
                self._set_ok("reader", False, exc)
                self._stopping.wait(backoff)
                backoff = min(backoff * 2, self.max_backoff)
                continue
            for _stream, entries in batches or ():
                for entry_id, fields in entries:
                    last_id = entry_id.decode()
                    self._dispatch(fields.get(b"m", b""))

    def _dispatch(self, raw: bytes) -> None:
        try:
            message = json.loads(raw)
        except ValueError:
            logger.warning("bus: dropped an undecodable message of %d bytes", len(raw))
            return
        if not isinstance(message, dict) or message.get("origin") == self.worker_id:
            return  # this worker delivered its own sends already
        try:
            assert self._deliver is not None
            self._deliver(message)
        except Exception:  # one bad message must not deafen the worker
            logger.exception("bus: delivering a %r message failed", message.get("type"))

    # -- asking every worker ---------------------------------------------------

    def gather(self, what: str, workers: set[str], timeout: float) -> list[Any]:
        """Ask ``workers`` for their ``what`` rows; wait at most ``timeout`` seconds."""
        if not workers:
            return []
        reply = f"{self.stream.channel}:reply:{uuid.uuid4().hex}"
        self.publish({"type": "gather", "what": what, "reply": reply})
        rows: list[Any] = []
        answered: set[str] = set()
        deadline = time.monotonic() + timeout
        try:
            while answered < workers:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                popped = self.stream.redis.blpop([reply], timeout=max(0.01, min(left, 1.0)))
                if popped is None:
                    continue
                answer = json.loads(popped[1])
                answered.add(answer["worker"])
                rows.extend(answer["rows"])
        except self._errors as exc:
            raise BusUnavailable(
                f"The message queue is unreachable ({exc.__class__.__name__})."
            ) from None
        finally:
            missing = workers - answered
            if missing:
                logger.warning("bus: no %s from worker(s) %s within %.1f s", what,
                               ", ".join(sorted(missing)), timeout)
        return rows

    def answer(self, request: dict[str, Any], rows: list[Any]) -> None:
        """Answer another worker's :meth:`gather`."""
        reply = str(request.get("reply", ""))
        if not reply.startswith(f"{self.stream.channel}:reply:"):
            return
        pipe = self.stream.redis.pipeline()
        pipe.rpush(reply, json.dumps({"worker": self.worker_id, "rows": rows}))
        pipe.expire(reply, 30)
        try:
            pipe.execute()
        except self._errors:
            logger.warning("bus: could not answer a %s request", request.get("what"))

    # -- heartbeat and presence ----------------------------------------------

    def _worker_key(self, worker_id: str) -> str:
        return f"{self.stream.channel}:worker:{worker_id}"

    def _heartbeat_loop(self) -> None:
        backoff = 0.1
        while not self._stopping.is_set():
            try:
                self.beat()
                self._set_ok("heartbeat", True)
                backoff = 0.1
                wait = self.heartbeat
            except self._errors as exc:
                self._set_ok("heartbeat", False, exc)
                wait = backoff
                backoff = min(backoff * 2, self.max_backoff)
            self._stopping.wait(wait)

    def beat(self) -> None:
        """Publish this worker's presence, then reconcile with every live worker's."""
        assert self._snapshot is not None and self._deliver is not None
        redis = self.stream.redis
        snapshot = self._snapshot()
        redis.set(self._worker_key(self.worker_id), json.dumps(snapshot),
                  px=int(self.ttl * 1000))
        keys = list(redis.scan_iter(match=self._worker_key("*"), count=1000))
        snapshots = []
        for raw in redis.mget(keys) if keys else ():
            try:
                snapshots.append(json.loads(raw))
            except (TypeError, ValueError):
                continue  # expired between SCAN and MGET, or foreign
        self._deliver({"type": "presence.snapshots", "snapshots": snapshots})

    def _set_ok(self, part: str, ok: bool, exc: BaseException | None = None) -> None:
        was = self.healthy
        setattr(self, "_reader_ok" if part == "reader" else "_writer_ok", ok)
        if was and not self.healthy:
            self._down_since = time.monotonic()
            logger.error("bus: Redis unreachable (%s: %s); retrying with back-off",
                         part, exc.__class__.__name__ if exc else "?")
        elif not was and self.healthy:
            if self._down_since is not None:
                logger.warning("bus: Redis reachable again after %.1f s",
                               time.monotonic() - self._down_since)
            else:
                logger.info("bus: connected to Redis as worker %s", self.worker_id)
            self._down_since = None
