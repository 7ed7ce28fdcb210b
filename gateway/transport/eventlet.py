"""Everything eventlet-specific: the embedded server, and a bounded share per connection.

eventlet is the default runtime, and three of its behaviours let one client take a
whole worker (each checked against eventlet 0.41):

- Its WebSocket read loop never yields while data is buffered: a green socket's
  ``recv`` returns at once when bytes are waiting, so a client that sends frames back to
  back keeps the worker's only OS thread for as long as it likes. Control frames (ping)
  are handled inside the loop and never even reach Engine.IO.
- It unmasks every client frame byte by byte in a Python generator
  (``RFC6455WebSocket._apply_mask``): ~100 ms of CPU for a 1 MB frame.
- Its WSGI server waits for request headers without a deadline (its ``keepalive``
  timeout covers the request line only), so connections that never finish their
  headers (slowloris) hold a green thread each for as long as they like.

:class:`GuardedWebSocket` (installed into Engine.IO's eventlet driver by
:func:`install_websocket`) yields after every frame, reads at most
``GATEWAY_INBOUND_RATE`` frames a second per connection (beyond, it stops reading: TCP
pushes back on the sender), unmasks with integer arithmetic, and can be hung up by the
gateway (:meth:`GuardedWebSocket.hang_up`). :class:`DeadlineProtocol` gives request
headers ``GATEWAY_HANDSHAKE_SECONDS`` and bounds how many connections may be waiting for
theirs. This module only subclasses; it patches nothing.

Upstream: no eventlet issue covers either behaviour (eventlet is in bugfix-only
maintenance). The read loop's behaviour is the one gevent's maintainers call by design
(gevent/gevent#1741: "add a sleep(0) in the reading loop"); the integer XOR is the one
python-websockets adopted (python-websockets/websockets#1034, ~20x faster). Minimal
reproductions: ``tests/integration/test_guard.py``, and the ``ws_firehose`` and
``ws_big_frames`` attacks of the hostile suite (``tests/helpers/hostile/attacks.py``).
"""

from __future__ import annotations

import logging
import socket
import threading
import urllib.parse
import weakref
from collections import Counter
from typing import Any

import eventlet
import eventlet.wsgi
from engineio.async_drivers.eventlet import WebSocketWSGI
from eventlet.websocket import ConnectionClosedError
from eventlet.websocket import RFC6455WebSocket

from ..core.delivery import TokenBucket
from ..settings import Settings

logger = logging.getLogger("gateway")

#: Seconds a hung-up connection's writer has to deliver what is queued (see hang_up).
HANG_UP_GRACE = 5.0


def apply_mask(data: bytes, mask: Any, length: int | None = None, offset: int = 0) -> bytes:
    """XOR ``data`` with the 4-byte WebSocket ``mask`` starting at ``offset``: what
    eventlet's ``_apply_mask`` computes, as one big-integer XOR (~1 ms a MB)."""
    size = len(data) if length is None else length
    if size <= 0:
        return b""
    key = bytes(mask[(offset + i) % 4] for i in range(4))
    key = (key * (size // 4 + 1))[:size]
    value = int.from_bytes(data[:size], "little") ^ int.from_bytes(key, "little")
    return value.to_bytes(size, "little")


class GuardedWebSocket(RFC6455WebSocket):
    """eventlet's RFC 6455 WebSocket with a bounded share for its client (see the module).

    Instances are eventlet's own, their class swapped by :class:`GuardedWebSocketWSGI`
    right after the handshake (eventlet builds them inside a method we would otherwise
    have to copy); :meth:`_guard` sets the extra state.
    """

    _apply_mask = staticmethod(apply_mask)

    _bucket: TokenBucket
    _hung_up: bool

    def _guard(self, rate: float, burst: int) -> None:
        self._bucket = TokenBucket(rate, burst)
        self._hung_up = False

    def _recv_frame(self, message: Any = None) -> Any:
        if self._hung_up:
            raise ConnectionClosedError()
        frame = super()._recv_frame(message)
        if self._bucket.take():
            eventlet.sleep(0)  # the others' turn, even while this client's data waits
        else:
            # Over its rate: stop reading this connection for a while (the kernel's
            # buffers fill and TCP slows the sender down); others run meanwhile.
            eventlet.sleep(1.0 / self._bucket.rate)
        if self._hung_up:
            raise ConnectionClosedError()
        return frame

    def hang_up(self, grace: float = HANG_UP_GRACE) -> None:
        """End the connection: the reader stops at its next frame (nothing more the client
        sends is handled); the writer has ``grace`` seconds to deliver what is queued (the
        ``close`` message after up to GATEWAY_REPLAY_BYTES of commands, to a slow
        reader), then the socket is shut down, so a writer blocked on a client that does
        not read fails and a reader waiting in ``recv`` wakes. The timer holds the
        WebSocket weakly: one closed meanwhile is freed at once."""
        self._hung_up = True
        eventlet.spawn_after(grace, _shut_down, weakref.ref(self))


def _shut_down(ref: weakref.ref[GuardedWebSocket]) -> None:
    websocket = ref()
    if websocket is None:
        return  # closed and freed meanwhile
    try:
        websocket.socket.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass  # closed meanwhile: nothing to do


class GuardedWebSocketWSGI(WebSocketWSGI):
    """Engine.IO's eventlet WebSocket application, handing out :class:`GuardedWebSocket`."""

    rate = 1000.0
    burst = 2000
    max_frame = 128 * 1024
    registry: weakref.WeakValueDictionary[str, GuardedWebSocket]

    def __init__(self, handler: Any, server: Any) -> None:
        super().__init__(handler, server)
        # Engine.IO bounds a frame by its long-polling body bound (1 MB, a POST carries
        # many packets); a frame is one packet: refused (1009) at its header past this.
        self.max_frame_length: int = min(self.max_frame_length, self.max_frame)

    def _handle_hybi_request(self, environ: dict[str, Any]) -> Any:
        ws = super()._handle_hybi_request(environ)
        ws.__class__ = GuardedWebSocket
        ws._guard(self.rate, self.burst)
        eio_sid = environ.get("gateway.eio_sid")  # set at the handshake (gateway.transport.guard)
        if eio_sid is None:  # an upgrade from long-polling names its session
            eio_sid = urllib.parse.parse_qs(environ.get("QUERY_STRING", "")).get("sid", [None])[0]
        if eio_sid is not None:
            self.registry[eio_sid] = ws
        return ws


def install_websocket(eio: Any, rate: float, burst: int,
                      max_frame: int) -> weakref.WeakValueDictionary[str, Any]:
    """Make Engine.IO's eventlet driver use :class:`GuardedWebSocket` (at most ``rate``
    frames a second, ``max_frame`` bytes each); return the live WebSockets by Engine.IO
    sid (for hanging one up)."""
    registry: weakref.WeakValueDictionary[str, Any] = weakref.WeakValueDictionary()
    websocket = type("GatewayWebSocketWSGI", (GuardedWebSocketWSGI,), {
        "rate": rate, "burst": burst, "max_frame": max_frame, "registry": registry})
    # Engine.IO reads its driver's classes from this per-server mapping.
    eio._async = dict(eio._async, websocket=websocket)
    return registry


class HeaderWaits:
    """How many connections are waiting for their request headers, in total and per
    address; beyond either bound a connection is closed instead of waited on."""

    def __init__(self, max_total: int, max_per_address: int) -> None:
        self.max_total = max_total
        self.max_per_address = max_per_address
        self._lock = threading.Lock()
        self._by_address: Counter[str] = Counter()
        self._total = 0
        self.refused = 0

    def enter(self, address: str) -> bool:
        with self._lock:
            if self._total >= self.max_total or self._by_address[address] >= self.max_per_address:
                self.refused += 1
                return False
            self._total += 1
            self._by_address[address] += 1
            return True

    def leave(self, address: str) -> None:
        with self._lock:
            self._total -= 1
            self._by_address[address] -= 1
            if self._by_address[address] <= 0:
                del self._by_address[address]


class DeadlineProtocol(eventlet.wsgi.HttpProtocol):
    """eventlet's HTTP protocol with a deadline and a bound on waiting for headers.

    Each request (the first of a connection, or the next on a kept-alive one) has
    ``header_seconds`` to deliver its request line and headers; past that the connection
    is closed. A new connection is also closed at once when too many new connections
    are already waiting for their first headers (in total, or from its address). Only
    the first request counts there: a kept-alive connection has been served (a
    slowloris client must open new ones), and a proxy's or a NAT's idle keep-alive
    connections, all from one address, must not fill its share. The body and the
    response (a long-poll, a WebSocket) are not limited here.
    """

    header_seconds = 10.0
    waits = HeaderWaits(1024, 64)

    def handle_one_request(self) -> None:
        address = str(self.client_address[0]) if self.client_address else ""
        first = not getattr(self, "_served", False)
        self._served = True
        if first and not self.waits.enter(address):
            self.close_connection = 1
            return
        self._waiting = first
        self._address = address
        timer = self._header_timer = eventlet.Timeout(self.header_seconds)
        try:
            super().handle_one_request()
        except eventlet.Timeout as exc:
            if exc is not timer:
                raise
            self.close_connection = 1
        finally:
            timer.cancel()
            self._done_waiting()

    def parse_request(self) -> bool:
        try:
            return bool(super().parse_request())
        finally:
            self._done_waiting()

    def _done_waiting(self) -> None:
        self._header_timer.cancel()  # the rest of the request has no such deadline
        if getattr(self, "_waiting", False):
            self._waiting = False
            self.waits.leave(self._address)


class _NoDelayListener:
    """A listening socket whose accepted connections have ``TCP_NODELAY`` set.

    eventlet leaves Nagle's algorithm on: a reply written as two frames (a ``commands``
    message, then the event's ack) waits for the client's delayed ACK, ~40 ms a round
    trip. (Linux copies the option from the listener anyway; this also covers the rest.)
    """

    def __init__(self, sock: Any) -> None:
        self._sock = sock

    def accept(self) -> Any:
        # eventlet.wsgi's accept loop never yields while connections wait in the backlog:
        # a ramp of thousands would hold the worker until the last one is accepted.
        eventlet.sleep(0)
        conn, addr = self._sock.accept()
        try:
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:  # not TCP (a Unix socket): nothing to turn off
            pass
        return conn, addr

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)


def serving_options(settings: Settings) -> dict[str, int]:
    """Listen backlog and green-thread pool of the embedded server (gunicorn.conf.py: the same).

    - pool: every WebSocket holds one of eventlet's green threads for its lifetime, and
      eventlet's default pool (1,024) makes the next client hang, unanswered. Sized past
      ``GATEWAY_MAX_SESSIONS`` plus the connections without a session, so a full server
      refuses with ``too_many_sessions`` instead, with room for HTTP requests.
    - backlog: ``socketio.run`` listens with 50, which turns a connection ramp into a
      ~1 s handshake tail (SYNs dropped and retried). The kernel caps it at
      ``net.core.somaxconn``.
    """
    pool = int(settings.MAX_SESSIONS) + 2 * int(settings.MAX_ANONYMOUS) + 1024
    return {"backlog": settings.BACKLOG, "pool": pool}


def serve(app: Any, host: str, port: int, waits: HeaderWaits) -> None:
    """The embedded eventlet server (what ``socketio.run`` does, with serving defaults
    fit for many long-lived WebSockets and hostile clients: see :func:`serving_options`
    and :class:`DeadlineProtocol`); ``waits`` bounds connections waiting for headers."""
    settings: Settings = app.config["GATEWAY"]
    options = serving_options(settings)
    family, _, _, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    listener = eventlet.listen(address, family, backlog=options["backlog"])
    listener.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    protocol = type("GatewayHttpProtocol", (DeadlineProtocol,), {
        "header_seconds": settings.HANDSHAKE_SECONDS, "waits": waits})
    # eventlet's WSGI server defaults to debug=True: a 500 carries the traceback. Its
    # own lines (an app's exception) go through the gateway's logging, escaped and
    # throttled like the rest, not raw to stderr.
    eventlet.wsgi.server(_NoDelayListener(listener), app, log_output=False, debug=False,
                         max_size=options["pool"], protocol=protocol,
                         log=logging.getLogger("gateway.http"))


__all__ = ["DeadlineProtocol", "GuardedWebSocket", "HeaderWaits", "apply_mask",
           "install_websocket", "serve", "serving_options"]
