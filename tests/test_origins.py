"""Origins: same-origin by default, exact and shell-style patterns; cross-site WebSocket
hijacking refused over WebSocket and over long-polling against a real server."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests
import websocket

from gateway.origins import OriginPolicy
from gateway.origins import cors_setting

from .support import ServerProcess
from .support import cookie_header
from .support import login
from .support import running_server

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


@pytest.mark.parametrize("origin", ["https://evil.test", "null", "https://example.com.evil.test"])
def test_cross_site_pages_are_refused(server, cookie, origin):
    refused = poll(server, cookie, origin)
    assert refused.status_code == 400 and "Not an accepted origin" in refused.text
    assert ws_handshake(server, cookie, origin) == 400


@pytest.mark.parametrize("origin", ["https://app.example.com", None])
def test_allowed_and_own_origins_connect(server, cookie, origin):
    origin = origin or server.url  # None: the page's own origin
    assert poll(server, cookie, origin).status_code == 200
    assert ws_handshake(server, cookie, origin) == 101
