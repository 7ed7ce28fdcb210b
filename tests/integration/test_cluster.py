"""Three gunicorn eventlet workers sharing a real Redis, behind the project's nginx config:
sends made on any worker, by the Emitter, the HTTP API and the CLI reach a user's sessions
on another worker exactly once and in order; logout and presence span the cluster; a Redis
outage is loud and recovers without restarting anyone."""

from __future__ import annotations

import os
import re
import signal
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from gateway.cluster.emitter import Emitter
from gateway.core.errors import BusUnavailable
from tests.helpers.cluster import Cluster
from tests.helpers.cluster import running_cluster
from tests.helpers.support import PYTHON
from tests.helpers.support import ROOT
from tests.helpers.support import ProtocolClient
from tests.helpers.support import cookie_header
from tests.helpers.support import login
from tests.helpers.support import wait_for

pytestmark = pytest.mark.real


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    # Short heartbeats: a dead worker's users leave within 3 x 0.5 s.
    with running_cluster(tmp_path_factory, "bus-cluster",
                         users=("alice", "bob", "carol", "dave", "erin"),
                         GATEWAY_PRESENCE_SECONDS="0.5") as started:
        yield started
    assert "Traceback" not in started.logs(), started.logs()


def flask(cluster: Cluster, *args: str, check: bool = True,
          input_text: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([PYTHON, "-m", "flask", "--app", "wsgi", *args], cwd=ROOT,
                          env=cluster.env, text=True, capture_output=True, timeout=60,
                          check=check, input=input_text)


@pytest.fixture(scope="module")
def token(cluster: Cluster) -> str:
    return flask(cluster, "tokens", "create", "cluster-tests").stdout.strip().splitlines()[-1]


def push(url: str, token: str, to: dict[str, Any], text: str) -> requests.Response:
    return requests.post(url + "/api/v1/push", timeout=10,
                         headers={"Authorization": f"Bearer {token}"},
                         json={"to": to, "name": "toast", "args": {"level": "info",
                                                                    "text": text}})


def toasts(client: ProtocolClient) -> list[str]:
    return [c["args"]["text"] for c in client.commands() if c["name"] == "toast"]


def worker_of(cluster: Cluster, client: ProtocolClient) -> str:
    """The worker behind nginx for this test process (ip_hash: every request from
    127.0.0.1 goes to the same one), read from nginx's access log."""
    assert client.named("session")
    entries = [e for e in cluster.nginx.access_log() if e["upstream"].startswith("127.")]
    assert entries, "nothing proxied yet"
    return cluster.worker_at(entries[-1]["upstream"]).url


def connect(base_url: str, name: str, password: str, app: str = "echo",
            transport: str = "websocket") -> ProtocolClient:
    http = login(base_url, name, password)
    return ProtocolClient(base_url, cookie_header(http), transports=[transport]).connect(app)


@pytest.mark.parametrize("transport", ["websocket", "polling"])
def test_sends_from_every_worker_emitter_api_and_cli_arrive_once_in_order(
        cluster, token, transport):
    client = connect(cluster.url, "alice", cluster.password, transport=transport)
    try:
        client.wait_commands(1)
        home = worker_of(cluster, client)
        others = [url for url in cluster.workers if url != home]
        assert len(others) == 2
        expected = []
        for n in range(30):  # round robin over every worker, the home one included
            url = cluster.workers[n % 3]
            text = f"api-{n}@{url.rsplit(':', 1)[1]}"
            assert push(url, token, {"user": {"name": "alice"}}, text).json() == {"accepted": True}
            expected.append(text)
        with Emitter(cluster.redis.url) as emitter:
            for n in range(10):
                assert emitter.send("toast", {"text": f"emitter-{n}"}, user_name="alice")
                expected.append(f"emitter-{n}")
        sent = flask(cluster, "send", "--user", "alice", "toast", '{"text": "cli"}')
        assert sent.stdout.startswith("accepted ")
        expected.append("cli")
        wait_for(lambda: len(toasts(client)) >= len(expected), 15,
                 message=f"{len(expected)} toasts (have {len(toasts(client))})")
        assert toasts(client) == expected  # each once, in the order they were accepted
        seqs = [c["seq"] for c in client.commands()]
        assert seqs == list(range(1, len(seqs) + 1))
        # Nobody else got them.
        bob = connect(others[0], "bob", cluster.password)
        push(others[1], token, {"user": {"name": "alice"}}, "only alice")
        wait_for(lambda: "only alice" in toasts(client), message="alice's last toast")
        assert toasts(bob) == []
        bob.close()
    finally:
        client.close()


def test_topic_and_everyone_sends_span_workers(cluster, token):
    # One chat session per worker, each connected to that worker directly.
    clients = [connect(url, name, cluster.password, app="chat")
               for url, name in zip(cluster.workers, ("alice", "bob", "carol"), strict=True)]
    try:
        for client in clients:
            client.wait_commands(1)
        said = clients[0].event(1, "chat.say", {"text": "hello from worker 1"})
        assert said["ok"]
        push(cluster.workers[2], token, {"everyone": True}, "to everyone")
        for client in clients:
            wait_for(lambda c=client: [m for m in c.commands() if m["name"] == "chat.message"
                                       and m["args"]["text"] == "hello from worker 1"],
                     message="the chat message on every worker")
            wait_for(lambda c=client: toasts(c) == ["to everyone"], message="everyone's toast")
    finally:
        for client in clients:
            client.close()


def test_logout_on_one_worker_closes_the_users_sessions_on_all(cluster):
    sessions = [connect(url, "carol", cluster.password) for url in cluster.workers[:2]]
    bystander = connect(cluster.workers[1], "bob", cluster.password)
    http = login(cluster.workers[2], "carol", cluster.password)
    page = http.get(cluster.workers[2] + "/", timeout=10).text
    csrf = re.search(r'name="csrf[-_]token"[^>]*content="([^"]+)"|'
                     r'name="csrf_token"[^>]*value="([^"]+)"', page)
    assert csrf, "the index page carries a CSRF token for the logout form"
    response = http.post(cluster.workers[2] + "/logout", allow_redirects=False, timeout=10,
                         data={"csrf_token": csrf.group(1) or csrf.group(2)})
    assert response.status_code == 302
    for client in sessions:
        close = wait_for(lambda c=client: c.named("close"), message="close on every worker")
        assert close[0]["reason"] == "logged_out"
    assert not bystander.named("close")
    assert bystander.event(1, "echo", {"text": "still here"})["ok"]
    bystander.close()


def presence_everywhere(cluster: Cluster, token: str, topic: str = "",
                        among: tuple[str, ...] = ("dave", "erin"),
                        urls: list[str] | None = None) -> list[list[str]]:
    """Each worker's view of who is online (or in ``topic``), among ``among``."""
    views = []
    for url in urls or cluster.workers:
        answer = requests.get(url + "/api/v1/presence", params={"topic": topic} if topic else {},
                              headers={"Authorization": f"Bearer {token}"}, timeout=5).json()
        views.append([user["name"] for user in answer["users"] if user["name"] in among])
    return views


def test_presence_agrees_on_every_worker(cluster, token):
    dave = connect(cluster.workers[0], "dave", cluster.password, app="chat")
    erin = connect(cluster.workers[1], "erin", cluster.password, app="chat")
    try:
        wait_for(lambda: presence_everywhere(cluster, token, "lobby")
                 == [["dave", "erin"]] * 3, message="both in the lobby, on every worker")
        for url in cluster.workers:
            metrics = requests.get(url + "/metrics", timeout=5).text
            assert "gateway_bus_up 1.0" in metrics and "gateway_cluster_workers 3.0" in metrics
        assert re.search(r'gateway_bus_messages_total\{direction="received",type="presence"\} '
                         r'[1-9]', requests.get(cluster.workers[0] + "/metrics").text)
        # dave watches the lobby: told when erin joins (erin is on another worker).
        wait_for(lambda: [c for c in dave.commands() if c["name"] == "presence"
                          and c["args"]["user"]["name"] == "erin" and c["args"]["present"]],
                 message="dave told that erin joined")
        # erin's sessions are closed from outside (as a logout on any worker would).
        with Emitter(cluster.redis.url) as emitter:
            emitter.close_user(user_name="erin")
        wait_for(lambda: presence_everywhere(cluster, token, "lobby") == [["dave"]] * 3,
                 message="erin gone from the lobby everywhere")
        wait_for(lambda: [c for c in dave.commands() if c["name"] == "presence"
                          and c["args"]["user"]["name"] == "erin" and not c["args"]["present"]],
                 message="dave told that erin left")
    finally:
        dave.close()
        erin.close()


def test_redis_outage_is_loud_and_every_worker_recovers(cluster, token):
    client = connect(cluster.url, "alice", cluster.password)
    chat = connect(cluster.workers[0], "carol", cluster.password, app="chat")
    accepted: list[str] = []
    refused = 0
    try:
        client.wait_commands(1)
        home = worker_of(cluster, client)
        remote = [url for url in cluster.workers if url != home]

        def push_one(n: int) -> None:
            nonlocal refused
            response = push(remote[n % 2], token, {"user": {"name": "alice"}}, f"p{n}")
            if response.status_code == 202:
                accepted.append(f"p{n}")
            else:
                assert response.status_code == 503, response.text
                assert response.json()["error"]["code"] == "bus_unavailable"
                refused += 1

        n = 0
        for _ in range(10):
            push_one(n)
            n += 1
        cluster.redis.stop()
        for url in cluster.workers:
            wait_for(lambda u=url: requests.get(u + "/readyz", timeout=5).status_code == 503,
                     10, message=f"{url} not ready while Redis is down")
        body = requests.get(cluster.workers[0] + "/readyz", timeout=5).json()
        assert body["checks"]["bus"] == "unreachable"
        for _ in range(10):
            push_one(n)
            n += 1
        assert refused == 10
        # An app's topic send needs the bus: its event is answered with the error.
        said = chat.event(1, "chat.say", {"text": "anyone?"})
        assert said["ok"] is False and said["error"]["code"] == "bus_unavailable", said
        cli = flask(cluster, "send", "--user", "alice", "toast", "{}", check=False)
        assert cli.returncode != 0 and "not sent" in cli.stderr
        with pytest.raises(BusUnavailable):
            Emitter(cluster.redis.url).send("toast", {"text": "lost?"}, user_name="alice")
        cluster.redis.start()
        for url in cluster.workers:
            wait_for(lambda u=url: requests.get(u + "/readyz", timeout=5).status_code == 200,
                     15, message=f"{url} ready again")
        for _ in range(10):
            push_one(n)
            n += 1
        assert chat.event(2, "chat.say", {"text": "back"})["ok"]
        wait_for(lambda: len(toasts(client)) >= len(accepted), 15,
                 message=f"{len(accepted)} accepted toasts delivered")
        assert toasts(client) == accepted  # every accepted one, once; no refused one
        assert len(accepted) == 20
    finally:
        client.close()
        chat.close()


def test_admin_lists_and_kicks_sessions_across_workers(cluster):
    flask(cluster, "users", "create", "root", "--password-stdin", "--admin",
          input_text=cluster.password)
    bob = connect(cluster.workers[2], "bob", cluster.password)
    try:
        admin = login(cluster.workers[0], "root", cluster.password)
        bob_id = bob.named("session")[0]["session"]
        rows = wait_for(lambda: [r for r in admin.get(cluster.workers[0] + "/api/v1/sessions",
                                                       timeout=10).json()["sessions"]
                                 if r["id"] == bob_id], message="bob's session in the list")
        # Listed by worker 1 although worker 3 holds it (worker 1 alone has no sessions).
        assert rows[0]["user"]["name"] == "bob" and rows[0]["state"] == "attached"
        page = admin.get(cluster.workers[0] + "/", timeout=10).text
        csrf = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page).group(1)
        kicked = admin.post(cluster.workers[0] + f"/api/v1/sessions/{bob_id}/kick",
                            headers={"X-CSRFToken": csrf}, timeout=10)
        assert kicked.status_code == 202, kicked.text
        close = wait_for(lambda: bob.named("close"), message="bob kicked from another worker")
        assert close[0]["reason"] == "kicked"
    finally:
        bob.close()


def test_a_resume_on_a_worker_without_the_session_is_told_unknown(cluster):
    first = connect(cluster.workers[0], "bob", cluster.password)
    http = login(cluster.workers[1], "bob", cluster.password)
    second = ProtocolClient(cluster.workers[1], cookie_header(http))
    try:
        welcome = first.named("session")[0]
        first.close()
        second.connect("echo", resume={"session": welcome["session"], "token": welcome["token"],
                                       "last_seq": 0})
        answer = wait_for(lambda: second.named("session"), message="the other worker's answer")[0]
        # Explicit, never silent: a fresh session, and why.
        assert answer["resumed"] is False and answer["reason"] == "unknown"
        assert answer["session"] != welcome["session"]
    finally:
        first.close()
        second.close()


def redis_commands(cluster: Cluster) -> dict[str, int]:
    """Calls per command so far on the cluster's Redis (INFO commandstats)."""
    import redis

    with redis.Redis.from_url(cluster.redis.url) as client:
        stats = client.info("commandstats")
    return {name.removeprefix("cmdstat_"): int(value["calls"]) for name, value in stats.items()}


def test_session_local_traffic_never_touches_redis(cluster):
    client = connect(cluster.workers[0], "carol", cluster.password)
    try:
        client.wait_commands(1)
        before = redis_commands(cluster)
        for n in range(1, 51):
            assert client.event(n, "echo", {"text": f"e{n}"})["ok"]
        client.wait_commands(51)
        after = redis_commands(cluster)
        for command in ("publish", "xadd", "rpush"):
            assert after.get(command, 0) == before.get(command, 0), command
    finally:
        client.close()


def test_a_dead_workers_users_leave_within_three_heartbeats(cluster, token):
    # Last in this module: it kills a worker.
    victim, survivors = cluster.processes[2], cluster.workers[:2]
    erin = connect(victim.url, "erin", cluster.password)
    try:
        wait_for(lambda: presence_everywhere(cluster, token, among=("erin",), urls=survivors)
                 == [["erin"]] * 2, message="erin online on the other workers")
        assert victim.proc is not None
        # SIGKILL the gunicorn worker process itself (the arbiter would restart it),
        # then its arbiter: no drain, no goodbye.
        children = subprocess.run(["pgrep", "-P", str(victim.proc.pid)], text=True,
                                  capture_output=True).stdout.split()
        assert children, "the gunicorn worker process"
        for pid in children:
            os.kill(int(pid), signal.SIGKILL)
        victim.proc.kill()
        victim.proc.wait(10)
        # Heartbeats every 0.5 s expire after 3 beats: gone within 1.5 s plus a beat.
        wait_for(lambda: presence_everywhere(cluster, token, among=("erin",), urls=survivors)
                 == [[]] * 2,
                 timeout=2.5, message="erin gone with her worker")
    finally:
        erin.close()
