"""Origins against a real server: cross-site WebSocket hijacking refused over WebSocket
and over long-polling, allowed and own origins connect, and a folded Origin header cannot
forge a log line."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests
import websocket

from tests.helpers.support import ServerProcess
from tests.helpers.support import cookie_header
from tests.helpers.support import login
from tests.helpers.support import running_server
from tests.helpers.support import wait_for

PASSWORD = "origin-test-password"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with running_server(tmp_path_factory, "origins", ["olga"], PASSWORD,
                        GATEWAY_ALLOWED_ORIGINS="https://*.example.com") as proc:
        yield proc


@pytest.fixture(scope="module")
def cookie(server) -> str:
    return cookie_header(login(server.url, "olga", PASSWORD))


def poll(server, cookie, origin):
    return requests.get(server.url + "/socket.io/", params={"EIO": "4", "transport": "polling"},
                        headers={"Cookie": cookie, "Origin": origin}, timeout=5)


def ws_handshake(server, cookie, origin) -> int:
    url = server.url.replace("http://", "ws://") + "/socket.io/?EIO=4&transport=websocket"
    try:
        ws = websocket.create_connection(url, header=[f"Cookie: {cookie}"], origin=origin,
                                         timeout=5)
    except websocket.WebSocketBadStatusException as exc:
        return exc.status_code
    ws.close()
    return 101


@pytest.mark.parametrize("origin", ["https://evil.test", "null", "https://example.com.evil.test",
                                    "https://evil.test/.example.com"])
def test_cross_site_pages_are_refused(server, cookie, origin):
    refused = poll(server, cookie, origin)
    assert refused.status_code == 400 and "Not an accepted origin" in refused.text
    assert ws_handshake(server, cookie, origin) == 400


@pytest.mark.parametrize("origin", ["https://app.example.com", None])
def test_allowed_and_own_origins_connect(server, cookie, origin):
    origin = origin or server.url  # None: the page's own origin
    assert poll(server, cookie, origin).status_code == 200
    assert ws_handshake(server, cookie, origin) == 101


@pytest.mark.real
def test_a_folded_origin_header_cannot_forge_a_log_line(server, cookie):
    import socket

    forged = "2026-01-01 00:00:00,000 INFO gateway: forged by the client"
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall((f"GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\n"
                      f"Host: 127.0.0.1:{server.port}\r\nCookie: {cookie}\r\n"
                      f"Origin: https://evil.test\r\n {forged}\r\nConnection: close\r\n\r\n"
                      ).encode())
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 400")
    lines = wait_for(lambda: [line for line in server.log().splitlines() if "forged" in line],
                     message="the refusal to be logged")
    # Each line that mentions it is the refusal's own line (the gateway's, and Engine.IO's
    # for the first refused origin), the CR LF escaped: none starts with the forgery.
    assert all("https://evil.test\\r\\n 2026-01-01" in line for line in lines), lines
