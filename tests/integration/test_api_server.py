"""The SSE stream on a real server: each event flushed at once, and the slot of a reader
that went away freed."""

from __future__ import annotations

import pytest

from auth.tokens import ApiToken
from gateway import hub_for
from tests.helpers.support import ServerProcess
from tests.helpers.support import cookie_header
from tests.helpers.support import login
from tests.helpers.support import running_server
from tests.helpers.support import wait_for

SSE_PASSWORD = "sse-test-password-123"


@pytest.fixture(scope="module")
def sse_server(tmp_path_factory: pytest.TempPathFactory):
    # A short keep-alive interval: a dead reader is noticed within it.
    with running_server(tmp_path_factory, "sse", ["sid"], SSE_PASSWORD,
                        FLASK_SSE_KEEPALIVE_SECONDS="0.5") as server:
        yield server


@pytest.fixture(scope="module")
def sse_token(sse_server: ServerProcess) -> str:
    from gateway import create_app

    app = create_app({"GATEWAY_ENV": "development", "GATEWAY_ASYNC_MODE": "threading",
                      "GATEWAY_DATABASE_URL": sse_server.env["GATEWAY_DATABASE_URL"]})
    try:
        with app.app_context():
            return ApiToken.issue("sse-tests")
    finally:
        hub_for(app).shutdown()


class RawStream:
    """``GET /api/v1/stream`` on a plain socket: every byte the server wrote, as it came."""

    def __init__(self, server: ServerProcess, cookie: str) -> None:
        import socket

        self.sock = socket.create_connection(("127.0.0.1", server.port), timeout=5)
        self.sock.sendall(f"GET /api/v1/stream HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
                          f"Accept: text/event-stream\r\nCookie: {cookie}\r\n\r\n".encode())
        self.sock.settimeout(0.05)
        self.data = b""

    def received(self) -> bytes:

        try:
            self.data += self.sock.recv(65536)
        except TimeoutError:
            pass
        return self.data

    def wait(self, needle: bytes, message: str, timeout: float = 5) -> bytes:
        return wait_for(lambda: needle in self.received(), timeout, message=message)

    def close(self) -> None:
        self.sock.close()


def sse_readers(server: ServerProcess) -> float | None:
    import re

    import requests

    metrics = requests.get(server.url + "/metrics", timeout=5).text
    found = re.search(r"^gateway_sse_readers (\S+)$", metrics, re.MULTILINE)
    return float(found.group(1)) if found else None


def push_everyone(server: ServerProcess, token: str, text: str) -> None:
    import requests

    response = requests.post(server.url + "/api/v1/push", timeout=10,
                             headers={"Authorization": f"Bearer {token}"},
                             json={"to": {"everyone": True}, "name": "toast",
                                   "args": {"text": text}})
    assert response.status_code == 202, response.text


@pytest.mark.real
def test_real_server_sends_each_sse_event_at_once(sse_server, sse_token):
    cookie = cookie_header(login(sse_server.url, "sid", SSE_PASSWORD))
    stream = RawStream(sse_server, cookie)
    try:
        # eventlet.wsgi holds writes back until 8 KB are buffered unless the request
        # sets eventlet.minimum_write_chunk_size: before, nothing at all came.
        stream.wait(b"retry: 2000", "the stream's first bytes")
        push_everyone(sse_server, sse_token, "at once")
        stream.wait(b"event: toast", "the pushed event, well before 8 KB")
        assert b'"text":"at once"' in stream.received()
        assert len(stream.data) < 1024, len(stream.data)
    finally:
        stream.close()


@pytest.mark.real
def test_real_server_frees_the_slot_of_a_reader_that_went_away(sse_server, sse_token):
    cookie = cookie_header(login(sse_server.url, "sid", SSE_PASSWORD))
    wait_for(lambda: sse_readers(sse_server) == 0, message="no reader left from other tests")
    live, dead = RawStream(sse_server, cookie), RawStream(sse_server, cookie)
    try:
        live.wait(b"retry: 2000", "the first stream")
        dead.wait(b"retry: 2000", "the second stream")
        wait_for(lambda: sse_readers(sse_server) == 2, message="two readers")
        dead.close()  # the client goes away without a word
        # Noticed at the keep-alive writes (every 0.25 s here), its slot freed.
        wait_for(lambda: sse_readers(sse_server) == 1, timeout=5,
                 message="the dead reader to be noticed and detached")
        push_everyone(sse_server, sse_token, "still here")
        live.wait(b'"text":"still here"', "the live reader's event")
    finally:
        live.close()
        dead.close()
    wait_for(lambda: sse_readers(sse_server) == 0, timeout=5, message="both readers gone")
    assert "Traceback" not in sse_server.log()
