"""The official socket.io-client (Node) against a real ``python wsgi.py`` on eventlet."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator

import pytest

from tests.helpers.support import IN_CI
from tests.helpers.support import ROOT
from tests.helpers.support import ServerProcess
from tests.helpers.support import running_server

PASSWORD = "node-test-password"
SCRIPT = os.path.join(ROOT, "tests", "helpers", "node", "client.mjs")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with running_server(tmp_path_factory, "node", ["nora"], PASSWORD) as proc:
        yield proc


def run_node(server: ServerProcess, scenario: str, transport: str) -> dict:
    node = shutil.which("node")
    if node is None:
        assert not IN_CI, "node is required in CI"
        pytest.skip("node is not installed")
    result = subprocess.run([node, SCRIPT, server.url, scenario, transport, "nora", PASSWORD],
                            cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("transport", ["websocket", "polling"])
def test_anonymous_refusal_as_the_js_client_sees_it(server, transport):
    out = run_node(server, "anonymous", transport)
    assert out["received"] == [["connect_error", {
        "message": "unauthorized",
        "data": {"code": "unauthorized", "message": "Log in before connecting."}}]]


@pytest.mark.parametrize("transport", ["websocket", "polling"])
def test_hello_with_the_official_client(server, transport):
    out = run_node(server, "hello", transport)
    assert out["error"] is None
    names = [name for name, _ in out["received"]]
    assert names[0] == "session" and names[-1] == "close"
    welcome = out["received"][0][1]
    assert welcome["user"]["name"] == "nora" and welcome["resumed"] is False
    commands = [c for name, batch in out["received"] if name == "commands" for c in batch]
    assert [c["seq"] for c in commands] == [1, 2]
    assert commands[0]["name"] == "input"
    assert commands[1] == {"seq": 2, "name": "output",
                           "args": {"kind": "text", "content": "Hello, Node!"}}
    assert out["acks"] == [{"id": 1, "ack": {"ok": True, "result": None}}]
    assert out["received"][-1] == ["close", {"reason": "closed",
                                             "message": "The app has finished."}]


@pytest.mark.parametrize("transport", ["websocket", "polling"])
def test_echo_burst_with_the_official_client(server, transport):
    out = run_node(server, "echo", transport)
    assert out["error"] is None
    assert [a["id"] for a in out["acks"]] == list(range(1, 21))
    assert [a["ack"] for a in out["acks"]] == [{"ok": True, "result": f"n{i}"}
                                               for i in range(1, 21)]
    commands = [c for name, batch in out["received"] if name == "commands" for c in batch]
    assert [c["seq"] for c in commands] == list(range(1, 22))
    assert [c["args"]["content"] for c in commands[1:]] == [f"n{i}" for i in range(1, 21)]
