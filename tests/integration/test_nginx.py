"""Through nginx, with the project's own configurations (nginx/single-node.conf and
nginx/cluster.conf, rendered by nginx/render.py): login, Socket.IO over WebSocket and
long-polling, static files served by nginx itself, health checks, and ip_hash stickiness
in front of three gunicorn workers."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import time
from collections.abc import Iterator

import pytest
import requests
import socketio

from nginx import render
from tests.helpers.cluster import Cluster
from tests.helpers.cluster import Nginx
from tests.helpers.cluster import require_binary
from tests.helpers.support import ProtocolClient
from tests.helpers.support import ServerProcess
from tests.helpers.support import add_users
from tests.helpers.support import cookie_header
from tests.helpers.support import free_port
from tests.helpers.support import login
from tests.helpers.support import running_server
from tests.helpers.support import wait_for

pytestmark = pytest.mark.real
PASSWORD = "nginx-test-password"


@dataclasses.dataclass
class Single:
    worker: ServerProcess
    nginx: Nginx

    @property
    def upstream(self) -> str:
        return f"127.0.0.1:{self.worker.port}"


@pytest.fixture(scope="module")
def single(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Single]:
    """One ``python wsgi.py`` worker (trusting one proxy) behind the single-node config."""
    with running_server(tmp_path_factory, "single", [], PASSWORD,
                        GATEWAY_PROXY_FIX="1", GATEWAY_DRAIN_SECONDS="1") as worker:
        add_users(worker, PASSWORD, ["alice"])
        proxy = Nginx("single", [f"127.0.0.1:{worker.port}"],
                      str(tmp_path_factory.mktemp("nginx-single")))
        with proxy:
            yield Single(worker, proxy)
        assert "[emerg]" not in proxy.error_log() and "[crit]" not in proxy.error_log()
    assert "Traceback" not in worker.log(), worker.log()


def echo_round_trip(client: ProtocolClient, count: int = 3) -> None:
    client.connect("echo")
    client.wait_commands(1)  # the echo app's greeting
    for i in range(1, count + 1):
        assert client.event(i, "echo", {"text": f"m{i}"}) == {"ok": True, "result": f"m{i}"}
    outputs = client.wait_commands(count + 1)[1:]
    assert [c["args"]["content"] for c in outputs] == [f"m{i}" for i in range(1, count + 1)]


def logged(proxy: Nginx, since: int, path: str) -> list[dict[str, str]]:
    return [e for e in proxy.access_log()[since:] if f" {path}" in e["request"]]


# -- the configurations ---------------------------------------------------------------------

@pytest.mark.parametrize("kind,upstreams", [("single", ["127.0.0.1:5000"]),
                                            ("cluster", ["127.0.0.1:5001", "127.0.0.1:5002"])])
def test_rendered_configurations_pass_nginx_t(tmp_path, kind, upstreams):
    site = render.render_site(kind, listen=8080, upstreams=upstreams)
    assert "${" not in site and "$http_upgrade" in site  # ours filled in, nginx's kept
    assert all(f"server {address};" in site for address in upstreams)
    render.prepare_prefix(str(tmp_path), kind, listen="127.0.0.1:8080", upstreams=upstreams)
    command = render.nginx_command(str(tmp_path), require_binary("nginx"))
    checked = subprocess.run([*command[:-2], "-t"], capture_output=True, text=True, timeout=30)
    assert checked.returncode == 0, checked.stderr
    with pytest.raises(KeyError):
        render.substitute("listen ${LISTEN}; ${NOT_GIVEN}", {"LISTEN": "80"})
    with pytest.raises(ValueError):
        render.render_site("single", listen=80, upstreams=upstreams * 2)


# -- single node ----------------------------------------------------------------------------

@pytest.mark.parametrize("transport", ["websocket", "polling"])
def test_single_login_and_echo_through_nginx(single, transport):
    http = login(single.nginx.url, "alice", PASSWORD)  # the form, its CSRF token, the cookie
    mark = len(single.nginx.access_log())
    client = ProtocolClient(single.nginx.url, cookie_header(http), transports=[transport])
    try:
        echo_round_trip(client)
        assert client.sio.transport() == transport
        welcome = client.named("session")[0]
        assert welcome["user"]["name"] == "alice" and welcome["app"] == "echo"
    finally:
        client.close()
    # Every Engine.IO request went to the worker (a WebSocket is logged when it ends: 101).
    wait_for(lambda: logged(single.nginx, mark, "/socket.io/"), message="socket.io in the log")
    entries = logged(single.nginx, mark, "/socket.io/")
    assert {e["upstream"] for e in entries} == {single.upstream}
    if transport == "websocket":
        wait_for(lambda: any(e["status"] == "101"
                             for e in logged(single.nginx, mark, "/socket.io/")),
                 message="the WebSocket upgrade (101) in the access log")


def test_single_static_files_come_from_nginx(single):
    mark = len(single.nginx.access_log())
    response = requests.get(single.nginx.url + "/static/gateway.js", timeout=5)
    assert response.status_code == 200
    with open(os.path.join(render.STATIC_ROOT, "gateway.js"), "rb") as f:
        assert response.content == f.read()
    assert response.headers["Content-Type"] == "application/javascript"
    # nginx's caching headers (`expires 1h`), not Flask's (no-cache), and no upstream.
    assert response.headers["Cache-Control"] == "max-age=3600" and "Expires" in response.headers
    assert requests.get(single.worker.url + "/static/gateway.js",
                        timeout=5).headers["Cache-Control"] == "no-cache"
    entries = logged(single.nginx, mark, "/static/gateway.js")
    assert [e["upstream"] for e in entries] == ["-"], entries
    assert requests.get(single.nginx.url + "/static/", timeout=5).status_code == 403  # no index


def test_single_health_and_pages_are_proxied(single):
    mark = len(single.nginx.access_log())
    assert requests.get(single.nginx.url + "/healthz", timeout=5).json() == {"status": "ok"}
    ready = requests.get(single.nginx.url + "/readyz", timeout=5)
    assert ready.status_code == 200, ready.text
    assert [e["upstream"] for e in logged(single.nginx, mark, "/healthz")] == [single.upstream]
    login_page = requests.get(single.nginx.url + "/login", timeout=5)
    assert login_page.status_code == 200 and "csrf_token" in login_page.text


def test_single_same_origin_check_sees_the_public_host(single):
    """Host and X-Forwarded-Host carry nginx's host:port, so a page served through nginx
    may connect (over polling too, where the client sends the Origin we give it) and a
    foreign origin may not."""
    cookie = cookie_header(login(single.nginx.url, "alice", PASSWORD))
    for origin, accepted in ((single.nginx.url, True), ("http://evil.example", False)):
        client = ProtocolClient(single.nginx.url, cookie, transports=["polling"])
        try:
            client.sio.connect(single.nginx.url, headers={"Cookie": cookie, "Origin": origin},
                               auth={"app": "echo", "resume": None}, transports=["polling"],
                               wait_timeout=10)
        except socketio.exceptions.ConnectionError:
            assert not accepted, f"{origin} was refused"
        else:
            assert accepted, f"{origin} was accepted"
            client.wait_commands(1)
        finally:
            client.close()


def test_single_body_limit_is_enforced_by_nginx(single):
    response = requests.post(single.nginx.url + "/login", data=b"x" * (2 * 1024 * 1024),
                             timeout=10)
    assert response.status_code == 413 and "nginx" in response.headers.get("Server", "")


def test_static_files_need_no_worker(tmp_path):
    """With nothing listening upstream, static files still come (nginx serves them) while
    a proxied path gets nginx's 502."""
    with Nginx("single", [f"127.0.0.1:{free_port()}"], str(tmp_path)) as proxy:
        assert requests.get(proxy.url + "/static/gateway.js", timeout=5).status_code == 200
        assert requests.get(proxy.url + "/static/renderer.js", timeout=5).status_code == 200
        assert requests.get(proxy.url + "/healthz", timeout=5).status_code == 502


# -- cluster ----------------------------------------------------------------------------------

def test_cluster_workers_answer_directly(cluster: Cluster):
    assert len(cluster.workers) == 3
    for url in cluster.workers:
        assert requests.get(url + "/healthz", timeout=5).json() == {"status": "ok"}
    assert requests.get(cluster.url + "/healthz", timeout=5).json() == {"status": "ok"}
    # Each reaches the database and Redis (the fixture waited for it).
    assert all(code == 200 for code, _ in cluster.readiness().values()), cluster.readiness()


def test_cluster_long_polling_session_is_sticky(cluster: Cluster):
    mark = len(cluster.nginx.access_log())
    http = login(cluster.url, "alice", cluster.password)
    for _ in range(10):
        assert http.get(cluster.url + "/healthz", timeout=5).status_code == 200
    client = ProtocolClient(cluster.url, cookie_header(http), transports=["polling"])
    try:
        echo_round_trip(client, count=20)  # dozens of polling requests, one session
        sid = client.sio.eio.sid
        # The first request already landed on one worker; say which.
        entries = wait_for(lambda: logged(cluster.nginx, mark, "/socket.io/"))
        sticky = cluster.worker_at(entries[0]["upstream"])
        # Without stickiness this session would break: the other workers do not know it.
        for other in cluster.processes:
            if other is not sticky:
                stray = requests.get(f"{other.url}/socket.io/?EIO=4&transport=polling&sid={sid}",
                                     timeout=5)
                assert stray.status_code == 400, (other.url, stray.status_code, stray.text)
        assert client.event(21, "echo", {"text": "still here"})["ok"] is True
        # Every request of the live session succeeded (nginx logs a request when it
        # ends: the long-poll still pending at the close is judged below, with the rest).
        polls = logged(cluster.nginx, mark, "/socket.io/")
        assert len(polls) >= 20, polls  # every event went in its own POST at least
        assert all(e["status"] == "200" for e in polls), [e for e in polls
                                                          if e["status"] != "200"]
    finally:
        client.close()
    entries = [e for e in cluster.nginx.access_log()[mark:] if e["upstream"] != "-"]
    # Login, health checks and every Engine.IO request: one client address, one worker.
    assert {e["upstream"] for e in entries} == {f"127.0.0.1:{sticky.port}"}, entries


def test_cluster_websocket_through_nginx(cluster: Cluster):
    mark = len(cluster.nginx.access_log())
    http = login(cluster.url, "bob", cluster.password)
    client = ProtocolClient(cluster.url, cookie_header(http), transports=["websocket"])
    try:
        echo_round_trip(client, count=5)
        assert client.sio.transport() == "websocket"
    finally:
        client.close()
    upgrade = wait_for(lambda: [e for e in logged(cluster.nginx, mark, "/socket.io/")
                                if e["status"] == "101"], message="the upgrade in the log")
    assert upgrade[0]["upstream"] in {f"127.0.0.1:{p.port}" for p in cluster.processes}


def test_cluster_sse_stream_through_nginx(cluster: Cluster):
    """/api/v1/stream through nginx: each event is passed on as soon as it is sent
    (unbuffered), here a command published on the bus from outside the cluster."""
    from gateway.cluster.emitter import Emitter

    http = login(cluster.url, "bob", cluster.password)
    with http.get(cluster.url + "/api/v1/stream", stream=True, timeout=20) as response:
        assert response.status_code == 200, response.text
        assert response.headers["Content-Type"].startswith("text/event-stream")
        assert "X-Accel-Buffering" not in response.headers  # nginx consumes it
        lines = response.iter_lines(chunk_size=1, decode_unicode=True)
        assert next(lines).startswith("retry:")  # the stream is open (and not buffered)
        with Emitter(cluster.redis.url) as emitter:
            emitter.send("toast", {"level": "info", "text": "through nginx"}, user_name="bob")
        deadline = time.monotonic() + 10
        received = []
        for line in lines:
            received.append(line)
            if "through nginx" in line or time.monotonic() > deadline:
                break
        assert any(line.startswith("data:") and "through nginx" in line
                   for line in received), received
        assert "event: toast" in received, received


def test_cluster_login_is_valid_on_every_worker(cluster: Cluster):
    """One secret key and one user database: a cookie from nginx opens pages anywhere."""
    http = login(cluster.url, "alice", cluster.password)
    for url in cluster.workers:
        page = requests.get(url + "/", headers={"Cookie": cookie_header(http)},
                            allow_redirects=False, timeout=5)
        assert page.status_code == 200, (url, page.status_code)


def test_cluster_workers_logged_no_traceback(cluster: Cluster):
    logs = cluster.logs()
    assert "Traceback" not in logs, logs
