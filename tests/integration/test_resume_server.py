"""Resume refusals against a real ``python wsgi.py``: each gives its reason, never a silent loss."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from gateway.client import GatewayClient
from tests.helpers.support import ProtocolClient
from tests.helpers.support import ServerProcess
from tests.helpers.support import cookie_header
from tests.helpers.support import login
from tests.helpers.support import running_server
from tests.helpers.support import wait_for

PASSWORD = "resume-test-password"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with running_server(tmp_path_factory, "resume", ["alice", "bob"], PASSWORD,
                        GATEWAY_RESUME_SECONDS="1", GATEWAY_REPLAY_LIMIT="100",
                        GATEWAY_APPS="gateway.demos.echo,tests.helpers.fault_app",
                        FLASK_FAULT_SECONDS="1", FLASK_FAULT_COMMANDS="1000") as proc:
        yield proc


def cookie(server: ServerProcess, user: str) -> str:
    return cookie_header(login(server.url, user, PASSWORD))


def resume_as(server: ServerProcess, user: str, app: str, session: str, token: str,
              last_seq: int = 0) -> dict:
    client = ProtocolClient(server.url, cookie(server, user))
    try:
        client.connect(app, resume={"session": session, "token": token, "last_seq": last_seq})
        wait_for(lambda: client.named("session"), message="session message")
        return client.named("session")[0]
    finally:
        client.close()


def dropped_session(server: ServerProcess, app: str = "echo") -> GatewayClient:
    client = GatewayClient(server.url, app, cookie=cookie(server, "alice"),
                           reconnect=False).connect()
    client.drop()
    return client


def test_a_real_resume_replays_and_continues(server):
    client = GatewayClient(server.url, "echo", cookie=cookie(server, "alice")).connect()
    assert client.call("echo", {"text": "before"}) == "before"
    client.drop()
    pending = client.send("echo", {"text": "sent while away"})
    client.connect()
    assert client.resumes[-1].resumed is True
    wait_for(lambda: pending.done.is_set(), message="the resent event's ack")
    assert pending.ack == {"ok": True, "result": "sent while away"}
    wait_for(lambda: len(client.applied) == 3, message="3 commands")
    assert [c["seq"] for c in client.applied] == [1, 2, 3] and client.duplicates == 0
    client.close()


def test_foreign_token_is_forbidden(server):
    victim = dropped_session(server)
    welcome = resume_as(server, "alice", "echo", victim.session_id, "F" * 32)
    assert welcome["resumed"] is False and welcome["reason"] == "forbidden"
    assert welcome["session"] != victim.session_id


def test_other_users_session_is_forbidden(server):
    victim = dropped_session(server)
    welcome = resume_as(server, "bob", "echo", victim.session_id, victim._token)
    assert welcome["resumed"] is False and welcome["reason"] == "forbidden"
    assert welcome["user"]["name"] == "bob"


def test_expired_window(server):
    gone = dropped_session(server)
    wait_for(lambda: f"session {gone.session_id} closed: expired" in server.log(), timeout=10,
             message="the resume window to pass")
    welcome = resume_as(server, "alice", "echo", gone.session_id, gone._token)
    assert welcome["resumed"] is False and welcome["reason"] == "expired"


def test_overflowed_buffer(server):
    flooded = dropped_session(server, "stream")  # keeps streaming while nobody acks
    wait_for(lambda: f"session {flooded.session_id} closed: slow_consumer" in server.log(),
             timeout=10, message="the replay buffer to overflow")
    welcome = resume_as(server, "alice", "stream", flooded.session_id, flooded._token,
                        flooded.last_seq)
    assert welcome["resumed"] is False and welcome["reason"] == "replay_overflow"


def test_unknown_session(server):
    welcome = resume_as(server, "alice", "echo", "NoSuchSession123", "U" * 32)
    assert welcome["resumed"] is False and welcome["reason"] == "unknown"
