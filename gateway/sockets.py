"""Socket.IO handlers: a thin layer that reads ``request.sid`` and the login and delegates."""

from __future__ import annotations

import io
import logging
from typing import Any

from flask import Flask
from flask import current_app
from flask import request
from flask import session as flask_session
from flask_socketio import ConnectionRefusedError  # not the builtin of the same name
from engineio.payload import Payload

from auth.models import User

from .errors import BAD_REQUEST
from .errors import UNAUTHORIZED
from .errors import error_payload
from .extensions import socketio
from .hub import Hub
from .hub import Refused
from .protocol import failed
from .session import SessionUser

logger = logging.getLogger("gateway")

# python-engineio refuses a long-polling POST of more than 16 packets, logs it and
# answers 200: the client believes a burst of events was delivered, and it is lost.
# The body is already bounded in bytes (max_http_buffer_size), so let that bound
# govern; floods are then answered per event with `rate_limited`, never dropped.
# (A process-wide class attribute: engineio offers no per-server setting.)
Payload.max_decode_packets = 100_000


def _hub() -> Hub:
    return current_app.extensions["gateway"]  # type: ignore[no-any-return]


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


@socketio.on("connect")
def on_connect(auth: Any = None) -> None:
    # The login cookie's "ID:EPOCH" (Flask-Login's key), checked as its user loader
    # does (active, same epoch), with one plain SELECT instead of loading a User.
    login_id = flask_session.get("_user_id")
    row = User.login_row(str(login_id)) if login_id else None
    if row is None:
        refused = _hub().refuse(UNAUTHORIZED, "Log in before connecting.")
        raise _refuse(refused.code, refused.message)
    user_id, name, is_admin, epoch = row
    user = SessionUser(id=str(user_id), name=name, is_admin=is_admin, auth_epoch=epoch)
    try:
        _hub().connect(request.sid, user, auth, _info())  # type: ignore[attr-defined]
    except Refused as exc:
        raise _refuse(exc.code, exc.message) from None


@socketio.on("disconnect")
def on_disconnect(reason: Any = None) -> None:
    _hub().disconnect(request.sid)  # type: ignore[attr-defined]


def install_message_handlers(app: Flask, hub: Hub) -> None:
    """``event`` and ``ack``, registered on the python-socketio server itself.

    They are the hot path: Flask-SocketIO would build a request context for each (URL
    matching and the session cookie decoded again, about a third of the CPU of an echo),
    and an echo pays it twice (the event, then the client's ack). They need only the
    connection's sid, and an app context for the apps' handlers. Connect and disconnect
    keep Flask-SocketIO's layer: they read the login cookie.
    """
    def on_event(sid: str, *args: Any) -> dict[str, Any]:
        if len(args) != 1:
            return failed(BAD_REQUEST, 'Send one object: {"id", "name", "data"}.')
        with app.app_context():
            return hub.event(sid, args[0])

    def on_ack(sid: str, *args: Any) -> None:
        hub.ack(sid, args[0] if len(args) == 1 else None)

    socketio.server.on("event", on_event, namespace="/")
    socketio.server.on("ack", on_ack, namespace="/")


@socketio.on("*")
def on_other(name: Any, *args: Any) -> dict[str, Any]:
    return failed(BAD_REQUEST, f"Unknown message {str(name)[:64]!r}: send 'event' or 'ack'.")


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
                 compression: bool = False) -> None:
        self.wsgi_app = wsgi_app
        self.max_bytes = max_bytes
        self.path = path
        self.compression = compression

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        if not environ.get("PATH_INFO", "").startswith(self.path):
            return self.wsgi_app(environ, start_response)
        if not self.compression:
            environ.pop("HTTP_SEC_WEBSOCKET_EXTENSIONS", None)
        if environ.get("REQUEST_METHOD") == "POST" and not self._valid_post(environ):
            logger.info("malformed Engine.IO payload from %s", environ.get("REMOTE_ADDR"))
            return self._bad_request(start_response, b"Malformed Engine.IO payload.")
        try:
            return self.wsgi_app(environ, start_response)
        except KeyError:
            logger.info("Engine.IO request for a closed session from %s",
                        environ.get("REMOTE_ADDR"))
            return self._bad_request(start_response, b"Session is disconnected.")

    def _valid_post(self, environ: dict[str, Any]) -> bool:
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return False
        if length > self.max_bytes:
            return True  # Engine.IO refuses it by size, without reading it
        body = environ["wsgi.input"].read(length)
        environ["wsgi.input"] = io.BytesIO(body)  # Engine.IO reads it again
        try:
            packets = body.decode("utf-8").split("\x1e")
        except UnicodeDecodeError:
            return False
        return all(p[:1] in self.VALID_POST_PACKETS for p in packets)

    @staticmethod
    def _bad_request(start_response: Any, message: bytes) -> list[bytes]:
        start_response("400 BAD REQUEST", [("Content-Type", "text/plain"),
                                           ("Content-Length", str(len(message)))])
        return [message]
