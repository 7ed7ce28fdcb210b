"""Real servers: ``python wsgi.py`` (eventlet and threading) and gunicorn, driven by
python-socketio.

Each kind of server is started as a process on a free loopback port, with its own
SQLite database; clients log in through the real login form and connect with the cookie.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
import requests

from tests.helpers.support import ProtocolClient
from tests.helpers.support import ServerProcess
from tests.helpers.support import cookie_header
from tests.helpers.support import login
from tests.helpers.support import running_server
from tests.helpers.support import wait_for

PASSWORD = "server-test-password"
KINDS = ["eventlet", "threading", "gunicorn"]


@pytest.fixture(scope="module", params=KINDS)
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[ServerProcess]:
    with running_server(tmp_path_factory, request.param, ["alice", "bob"], PASSWORD,
                        kind=request.param) as proc:
        yield proc
    assert "Traceback" not in proc.log(), proc.log()


def client_for(server: ServerProcess, user: str = "alice", **kwargs) -> ProtocolClient:
    return ProtocolClient(server.url, cookie_header(login(server.url, user, PASSWORD)), **kwargs)


@pytest.fixture
def clients(server: ServerProcess):
    made: list[ProtocolClient] = []

    def make(user: str = "alice", **kwargs) -> ProtocolClient:
        made.append(client_for(server, user, **kwargs))
        return made[-1]

    yield make
    for c in made:
        c.close()


def test_health_endpoints(server):
    assert requests.get(server.url + "/healthz", timeout=5).json() == {"status": "ok"}
    ready = requests.get(server.url + "/readyz", timeout=5)
    assert ready.status_code == 200 and ready.json()["status"] == "ready"


def test_anonymous_connection_is_refused(server):
    error = ProtocolClient(server.url, cookie=None).try_connect("hello")
    assert error == {"message": "unauthorized",
                     "data": {"code": "unauthorized", "message": "Log in before connecting."}}


def test_unknown_app_is_refused(server, clients):
    error = clients().try_connect("no-such-app")
    assert error["message"] == "unknown_app" and error["data"]["code"] == "unknown_app"


@pytest.mark.parametrize("transport", ["websocket", "polling"])
def test_hello_protocol_messages(server, clients, transport):
    client = clients(transports=[transport]).connect("hello")
    (ask,) = client.wait_commands(1)
    name, welcome = client.received[0]
    assert name == "session"
    assert re.fullmatch(r"[A-Za-z0-9_-]{16}", welcome["session"])
    assert welcome["app"] == "hello" and welcome["user"]["name"] == "alice"
    assert welcome["resumed"] is False and welcome["reason"] is None and welcome["last_seq"] == 0
    assert ask["seq"] == 1 and ask["name"] == "input"
    assert ask["args"]["kind"] == "text" and ask["args"]["label"] == "Your name"
    ack = client.event(1, "input.reply", {"request": ask["args"]["request"], "value": "Ada"})
    assert ack == {"ok": True, "result": None}
    greeting = client.wait_commands(2)[1]
    assert greeting == {"seq": 2, "name": "output",
                        "args": {"kind": "text", "content": "Hello, Ada!"}}
    wait_for(lambda: client.named("close"), message="close")
    assert client.named("close") == [{"reason": "closed", "message": "The app has finished."}]
    wait_for(lambda: client.disconnected, message="server disconnect")


@pytest.mark.parametrize("transport", ["websocket", "polling"])
def test_echo_round_trips_in_order(server, clients, transport):
    client = clients(transports=[transport]).connect("echo")
    client.wait_commands(1)
    for i in range(1, 31):
        assert client.event(i, "echo", {"text": f"m{i}"}) == {"ok": True, "result": f"m{i}"}
    outputs = client.wait_commands(31)[1:]
    assert [c["args"]["content"] for c in outputs] == [f"m{i}" for i in range(1, 31)]
    assert [c["seq"] for c in client.commands()] == list(range(1, 32))
    bad = client.event(99, "echo", {"text": 1})
    assert bad["ok"] is False and bad["error"]["code"] == "bad_request"


@pytest.mark.parametrize("transport", ["websocket", "polling"])
def test_a_burst_sent_without_waiting_is_handled_in_order(server, clients, transport):
    client = clients(transports=[transport]).connect("echo")
    client.wait_commands(1)
    acks: list[dict] = []
    for i in range(1, 61):
        client.sio.emit("event", {"id": i, "name": "echo", "data": {"text": str(i)}},
                        callback=lambda ack: acks.append(ack))
    wait_for(lambda: len(acks) == 60, message="60 acks")
    outputs = client.wait_commands(61)[1:]
    assert [c["args"]["content"] for c in outputs] == [str(i) for i in range(1, 61)]


def test_users_are_isolated(server, clients):
    alice = clients("alice").connect("echo")
    bob = clients("bob").connect("echo")
    alice.wait_commands(1), bob.wait_commands(1)
    alice.event(1, "echo", {"text": "only-for-alice"})
    bob.event(1, "echo", {"text": "only-for-bob"})
    alice.wait_commands(2), bob.wait_commands(2)
    assert "only-for-bob" not in str(alice.received)
    assert "only-for-alice" not in str(bob.received)


def test_logout_closes_live_sessions(server):
    http = login(server.url, "alice", PASSWORD)
    client = ProtocolClient(server.url, cookie_header(http)).connect("echo")
    bob = client_for(server, "bob").connect("echo")
    try:
        client.wait_commands(1)
        page = http.get(server.url + "/", timeout=5).text
        token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page).group(1)
        response = http.post(server.url + "/logout", data={"csrf_token": token},
                             allow_redirects=False, timeout=5)
        assert response.status_code == 302
        wait_for(lambda: client.named("close"), message="close after logout")
        assert client.named("close")[0]["reason"] == "logged_out"
        wait_for(lambda: client.disconnected)
        assert not bob.named("close") and bob.sio.connected
    finally:
        client.close()
        bob.close()


def scrape(server: ServerProcess) -> dict[tuple[str, tuple], float]:
    from prometheus_client.parser import text_string_to_metric_families

    response = requests.get(server.url + "/metrics", timeout=5)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/plain")
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(response.text) for s in family.samples}


def test_metrics_follow_what_happens(server, clients):
    before = scrape(server)

    def delta(after, name, **labels):
        key = (name, tuple(sorted(labels.items())))
        return after.get(key, 0) - before.get(key, 0)

    ProtocolClient(server.url, cookie=None).try_connect("echo")
    client = clients().connect("echo")
    client.wait_commands(1)
    for i in range(1, 6):
        client.event(i, "echo", {"text": "m"})
    client.event(6, "nope", None)
    after = scrape(server)
    assert delta(after, "gateway_refusals_total", code="unauthorized") == 1
    assert delta(after, "gateway_connections_total", outcome="new") == 1
    assert delta(after, "gateway_events_total", result="ok") == 5
    assert delta(after, "gateway_events_total", result="unknown_event") == 1
    assert delta(after, "gateway_event_handling_seconds_count") == 6
    assert delta(after, "gateway_commands_total") >= 6
    assert after[("gateway_sessions", (("state", "attached"),))] >= 1
    assert after[("gateway_bus_up", ())] == 1
