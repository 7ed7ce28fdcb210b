"""The bus of a cluster, on Redis.

Messages go through one Redis *stream* (``<channel>:bus``) rather than pub/sub: each
worker reads the stream from the last entry it has seen, so a worker that lost its
connection catches up on what was published meanwhile instead of going silently deaf,
and a message published while no worker happened to be listening is not lost. A worker
skips its own entries when they come back (it delivered them already).
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from typing import Any

from ..core.errors import BusUnavailable
from ..core.jsonsafe import dumps_strict
from .bus import Deliver
from .bus import Snapshot
from .bus import Spawn
from .messages import Gather
from .messages import Message
from .messages import MessageError
from .messages import Snapshots
from .messages import decode
from .messages import decode_snapshot
from .messages import encode
from .messages import encode_snapshot

logger = logging.getLogger("gateway")

#: Entries the stream keeps (approximately): how far a worker can fall behind.
STREAM_MAXLEN = 10_000


class RedisStream:
    """Publishing to the cluster's stream: shared by :class:`RedisBus` and
    :class:`~gateway.cluster.emitter.Emitter`."""

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

    def publish(self, message: Message) -> str:
        return self.stream.publish(dict(encode(message), origin=self.worker_id))

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
                    # (redis-py's replies are typed as unions of every reply kind)
                    newest: Any = self._reader.xrevrange(self.stream.key, count=1)
                    last_id = newest[0][0].decode() if newest else "0-0"
                batches: Any = self._reader.xread({self.stream.key: last_id}, count=500,
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
            wire = json.loads(raw)
        except ValueError:
            logger.warning("bus: dropped an undecodable message of %d bytes", len(raw))
            return
        if not isinstance(wire, dict) or wire.get("origin") == self.worker_id:
            return  # this worker delivered its own sends already
        try:
            message = decode(wire)
        except MessageError as exc:
            logger.warning("bus: dropped a message: %s", exc)
            return
        try:
            assert self._deliver is not None
            self._deliver(message)
        except Exception:  # one bad message must not deafen the worker
            logger.exception("bus: delivering a %r message failed", wire.get("type"))

    # -- asking every worker ---------------------------------------------------

    def gather(self, what: str, workers: set[str], timeout: float) -> list[Any]:
        """Ask ``workers`` for their ``what`` rows; wait at most ``timeout`` seconds."""
        if not workers:
            return []
        reply = f"{self.stream.channel}:reply:{uuid.uuid4().hex}"
        self.publish(Gather(what, reply))
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

    def answer(self, request: Gather, rows: list[Any]) -> None:
        """Answer another worker's :meth:`gather`."""
        reply = str(request.reply)
        if not reply.startswith(f"{self.stream.channel}:reply:"):
            return
        pipe = self.stream.redis.pipeline()
        pipe.rpush(reply, json.dumps({"worker": self.worker_id, "rows": rows}))
        pipe.expire(reply, 30)
        try:
            pipe.execute()
        except self._errors:
            logger.warning("bus: could not answer a %s request", request.what)

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
        redis.set(self._worker_key(self.worker_id), json.dumps(encode_snapshot(snapshot)),
                  px=int(self.ttl * 1000))
        keys = list(redis.scan_iter(match=self._worker_key("*"), count=1000))
        snapshots = []
        values: Any = redis.mget(keys) if keys else []
        for raw in values:
            try:
                snapshots.append(decode_snapshot(json.loads(raw)))
            except (TypeError, ValueError):
                continue  # expired between SCAN and MGET, or foreign
        self._deliver(Snapshots(snapshots))

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
