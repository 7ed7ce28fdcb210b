"""What one connection may cost, on a real eventlet server: deadlines and bounds for
connections without a session, hanging up abusers, and long-polling payload bounds.

Each test speaks from its own loopback address (127.0.0.x), so the per-address bounds of
one test never meet another's connections.
"""

from __future__ import annotations

import http.client
import json
import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests
import websocket

from tests.helpers.support import ServerProcess
from tests.helpers.support import cookie_header
from tests.helpers.support import login
from tests.helpers.support import running_server
from tests.helpers.support import wait_for

pytestmark = pytest.mark.real

PASSWORD = "guard password 1"


@pytest.fixture(scope="module")
def impatient(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """Connections without a session get one second."""
    with running_server(tmp_path_factory, "guard-impatient", ["alice"], PASSWORD,
                        GATEWAY_HANDSHAKE_SECONDS="1") as proc:
        yield proc


@pytest.fixture(scope="module")
def patient(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A long deadline (nothing expires during a test), tight bounds and limits."""
    with running_server(tmp_path_factory, "guard-patient", ["alice"], PASSWORD,
                        GATEWAY_HANDSHAKE_SECONDS="60", GATEWAY_MAX_ANONYMOUS_PER_ADDRESS="4",
                        GATEWAY_EVENT_RATE="5", GATEWAY_EVENT_BURST="5",
                        GATEWAY_ABUSE_LIMIT="20") as proc:
        yield proc


def metric(server: ServerProcess, name: str, reason: str) -> float:
    """A labelled sample of the server's /metrics."""
    text = requests.get(server.url + "/metrics", timeout=10).text
    line = f'{name}{{reason="{reason}"}} '
    return sum(float(row[len(line):]) for row in text.splitlines() if row.startswith(line))


def raw_socket(server: ServerProcess, source: str) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=10,
                                    source_address=(source, 0))
    return sock


def websocket_from(server: ServerProcess, source: str, cookie: str | None = None
                   ) -> websocket.WebSocket:
    url = f"ws://127.0.0.1:{server.port}/socket.io/?EIO=4&transport=websocket"
    headers = [f"Cookie: {cookie}"] if cookie else []
    ws = websocket.create_connection(url, header=headers, timeout=10,
                                     source_address=(source, 0))
    opened = ws.recv()
    assert opened.startswith("0{"), opened  # Engine.IO OPEN
    return ws


def is_closed(ws: websocket.WebSocket, within: float) -> bool:
    """Read until the server closes the connection (True) or ``within`` s pass (False)."""
    deadline = time.monotonic() + within
    ws.settimeout(0.2)
    while time.monotonic() < deadline:
        try:
            opcode, _ = ws.recv_data(control_frame=True)
        except websocket.WebSocketTimeoutException:
            continue
        except (websocket.WebSocketConnectionClosedException, ConnectionError, OSError):
            return True
        if opcode == websocket.ABNF.OPCODE_CLOSE:
            return True
    return False


def polling(server: ServerProcess, source: str, method: str, query: str,
            body: str | None = None) -> tuple[int, str]:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10,
                                      source_address=(source, 0))
    try:
        conn.request(method, "/socket.io/?EIO=4&transport=polling" + query,
                     body=body.encode() if body is not None else None,
                     headers={"Content-Type": "text/plain;charset=UTF-8"})
        response = conn.getresponse()
        return response.status, response.read().decode("utf-8", "replace")
    finally:
        conn.close()


def handshake(server: ServerProcess, source: str) -> tuple[int, str | None]:
    status, body = polling(server, source, "GET", "")
    if status != 200:
        return status, None
    return status, json.loads(body[1:].split("\x1e")[0])["sid"]


def test_a_websocket_that_never_connects_is_closed_after_the_deadline(impatient):
    ws = websocket_from(impatient, "127.0.0.11")
    started = time.monotonic()
    assert is_closed(ws, within=10)
    assert time.monotonic() - started >= 0.5  # the deadline, not a refusal at once
    assert metric(impatient, "gateway_connections_hung_up_total", "deadline") >= 1


def test_a_polling_connection_that_never_connects_is_closed_after_the_deadline(impatient):
    status, sid = handshake(impatient, "127.0.0.12")
    assert status == 200 and sid
    # A PONG is a valid Engine.IO packet that never reaches Socket.IO: 200 while the
    # connection lives, 400 once the server has closed it.
    wait_for(lambda: polling(impatient, "127.0.0.12", "POST", f"&sid={sid}", "3")[0] == 400,
             10, interval=0.1, message="the connection to be closed")


def test_a_connection_with_a_session_is_not_closed_by_the_deadline(impatient):
    http_session = login(impatient.url, "alice", PASSWORD)
    ws = websocket_from(impatient, "127.0.0.13", cookie_header(http_session))
    ws.send('40{"app":"echo","resume":null}')
    received = [ws.recv() for _ in range(2)]
    assert any(m.startswith('42["session"') for m in received), received
    assert not is_closed(ws, within=2.5)  # well past the one-second deadline
    ws.close()


def test_handshakes_past_the_per_address_bound_are_refused(patient):
    sids = [handshake(patient, "127.0.0.21") for _ in range(4)]
    assert all(status == 200 for status, _ in sids)
    assert handshake(patient, "127.0.0.21")[0] == 401
    assert metric(patient, "gateway_connections_refused_total", "without_session") >= 1
    assert handshake(patient, "127.0.0.22")[0] == 200  # another address has its own room
    for _, sid in sids:  # closing them makes room again
        assert polling(patient, "127.0.0.21", "POST", f"&sid={sid}", "1")[0] == 200
    wait_for(lambda: handshake(patient, "127.0.0.21")[0] == 200, 10, interval=0.1,
             message="room for a new handshake")


def test_connections_past_the_per_address_bound_of_header_waits_are_closed(patient):
    slow = [raw_socket(patient, "127.0.0.31") for _ in range(6)]
    for sock in slow:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")  # and never the end
    # Two are over the bound of four: closed at once (the deadline is a minute away).
    wait_for(lambda: closed_count(slow) == 2, 10, interval=0.05,
             message=f"two of six to be closed (closed: {closed_count(slow)})")
    other = raw_socket(patient, "127.0.0.32")
    other.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    assert other.recv(100).startswith(b"HTTP/1.1 200")  # another address has its own room
    assert closed_count(slow) == 2  # the other four are still waited on
    assert metric(patient, "gateway_connections_refused_total", "header_waits") >= 2
    for sock in [*slow, other]:
        sock.close()


def closed_count(socks: list[socket.socket]) -> int:
    return sum(not waiting(sock) for sock in socks)


def waiting(sock: socket.socket) -> bool:
    """Open, with nothing to read: the server is still waiting for its headers."""
    timeout = sock.gettimeout()
    sock.setblocking(False)  # a socket with a timeout would wait for data to peek at
    try:
        return sock.recv(1, socket.MSG_PEEK) != b""
    except BlockingIOError:
        return True
    except ConnectionError:
        return False
    finally:
        sock.settimeout(timeout)


def test_headers_not_finished_in_time_close_the_connection(impatient):
    sock = raw_socket(impatient, "127.0.0.33")
    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
    started = time.monotonic()
    sock.settimeout(10)
    assert sock.recv(100) == b""
    assert time.monotonic() - started >= 0.5
    sock.close()


def test_an_anonymous_connection_sending_what_it_should_not_is_hung_up(patient):
    ws = websocket_from(patient, "127.0.0.41")
    for i in range(40):  # events with no session: each one a strike
        try:
            ws.send(f'42["event",{{"id":{i},"name":"echo","data":{{}}}}]')
        except (websocket.WebSocketException, OSError):
            break
    assert is_closed(ws, within=5)  # long before the 60 s deadline
    assert metric(patient, "gateway_connections_hung_up_total", "strikes") >= 1


@pytest.mark.parametrize("packet", [
    '42["event",{"id":%d,"name":"echo","data":{"text":"x"}}]',  # valid, over the rate
    '42["event",{"id":"%d"}]',  # malformed events
    '42["ack","%d"]',  # malformed acks
    '42["nope",%d]',  # unknown messages
    '451-["event",{"id":%d,"_placeholder":true,"num":0}]',  # binary events
])
def test_a_flooding_session_is_kicked_and_its_transport_hung_up(patient, packet):
    kicked_before = metric(patient, "gateway_sessions_closed_total", "kicked")
    http_session = login(patient.url, "alice", PASSWORD)
    ws = websocket_from(patient, "127.0.0.51", cookie_header(http_session))
    ws.send('40{"app":"echo","resume":null}')
    messages: list[Any] = []
    for i in range(1, 200):
        try:
            ws.send(packet % i)
        except (websocket.WebSocketException, OSError):
            break  # hung up while flooding
    ws.settimeout(0.5)
    deadline = time.monotonic() + 10
    closed = False
    while time.monotonic() < deadline and not closed:
        try:
            messages.append(ws.recv())
        except websocket.WebSocketTimeoutException:
            continue
        except (websocket.WebSocketException, OSError):
            closed = True
        else:
            closed = messages[-1] == ""
    assert closed, "the flooder's transport is still open"
    # Its session was closed kicked. (The close message itself may be lost: the server
    # stops reading a flooder, and a socket closed with its data unread is reset, which
    # can discard what the client had not read yet. Only a flooder is hung up so.)
    assert metric(patient, "gateway_sessions_closed_total", "kicked") == kicked_before + 1
    closes = [m for m in messages if isinstance(m, str) and m.startswith('42["close"')]
    assert all('"reason":"kicked"' in m for m in closes), closes


def test_a_polling_payload_of_too_many_packets_is_refused(patient):
    status, sid = handshake(patient, "127.0.0.61")
    status, body = polling(patient, "127.0.0.61", "POST", f"&sid={sid}",
                           "\x1e".join(["40"] * 2000))
    assert status == 400 and "Too many packets" in body
    status, body = polling(patient, "127.0.0.61", "POST", f"&sid={sid}",
                           "\x1e".join(['42["ack",{"seq":0}]'] * 100))
    assert status == 200  # a payload within the bound is taken


def test_a_polling_payload_over_the_size_bound_is_answered_at_once(patient):
    # Engine.IO itself would close the socket and wait for a GET to drain it: the POST
    # was never answered.
    status, sid = handshake(patient, "127.0.0.63")
    sock = raw_socket(patient, "127.0.0.63")
    sock.sendall(f"POST /socket.io/?EIO=4&transport=polling&sid={sid} HTTP/1.1\r\n"
                 "Host: x\r\nContent-Type: text/plain\r\nContent-Length: 1000993\r\n\r\n"
                 .encode())  # the body need not even come
    sock.settimeout(10)
    assert sock.recv(100).startswith(b"HTTP/1.1 413")
    sock.close()


def test_a_websocket_frame_over_the_bound_closes_the_connection(patient):
    ws = websocket_from(patient, "127.0.0.64")
    try:
        ws.send("4" + "x" * 200_000)  # one packet: twice the largest event is the bound
    except (websocket.WebSocketException, OSError):
        pass  # closed while sending
    assert is_closed(ws, within=5)


def test_kept_alive_connections_do_not_use_up_the_header_waits_of_their_address(patient):
    # A proxy's (or a NAT's) idle keep-alive connections all come from one address.
    served = []
    for _ in range(6):  # one after the other: a new connection waiting counts, a served one not
        sock = raw_socket(patient, "127.0.0.34")
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        sock.settimeout(10)
        assert sock.recv(1000).startswith(b"HTTP/1.1 200")  # now idle, kept alive
        served.append(sock)
    another = raw_socket(patient, "127.0.0.34")
    another.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    another.settimeout(10)
    assert another.recv(1000).startswith(b"HTTP/1.1 200")  # six idle, bound four: served
    for sock in [*served, another]:
        sock.close()
