"""Logs of a real server with GATEWAY_LOG_FORMAT=json: a line per lifecycle change and per
refusal, and never a password, a resume token or a cookie."""

from __future__ import annotations

import json

from gateway.client import GatewayClient
from tests.helpers.support import ProtocolClient
from tests.helpers.support import ServerProcess
from tests.helpers.support import cookie_header
from tests.helpers.support import create_user
from tests.helpers.support import login
from tests.helpers.support import server_env
from tests.helpers.support import wait_for

PASSWORD = "log-test-password-123"


def test_real_server_logs_json_lifecycle_and_no_secrets(tmp_path):
    env = server_env(str(tmp_path / "gateway.db"), GATEWAY_LOG_FORMAT="json")
    create_user(env, "lou", PASSWORD)
    server = ServerProcess.embedded(env, str(tmp_path / "server.log")).start()
    try:
        http = login(server.url, "lou", PASSWORD)
        cookie = cookie_header(http)
        ProtocolClient(server.url, cookie=None).try_connect("echo")  # a refusal
        client = GatewayClient(server.url, "echo", cookie=cookie).connect()
        client.call("echo", {"text": "hi"})
        token = client._token
        client.drop()
        client.connect()  # a resume: the token travels, and must not be logged
        client.close()
        wait_for(lambda: "detached" in server.log(), message="the detach to be logged")
        wait_for(lambda: server.log().count("detached") >= 2, message="the second detach")
    finally:
        server.stop()
    entries = [json.loads(line) for line in server.log().splitlines()
               if line.startswith("{")]
    messages = [e["message"] for e in entries]
    assert any(m.startswith("connection refused: unauthorized") for m in messages)
    assert any(" opened: app=echo user=lou" in m for m in messages)
    assert any(" resumed: " in m for m in messages)
    assert any(" detached: " in m for m in messages)
    assert any(m.startswith("user lou logged in") for m in messages)
    text = server.log()
    assert PASSWORD not in text and token not in text
    for part in cookie.split("; "):
        assert part.split("=", 1)[1] not in text
