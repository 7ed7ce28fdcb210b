"""Graceful shutdown: SIGTERM to a worker with live sessions (``python wsgi.py`` on
eventlet and on threads, and gunicorn). Every client is told ``server_shutdown``, apps
run their ``on_close``, and the process exits within the drain time."""

from __future__ import annotations

import signal
import time

import pytest

from tests.helpers.support import ProtocolClient
from tests.helpers.support import ServerProcess
from tests.helpers.support import cookie_header
from tests.helpers.support import create_user
from tests.helpers.support import login
from tests.helpers.support import server_env
from tests.helpers.support import wait_for

PASSWORD = "shutdown-test-password"
DRAIN_SECONDS = 5


@pytest.mark.parametrize("kind", ["eventlet", "threading", "gunicorn"])
def test_sigterm_tells_every_client_and_exits(tmp_path, kind):
    env = server_env(str(tmp_path / "gateway.db"),
                     GATEWAY_ASYNC_MODE="threading" if kind == "threading" else "eventlet",
                     GATEWAY_APPS="gateway.demos.echo,tests.helpers.fault_app",
                     GATEWAY_DRAIN_SECONDS=str(DRAIN_SECONDS))
    create_user(env, "sam", PASSWORD)
    log = str(tmp_path / "server.log")
    server = (ServerProcess.gunicorn(env, log) if kind == "gunicorn"
              else ServerProcess.embedded(env, log)).start()
    clients = []
    try:
        cookie = cookie_header(login(server.url, "sam", PASSWORD))
        for app, transport in (("closer", "websocket"), ("closer", "polling"),
                               ("echo", "websocket")):
            client = ProtocolClient(server.url, cookie, transports=[transport]).connect(app)
            client.wait_commands(1)
            clients.append(client)
        session_ids = [c.named("session")[0]["session"] for c in clients]

        started = time.monotonic()
        server.proc.send_signal(signal.SIGTERM)
        for client in clients:
            wait_for(lambda client=client: client.named("close"), timeout=DRAIN_SECONDS + 5,
                     message="the close message")
            assert client.named("close") == [{"reason": "server_shutdown",
                                               "message": "The server is shutting down."}]
        server.proc.wait(DRAIN_SECONDS + 10)
        elapsed = time.monotonic() - started
    finally:
        for client in clients:
            client.close()
        server.stop()
    assert server.proc.returncode == 0, server.log()
    assert elapsed < DRAIN_SECONDS + 10
    text = server.log()
    for session_id in session_ids[:2]:
        assert f"on_close ran for session {session_id} (server_shutdown)" in text
    assert "Traceback" not in text, text
