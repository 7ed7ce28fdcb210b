"""What one connection may cost the worker, enforced on Engine.IO's events.

python-socketio registers three handlers on its Engine.IO server (connect, message,
disconnect); :class:`ConnectionGuard` wraps them (no library code is changed):

- **connect** (the Engine.IO handshake): admitted by :class:`~gateway.core.admission.Admission`
  (connections without a session, bounded in total and per address), else refused (401).
- **message**: what python-socketio would do with a packet, except
  - binary packets are refused (protocol v1 is JSON; python-socketio would buffer any
    number of attachments a BINARY_EVENT header announces);
  - a connection without a session may send a CONNECT and little else: every other
    packet, and each CONNECT, is a strike, and too many close it;
  - a second CONNECT on a connection that has a session is dropped (python-socketio would
    open a second session on it);
  - a packet python-socketio cannot decode is answered by closing nothing and logging
    one line (throttled), instead of a traceback per packet; a session's malformed
    packets count against its event rate (and so its abuse limit);
  - the worker yields every few packets, so a long-polling POST packed with packets
    does not hold it (WebSockets yield per frame in the runtime's WebSocket).
- **disconnect**: the connection is forgotten.

Connections left without a session (never connected, or whose session ended while the
transport stayed open) are closed once ``GATEWAY_HANDSHAKE_SECONDS`` have passed
(:meth:`ConnectionGuard.sweep`, run by the hub every second). A session closed for abuse
(``kicked``) has its transport hung up at once (:meth:`hang_up`).
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable
from collections.abc import MutableMapping
from typing import Any

from ..core.admission import Admission

logger = logging.getLogger("gateway")

#: Packets handled between two yields to the other connections (long-polling POSTs).
YIELD_EVERY = 8

CONNECT, DISCONNECT, EVENT, ACK = "0", "1", "2", "3"


class ConnectionGuard:
    """Bounds what each Engine.IO connection of one Socket.IO server may cost."""

    def __init__(self, server: Any, admission: Admission, sleep: Callable[[float], None],
                 malformed: Callable[[str], object]) -> None:
        """:param server: the python-socketio server.
        :param sleep: the runtime's sleep (0 yields).
        :param malformed: called with a socket.io sid whose session sent an undecodable
            or forbidden packet.
        """
        self.server = server
        self.eio = server.eio
        self.admission = admission
        self._sleep = sleep
        self._malformed = malformed
        self._handled = 0
        #: Connections closed by the guard since start, by why: ``deadline`` (no session
        #: in time), ``strikes`` (sent too much without one), ``abuse`` (its session was
        #: closed ``kicked``).
        self.closed: Counter[str] = Counter()
        self._unpinged: set[str] = set()  # Engine.IO sids whose first ping waits for a session
        #: The runtime's live WebSockets by Engine.IO sid, when it can hang one up
        #: (``hang_up()``): filled by the runtime's WebSocket class.
        self.websockets: MutableMapping[str, Any] = {}

    def install(self) -> None:
        handlers = self.eio.handlers
        inner_connect = handlers["connect"]
        inner_message = handlers["message"]
        inner_disconnect = handlers["disconnect"]

        def on_connect(eio_sid: str, environ: dict[str, Any]) -> Any:
            address = str(environ.get("REMOTE_ADDR") or "")
            if not self.admission.admit(eio_sid, address):
                logger.warning("connection refused: too many connections without a "
                               "session (from %s)", address)
                return False
            environ["gateway.eio_sid"] = eio_sid  # the runtime's WebSocket finds its sid
            accepted = inner_connect(eio_sid, environ)
            if accepted is None or accepted is True:
                self._defer_ping(eio_sid)
            return accepted

        def on_message(eio_sid: str, data: Any) -> Any:
            self._handled += 1
            if self._handled % YIELD_EVERY == 0:
                self._sleep(0)
            kind = data[:1] if isinstance(data, str) else "binary"
            state = self.admission.state(eio_sid)
            if state == "gone":
                return None  # hung up: the rest of its long-polling payload is dropped
            if state == "anonymous":
                # A CONNECT, and little else: each one, and anything else, is a strike.
                if self.admission.strike(eio_sid, connect=kind == CONNECT):
                    logger.info("closing a connection without a session that sent too "
                                "much (from %s)", self._address(eio_sid))
                    self.hang_up(eio_sid, "strikes")
                    return None
                if kind != CONNECT:
                    return None  # python-socketio would drop it too, with a log line
            elif kind == CONNECT or kind not in (EVENT, ACK, DISCONNECT):
                self._refuse(eio_sid, "a second CONNECT, a binary or an unknown packet")
                return None
            try:
                return inner_message(eio_sid, data)
            except (ValueError, TypeError, KeyError, IndexError, AttributeError) as exc:
                # python-socketio could not decode it (it would log a traceback per packet).
                self._refuse(eio_sid, f"an undecodable packet ({exc.__class__.__name__})")
                return None

        def on_disconnect(eio_sid: str, *args: Any) -> Any:
            try:
                return inner_disconnect(eio_sid, *args)
            finally:
                self.admission.gone(eio_sid)
                self.websockets.pop(eio_sid, None)
                self._unpinged.discard(eio_sid)

        self.eio.on("connect", on_connect)
        self.eio.on("message", on_message)
        self.eio.on("disconnect", on_disconnect)

    def _address(self, eio_sid: str) -> str:
        environ = self.server.environ.get(eio_sid) or {}
        return str(environ.get("REMOTE_ADDR") or "")

    def _refuse(self, eio_sid: str, what: str) -> None:
        sid = self.server.manager.sid_from_eio_sid(eio_sid, "/")
        logger.info("connection %s sent %s", sid or eio_sid, what)
        if sid is not None:
            self._malformed(sid)  # counts against the session's event rate
        elif self.admission.strike(eio_sid):
            self.hang_up(eio_sid, "strikes")

    # -- sessions come and go --------------------------------------------------

    def eio_sid(self, sid: str) -> str | None:
        """The Engine.IO sid carrying Socket.IO connection ``sid``."""
        try:
            return self.server.manager.eio_sid_from_sid(sid, "/")
        except (KeyError, AttributeError):
            return None

    def established(self, sid: str) -> None:
        """Connection ``sid`` has a session now: its pings start."""
        eio_sid = self.eio_sid(sid)
        if eio_sid is not None:
            self.admission.established(eio_sid)
            self._start_ping(eio_sid)

    # python-engineio starts a ping task for every connection at its handshake, which
    # sleeps a whole ping interval (25 s) holding the connection before it looks whether
    # it is still open: a client opening and dropping connections as fast as it can (each
    # refused or hung up within milliseconds) kept ~7 KB each alive for 25 s, ~100 MB at
    # the rate one core accepts them. A connection without a session never needs a ping
    # (its deadline, GATEWAY_HANDSHAKE_SECONDS, is shorter), so its first ping is deferred
    # to its session. Through engineio's own ``Socket.last_ping`` / ``schedule_ping()``:
    # ``schedule_ping`` starts the task only when ``last_ping`` is set.

    def _defer_ping(self, eio_sid: str) -> None:
        socket = self.eio.sockets.get(eio_sid)
        if socket is not None and hasattr(socket, "schedule_ping"):
            socket.last_ping = None  # schedule_ping(), next in the handshake, does nothing
            self._unpinged.add(eio_sid)

    def _start_ping(self, eio_sid: str) -> None:
        if eio_sid in self._unpinged:
            self._unpinged.discard(eio_sid)
            socket = self.eio.sockets.get(eio_sid)
            if socket is not None:
                socket.last_ping = time.time()
                socket.schedule_ping()

    def released(self, eio_sid: str | None) -> None:
        """The session on ``eio_sid`` ended; its transport may stay a short while."""
        if eio_sid is not None:
            self.admission.released(eio_sid)

    def hang_up(self, eio_sid: str, why: str = "abuse") -> None:
        """Close the connection now, without waiting for the client to read anything."""
        self.closed[why] += 1
        # The WebSocket first: closing the Engine.IO socket runs the disconnect handler,
        # which forgets it (and its reader would go on draining what the kernel holds).
        websocket = self.websockets.pop(eio_sid, None)
        if websocket is not None:
            websocket.hang_up()
        socket = self.eio.sockets.pop(eio_sid, None)
        if socket is not None:
            socket.close(wait=False, abort=True)
        self.admission.gone(eio_sid)
        self._unpinged.discard(eio_sid)

    def sweep(self) -> None:
        """Close the connections that have had no session for too long."""
        expired = self.admission.expired()
        for eio_sid in expired:
            self.hang_up(eio_sid, "deadline")
            self._sleep(0)  # hundreds may expire together: the others' turn between them
        if expired:
            logger.info("closed %d connection(s) that had no session in time", len(expired))
