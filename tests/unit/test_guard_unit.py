"""ConnectionGuard on a stand-in Engine.IO server (no IO): what it does with each packet
of a connection, and that hanging up reaches the WebSocket."""

from __future__ import annotations

from typing import Any

from gateway.core.admission import STRIKES
from gateway.core.admission import Admission
from gateway.transport.guard import ConnectionGuard


class FakeSocket:
    def __init__(self, eio: FakeEio, sid: str) -> None:
        self.eio, self.sid, self.closed = eio, sid, False
        self.last_ping: float | None = 1.0  # as engineio's handshake leaves it
        self.pings_scheduled = 0

    def schedule_ping(self) -> None:  # engineio's: a task only when last_ping is set
        if self.last_ping:
            self.last_ping = None
            self.pings_scheduled += 1

    def close(self, wait: bool = True, abort: bool = False) -> None:
        self.closed = True
        self.eio.handlers["disconnect"](self.sid, "server disconnect")  # as engineio does


class FakeEio:
    def __init__(self) -> None:
        self.sockets: dict[str, FakeSocket] = {}
        self.handlers: dict[str, Any] = {}
        self.messages: list[tuple[str, Any]] = []
        self.on("connect", lambda sid, environ: None)
        self.on("message", lambda sid, data: self.messages.append((sid, data)))
        self.on("disconnect", lambda sid, reason: None)

    def on(self, name: str, handler: Any) -> None:
        self.handlers[name] = handler


class FakeManager:
    def __init__(self) -> None:
        self.sessions: dict[str, str] = {}  # eio sid -> socket.io sid

    def sid_from_eio_sid(self, eio_sid: str, namespace: str) -> str | None:
        return self.sessions.get(eio_sid)

    def eio_sid_from_sid(self, sid: str, namespace: str) -> str | None:
        return next((e for e, s in self.sessions.items() if s == sid), None)


class FakeServer:
    def __init__(self) -> None:
        self.eio = FakeEio()
        self.manager = FakeManager()
        self.environ: dict[str, dict[str, Any]] = {}


class FakeWebSocket:
    hung_up = False

    def hang_up(self) -> None:
        self.hung_up = True


def make(message: Any = None) -> tuple[ConnectionGuard, FakeServer, list[str]]:
    server, malformed = FakeServer(), []
    if message is not None:
        server.eio.on("message", message)
    guard = ConnectionGuard(server, Admission(10, 10, 10), sleep=lambda s: None,
                            malformed=malformed.append)
    guard.install()
    return guard, server, malformed


def connect(guard: ConnectionGuard, server: FakeServer, sid: str) -> FakeWebSocket:
    environ = {"REMOTE_ADDR": "10.0.0.1"}
    server.eio.sockets[sid] = FakeSocket(server.eio, sid)  # engineio makes it first
    assert server.eio.handlers["connect"](sid, environ) is None
    assert environ["gateway.eio_sid"] == sid
    server.eio.sockets[sid].schedule_ping()  # what engineio's handshake does next
    websocket = guard.websockets[sid] = FakeWebSocket()
    return websocket


def test_hanging_up_reaches_the_websocket_although_the_close_forgets_it():
    guard, server, _ = make()
    websocket = connect(guard, server, "e1")
    guard.hang_up("e1")
    assert websocket.hung_up and server.eio.sockets == {}
    assert guard.admission.state("e1") == "gone" and guard.closed["abuse"] == 1


def test_an_anonymous_connection_may_connect_and_is_hung_up_after_its_strikes():
    guard, server, _ = make()
    websocket = connect(guard, server, "e1")
    server.eio.handlers["message"]("e1", '0{"app":"echo"}')
    assert server.eio.messages == [("e1", '0{"app":"echo"}')]  # a CONNECT goes through
    for _ in range(STRIKES - 2):
        server.eio.handlers["message"]("e1", '2["event",{}]')
    assert not websocket.hung_up and len(server.eio.messages) == 1  # dropped, counted
    server.eio.handlers["message"]("e1", '2["event",{}]')
    assert websocket.hung_up and guard.closed["strikes"] == 1
    server.eio.handlers["message"]("e1", '0{"app":"echo"}')  # the rest of its payload
    assert len(server.eio.messages) == 1


def test_a_session_connection_may_not_connect_again_nor_send_binary():
    guard, server, malformed = make()
    connect(guard, server, "e1")
    server.eio.handlers["message"]("e1", '0{"app":"echo"}')
    server.manager.sessions["e1"] = "s1"
    guard.established("s1")
    for packet in ('0{"app":"echo"}', b"\x00\x01", '51-["event",{}]', "9"):
        server.eio.handlers["message"]("e1", packet)
    server.eio.handlers["message"]("e1", '2["event",{"id":1}]')
    assert malformed == ["s1"] * 4
    assert server.eio.messages[-1] == ("e1", '2["event",{"id":1}]')


def test_an_undecodable_packet_is_counted_not_raised():
    def undecodable(sid: str, data: Any) -> None:
        raise ValueError("Invalid JSON")  # what python-socketio's decoding raises

    guard, server, malformed = make(message=undecodable)
    connect(guard, server, "e1")
    server.manager.sessions["e1"] = "s1"
    guard.established("s1")
    server.eio.handlers["message"]("e1", '2["event",{')
    assert malformed == ["s1"]


def test_a_connection_is_pinged_only_once_it_has_a_session():
    guard, server, _ = make()
    connect(guard, server, "e1")
    socket = server.eio.sockets["e1"]
    assert socket.pings_scheduled == 0 and socket.last_ping is None  # no 25 s ping task
    server.manager.sessions["e1"] = "s1"
    guard.established("s1")
    assert socket.pings_scheduled == 1
    guard.established("s1")  # once only
    assert socket.pings_scheduled == 1
