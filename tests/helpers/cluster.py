"""Real Redis, nginx and several gunicorn workers, for the scale-out tests.

* ``RedisServer(directory, port=None)``: ``redis-server`` on a loopback port, no
  persistence; ``start()``, ``stop(kill=False)``, ``restart()`` (same port), ``ping()``,
  ``url`` (``redis://127.0.0.1:PORT/0``).
* ``Nginx(kind, upstreams, directory, port=None)``: the project's nginx configuration
  (``"single"`` or ``"cluster"``, rendered by nginx/render.py) in a foreground nginx;
  ``start()``, ``stop()``, ``url``, ``access_log()`` (which upstream served what).
* ``Cluster(directory, workers=3, users=("alice", "bob"), password=PASSWORD,
  redis=None, **env)``: a RedisServer (its own unless given), N ``gunicorn -k eventlet
  -w 1`` workers sharing one SQLite file, with ``GATEWAY_MESSAGE_QUEUE`` set to the Redis,
  ``GATEWAY_PROXY_FIX=1`` and ``GATEWAY_DRAIN_SECONDS=1`` (``env`` overrides), and nginx
  (cluster configuration) in front. ``start(timeout=60, ready=True)`` waits for every
  worker's /readyz; ``url`` (nginx), ``workers`` (each worker's own url), ``processes``
  (their ``ServerProcess``), ``worker_at("127.0.0.1:PORT")``, ``readiness()``,
  ``wait_ready()``, ``logs()``, ``redis``, ``nginx``, ``password``, ``stop()``.
* ``running_cluster(tmp_path_factory, ...)``: a started Cluster, always stopped.
  Fixtures (module-scoped):
  ``cluster`` and ``redis_server`` (registered by tests/conftest.py's ``pytest_plugins``).

Missing ``redis-server`` or ``nginx``: installed with scripts/system-deps.sh when running
as root; otherwise the test is skipped, except in CI (``CI=true``), where it fails.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
from collections.abc import Iterable
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests

from gateway import hub_for
from nginx import render

from .support import IN_CI
from .support import ROOT
from .support import ServerProcess
from .support import free_port
from .support import server_env
from .support import wait_for

PASSWORD = "cluster-test-password"
USERS = ("alice", "bob")


def require_binary(name: str) -> str:
    """The path of ``name`` (redis-server, nginx); installed by scripts/system-deps.sh as
    root when missing. Skips the test when it cannot be had, but never in CI."""

    def find() -> str | None:
        found = shutil.which(name)
        if found:
            return found
        for folder in ("/usr/sbin", "/usr/bin", "/usr/local/sbin", "/usr/local/bin"):
            if os.access(os.path.join(folder, name), os.X_OK):
                return os.path.join(folder, name)
        return None

    path = find()
    if path is None and hasattr(os, "geteuid") and os.geteuid() == 0:
        subprocess.run([os.path.join(ROOT, "scripts", "system-deps.sh")], check=False,
                       timeout=1200)
        path = find()
    if path is None:
        message = f"{name} is not installed (scripts/system-deps.sh installs it as root)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    return path


def create_users(env: dict[str, str], names: Iterable[str], password: str) -> None:
    """Create the tables and ``names`` in the database of ``env``, from this process
    (as support.add_users does: one app and one Argon2 hash instead of one
    ``flask users create`` process per user)."""
    import auth
    from gateway import create_app

    app = create_app({"GATEWAY_ENV": "development", "GATEWAY_ASYNC_MODE": "threading",
                      "GATEWAY_DATABASE_URL": env["GATEWAY_DATABASE_URL"]})
    try:
        with app.app_context():
            password_hash = auth.models._hasher.hash(password)
            for name in names:
                auth.db.session.add(auth.User(name=name, password_hash=password_hash))
            auth.db.session.commit()
    finally:
        hub_for(app).shutdown()


def _stop(proc: subprocess.Popen[bytes] | None, sig: int = signal.SIGTERM,
          timeout: float = 10.0) -> None:
    """Stop our own child ``proc`` (by its PID): ``sig``, then SIGKILL past ``timeout``."""
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(sig)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


def _read(path: str) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read()
    except FileNotFoundError:
        return ""


class RedisServer:
    """``redis-server`` on 127.0.0.1, without persistence, in ``directory``."""

    def __init__(self, directory: str, port: int | None = None) -> None:
        self.directory = str(directory)
        os.makedirs(self.directory, exist_ok=True)
        self.port = port or free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.log_path = os.path.join(self.directory, "redis.log")
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def ping(self) -> bool:
        """PING answered with PONG (a raw RESP exchange: no client library needed)."""
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(64).startswith(b"+PONG")
        except OSError:
            return False

    def start(self, timeout: float = 10.0) -> RedisServer:
        binary = require_binary("redis-server")
        log = open(self.log_path, "ab")
        try:
            self.proc = subprocess.Popen(
                [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                 "--appendonly", "no", "--dir", self.directory, "--daemonize", "no"],
                cwd=self.directory, stdout=log, stderr=subprocess.STDOUT)
        finally:
            log.close()  # the child has its own descriptor

        def ready() -> bool:
            if self.proc is not None and self.proc.poll() is not None:
                raise AssertionError(f"redis-server exited early:\n{self.log()}")
            return self.ping()

        wait_for(ready, timeout, interval=0.02, message=f"redis-server on port {self.port}")
        return self

    def stop(self, kill: bool = False, timeout: float = 10.0) -> None:
        """Stop it (SIGTERM; ``kill=True``: SIGKILL, a crash); the port is free afterwards."""
        _stop(self.proc, signal.SIGKILL if kill else signal.SIGTERM, timeout)

    def restart(self, timeout: float = 10.0) -> RedisServer:
        """Start it again on the same port (stopping it first if it still runs)."""
        self.stop()
        return self.start(timeout)

    def log(self) -> str:
        return _read(self.log_path)

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


ACCESS_LINE = re.compile(r'^(?P<remote>\S+) \[[^\]]*\] "(?P<request>[^"]*)" (?P<status>\d+) '
                         r'\d+ upstream=(?P<upstream>\S+)')


class Nginx:
    """nginx running the project's ``single`` or ``cluster`` configuration in the
    foreground, with everything it writes in ``directory``."""

    def __init__(self, kind: str, upstreams: Iterable[str], directory: str,
                 port: int | None = None, static_root: str = render.STATIC_ROOT) -> None:
        self.kind, self.upstreams = kind, list(upstreams)
        self.directory = str(directory)
        self.static_root = static_root
        self.port = port or free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def access_log_path(self) -> str:
        return os.path.join(self.directory, "logs", "access.log")

    @property
    def error_log_path(self) -> str:
        return os.path.join(self.directory, "logs", "error.log")

    def start(self, timeout: float = 10.0, attempts: int = 3) -> Nginx:
        binary = require_binary("nginx")
        for attempt in range(attempts):
            render.prepare_prefix(self.directory, self.kind, listen=f"127.0.0.1:{self.port}",
                                  upstreams=self.upstreams, static_root=self.static_root)
            with open(os.path.join(self.directory, "logs", "stdout.log"), "ab") as out:
                self.proc = subprocess.Popen(render.nginx_command(self.directory, binary),
                                             cwd=self.directory, stdout=out,
                                             stderr=subprocess.STDOUT)
            try:
                wait_for(self._answers, timeout, interval=0.02, message="nginx to answer")
                return self
            except AssertionError:
                _stop(self.proc)
                if "Address already in use" not in self.error_log() or attempt == attempts - 1:
                    raise
                self.port = free_port()  # someone took the port meanwhile: another one
        raise AssertionError("unreachable")

    def _answers(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise AssertionError(f"nginx exited early:\n{self.error_log()}")
        try:
            # Any HTTP answer will do; /static/ itself is nginx's own (403: no index).
            requests.head(self.url + "/static/", timeout=1)
            return True
        except requests.RequestException:
            return False

    def stop(self, timeout: float = 10.0) -> None:
        """Fast shutdown (SIGTERM to the master, our child: it stops its workers)."""
        _stop(self.proc, signal.SIGTERM, timeout)

    def error_log(self) -> str:
        return _read(self.error_log_path)

    def access_log(self) -> list[dict[str, str]]:
        """Parsed access log lines: remote, request, status, upstream ("-": nginx itself)."""
        entries = []
        for line in _read(self.access_log_path).splitlines():
            match = ACCESS_LINE.match(line)
            if match:
                entries.append(match.groupdict())
        return entries

    def __enter__(self) -> Nginx:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


class Cluster:
    """Redis + ``workers`` gunicorn eventlet workers (one process each, one SQLite file)
    + nginx with the cluster configuration. ``env`` adds or overrides GATEWAY_* settings;
    ``redis`` reuses a running RedisServer (then ``stop()`` leaves it running)."""

    def __init__(self, directory: str, workers: int = 3, users: Iterable[str] = USERS,
                 password: str = PASSWORD, redis: RedisServer | None = None, **env: str) -> None:
        self.directory = str(directory)
        os.makedirs(self.directory, exist_ok=True)
        self.users, self.password = list(users), password
        self._own_redis = redis is None
        self.redis = redis or RedisServer(os.path.join(self.directory, "redis"))
        self.env = server_env(os.path.join(self.directory, "gateway.db"), **{
            "GATEWAY_MESSAGE_QUEUE": self.redis.url,
            "GATEWAY_PROXY_FIX": "1",
            "GATEWAY_DRAIN_SECONDS": "1",
            **env,
        })
        self.processes = [
            ServerProcess.gunicorn(self.env, os.path.join(self.directory, f"worker{i}.log"))
            for i in range(1, workers + 1)
        ]
        self.nginx = Nginx("cluster", [f"127.0.0.1:{p.port}" for p in self.processes],
                           os.path.join(self.directory, "nginx"))

    @property
    def url(self) -> str:
        return self.nginx.url

    @property
    def workers(self) -> list[str]:
        """Each worker's own url (bypassing nginx)."""
        return [p.url for p in self.processes]

    def worker_at(self, upstream: str) -> ServerProcess:
        """The worker behind an nginx ``$upstream_addr`` (``127.0.0.1:PORT``)."""
        for proc in self.processes:
            if upstream == f"127.0.0.1:{proc.port}":
                return proc
        raise KeyError(upstream)

    def start(self, timeout: float = 60.0, ready: bool = True) -> Cluster:
        """Start everything; with ``ready``, also wait until every worker's /readyz says
        200 (the database and the bus reachable: the bus connects after /healthz does)."""
        try:
            if not self.redis.running:
                self.redis.start()
            require_binary("nginx")  # before the slow part: skip early when it is missing
            # Users (and the tables) before the workers: they would all create the tables.
            create_users(self.env, self.users, self.password)
            with ThreadPoolExecutor(len(self.processes)) as pool:
                list(pool.map(lambda proc: proc.start(timeout), self.processes))
            self.nginx.start()
            if ready:
                self.wait_ready(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def readiness(self) -> dict[str, Any]:
        """Each worker's /readyz answer (status code and body), by url."""
        answers: dict[str, Any] = {}
        for url in self.workers:
            try:
                response = requests.get(url + "/readyz", timeout=2)
                answers[url] = (response.status_code, response.text.strip())
            except requests.RequestException as error:
                answers[url] = (None, str(error))
        return answers

    def wait_ready(self, timeout: float = 30.0) -> None:
        last: dict[str, Any] = {}

        def ready() -> bool:
            last.update(self.readiness())
            return all(code == 200 for code, _ in last.values())

        try:
            wait_for(ready, timeout, interval=0.1, message="every worker's /readyz")
        except AssertionError as error:
            raise AssertionError(f"{error}: {last}") from None

    def stop(self) -> None:
        """Workers first (they drain: clients get their close through nginx), then nginx,
        then the Redis this cluster started."""
        with ThreadPoolExecutor(max(1, len(self.processes))) as pool:
            list(pool.map(lambda proc: proc.stop(), self.processes))
        self.nginx.stop()
        if self._own_redis:
            self.redis.stop()

    def logs(self) -> str:
        """Every worker's log, for assertion messages."""
        return "\n".join(f"--- {p.url}\n{p.log()}" for p in self.processes
                         if os.path.exists(p.log_path))

    def __enter__(self) -> Cluster:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


@contextlib.contextmanager
def running_cluster(tmp_path_factory: pytest.TempPathFactory, name: str = "cluster",
                    workers: int = 3, **kwargs: Any) -> Iterator[Cluster]:
    """A started Cluster in a fresh temporary folder, always stopped on exit
    (``kwargs``: ``users``, ``password``, ``redis``, GATEWAY_* settings)."""
    cluster = Cluster(str(tmp_path_factory.mktemp(name)), workers=workers, **kwargs)
    with cluster:
        yield cluster


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A running RedisServer for the module (restarted by a test? it is stopped anyway)."""
    with RedisServer(str(tmp_path_factory.mktemp("redis"))) as server:
        yield server


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """Three workers behind nginx, with their own Redis; users ``alice`` and ``bob``
    (password ``cluster.password``)."""
    with running_cluster(tmp_path_factory) as started:
        yield started
