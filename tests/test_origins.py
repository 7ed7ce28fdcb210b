"""Origins: same-origin by default, exact and shell-style patterns; cross-site WebSocket
hijacking refused over WebSocket and over long-polling against a real server."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests
import websocket

from gateway.transport.origins import OriginPolicy
from gateway.transport.origins import cors_setting

from tests.helpers.support import ServerProcess
from tests.helpers.support import cookie_header
from tests.helpers.support import login
from tests.helpers.support import running_server
from tests.helpers.support import wait_for

PASSWORD = "origin-test-password"
HOST = {"HTTP_HOST": "gw.test:8000", "wsgi.url_scheme": "https"}


def test_policy_same_origin_exact_and_patterns():
    policy = OriginPolicy(["https://app.example.org", "https://*.example.com"])
    assert policy("https://gw.test:8000", HOST)  # the page's own origin
    assert policy("https://app.example.org", HOST)
    assert policy("https://a.example.com", HOST) and policy("https://A.Example.com", HOST)
    assert not policy("https://example.com.evil.test", HOST)
    assert not policy("http://a.example.com", HOST)  # the scheme is part of the origin
    assert not policy("https://evil.test", HOST)
    assert not policy("null", HOST)
    assert policy(None, HOST)  # no Origin header: not a browser


def test_default_is_same_origin_only_and_star_only_when_explicit():
    policy = cors_setting([])
    assert isinstance(policy, OriginPolicy)
    assert policy("https://gw.test:8000", HOST) and not policy("https://other.test", HOST)
    assert cors_setting(["*"]) == "*"
    assert isinstance(cors_setting(["https://*"]), OriginPolicy)


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


# -- pattern rules: only "*" is special, and it stays within one host label -----------


@pytest.mark.parametrize("origin", [
    "https://evil.test/.example.com",  # fnmatch's "*" took "/": a path...
    "https://evil.test?.example.com",  # ...a query...
    "https://evil.test#.example.com",  # ...a fragment...
    "https://x@evil.test/.example.com",  # ...user info...
    "https://evil.test:.example.com",  # ...a port separator
    "https://a.b.example.com",  # one label per "*"
    "https://.example.com.evil.test",
    "https://a.example.com\r\nx",
])
def test_a_star_matches_host_characters_of_one_label_only(origin):
    policy = OriginPolicy(["https://*.example.com"])
    assert not policy(origin, HOST)
    assert policy("https://a-1.example.com", HOST) and policy("https://A-1.EXAMPLE.com", HOST)
    assert OriginPolicy(["https://*.*.example.com"])("https://a.b.example.com", HOST)


def test_a_star_cannot_reach_past_its_domain():
    policy = OriginPolicy(["https://*.example.*", "https://app.example.org*", "http://localhost:*"])
    assert policy("https://a.example.com", HOST)
    assert not policy("https://a.example.evil.test", HOST)
    assert not policy("https://app.example.org@evil.test", HOST)
    assert not policy("https://app.example.org.evil.test", HOST)
    assert not policy("https://app.example.org:443", HOST)
    assert policy("http://localhost:5173", HOST)
    assert not policy("http://localhost:5173@evil.test", HOST)


def test_question_marks_and_brackets_are_plain_characters():
    assert not OriginPolicy(["https://?.example.com"])("https://a.example.com", HOST)
    assert not OriginPolicy(["https://[ab].example.com"])("https://a.example.com", HOST)
    assert OriginPolicy(["https://[ab].example.com"])("https://[ab].example.com", HOST)


def test_an_ipv6_origin_is_exact():
    policy = OriginPolicy(["http://[::1]:5000", "https://App.Example.org"])
    assert policy("http://[::1]:5000", HOST)  # fnmatch read "[::1]" as a character class
    assert not policy("http://::5000", HOST) and not policy("http://1:5000", HOST)
    assert not policy("http://[::1]:5001", HOST) and not policy("http://[::2]:5000", HOST)
    assert policy("https://app.example.ORG", HOST)  # exact: case-insensitive
    assert not policy("https://app.example.org.evil.test", HOST)


def test_a_lone_star_among_others_allows_every_origin():
    assert OriginPolicy(["https://a.test", "*"])("https://anything.test", HOST)


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
