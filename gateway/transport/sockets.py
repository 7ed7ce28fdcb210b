"""Socket.IO handlers: a thin layer that reads ``request.sid`` and the login and delegates."""

from __future__ import annotations

import io
import logging
from typing import Any

from engineio.payload import Payload
from flask import Flask
from flask import request
from flask_socketio import ConnectionRefusedError  # not the builtin of the same name
from flask_socketio import SocketIO

from auth import login_from_cookie

from ..cluster.connections import Connections
from ..cluster.connections import Refused
from ..core.admission import Admission
from ..core.errors import UNAUTHORIZED
from ..core.errors import error_payload
from ..core.session import SessionUser
from .guard import ConnectionGuard

logger = logging.getLogger("gateway")

#: Packets one long-polling POST may carry. python-engineio's default (16) refuses
#: a burst of events, logs it and answers 200: the client believes they were delivered,
#: and they are lost. Unbounded, one 1 MB POST carries ~58,000 packets, each handled
#: before the worker looks at anything else. Past this bound :class:`EngineGuard`
#: answers 400, so nothing is dropped silently; an honest client never comes near it
#: (events are rate-limited to GATEWAY_EVENT_BURST; acks go one per `commands` message).
MAX_POST_PACKETS = 1024
# (A process-wide class attribute: engineio offers no per-server setting.)
Payload.max_decode_packets = MAX_POST_PACKETS


def _refuse(code: str, message: str) -> ConnectionRefusedError:
    logger.info("connection refused: %s (%s) from %s", code, message,
                request.remote_addr)
    return ConnectionRefusedError(code, error_payload(code, message))


def _info() -> dict[str, Any]:
    return {
        "remote_addr": request.remote_addr,
        "user_agent": request.headers.get("User-Agent", "")[:256],
        "origin": request.headers.get("Origin"),
    }


def install_handlers(app: Flask, socketio: SocketIO, connections: Connections,
                     guard: ConnectionGuard) -> None:
    """Every Socket.IO handler of the gateway, registered here and nowhere else.

    ``connect`` and ``disconnect`` go through Flask-SocketIO (a request context: they
    read the login cookie and the client's address). ``event`` and ``ack`` are the hot
    path and are registered on the python-socketio server itself: Flask-SocketIO would
    build a request context for each (URL matching and the session cookie decoded
    again, about a third of the CPU of an echo), and an echo pays it twice (the event,
    then the client's ack). They need only the connection's sid, and an app context for
    the apps' handlers. Anything else (``*``) counts against the session's event rate
    like any event: a flood of unknown messages meets the rate limit, then the abuse
    limit.
    """
    def on_connect(auth: Any = None) -> None:
        user = login_from_cookie()
        if user is None:
            refused = connections.refuse(UNAUTHORIZED, "Log in before connecting.")
            raise _refuse(refused.code, refused.message)
        user_id, name, is_admin, epoch = user
        session_user = SessionUser(id=str(user_id), name=name, is_admin=is_admin,
                                   auth_epoch=epoch)
        sid: str = request.sid  # type: ignore[attr-defined]
        try:
            connections.connect(sid, session_user, auth, _info())
        except Refused as exc:
            raise _refuse(exc.code, exc.message) from None
        guard.established(sid)

    def on_disconnect(reason: Any = None) -> None:
        connections.disconnect(request.sid)  # type: ignore[attr-defined]
        # The transport may stay open: it is a connection without a session again.
        guard.released(request.environ.get("gateway.eio_sid"))

    def on_event(sid: str, *args: Any) -> dict[str, Any]:
        if len(args) != 1:
            return connections.malformed(sid, 'Send one object: {"id", "name", "data"}.')
        with app.app_context():
            return connections.event(sid, args[0])

    def on_ack(sid: str, *args: Any) -> None:
        connections.ack(sid, args[0] if len(args) == 1 else None)

    def on_other(name: Any, sid: str, *args: Any) -> dict[str, Any]:
        return connections.malformed(
            sid, f"Unknown message {str(name)[:64]!r}: send 'event' or 'ack'.")

    # After init_app, Flask-SocketIO registers on this app's own server.
    socketio.on("connect")(on_connect)
    socketio.on("disconnect")(on_disconnect)
    socketio.server.on("event", on_event, namespace="/")
    socketio.server.on("ack", on_ack, namespace="/")
    socketio.server.on("*", on_other, namespace="/")


class EngineGuard:
    """WSGI middleware in front of Engine.IO that turns two of its failure modes into 400s,
    and keeps WebSockets uncompressed unless compression is enabled.

    - A long-polling POST may only carry MESSAGE, PONG and CLOSE packets. python-engineio
      answers any other (PING, NOOP, OPEN, an unknown type) by closing the socket and
      waiting for a GET to drain its queue: the request hangs, and its green thread is
      lost for good once the sender goes away, so a few thousand such posts exhaust the
      server. They are refused here, before Engine.IO reads them.
    - A request for a session that is already gone makes it raise ``KeyError`` out of the
      WSGI call, which servers answer with a 500 (eventlet's, with the traceback).
    - eventlet's WebSocket server accepts permessage-deflate whenever the client offers it
      (browsers always do): a zlib context per connection, about 2.5 times the memory of
      an idle session and more CPU per frame, for small JSON messages. Unless
      ``compression`` (``GATEWAY_WEBSOCKET_COMPRESSION``) is on, the offer is removed from
      the handshake, and the connection goes on uncompressed as the protocol allows.
    """

    VALID_POST_PACKETS = frozenset("134b")  # CLOSE, PONG, MESSAGE, binary MESSAGE

    def __init__(self, wsgi_app: Any, max_bytes: int, path: str = "/socket.io/",
                 compression: bool = False, admission: Admission | None = None) -> None:
        self.wsgi_app = wsgi_app
        self.max_bytes = max_bytes
        self.path = path
        self.compression = compression
        self.admission = admission

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        if not environ.get("PATH_INFO", "").startswith(self.path):
            return self.wsgi_app(environ, start_response)
        if not self.compression:
            environ.pop("HTTP_SEC_WEBSOCKET_EXTENSIONS", None)
        if self.admission is not None and "sid=" not in environ.get("QUERY_STRING", "") \
                and self.admission.full(str(environ.get("REMOTE_ADDR") or "")):
            # A new handshake that would be refused (too many connections without a
            # session): refused here, before Engine.IO builds a socket for it, so a
            # flood of them costs a lookup each (Engine.IO's refusal is a 401 too).
            self.admission.refused += 1
            start_response("401 UNAUTHORIZED", [
                ("Content-Type", "text/plain"), ("Content-Length", "26"),
                ("Connection", "close")])
            return [b"Too many connections here."]
        if environ.get("REQUEST_METHOD") == "POST":
            problem = self._post_problem(environ)
            if problem is not None:
                logger.info("refused an Engine.IO payload from %s: %s",
                            environ.get("REMOTE_ADDR"), problem.decode())
                return self._bad_request(start_response, problem,
                                         "413 REQUEST ENTITY TOO LARGE"
                                         if problem == b"Payload too large." else None)
        try:
            return self.wsgi_app(environ, start_response)
        except KeyError:
            logger.info("Engine.IO request for a closed session from %s",
                        environ.get("REMOTE_ADDR"))
            return self._bad_request(start_response, b"Session is disconnected.")

    def _post_problem(self, environ: dict[str, Any]) -> bytes | None:
        """Why a long-polling POST must be refused, or None."""
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return b"Malformed Engine.IO payload."
        if length > self.max_bytes:
            # Engine.IO would refuse it by closing the socket with wait=True, which waits
            # for a GET to drain the queue: the POST is never answered (as above).
            return b"Payload too large."
        body = environ["wsgi.input"].read(length)
        environ["wsgi.input"] = io.BytesIO(body)  # Engine.IO reads it again
        if body.count(b"\x1e") >= MAX_POST_PACKETS:
            return b"Too many packets in one payload."
        try:
            packets = body.decode("utf-8").split("\x1e")
        except UnicodeDecodeError:
            return b"Malformed Engine.IO payload."
        if not all(p[:1] in self.VALID_POST_PACKETS for p in packets):
            return b"Malformed Engine.IO payload."
        return None

    @staticmethod
    def _bad_request(start_response: Any, message: bytes,
                     status: str | None = None) -> list[bytes]:
        # Connection: close, so the server need not read a body it refused.
        start_response(status or "400 BAD REQUEST", [
            ("Content-Type", "text/plain"), ("Content-Length", str(len(message))),
            ("Connection", "close")])
        return [message]
