"""Attack drivers of the hostile suite, and what each must show.

Every attack is a function ``run(target, seconds) -> figures`` (a JSON-able dict) that
runs in its own process (see ``harness.run_attacker``), attacks ``target`` for ``seconds``
and then stops by itself: every loop checks the deadline, every socket operation has a
timeout bounded by it. Each attack also has ``check(figures) -> [failure, ...]`` for its
own figures (the bystander's and the memory's are checked by the harness) and
``summary(figures) -> str`` for the table.

Only loopback: the server's address, and 127.0.0.2-127.0.0.5 as source addresses of
the anonymous attacks (``ATTACK_SOURCES``): the attacker then looks like four hosts other
than the bystander's 127.0.0.1, so a per-address limit meets the attacker, not the
bystander, and a limit that only counts the total would show.

Wire details are written by hand here (WebSocket framing and the Engine.IO/Socket.IO
packets), because a well-behaved client library would not send what attacks send.
"""

from __future__ import annotations

import base64
import itertools
import json
import os
import re
import select
import selectors
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

ATTACK_SOURCES = ("127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5")
WS_PATH = "/socket.io/?EIO=4&transport=websocket"
POLL_PATH = "/socket.io/?EIO=4&transport=polling"
#: Engine.IO's max_http_buffer_size on the server (the gateway: max(1 MB, 2 x event limit)):
#: the largest WebSocket frame and polling body it accepts.
MAX_PAYLOAD = 1_000_000

OP_TEXT, OP_CLOSE, OP_PING, OP_PONG = 0x1, 0x8, 0x9, 0xA


class Refused(Exception):
    """The server refused a handshake (an HTTP status other than the one expected, or it
    closed the connection before the handshake completed)."""


class AttackError(Exception):
    """The attack could not be carried out (not a server failure: a harness problem)."""


@dataclass(frozen=True)
class Target:
    """Where to attack, and the attacker's own account (for the logged-in attacks):
    ``cookie``, when given, is a login made beforehand (the harness logs in before the
    warm-up, so a server still busy with it does not fail the attacker's own login)."""

    host: str
    port: int
    user: str
    password: str
    sources: tuple[str, ...] = ATTACK_SOURCES
    cookie: str | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"


def pace(seconds: float) -> None:
    """Sleep to pace an attack loop (never to wait for something to happen)."""
    if seconds > 0:
        time.sleep(seconds)


# -- WebSocket framing ------------------------------------------------------------------


def mask(payload: bytes, key: bytes) -> bytes:
    """XOR ``payload`` with the 4-byte ``key`` (as a client must): big-int XOR, C speed."""
    n = len(payload)
    if n == 0:
        return b""
    keystream = (key * (n // 4 + 1))[:n]
    return (int.from_bytes(payload, "big") ^ int.from_bytes(keystream, "big")).to_bytes(n, "big")


def client_frame(payload: bytes | str, opcode: int = OP_TEXT, key: bytes | None = None) -> bytes:
    """One final, masked client frame."""
    if isinstance(payload, str):
        payload = payload.encode()
    key = key or os.urandom(4)
    n = len(payload)
    head = bytearray([0x80 | opcode])
    if n < 126:
        head.append(0x80 | n)
    elif n < 65536:
        head.append(0x80 | 126)
        head += n.to_bytes(2, "big")
    else:
        head.append(0x80 | 127)
        head += n.to_bytes(8, "big")
    return bytes(head) + key + mask(payload, key)


class FrameReader:
    """Incremental parser of server frames: ``feed(data)`` -> [(opcode, payload), ...]."""

    def __init__(self) -> None:
        self.buf = bytearray()

    def feed(self, data: bytes) -> list[tuple[int, bytes]]:
        self.buf += data
        frames = []
        buf = self.buf
        while len(buf) >= 2:
            opcode, length, pos = buf[0] & 0x0F, buf[1] & 0x7F, 2
            if length == 126:
                if len(buf) < 4:
                    break
                length, pos = int.from_bytes(buf[2:4], "big"), 4
            elif length == 127:
                if len(buf) < 10:
                    break
                length, pos = int.from_bytes(buf[2:10], "big"), 10
            key = None
            if buf[1] & 0x80:  # servers do not mask, but be lenient
                key, pos = bytes(buf[pos:pos + 4]), pos + 4
            if len(buf) < pos + length:
                break
            payload = bytes(buf[pos:pos + length])
            del buf[:pos + length]
            frames.append((opcode, mask(payload, key) if key else payload))
        return frames


def close_code(payload: bytes) -> int | None:
    return int.from_bytes(payload[:2], "big") if len(payload) >= 2 else None


def upgrade_request(target: Target, cookie: str | None = None) -> bytes:
    key = base64.b64encode(os.urandom(16)).decode()
    lines = [f"GET {WS_PATH} HTTP/1.1", f"Host: {target.host}:{target.port}",
             "Upgrade: websocket", "Connection: Upgrade", f"Sec-WebSocket-Key: {key}",
             "Sec-WebSocket-Version: 13"]
    if cookie:
        lines.append(f"Cookie: {cookie}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _status_of(head: bytes) -> int:
    try:
        return int(head.split(b"\r\n", 1)[0].split()[1])
    except (IndexError, ValueError):
        raise Refused(f"not an HTTP answer: {head[:40]!r}") from None


def _recv_until(sock: socket.socket, buf: bytearray, marker: bytes, deadline: float,
                limit: int = 65536) -> int:
    """Receive into ``buf`` until ``marker`` is in it; return its index."""
    while True:
        at = buf.find(marker)
        if at >= 0:
            return at
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("no answer in time")
        if len(buf) > limit:
            raise Refused("answer too long")
        sock.settimeout(remaining)
        data = sock.recv(65536)
        if not data:
            raise Refused("closed during the handshake")
        buf += data


def ws_open(target: Target, source: str | None = None, cookie: str | None = None,
            timeout: float = 5.0) -> tuple[socket.socket, FrameReader]:
    """A raw WebSocket to Engine.IO, upgraded by hand, its OPEN packet read."""
    deadline = time.monotonic() + timeout
    sock = socket.create_connection((target.host, target.port), timeout=timeout,
                                    source_address=(source, 0) if source else None)
    try:
        sock.sendall(upgrade_request(target, cookie))
        buf = bytearray()
        end = _recv_until(sock, buf, b"\r\n\r\n", deadline)
        status = _status_of(bytes(buf[:end]))
        if status != 101:
            raise Refused(f"HTTP {status}")
        reader = FrameReader()
        frames = reader.feed(bytes(buf[end + 4:]))
        while not any(op == OP_TEXT and p[:1] == b"0" for op, p in frames):
            if any(op == OP_CLOSE for op, _ in frames):
                raise Refused("WebSocket closed before the Engine.IO open packet")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("no Engine.IO open packet in time")
            sock.settimeout(remaining)
            data = sock.recv(65536)
            if not data:
                raise Refused("closed before the Engine.IO open packet")
            frames = reader.feed(data)
        return sock, reader
    except BaseException:
        sock.close()
        raise


def pump(sock: socket.socket, frames: Iterator[bytes], deadline: float,
         reader: FrameReader | None = None) -> tuple[int, int, str | None]:
    """Send ``frames`` back to back as fast as the socket takes them, until the deadline
    or until the server closes. Returns (bytes sent, frames completed, how it closed or
    None): "EOF", "RST", or "ws close CODE" (a close frame, then the connection)."""
    sock.setblocking(False)
    sent = completed = 0
    view = memoryview(next(frames))
    offset = 0
    closed_with: str | None = None
    while True:
        now = time.monotonic()
        if now >= deadline:
            return sent, completed, closed_with
        try:
            readable, writable, _ = select.select([sock], [sock], [], min(0.1, deadline - now))
        except (OSError, ValueError):
            return sent, completed, closed_with or "RST"
        if readable:
            try:
                data = sock.recv(65536)
            except BlockingIOError:
                data = None
            except OSError:
                return sent, completed, closed_with or "RST"
            if data == b"":
                return sent, completed, closed_with or "EOF"
            if data and reader is not None:
                for op, payload in reader.feed(data):
                    if op == OP_CLOSE and closed_with is None:
                        closed_with = f"ws close {close_code(payload)}"
        if writable:
            try:
                n = sock.send(view[offset:])
            except BlockingIOError:
                continue
            except OSError:
                return sent, completed, closed_with or "RST"
            sent += n
            offset += n
            if offset == len(view):
                completed += 1
                view, offset = memoryview(next(frames)), 0


# -- HTTP/1.1 by hand (keep-alive, source addresses, no library overhead) ---------------


def parse_response(buf: bytearray) -> tuple[int, dict[str, str], bytes, int] | None:
    """(status, headers, body, bytes used) of the first complete response in ``buf``."""
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        return None
    lines = bytes(buf[:end]).decode("latin-1").split("\r\n")
    status = _status_of(lines[0].encode("latin-1"))
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    pos = end + 4
    if "content-length" in headers:
        length = int(headers["content-length"])
        if len(buf) < pos + length:
            return None
        return status, headers, bytes(buf[pos:pos + length]), pos + length
    if "chunked" in headers.get("transfer-encoding", "").lower():
        body = bytearray()
        while True:
            line_end = buf.find(b"\r\n", pos)
            if line_end < 0:
                return None
            size = int(bytes(buf[pos:line_end]).split(b";")[0] or b"0", 16)
            pos = line_end + 2
            if len(buf) < pos + size + 2:
                return None
            body += buf[pos:pos + size]
            pos += size + 2
            if size == 0:
                return status, headers, bytes(body), pos
    return status, headers, b"", pos  # no body we can delimit (none expected here)


class ConnectionClosed(Exception):
    """The server closed the connection (or reset it) before a complete answer."""


class HTTPConnection:
    """One keep-alive HTTP/1.1 connection from ``source``."""

    def __init__(self, target: Target, source: str | None = None, timeout: float = 5.0,
                 cookie: str | None = None) -> None:
        self.target, self.cookie = target, cookie
        self.sock = socket.create_connection((target.host, target.port), timeout=timeout,
                                             source_address=(source, 0) if source else None)
        self.buf = bytearray()
        self.closed = False

    def request(self, method: str, path: str, body: bytes = b"",
                timeout: float = 5.0) -> tuple[int, dict[str, str], bytes]:
        deadline = time.monotonic() + timeout
        head = [f"{method} {path} HTTP/1.1", f"Host: {self.target.host}:{self.target.port}",
                "Connection: keep-alive"]
        if self.cookie:
            head.append(f"Cookie: {self.cookie}")
        if method == "POST":
            head += ["Content-Type: text/plain;charset=UTF-8", f"Content-Length: {len(body)}"]
        data = ("\r\n".join(head) + "\r\n\r\n").encode() + body
        try:
            early = self._send(data, deadline)
            if early is not None:
                return early
            while True:
                parsed = parse_response(self.buf)
                if parsed is not None:
                    status, headers, payload, used = parsed
                    del self.buf[:used]
                    return status, headers, payload
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"no answer within {timeout:.1f} s")
                self.sock.settimeout(remaining)
                chunk = self.sock.recv(262144)
                if not chunk:
                    raise ConnectionClosed("EOF")
                self.buf += chunk
        except (ConnectionResetError, BrokenPipeError) as exc:
            raise ConnectionClosed(type(exc).__name__) from None

    def _send(self, data: bytes, deadline: float) -> tuple[int, dict[str, str], bytes] | None:
        """Send ``data`` while reading: a server may answer (and stop reading) before the
        body is all sent, as it may for an over-sized one. Returns such an early answer
        (the connection is then closed: the rest of the body was never sent)."""
        view, offset = memoryview(data), 0
        self.sock.setblocking(False)
        try:
            while offset < len(view):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError("the server did not take the request in time")
                readable, writable, _ = select.select([self.sock], [self.sock], [],
                                                      min(remaining, 0.5))
                if readable:
                    chunk = self.sock.recv(262144)
                    if not chunk:
                        raise ConnectionClosed("EOF while sending")
                    self.buf += chunk
                    parsed = parse_response(self.buf)
                    if parsed is not None:
                        self.close()
                        return parsed[:3]
                if writable:
                    try:
                        offset += self.sock.send(view[offset:])
                    except BlockingIOError:
                        pass
            return None
        finally:
            if self.sock.fileno() >= 0:
                self.sock.setblocking(True)

    def close(self) -> None:
        self.closed = True
        self.sock.close()


def open_polling(conn: HTTPConnection, timeout: float) -> tuple[int, str | None]:
    """An Engine.IO polling handshake: (status, sid or None)."""
    status, _, body = conn.request("GET", POLL_PATH, timeout=timeout)
    if status != 200:
        return status, None
    text = body.decode("utf-8", "replace")
    try:
        return status, json.loads(text[text.index("{"):])["sid"]
    except (ValueError, KeyError):
        return status, None


def login_cookie(target: Target) -> str:
    """The attacker's login cookie: ``target.cookie``, or log in through the real form
    (GET /login for the CSRF token, POST it)."""
    from tests.helpers.support import cookie_header
    from tests.helpers.support import login

    return target.cookie or cookie_header(login(target.url, target.user, target.password))


# -- 1. ws_firehose ---------------------------------------------------------------------

FIREHOSE_MESSAGE = '42["x"]'  # an Engine.IO MESSAGE carrying a Socket.IO EVENT, never CONNECTed
FIREHOSE_FRAMES = 1000  # frames per prebuilt buffer


def ws_firehose(target: Target, seconds: float) -> dict[str, Any]:
    """One anonymous raw WebSocket (no cookie, no Socket.IO CONNECT) sending small masked
    frames back to back as fast as the socket takes them; reconnects if closed."""
    deadline = time.monotonic() + seconds
    frame = client_frame(FIREHOSE_MESSAGE)
    chunk = frame * FIREHOSE_FRAMES
    fig: dict[str, Any] = {"connections": 0, "refused": 0, "server_closes": Counter(),
                           "bytes": 0, "frame_bytes": len(frame)}
    while time.monotonic() < deadline:
        try:
            sock, reader = ws_open(target, source=target.sources[0],
                                   timeout=min(5.0, max(0.1, deadline - time.monotonic())))
        except (OSError, Refused):
            fig["refused"] += 1
            pace(0.05)  # paces reconnects to a refusing server
            continue
        fig["connections"] += 1
        with sock:
            sent, _, closed = pump(sock, itertools.repeat(chunk), deadline, reader)
        fig["bytes"] += sent
        if closed:
            fig["server_closes"][closed] += 1
    # written to the socket (the server may drop the rest)
    fig["frames"] = fig["bytes"] // len(frame)
    fig["frames_per_s"] = round(fig["frames"] / seconds)
    fig["server_closes"] = dict(fig["server_closes"])
    return fig


def ws_firehose_check(fig: dict[str, Any]) -> list[str]:
    return [] if fig["frames"] > 0 else ["the firehose sent no frame at all"]


def ws_firehose_summary(fig: dict[str, Any]) -> str:
    closes = sum(fig["server_closes"].values())
    return (f"{fig['frames']:,} frames written ({fig['frames_per_s']:,}/s), "
            f"{fig['connections']} conn, {closes} closed by server "
            f"{fig['server_closes'] or ''}, {fig['refused']} refused")


# -- 2. ws_big_frames -------------------------------------------------------------------

BIG_FRAME_BYTES = MAX_PAYLOAD - 1000  # just under the limit
OVERSIZE_FRAME_BYTES = MAX_PAYLOAD + 1  # just above it
BIG_CONNECTIONS = 2
OVERSIZE_EVERY = 10  # of every 10 frames of a connection, the 3rd is the oversized one


def engineio_message_of(size: int) -> bytes:
    """A ``42["x","aaa..."]`` message of exactly ``size`` bytes."""
    prefix, suffix = b'42["x","', b'"]'
    return prefix + b"a" * (size - len(prefix) - len(suffix)) + suffix


def ws_big_frames(target: Target, seconds: float) -> dict[str, Any]:
    """Anonymous WebSockets sending ~1 MB masked frames back to back, one in ten (the
    third) just above the server's limit; each reconnects if closed."""
    deadline = time.monotonic() + seconds
    big = client_frame(engineio_message_of(BIG_FRAME_BYTES))
    over = client_frame(engineio_message_of(OVERSIZE_FRAME_BYTES))
    lock = threading.Lock()
    fig: dict[str, Any] = {"connections": 0, "refused": 0, "server_closes": Counter(),
                           "bytes": 0, "frames_completed": 0, "big_started": 0,
                           "oversize_started": 0, "big_frame_bytes": len(big),
                           "oversize_frame_bytes": len(over)}

    def frames() -> Iterator[bytes]:
        for i in itertools.count(1):
            oversize = i % OVERSIZE_EVERY == 3
            with lock:
                fig["oversize_started" if oversize else "big_started"] += 1
            yield over if oversize else big

    def connection(source: str) -> None:
        while time.monotonic() < deadline:
            try:
                sock, reader = ws_open(target, source=source,
                                       timeout=min(5.0, max(0.1, deadline - time.monotonic())))
            except (OSError, Refused):
                with lock:
                    fig["refused"] += 1
                pace(0.05)  # paces reconnects to a refusing server
                continue
            with sock:
                sent, completed, closed = pump(sock, frames(), deadline, reader)
            with lock:
                fig["connections"] += 1
                fig["bytes"] += sent
                fig["frames_completed"] += completed
                if closed:
                    fig["server_closes"][closed] += 1

    threads = [threading.Thread(target=connection, args=(target.sources[i % len(target.sources)],),
                                daemon=True) for i in range(BIG_CONNECTIONS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(max(0.1, deadline - time.monotonic()) + 10)
    fig["mb_sent"] = round(fig["bytes"] / 1e6, 1)
    fig["server_closes"] = dict(fig["server_closes"])
    return fig


def ws_big_frames_check(fig: dict[str, Any]) -> list[str]:
    return [] if fig["frames_completed"] > 0 else ["no big frame was sent completely"]


def ws_big_frames_summary(fig: dict[str, Any]) -> str:
    closes = sum(fig["server_closes"].values())
    return (f"{fig['mb_sent']:,} MB sent, {fig['frames_completed']} frames completed, "
            f"{fig['oversize_started']} oversize begun, {closes} closed by server "
            f"{fig['server_closes'] or ''}".rstrip())


# -- 3. logged_in_flood -----------------------------------------------------------------

FLOOD_BATCH = 200


def flood_frames(first_id: int, count: int) -> bytes:
    """``count`` echo events with ack ids, ids from ``first_id``, as masked frames."""
    key = os.urandom(4)
    return b"".join(
        client_frame(f'42{i}["event",{{"id":{i},"name":"echo","data":{{"text":"f"}}}}]', key=key)
        for i in range(first_id, first_id + count))


def logged_in_flood(target: Target, seconds: float) -> dict[str, Any]:
    """A logged-in raw WebSocket on ``echo`` sending events as fast as it can until it is
    kicked, then more raw frames on the same transport for the rest of the time."""
    deadline = time.monotonic() + seconds
    cookie = login_cookie(target)
    sock, reader = ws_open(target, cookie=cookie, timeout=5)
    fig: dict[str, Any] = {"events_before_kick": 0, "frames_after_kick": 0, "kicked": False,
                           "close_reason": None, "kicked_after_s": None,
                           "socketio_disconnect": False, "transport_closed": None,
                           "transport_closed_after_kick_s": None, "acks_ok": 0,
                           "acks_refused": 0}
    state: dict[str, float | None] = {"kicked_at": None, "closed_at": None}
    session_seen = threading.Event()
    stop = threading.Event()

    def on_text(text: str) -> None:
        if text.startswith('42["session"'):
            session_seen.set()
        elif text.startswith('42["close"'):
            try:
                fig["close_reason"] = json.loads(text[2:])[1].get("reason")
            except (ValueError, IndexError, AttributeError):
                fig["close_reason"] = text[:80]
            if fig["close_reason"] == "kicked" and state["kicked_at"] is None:
                state["kicked_at"] = time.monotonic()
                fig["kicked"] = True
        elif text.startswith("43"):
            if '"ok":true' in text:
                fig["acks_ok"] += 1
            else:
                fig["acks_refused"] += 1
        elif text.startswith("41"):
            fig["socketio_disconnect"] = True

    def read() -> None:
        while not stop.is_set():
            try:
                data = sock.recv(262144)
            except TimeoutError:
                continue
            except OSError:
                data, how = b"", "RST"
            else:
                how = "EOF"
            if not data:
                state["closed_at"] = time.monotonic()
                fig["transport_closed"] = how
                return
            for op, payload in reader.feed(data):
                if op == OP_TEXT:
                    on_text(payload.decode("utf-8", "replace"))
                elif op == OP_CLOSE and fig["transport_closed"] is None:
                    fig["ws_close_code"] = close_code(payload)

    sock.settimeout(0.2)  # both threads: recv and send wake up to check the deadline
    reader_thread = threading.Thread(target=read, daemon=True)
    reader_thread.start()
    try:
        sock.sendall(client_frame('40{"app":"echo","resume":null}'))
        if not session_seen.wait(min(5.0, max(0.1, deadline - time.monotonic()))):
            raise AttackError("no session message after the CONNECT")
        connected_at = time.monotonic()
        next_id = 1
        while time.monotonic() < deadline and state["closed_at"] is None:
            view = memoryview(flood_frames(next_id, FLOOD_BATCH))
            kicked_before = state["kicked_at"] is not None
            next_id += FLOOD_BATCH
            offset = 0
            while offset < len(view) and time.monotonic() < deadline:
                try:
                    offset += sock.send(view[offset:])
                except TimeoutError:
                    continue
                except OSError:
                    break
            if offset < len(view):
                break
            fig["frames_after_kick" if kicked_before else "events_before_kick"] += FLOOD_BATCH
        if state["kicked_at"] is not None:
            fig["kicked_after_s"] = round(state["kicked_at"] - connected_at, 3)
    finally:
        stop.set()
        reader_thread.join(2)
        sock.close()
    if state["closed_at"] is not None and state["kicked_at"] is not None:
        fig["transport_closed_after_kick_s"] = round(state["closed_at"] - state["kicked_at"], 3)
    return fig


def logged_in_flood_check(fig: dict[str, Any]) -> list[str]:
    failures = []
    if not fig["kicked"]:
        failures.append(f"the flooder was not kicked (close reason {fig['close_reason']!r}, "
                        f"{fig['events_before_kick']:,} events sent)")
    if fig["transport_closed"] is None:
        failures.append(
            f"the flooder's transport stayed open: no EOF/RST within the run "
            f"({fig['frames_after_kick']:,} frames sent after the kick were taken; "
            f"Socket.IO DISCONNECT {'seen' if fig['socketio_disconnect'] else 'not seen'})")
    return failures


def logged_in_flood_summary(fig: dict[str, Any]) -> str:
    kicked = (f"kicked after {fig['kicked_after_s']} s / {fig['events_before_kick']:,} events"
              if fig["kicked"] else f"NOT kicked ({fig['events_before_kick']:,} events)")
    if fig["transport_closed"]:
        after = fig["transport_closed_after_kick_s"]
        closed = f"transport {fig['transport_closed']}" + (
            f" {after} s after" if after is not None else "")
    else:
        closed = "transport NOT closed"
    return f"{kicked}; {closed}; {fig['frames_after_kick']:,} frames sent after kick"


# -- 4. polling_packed ------------------------------------------------------------------

PACKED_CONNECTS = 58_000
CONNECT_PACKET = '40{"app":"echo"}'
POST_GRACE = 5.0  # a POST may take this long past the end of the run before it is unanswered


def _packed(packets: Iterator[str], limit: int) -> bytes:
    out, size = [], -1
    for p in packets:
        if size + 1 + len(p) > limit:
            break
        out.append(p)
        size += 1 + len(p)
    return "\x1e".join(out).encode()


def events_body(first_id: int) -> bytes:
    """Echo events with ids from ``first_id``, packed to just under the size limit."""
    events = (f'42["event",{{"id":{i},"name":"echo","data":{{"text":"p"}}}}]'
              for i in itertools.count(first_id))
    return _packed(events, MAX_PAYLOAD - 100)


def packed_bodies() -> dict[str, bytes]:
    """The POST bodies: 58,000 CONNECTs (~1 MB), events and acks packed to just under the
    limit, and CONNECTs packed to just above it."""
    acks = (f'42["ack",{{"seq":{i}}}]' for i in itertools.count(1))
    return {
        "connects": "\x1e".join([CONNECT_PACKET] * PACKED_CONNECTS).encode(),
        "events": events_body(1),
        "acks": _packed(acks, MAX_PAYLOAD - 100),
        "oversize": _packed(itertools.repeat(CONNECT_PACKET), MAX_PAYLOAD + 1000),
    }


def polling_packed(target: Target, seconds: float) -> dict[str, Any]:
    """Engine.IO polling sessions (two anonymous, one logged in) POSTing ~1 MB bodies
    packed with CONNECT, event and ack packets (and one just over the size limit), again
    and again; never a GET after the handshake."""
    deadline = time.monotonic() + seconds
    cookie = login_cookie(target)
    lock = threading.Lock()
    fig: dict[str, Any] = {"posts": 0, "statuses": Counter(), "unanswered": Counter(),
                           "handshakes": Counter(), "setup_failures": Counter(),
                           "packets_posted": 0, "max_post_s": 0.0, "by_kind": {}}

    def record(kind: str, outcome: str, took: float, packets: int) -> None:
        with lock:
            fig["posts"] += 1
            fig["packets_posted"] += packets
            fig["max_post_s"] = max(fig["max_post_s"], round(took, 3))
            kinds = fig["by_kind"].setdefault(kind, Counter())
            kinds[outcome] += 1
            if outcome.isdigit():
                fig["statuses"][outcome] += 1
            else:
                fig["unanswered"][outcome] += 1

    def worker(source: str | None, logged_in: bool, order: list[str]) -> None:
        conn: HTTPConnection | None = None
        sid: str | None = None
        next_id = 1
        kinds = itertools.cycle(order)
        while time.monotonic() < deadline:
            step = "connect"
            try:
                if conn is None or conn.closed:  # (closed after an early answer)
                    sid = None
                    conn = HTTPConnection(target, source, timeout=5,
                                          cookie=cookie if logged_in else None)
                if sid is None:
                    step = "handshake"
                    status, sid = open_polling(
                        conn, timeout=max(0.1, deadline - time.monotonic()) + POST_GRACE)
                    with lock:
                        fig["handshakes"][str(status)] += 1
                    if sid is None:
                        pace(0.05)  # paces handshakes to a refusing server
                        continue
                    if logged_in:
                        step = "connect packet"
                        conn.request("POST", f"{POLL_PATH}&sid={sid}",
                                     b'40{"app":"echo","resume":null}',
                                     timeout=max(0.1, deadline - time.monotonic()) + POST_GRACE)
                kind = next(kinds)
                body = events_body(next_id) if kind == "events" else bodies[kind]
                packets = body.count(b"\x1e") + 1
                next_id += packets
                step = "post"
                started = time.monotonic()
                try:
                    status, _, _ = conn.request(
                        "POST", f"{POLL_PATH}&sid={sid}", body,
                        timeout=max(0.1, deadline - started) + POST_GRACE)
                except TimeoutError:
                    record(kind, "timeout", time.monotonic() - started, packets)
                    raise
                except (ConnectionClosed, OSError) as exc:
                    record(kind, f"closed ({type(exc).__name__} {exc})"[:60],
                           time.monotonic() - started, packets)
                    raise
                record(kind, str(status), time.monotonic() - started, packets)
                if status != 200:
                    sid = None  # a refused body may end the Engine.IO session: start again
            except (OSError, ConnectionClosed, Refused) as exc:
                if step != "post":  # the POST's own outcome is recorded above
                    with lock:
                        fig["setup_failures"][f"{step}: {type(exc).__name__}"] += 1
                if conn is not None:
                    conn.close()
                conn, sid = None, None
                pace(0.05)  # paces reconnects
        if conn is not None:
            conn.close()

    bodies = packed_bodies()
    workers = [
        threading.Thread(target=worker, args=(target.sources[0], False,
                                              ["connects", "events", "acks", "oversize"]),
                         daemon=True),
        threading.Thread(target=worker, args=(target.sources[1], False,
                                              ["acks", "connects", "events"]), daemon=True),
        threading.Thread(target=worker, args=(None, True,
                                              ["events", "connects", "acks", "oversize"]),
                         daemon=True),
    ]
    for t in workers:
        t.start()
    for t in workers:
        t.join(max(0.1, deadline - time.monotonic()) + POST_GRACE + 10)
    fig["statuses"] = dict(fig["statuses"])
    fig["unanswered"] = dict(fig["unanswered"])
    fig["handshakes"] = dict(fig["handshakes"])
    fig["setup_failures"] = dict(fig["setup_failures"])
    fig["by_kind"] = {k: dict(v) for k, v in fig["by_kind"].items()}
    fig["body_bytes"] = {k: len(v) for k, v in bodies.items()}
    return fig


def polling_packed_check(fig: dict[str, Any]) -> list[str]:
    failures = []
    if fig["posts"] == 0:
        failures.append(f"no packed POST could be sent (handshakes {fig['handshakes']}, "
                        f"failed before posting: {fig['setup_failures']})")
    unanswered = sum(fig["unanswered"].values())
    if unanswered:
        failures.append(f"{unanswered} of {fig['posts']} POSTs got no answer "
                        f"({fig['unanswered']}; each had the run plus {POST_GRACE:.0f} s)")
    errors = {s: n for s, n in fig["statuses"].items() if int(s) >= 500}
    if errors:
        failures.append(f"{sum(errors.values())} of {fig['posts']} POSTs answered >= 500: {errors}")
    return failures


def polling_packed_summary(fig: dict[str, Any]) -> str:
    unanswered = sum(fig["unanswered"].values())
    setup = f"; failed before posting {fig['setup_failures']}" if fig["setup_failures"] else ""
    return (f"{fig['posts']} POSTs ({fig['packets_posted']:,} packets): status {fig['statuses']}, "
            f"{unanswered} unanswered, slowest {fig['max_post_s']} s{setup}")


# -- 5. slowloris, 6. idle_websockets (many sockets, one thread, selectors) --------------

SWARM_CONNECTIONS = 2000
TRICKLE_SECONDS = 3.0  # slowloris: one byte per connection this often
SLOW_HEAD = (b"GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\n"
             b"Host: 127.0.0.1\r\nUser-Agent: slowloris\r\nX-Slow: ")
REFUSED_WITHIN = 1.0  # a close this soon after connecting counts as a refusal


def _nonblocking_connect(target: Target, source: str) -> tuple[socket.socket, int]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setblocking(False)
    sock.bind((source, 0))
    return sock, sock.connect_ex((target.host, target.port))


def _connected(sock: socket.socket) -> bool:
    return sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0


def slowloris(target: Target, seconds: float) -> dict[str, Any]:
    """2,000 TCP connections that send a partial request header, then one byte every
    few seconds, never finishing it."""
    deadline = time.monotonic() + seconds
    sel = selectors.DefaultSelector()
    fig: dict[str, Any] = {"attempted": 0, "connected": 0, "connect_failed": 0,
                           "never_connected": 0, "closed_by_server": 0, "refused_at_once": 0,
                           "answered": Counter(), "still_open": 0, "bytes_trickled": 0}
    conns: dict[int, dict[str, Any]] = {}

    def close(c: dict[str, Any], by_server: bool) -> None:
        sel.unregister(c["sock"])
        c["sock"].close()
        del conns[id(c)]
        if by_server:
            fig["closed_by_server"] += 1
            if time.monotonic() - c["connected_at"] <= REFUSED_WITHIN:
                fig["refused_at_once"] += 1

    try:
        for i in range(SWARM_CONNECTIONS):
            fig["attempted"] += 1
            try:
                sock, err = _nonblocking_connect(target, target.sources[i % len(target.sources)])
            except OSError:
                fig["connect_failed"] += 1
                continue
            if err not in (0, 115):  # 115: EINPROGRESS
                sock.close()
                fig["connect_failed"] += 1
                continue
            c = {"sock": sock, "state": "connecting", "connected_at": 0.0,
                 "next_byte_at": 0.0, "i": i, "answer": b""}
            conns[id(c)] = c
            sel.register(sock, selectors.EVENT_WRITE, c)
        last_trickle = 0.0
        while conns and time.monotonic() < deadline:
            wait = min(0.1, max(0.0, deadline - time.monotonic()))
            for key, events in sel.select(timeout=wait):
                c = key.data
                if id(c) not in conns:
                    continue
                if c["state"] == "connecting":
                    if not _connected(c["sock"]):
                        sel.unregister(c["sock"])
                        c["sock"].close()
                        del conns[id(c)]
                        fig["connect_failed"] += 1
                        continue
                    fig["connected"] += 1
                    now = time.monotonic()
                    c["state"], c["connected_at"] = "trickling", now
                    # staggered, so 2,000 trickles do not all land in the same instant
                    c["next_byte_at"] = now + TRICKLE_SECONDS * (1 + (c["i"] % 30) / 30)
                    try:
                        c["sock"].send(SLOW_HEAD)
                    except OSError:
                        close(c, True)
                        continue
                    sel.modify(c["sock"], selectors.EVENT_READ, c)
                elif events & selectors.EVENT_READ:
                    try:
                        data = c["sock"].recv(4096)
                    except BlockingIOError:
                        continue
                    except OSError:
                        data = b""
                    if data and not c["answer"]:
                        c["answer"] = data
                        fig["answered"][data.split(b"\r\n", 1)[0][:40].decode("latin-1")] += 1
                    if not data:
                        close(c, True)
            now = time.monotonic()
            if now - last_trickle >= 0.1:  # the trickle: at most every 100 ms, bytes due
                last_trickle = now
                for c in list(conns.values()):
                    if c["state"] == "trickling" and c["next_byte_at"] <= now:
                        c["next_byte_at"] = now + TRICKLE_SECONDS
                        try:
                            c["sock"].send(b"a")
                            fig["bytes_trickled"] += 1
                        except BlockingIOError:
                            pass
                        except OSError:
                            close(c, True)
        for c in conns.values():
            if c["state"] == "connecting":
                fig["never_connected"] += 1
            else:
                fig["still_open"] += 1
    finally:
        for c in list(conns.values()):
            c["sock"].close()
        sel.close()
    fig["answered"] = dict(fig["answered"])
    return fig


def _most(closed_or_refused: int, attempted: int, what: str) -> list[str]:
    if attempted == 0:
        return [f"no {what} was attempted"]
    if closed_or_refused * 2 <= attempted:
        need = attempted // 2 + 1
        return [f"the server closed or refused {closed_or_refused:,} of {attempted:,} {what} "
                f"(needs most: >= {need:,}; short by {need - closed_or_refused:,})"]
    return []


def slowloris_check(fig: dict[str, Any]) -> list[str]:
    closed = fig["connect_failed"] + fig["never_connected"] + fig["closed_by_server"]
    return _most(closed, fig["attempted"], "slowloris connections")


def slowloris_summary(fig: dict[str, Any]) -> str:
    return (f"{fig['attempted']:,} conns: {fig['closed_by_server']:,} closed by server "
            f"({fig['refused_at_once']:,} within {REFUSED_WITHIN:.0f} s), "
            f"{fig['connect_failed'] + fig['never_connected']:,} refused at connect, "
            f"{fig['still_open']:,} still open at the end")


def idle_websockets(target: Target, seconds: float) -> dict[str, Any]:
    """2,000 anonymous WebSockets that complete the Engine.IO handshake and then only
    answer the server's pings, never sending a Socket.IO CONNECT."""
    deadline = time.monotonic() + seconds
    sel = selectors.DefaultSelector()
    pong = client_frame("3")
    fig: dict[str, Any] = {"attempted": 0, "opened": 0, "connect_failed": 0,
                           "refused_http": Counter(), "closed_before_open": 0,
                           "never_completed": 0, "closed_after_open": 0, "still_open": 0,
                           "open_peak": 0, "pings_answered": 0}
    conns: dict[int, dict[str, Any]] = {}
    open_now = 0

    def drop(c: dict[str, Any]) -> None:
        nonlocal open_now
        sel.unregister(c["sock"])
        c["sock"].close()
        del conns[id(c)]
        if c["state"] == "open":
            open_now -= 1
            fig["closed_after_open"] += 1
        elif c["state"] != "connecting":
            fig["closed_before_open"] += 1

    try:
        for i in range(SWARM_CONNECTIONS):
            fig["attempted"] += 1
            try:
                sock, err = _nonblocking_connect(target, target.sources[i % len(target.sources)])
            except OSError:
                fig["connect_failed"] += 1
                continue
            if err not in (0, 115):
                sock.close()
                fig["connect_failed"] += 1
                continue
            c = {"sock": sock, "state": "connecting", "buf": bytearray(), "reader": FrameReader()}
            conns[id(c)] = c
            sel.register(sock, selectors.EVENT_WRITE, c)
        while conns and time.monotonic() < deadline:
            wait = min(0.1, max(0.0, deadline - time.monotonic()))
            for key, _events in sel.select(timeout=wait):
                c = key.data
                if id(c) not in conns:
                    continue
                if c["state"] == "connecting":
                    if not _connected(c["sock"]):
                        sel.unregister(c["sock"])
                        c["sock"].close()
                        del conns[id(c)]
                        fig["connect_failed"] += 1
                        continue
                    try:
                        c["sock"].send(upgrade_request(target))
                    except OSError:
                        c["state"] = "upgrading"
                        drop(c)
                        continue
                    c["state"] = "upgrading"
                    sel.modify(c["sock"], selectors.EVENT_READ, c)
                    continue
                try:
                    data = c["sock"].recv(65536)
                except BlockingIOError:
                    continue
                except OSError:
                    data = b""
                if not data:
                    drop(c)
                    continue
                if c["state"] == "upgrading":
                    c["buf"] += data
                    end = c["buf"].find(b"\r\n\r\n")
                    if end < 0:
                        continue
                    status = _status_of(bytes(c["buf"][:end]))
                    if status != 101:
                        fig["refused_http"][str(status)] += 1
                        c["state"] = "connecting"  # counted as refused, not as closed
                        drop(c)
                        continue
                    c["state"], data = "opening", bytes(c["buf"][end + 4:])
                for op, payload in c["reader"].feed(data):
                    if op == OP_CLOSE:
                        break
                    if op != OP_TEXT:
                        continue
                    if c["state"] == "opening" and payload[:1] == b"0":
                        c["state"] = "open"
                        fig["opened"] += 1
                        open_now += 1
                        fig["open_peak"] = max(fig["open_peak"], open_now)
                    elif payload == b"2":
                        try:
                            c["sock"].send(pong)
                            fig["pings_answered"] += 1
                        except OSError:
                            pass
        for c in conns.values():
            if c["state"] == "open":
                fig["still_open"] += 1
            else:
                fig["never_completed"] += 1
    finally:
        for c in list(conns.values()):
            c["sock"].close()
        sel.close()
    fig["refused_http"] = dict(fig["refused_http"])
    return fig


def idle_websockets_check(fig: dict[str, Any]) -> list[str]:
    closed = (fig["connect_failed"] + sum(fig["refused_http"].values())
              + fig["closed_before_open"] + fig["closed_after_open"])
    return _most(closed, fig["attempted"], "idle WebSockets")


def idle_websockets_summary(fig: dict[str, Any]) -> str:
    refused = fig["connect_failed"] + sum(fig["refused_http"].values()) + fig["closed_before_open"]
    return (f"{fig['attempted']:,} WebSockets: {fig['opened']:,} opened "
            f"(peak {fig['open_peak']:,}), "
            f"{refused:,} refused, {fig['closed_after_open']:,} closed later, "
            f"{fig['still_open']:,} still open, {fig['never_completed']:,} never answered")


# -- 7. handshakes ----------------------------------------------------------------------

HANDSHAKES = 20_000
# keep-alive connections, 8 per source address (one request each at a time)
HANDSHAKE_CONNECTIONS = 32


def handshakes(target: Target, seconds: float) -> dict[str, Any]:
    """20,000 anonymous Engine.IO polling handshakes over keep-alive connections, as fast
    as possible within the time, never followed up."""
    deadline = time.monotonic() + seconds
    sel = selectors.DefaultSelector()
    request = (f"GET {POLL_PATH} HTTP/1.1\r\nHost: {target.host}:{target.port}\r\n"
               "Connection: keep-alive\r\n\r\n").encode()
    fig: dict[str, Any] = {"attempted": 0, "opened": 0, "refused": Counter(), "unanswered": 0,
                           "connections": 0, "server_closed_connections": 0,
                           "connect_failed": 0, "in_flight_at_end": 0}
    conns: list[dict[str, Any]] = []

    def open_conn(source: str) -> None:
        try:
            sock = socket.create_connection((target.host, target.port), timeout=2,
                                            source_address=(source, 0))
        except OSError:
            fig["connect_failed"] += 1
            return
        sock.setblocking(False)
        c = {"sock": sock, "source": source, "buf": bytearray(), "busy": False}
        sel.register(sock, selectors.EVENT_READ, c)
        conns.append(c)
        fig["connections"] += 1

    def send_next(c: dict[str, Any]) -> None:
        if fig["attempted"] >= HANDSHAKES or time.monotonic() >= deadline:
            return
        try:
            c["sock"].send(request)  # ~80 bytes on an idle connection: taken whole
        except OSError:
            drop(c)
            return
        fig["attempted"] += 1
        c["busy"] = True

    def drop(c: dict[str, Any]) -> None:
        if c["busy"]:
            fig["unanswered"] += 1
        sel.unregister(c["sock"])
        c["sock"].close()
        conns.remove(c)

    try:
        for i in range(HANDSHAKE_CONNECTIONS):
            open_conn(target.sources[i % len(target.sources)])
        for c in list(conns):
            send_next(c)
        while time.monotonic() < deadline and (fig["attempted"] < HANDSHAKES
                                               or any(c["busy"] for c in conns)):
            for key, _ in sel.select(timeout=min(0.1, max(0.0, deadline - time.monotonic()))):
                c = key.data
                if c not in conns:
                    continue
                try:
                    data = c["sock"].recv(65536)
                except BlockingIOError:
                    continue
                except OSError:
                    data = b""
                if not data:
                    fig["server_closed_connections"] += 1
                    drop(c)
                    continue
                c["buf"] += data
                parsed = parse_response(c["buf"])
                if parsed is None:
                    continue
                status, headers, body, used = parsed
                del c["buf"][:used]
                c["busy"] = False
                if status == 200 and body[:1] == b"0":
                    fig["opened"] += 1
                else:
                    fig["refused"][str(status)] += 1
                if headers.get("connection", "").lower() == "close":
                    fig["server_closed_connections"] += 1
                    drop(c)
                else:
                    send_next(c)
            # keep the number of connections up (a closed one is replaced), bounded by time
            while (len(conns) < HANDSHAKE_CONNECTIONS and fig["attempted"] < HANDSHAKES
                   and time.monotonic() < deadline and fig["connect_failed"] < 1000):
                before = len(conns)
                open_conn(target.sources[fig["connections"] % len(target.sources)])
                if len(conns) == before:
                    break
                send_next(conns[-1])
        # still in flight when the time was up: neither opened nor refused
        fig["in_flight_at_end"] = sum(1 for c in conns if c["busy"])
    finally:
        for c in conns:
            c["sock"].close()
        sel.close()
    fig["refused"] = dict(fig["refused"])
    fig["per_s"] = round(fig["attempted"] / seconds)
    return fig


def handshakes_check(fig: dict[str, Any]) -> list[str]:
    refused = sum(fig["refused"].values()) + fig["unanswered"]
    return _most(refused, fig["attempted"] - fig.get("in_flight_at_end", 0),
                 "handshakes (those in flight at the end left out)")


def handshakes_summary(fig: dict[str, Any]) -> str:
    return (f"{fig['attempted']:,} handshakes ({fig['per_s']:,}/s): {fig['opened']:,} opened, "
            f"refused {fig['refused'] or 0}, {fig['unanswered']:,} cut unanswered, "
            f"{fig['server_closed_connections']} conns closed by server")


# -- 8. unacked_commands ----------------------------------------------------------------

UNACKED_TEXT_BYTES = 60_000
UNACKED_RATE = 40.0  # events per second: under GATEWAY_EVENT_RATE (50), never rate limited


def unacked_commands(target: Target, seconds: float) -> dict[str, Any]:
    """A logged-in client on ``echo`` sending ~60 KB echoes at an allowed rate (each comes
    back as an ``output`` command) and never acking a command."""
    import socketio
    from engineio.payload import Payload

    Payload.max_decode_packets = max(Payload.max_decode_packets, 100_000)
    deadline = time.monotonic() + seconds
    cookie = login_cookie(target)
    text = "u" * UNACKED_TEXT_BYTES
    lock = threading.Lock()
    fig: dict[str, Any] = {"events": 0, "acks": Counter(), "commands": 0, "command_mb": 0.0,
                           "close_reason": None, "closed_after_s": None,
                           "disconnected_after_s": None}
    ended = threading.Event()
    started = time.monotonic()
    sio = socketio.Client(reconnection=False)

    def on_commands(batch: Any) -> None:
        with lock:
            fig["commands"] += len(batch)
            fig["command_mb"] += sum(len(str(c.get("args", {}).get("content", "")))
                                     for c in batch) / 1e6

    def on_close(data: Any) -> None:
        fig["close_reason"] = data.get("reason") if isinstance(data, dict) else repr(data)
        fig["closed_after_s"] = round(time.monotonic() - started, 3)
        ended.set()

    def on_disconnect(*_: Any) -> None:
        fig["disconnected_after_s"] = round(time.monotonic() - started, 3)
        ended.set()

    def on_ack(ack: Any) -> None:
        code = "ok" if isinstance(ack, dict) and ack.get("ok") else \
            str((ack or {}).get("error", {}).get("code") if isinstance(ack, dict) else ack)
        with lock:
            fig["acks"][code] += 1

    sio.on("commands", on_commands)
    sio.on("close", on_close)
    sio.on("disconnect", on_disconnect)
    sio.connect(target.url, headers={"Cookie": cookie}, auth={"app": "echo", "resume": None},
                transports=["websocket"], wait_timeout=10)
    started = time.monotonic()
    try:
        next_at = started
        event_id = 0
        while time.monotonic() < deadline and not ended.is_set():
            event_id += 1
            try:
                sio.emit("event", {"id": event_id, "name": "echo", "data": {"text": text}},
                         callback=on_ack)
            except socketio.exceptions.SocketIOError:
                break
            fig["events"] += 1
            next_at += 1 / UNACKED_RATE
            ended.wait(max(0.0, next_at - time.monotonic()))  # paces events at UNACKED_RATE
    finally:
        closer = threading.Thread(target=sio.disconnect, daemon=True)
        closer.start()
        closer.join(3)
    if fig["disconnected_after_s"] is not None:
        # python-socketio's client runs each handler in a thread of its own: the
        # disconnect's can run before that of the close message that came first.
        closed = threading.Event()
        deadline = time.monotonic() + 5
        while fig["close_reason"] is None and time.monotonic() < deadline:
            closed.wait(0.01)  # polls the handler's result, with a deadline
    fig["acks"] = dict(fig["acks"])
    fig["command_mb"] = round(fig["command_mb"], 1)
    return fig


def unacked_commands_check(fig: dict[str, Any]) -> list[str]:
    if fig["close_reason"] != "slow_consumer":
        return [f"the non-acking session was not closed slow_consumer (close reason "
                f"{fig['close_reason']!r}; it was sent {fig['commands']:,} commands, "
                f"~{fig['command_mb']} MB, none acked)"]
    return []


def unacked_commands_summary(fig: dict[str, Any]) -> str:
    closed = (f"closed {fig['close_reason']} after {fig['closed_after_s']} s"
              if fig["close_reason"] else "NOT closed")
    return (f"{fig['events']} events of {UNACKED_TEXT_BYTES // 1000} KB, {fig['commands']} "
            f"commands (~{fig['command_mb']} MB) unacked; {closed}")


# -- 9. login_loop ----------------------------------------------------------------------

LOGIN_CLIENTS = 4
CSRF = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')


def login_loop(target: Target, seconds: float) -> dict[str, Any]:
    """Successful logins (GET /login, POST the form) in a loop, as fast as possible, from
    four concurrent clients (each login with a fresh cookie jar)."""
    import requests

    deadline = time.monotonic() + seconds
    lock = threading.Lock()
    fig: dict[str, Any] = {"logins_ok": 0, "attempts": 0, "statuses": Counter(),
                           "errors": Counter(), "latencies_ms": []}

    def client() -> None:
        while time.monotonic() < deadline:
            timeout = max(0.1, deadline - time.monotonic()) + 5
            started = time.monotonic()
            with requests.Session() as http:
                try:
                    page = http.get(target.url + "/login", timeout=timeout)
                    match = CSRF.search(page.text)
                    if not match:
                        outcome = f"GET {page.status_code}"
                    else:
                        response = http.post(
                            target.url + "/login", allow_redirects=False, timeout=timeout,
                            data={"csrf_token": match.group(1), "name": target.user,
                                  "password": target.password})
                        outcome = str(response.status_code)
                except requests.RequestException as exc:
                    outcome = f"error {type(exc).__name__}"
            took = (time.monotonic() - started) * 1000
            with lock:
                fig["attempts"] += 1
                if outcome == "302":
                    fig["logins_ok"] += 1
                    fig["latencies_ms"].append(took)
                elif outcome.startswith("error"):
                    fig["errors"][outcome] += 1
                fig["statuses"][outcome] += 1

    threads = [threading.Thread(target=client, daemon=True) for _ in range(LOGIN_CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(max(0.1, deadline - time.monotonic()) + 15)
    latencies = sorted(fig.pop("latencies_ms"))
    fig["login_p50_ms"] = round(latencies[len(latencies) // 2], 1) if latencies else None
    fig["login_max_ms"] = round(latencies[-1], 1) if latencies else None
    fig["per_s"] = round(fig["logins_ok"] / seconds, 1)
    fig["statuses"] = dict(fig["statuses"])
    fig["errors"] = dict(fig["errors"])
    return fig


def login_loop_check(fig: dict[str, Any]) -> list[str]:
    # Only that the attack happened: a login refused or slow under the loop is reported
    # (summary), not required by the issue.
    return [] if fig["logins_ok"] else [f"no login succeeded ({fig['statuses']})"]


def login_loop_summary(fig: dict[str, Any]) -> str:
    return (f"{fig['logins_ok']} logins ({fig['per_s']}/s), p50 {fig['login_p50_ms']} ms, "
            f"max {fig['login_max_ms']} ms; other outcomes "
            f"{ {s: n for s, n in fig['statuses'].items() if s != '302'} or 0}")


# -- the registry -----------------------------------------------------------------------


@dataclass(frozen=True)
class Attack:
    name: str
    run: Callable[[Target, float], dict[str, Any]]
    check: Callable[[dict[str, Any]], list[str]]
    summary: Callable[[dict[str, Any]], str]


ATTACKS: dict[str, Attack] = {
    name: Attack(name, globals()[name], globals()[f"{name}_check"], globals()[f"{name}_summary"])
    for name in ("ws_firehose", "ws_big_frames", "logged_in_flood", "polling_packed",
                 "slowloris", "idle_websockets", "handshakes", "unacked_commands", "login_loop")
}
