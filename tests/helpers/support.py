"""Test helpers: waiting on conditions with deadlines, free ports, real server processes."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from collections.abc import Iterator
from collections.abc import Sequence
from typing import Any

import requests

from gateway import hub_for
from gateway.client_state import ClientState

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PYTHON = sys.executable
IN_CI = os.environ.get("CI") == "true"


def wait_for(predicate: Callable[[], Any], timeout: float = 10.0, interval: float = 0.01,
             message: str = "condition") -> Any:
    """Poll ``predicate`` until it returns something truthy; fail after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {message}")
        time.sleep(interval)  # poll interval of a deadline wait, not a wait for work


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def server_env(db_path: str, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update({
        "GATEWAY_SECRET_KEY": "test-secret-key-for-real-server-tests",
        "GATEWAY_DATABASE_URL": f"sqlite:///{db_path}",
        "GATEWAY_LOG_LEVEL": "INFO",
        "PYTHONUNBUFFERED": "1",
        "PYTHONPATH": ROOT,
    })
    env.update(extra)
    return env


def create_user(env: dict[str, str], name: str, password: str, admin: bool = False) -> None:
    cmd = [PYTHON, "-m", "flask", "--app", "wsgi", "users", "create", name, "--password-stdin"]
    if admin:
        cmd.append("--admin")
    subprocess.run(cmd, input=password + "\n", text=True, env=env, cwd=ROOT,
                   check=True, capture_output=True, timeout=60)


class ServerProcess:
    """A real gateway process (``python wsgi.py`` or gunicorn) on a free loopback port."""

    def __init__(self, cmd: list[str], env: dict[str, str], port: int, log_path: str) -> None:
        self.cmd, self.env, self.port, self.log_path = cmd, env, port, log_path
        self.url = f"http://127.0.0.1:{port}"
        self.proc: subprocess.Popen[bytes] | None = None

    @classmethod
    def embedded(cls, env: dict[str, str], log_path: str) -> ServerProcess:
        port = free_port()
        env = dict(env, GATEWAY_HOST="127.0.0.1", GATEWAY_PORT=str(port))
        return cls([PYTHON, "wsgi.py"], env, port, log_path)

    @classmethod
    def gunicorn(cls, env: dict[str, str], log_path: str) -> ServerProcess:
        port = free_port()
        # --no-control-socket: gunicorn 25's masters would all share ~/.gunicorn/gunicorn.ctl.
        cmd = [PYTHON, "-m", "gunicorn", "--no-control-socket", "-k", "eventlet", "-w", "1",
               "-b", f"127.0.0.1:{port}", "--graceful-timeout", "5", "wsgi:app"]
        return cls(cmd, dict(env, GATEWAY_ASYNC_MODE="eventlet"), port, log_path)

    def start(self, timeout: float = 30.0) -> ServerProcess:
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.cmd, cwd=ROOT, env=self.env, stdout=self._log,
                                     stderr=subprocess.STDOUT)

        def healthy() -> bool:
            if self.proc is not None and self.proc.poll() is not None:
                raise AssertionError(f"server exited early:\n{self.log()}")
            try:
                return requests.get(self.url + "/healthz", timeout=1).status_code == 200
            except requests.RequestException:
                return False

        wait_for(healthy, timeout, interval=0.05, message=f"{self.cmd[1]} to serve")
        return self

    def log(self) -> str:
        with open(self.log_path, encoding="utf-8", errors="replace") as f:
            return f.read()

    def stop(self, timeout: float = 15.0) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        self._log.close()


CSRF = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')


def csrf_token(html: str) -> str:
    """The CSRF token of the form in ``html``."""
    found = CSRF.search(html)
    assert found is not None, "no CSRF token in the page"
    return found.group(1)


def login(base_url: str, name: str, password: str) -> requests.Session:
    """Log in through the real login form (with its CSRF token); return the HTTP session."""
    http = requests.Session()
    page = http.get(base_url + "/login", timeout=10)
    match = CSRF.search(page.text)
    assert match, "the login page has no CSRF token"
    response = http.post(base_url + "/login", timeout=10, allow_redirects=False,
                         data={"csrf_token": match.group(1), "name": name, "password": password})
    assert response.status_code == 302, response.text
    return http


def cookie_header(http: requests.Session) -> str:
    return "; ".join(f"{c.name}={c.value}" for c in http.cookies)


class ProtocolClient:
    """A python-socketio client that records every protocol message it receives, as it
    came (duplicates and all), and acknowledges the commands it has in seq order."""

    def __init__(self, base_url: str, cookie: str | None, transports: list[str] | None = None,
                 auto_ack: bool = True) -> None:
        import socketio
        from engineio.payload import Payload

        # The python-engineio *client* also refuses a polling response of more than
        # 16 packets (and drops the connection); the server batches more than that
        # under a burst. The official JS client has no such limit.
        Payload.max_decode_packets = max(Payload.max_decode_packets, 100_000)
        self.base_url, self.cookie = base_url, cookie
        self.transports = transports or ["websocket"]
        self.auto_ack = auto_ack
        self.sio = socketio.Client(reconnection=False)
        self.received: list[tuple[str, Any]] = []  # (message name, payload), in order
        self.state = ClientState()  # what an ack may say: the seqs received in order
        self._lock = threading.Lock()  # python-socketio runs each handler in its own thread
        self.connect_error: Any = None
        self.disconnected = False
        self._unsent_ack: int | None = None  # commands may arrive before the CONNECT packet
        for name in ("session", "commands", "close"):
            self.sio.on(name, self._recorder(name))
        self.sio.on("connect_error", lambda data: setattr(self, "connect_error", data))
        self.sio.on("disconnect", lambda *args: setattr(self, "disconnected", True))
        self.sio.on("connect", self._send_unsent_ack)

    def _recorder(self, name: str) -> Callable[[Any], None]:
        def record(data: Any) -> None:
            self.received.append((name, data))
            if name == "session":
                with self._lock:
                    self.state.welcome(data)
            elif name == "commands" and data:
                with self._lock:
                    applied = self.state.accept(data)
                    seq = self.state.last_seq
                if self.auto_ack and applied:
                    self._unsent_ack = seq
                    if self.sio.connected:
                        self._send_unsent_ack()
        return record

    def _send_unsent_ack(self) -> None:
        seq, self._unsent_ack = self._unsent_ack, None
        if seq is not None:
            self.sio.emit("ack", {"seq": seq})

    def connect(self, app: str, resume: Any = None) -> ProtocolClient:
        if isinstance(resume, dict) and isinstance(resume.get("last_seq"), int):
            with self._lock:  # another client's session: its commands after last_seq come
                self.state.resume_from(resume.get("session"), resume.get("token"),
                                       resume["last_seq"])
        headers = {"Cookie": self.cookie} if self.cookie else {}
        self.sio.connect(self.base_url, headers=headers, auth={"app": app, "resume": resume},
                         transports=self.transports, wait_timeout=10)
        return self

    def try_connect(self, app: str) -> Any:
        """Connect expecting a refusal; return the CONNECT_ERROR data."""
        import socketio

        try:
            self.connect(app)
        except socketio.exceptions.ConnectionError:
            pass
        else:
            self.sio.disconnect()
            raise AssertionError("the connection was accepted")
        return wait_for(lambda: self.connect_error, 5, message="connect_error")

    def named(self, name: str) -> list[Any]:
        return [data for n, data in list(self.received) if n == name]

    def commands(self) -> list[dict[str, Any]]:
        return [c for batch in self.named("commands") for c in batch]

    def wait_commands(self, count: int, timeout: float = 10) -> list[dict[str, Any]]:
        return wait_for(lambda: len(self.commands()) >= count and self.commands(), timeout,
                        message=f"{count} commands (have {len(self.commands())})")

    def event(self, event_id: int, name: str, data: Any, timeout: float = 10) -> Any:
        return self.sio.call("event", {"id": event_id, "name": name, "data": data},
                             timeout=timeout)

    def close(self) -> None:
        """Disconnect, without python-engineio's 25 s polling hang.

        Its client drops the CLOSE packet when disconnect() comes while a POST is in
        flight (the write loop ends on ``state != "connected"`` without sending what is
        queued): the server learns of the close only at its next ping, and the client's
        pending GET and disconnect() wait for that. So: let the queue drain first, then
        close the Engine.IO connection (which ends the Socket.IO one as well).
        """
        eio = self.sio.eio
        if self.sio.connected and eio.current_transport == "polling":
            wait_for(lambda: eio.queue.unfinished_tasks == 0, 5, message="the send queue to drain")
            eio.disconnect()
        if self.sio.connected:
            self.sio.disconnect()


@contextlib.contextmanager
def running_server(tmp_path_factory: Any, name: str, users: list[str], password: str,
                   kind: str = "eventlet", **env: str) -> Iterator[ServerProcess]:
    """A real server of ``kind`` (eventlet, threading, gunicorn) with ``users``, its own
    database and log under a fresh temporary folder; stopped on exit."""
    tmp = tmp_path_factory.mktemp(name)
    settings = server_env(str(tmp / "gateway.db"),
                          GATEWAY_ASYNC_MODE="threading" if kind == "threading" else "eventlet",
                          **env)
    for user in users:
        create_user(settings, user, password)
    log = str(tmp / "server.log")
    proc = (ServerProcess.gunicorn(settings, log) if kind == "gunicorn"
            else ServerProcess.embedded(settings, log)).start()
    try:
        yield proc
    finally:
        proc.stop()


def add_users(server: ServerProcess, password: str, users: Sequence[str],
              admins: Sequence[str] = ()) -> None:
    """Create users in a running server's database from this process (much faster than
    one ``flask users create`` process each)."""
    import auth
    from gateway import create_app

    app = create_app({"GATEWAY_ENV": "development", "GATEWAY_ASYNC_MODE": "threading",
                      "GATEWAY_DATABASE_URL": server.env["GATEWAY_DATABASE_URL"]})
    try:
        with app.app_context():
            password_hash = auth.models._hasher.hash(password)
            for name in [*users, *admins]:
                auth.db.session.add(auth.User(name=name, password_hash=password_hash,
                                              is_admin=name in admins))
            auth.db.session.commit()
    finally:
        hub_for(app).shutdown()
