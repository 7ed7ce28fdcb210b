"""Run one attack against a real server while a bystander echoes; return its figures.

For each attack (``run_attack``):

1. A fresh ``python wsgi.py`` (eventlet, the default runtime) on a free loopback port, with
   its own copy of a database holding two users (``bystander`` and ``mallory``, the
   attacker), made once per run with ``tests.helpers.support.create_user``. Settings: the defaults
   (``tests.helpers.support.server_env``: a secret key, the database, log level INFO); none of
   the new limits (``GATEWAY_HANDSHAKE_SECONDS``, ``GATEWAY_MAX_ANONYMOUS[_PER_ADDRESS]``,
   ``GATEWAY_REPLAY_BYTES``, ``GATEWAY_INBOUND_RATE/BURST``) is touched. No limit was
   raised either: the per-user session limit (20) and the login limits (they count failed
   logins only) never refuse the attacker before it attacks here, because the
   logged-in attacks open one session each, the login loop only succeeds, and the
   attacker has an account of its own.
2. CPU: with two CPUs, the server is pinned to CPU 0 (``sched_setaffinity`` before it
   execs, so its PID and all its threads), and the bystander and the attacker to CPU 1;
   the attacker also runs at ``nice`` +10, so it cannot starve the bystander of its CPU
   (the bystander measures the server, not its neighbour). With one CPU: no pinning.
3. The bystander, a separate process, logs in through the real form, connects to
   ``echo`` over WebSocket, and sends one echo every 100 ms until told to stop, timing
   each (emit to ack) and acking the commands it gets. The attacker's account is logged
   in once here too (its cookie is given to the logged-in attacks), so a server still
   busy with a warm-up cannot fail the attacker's own login.
4. Memory: the server's VmRSS from ``/proc/PID/status`` (and its CPU time from
   ``/proc/PID/stat``), sampled every 100 ms.
   *before*: the attack is first run for ``WARMUP_SECONDS`` (the first use of a code path
   allocates once: imports, caches, pools, arenas), then the server is let settle (RSS
   steady within 1 % and CPU under 25 % over 1 s, at most ``SETTLE_SECONDS``; a server
   that does not settle is marked "unsettled"); that RSS is "before". *peak*: the
   highest sample while the attack runs. *after*: once the attack has stopped, RSS is
   polled (deadline ``AFTER_SECONDS``) until it is within ``RSS_TOLERANCE`` of before;
   what it reached is reported, with the time it took. The server's CPU use during the
   attack and in the ``CPU_AFTER_SECONDS`` after it is reported too (not asserted).
5. The attack itself, in its own process, for ``seconds`` (``ATTACK_SECONDS``); it stops by
   itself, and is killed (SIGKILL, by PID) if it overruns. The bystander's figures count
   the echoes sent while it ran.

The server is stopped (SIGTERM, then SIGKILL after ``STOP_SECONDS``) and the bystander
and attacker processes killed by PID, whatever happens. ``Result.failures()`` says which
figure missed and by how much.
"""

from __future__ import annotations

import math
import multiprocessing
import os
import shutil
import subprocess
import threading
import time
import traceback
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from typing import Any

from tests.helpers.support import PYTHON
from tests.helpers.support import ServerProcess
from tests.helpers.support import cookie_header
from tests.helpers.support import create_user
from tests.helpers.support import free_port
from tests.helpers.support import login
from tests.helpers.support import server_env

from .attacks import ATTACKS
from .attacks import Target

#: How long each attack runs (``scripts/hostile.py --seconds N`` overrides it).
ATTACK_SECONDS = 10.0
#: The warm-up run of the same attack before "before" is read.
WARMUP_SECONDS = 1.5
#: The server has settled when, over the last SETTLE_WINDOW, its RSS was steady within
#: max(SETTLE_FRACTION, SETTLE_MB) and it used at most SETTLE_CPU of a CPU (a warm-up
#: may leave it work queued: that must not land on the measured run).
SETTLE_WINDOW = 1.0
SETTLE_FRACTION = 0.01
SETTLE_MB = 0.5
SETTLE_CPU = 0.25
SETTLE_SECONDS = 15.0  # deadline of the settle
#: After the attack, how long RSS may take to come back within RSS_TOLERANCE of before.
AFTER_SECONDS = 20.0
RSS_TOLERANCE = 0.10
RSS_INTERVAL = 0.1
#: The server's CPU use is also reported over this long after the attack stopped (a
#: server still busy then has work queued, or a task spinning).
CPU_AFTER_SECONDS = 2.0
#: The bystander: one echo every ECHO_INTERVAL; unanswered within ECHO_TIMEOUT is a failure.
ECHO_INTERVAL = 0.1
ECHO_TIMEOUT = 5.0
ECHO_P99_LIMIT_MS = 100.0
ECHO_MAX_LIMIT_MS = 1000.0
#: Deadlines of the processes.
SPAWN_SECONDS = 30.0  # a child process to import and report (login and connect included)
ATTACKER_GRACE = 25.0  # an attacker may overrun its time by this much, then it is killed
STOP_SECONDS = 5.0  # the server's SIGTERM drain before SIGKILL
SERVER_CPU, CLIENT_CPU = 0, 1
ATTACKER_NICE = 10

PASSWORD = "hostile-suite-password"
BYSTANDER = "bystander"
ATTACKER = "mallory"

# Pins itself, then becomes ``python wsgi.py`` (same PID; every thread it starts inherits).
PIN_AND_EXEC = ("import os, sys; os.sched_setaffinity(0, {int(sys.argv[1])}); "
                "os.execv(sys.executable, [sys.executable, *sys.argv[2:]])")


def can_pin() -> bool:
    return hasattr(os, "sched_setaffinity") and {SERVER_CPU, CLIENT_CPU} <= os.sched_getaffinity(0)


def _pin(cpu: int | None) -> None:
    if cpu is not None:
        os.sched_setaffinity(0, {cpu})


def _spawn() -> Any:
    # spawn, not fork: the parent (pytest, the sampler thread) has threads.
    return multiprocessing.get_context("spawn")


# -- memory -----------------------------------------------------------------------------


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def read_rss_mb(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except (FileNotFoundError, ProcessLookupError):
        return None
    return None


def allowed_cpus(pid: int) -> str | None:
    """The CPUs a process may run on (``Cpus_allowed_list``), to show the pinning held."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("Cpus_allowed_list:"):
                    return line.split(":", 1)[1].strip()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return None


def read_cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a process (all its threads)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
    except (FileNotFoundError, ProcessLookupError, IndexError, ValueError):
        return None


class RssSampler:
    """Samples a process's RSS (and CPU time) every RSS_INTERVAL in a thread:
    ``samples`` [(monotonic time, MB)], ``cpu`` [(monotonic time, CPU seconds)]."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.samples: list[tuple[float, float]] = []
        self.cpu: list[tuple[float, float]] = []
        self.gone = False
        self._cv = threading.Condition()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            mb, cpu = read_rss_mb(self.pid), read_cpu_seconds(self.pid)
            with self._cv:
                if mb is None or cpu is None:
                    self.gone = True
                    self._cv.notify_all()
                    return
                now = time.monotonic()
                self.samples.append((now, mb))
                self.cpu.append((now, cpu))
                self._cv.notify_all()
            self._stop.wait(RSS_INTERVAL)  # the sampling interval

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(2)

    def next_sample(self, timeout: float = 1.0) -> float | None:
        """Wait (at most ``timeout``) for a sample newer than now; return the latest."""
        with self._cv:
            count = len(self.samples)
            self._cv.wait_for(lambda: len(self.samples) > count or self.gone, timeout)
            return self.samples[-1][1] if self.samples and not self.gone else None

    def peak(self, t0: float, t1: float) -> float | None:
        with self._cv:
            window = [mb for t, mb in self.samples if t0 <= t <= t1]
        return max(window) if window else None

    def cpu_share(self, t0: float, t1: float) -> float | None:
        """The server's CPU use between t0 and t1, as a share of one CPU."""
        with self._cv:
            window = [(t, c) for t, c in self.cpu if t0 <= t <= t1]
        if len(window) < 2 or window[-1][0] <= window[0][0]:
            return None
        return (window[-1][1] - window[0][1]) / (window[-1][0] - window[0][0])

    def settle(self) -> tuple[float | None, bool, str]:
        """Wait until the server is steady and quiet (see SETTLE_*), at most
        SETTLE_SECONDS: (RSS MB, settled, how it was over the last window)."""
        start = time.monotonic()
        while True:
            latest = self.next_sample()
            if latest is None:
                return None, False, "the server is gone"
            now = time.monotonic()
            with self._cv:
                window = [mb for t, mb in self.samples if t >= now - SETTLE_WINDOW]
            cpu = self.cpu_share(now - SETTLE_WINDOW - RSS_INTERVAL / 2, now)
            spread = max(window) - min(window)
            how = (f"RSS moved {spread:.1f} MB, CPU {cpu if cpu is not None else 0:.0%} "
                   f"over the last {SETTLE_WINDOW:.0f} s")
            if now - start >= SETTLE_WINDOW and spread <= max(
                    SETTLE_MB, SETTLE_FRACTION * max(window)) \
                    and cpu is not None and cpu <= SETTLE_CPU:
                return latest, True, how
            if now - start >= SETTLE_SECONDS:
                return latest, False, how

    def come_back(self, before: float) -> tuple[float | None, float, bool]:
        """Poll until RSS <= before * (1 + RSS_TOLERANCE), at most AFTER_SECONDS:
        (MB reached, seconds taken, whether it came back)."""
        start = time.monotonic()
        limit = before * (1 + RSS_TOLERANCE)
        while True:
            latest = self.next_sample()
            took = time.monotonic() - start
            if latest is None:
                return None, took, False
            if latest <= limit:
                return latest, took, True
            if took >= AFTER_SECONDS:
                return latest, took, False


# -- the bystander ----------------------------------------------------------------------


def bystander_main(url: str, user: str, password: str, conn: Any, stop: Any,
                   cpu: int | None) -> None:
    """The bystander process: log in, connect to ``echo``, echo every ECHO_INTERVAL until
    ``stop`` is set, then wait (at most ECHO_TIMEOUT) for the last answers and send the
    records [id, sent at, answered at | None, ok, error | None] through ``conn``."""
    _pin(cpu)
    try:
        import logging

        import socketio

        from gateway.client_state import ClientState
        from tests.helpers.support import cookie_header
        from tests.helpers.support import login

        cookie = cookie_header(login(url, user, password))
        notes: dict[str, Any] = {"disconnected_at": None, "disconnect_reason": None,
                                 "close": None, "commands": 0, "client_log": []}

        class Keep(logging.Handler):  # why the client gave up, if it does
            def emit(self, record: logging.LogRecord) -> None:
                if len(notes["client_log"]) < 20:
                    notes["client_log"].append(f"{record.levelname} {record.getMessage()[:200]}")

        client_logger = logging.getLogger("hostile.bystander.client")
        client_logger.setLevel(logging.INFO)
        client_logger.propagate = False
        client_logger.addHandler(Keep())
        sio = socketio.Client(reconnection=False, logger=False, engineio_logger=client_logger)
        cv = threading.Condition()
        records: list[list[Any]] = []
        books = ClientState()  # the seqs received in order, for cumulative acks
        books_lock = threading.Lock()  # each handler runs in a thread of its own
        unsent_ack: list[int] = []
        welcomed = threading.Event()

        def send_ack(seq: int) -> None:
            try:
                sio.emit("ack", {"seq": seq})
            except socketio.exceptions.SocketIOError:
                unsent_ack[:] = [seq]  # commands may come before connect() returns

        def on_session(data: Any) -> None:
            with books_lock:
                books.welcome(data)
            welcomed.set()

        def on_commands(batch: Any) -> None:
            notes["commands"] += len(batch)
            with books_lock:
                applied = books.accept(batch)
                seq = books.last_seq
            if applied:
                send_ack(seq)

        def on_close(data: Any) -> None:
            notes["close"] = data

        def on_disconnect(*reason: Any) -> None:
            notes["disconnected_at"] = time.monotonic()
            notes["disconnect_reason"] = str(reason[0]) if reason else None
            with cv:
                cv.notify_all()

        sio.on("session", on_session)
        sio.on("commands", on_commands)
        sio.on("close", on_close)
        sio.on("disconnect", on_disconnect)
        sio.connect(url, headers={"Cookie": cookie}, auth={"app": "echo", "resume": None},
                    transports=["websocket"], wait_timeout=10)
        if not welcomed.wait(10):
            raise RuntimeError("the bystander got no session message")
        if unsent_ack:
            send_ack(unsent_ack.pop())
        first = sio.call("event", {"id": 1, "name": "echo", "data": {"text": "ready"}},
                         timeout=10)
        if first != {"ok": True, "result": "ready"}:
            raise RuntimeError(f"the bystander's first echo was answered {first!r}")
        conn.send(("ready", None))

        def answered(record: list[Any], ack: Any = None, *_: Any) -> None:
            with cv:
                record[2] = time.monotonic()
                record[3] = ack == {"ok": True, "result": f"b{record[0]}"}
                if not record[3]:
                    record[4] = f"answered {str(ack)[:80]}"
                cv.notify_all()

        event_id = 1
        next_at = time.monotonic()
        while not stop.is_set():
            event_id += 1
            record: list[Any] = [event_id, time.monotonic(), None, False, None]
            with cv:
                records.append(record)
            try:
                echo = {"id": event_id, "name": "echo", "data": {"text": f"b{event_id}"}}
                sio.emit("event", echo, callback=lambda *ack, r=record: answered(r, *ack))
            except Exception as exc:  # disconnected: every echo from now on fails
                record[4] = f"emit failed: {type(exc).__name__}"
            next_at = max(next_at + ECHO_INTERVAL, time.monotonic())
            stop.wait(max(0.0, next_at - time.monotonic()))  # paces: one echo per interval
        # The last answers: at most ECHO_TIMEOUT after the last echo was sent.
        last_sent = records[-1][1] if records else time.monotonic()
        with cv:
            cv.wait_for(lambda: all(r[2] is not None or r[4] for r in records)
                        or notes["disconnected_at"] is not None,
                        max(0.0, last_sent + ECHO_TIMEOUT - time.monotonic()))
            snapshot = [list(r) for r in records]
        conn.send(("echoes", snapshot, notes))
        closer = threading.Thread(target=sio.disconnect, daemon=True)
        closer.start()
        closer.join(3)
    except BaseException:
        conn.send(("error", traceback.format_exc(limit=6), None))
    finally:
        conn.close()
        os._exit(0)  # a client library's leftover threads must not hold the exit


@dataclass
class Echoes:
    """The bystander's figures over the echoes it sent during the attack."""

    sent: int = 0
    answered: int = 0
    failures: dict[str, int] = field(default_factory=dict)
    p50_ms: float | None = None
    p99_ms: float | None = None
    max_ms: float | None = None
    disconnected: bool = False
    disconnect_reason: str | None = None
    close: Any = None
    client_log: list[str] = field(default_factory=list)  # the client's own words, if it gave up

    @classmethod
    def of(cls, records: list[list[Any]], t0: float, t1: float, notes: dict[str, Any]) -> Echoes:
        window = [r for r in records if t0 <= r[1] <= t1]
        failures: Counter[str] = Counter()
        rtts = []
        for _, sent_at, answered_at, ok, error in window:
            if answered_at is None:
                failures[error or f"no answer within {ECHO_TIMEOUT:.0f} s"] += 1
            elif answered_at - sent_at > ECHO_TIMEOUT:
                failures[f"answered after more than {ECHO_TIMEOUT:.0f} s"] += 1
            elif not ok:
                failures[error or "wrong answer"] += 1
            else:
                rtts.append((answered_at - sent_at) * 1000)
        rtts.sort()
        return cls(sent=len(window), answered=len(rtts), failures=dict(failures),
                   p50_ms=percentile(rtts, 0.50), p99_ms=percentile(rtts, 0.99),
                   max_ms=rtts[-1] if rtts else None,
                   disconnected=notes.get("disconnected_at") is not None
                   and notes["disconnected_at"] <= t1 + ECHO_TIMEOUT,
                   disconnect_reason=notes.get("disconnect_reason"), close=notes.get("close"),
                   client_log=notes.get("client_log", []) if notes.get("disconnected_at") else [])


def percentile(ordered: list[float], q: float) -> float | None:
    """Nearest-rank percentile of an ordered list."""
    if not ordered:
        return None
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


class Bystander:
    """The bystander process (a context manager: it is killed by PID on exit)."""

    def __init__(self, url: str, user: str, password: str, cpu: int | None) -> None:
        ctx = _spawn()
        self._receiver, sender = ctx.Pipe(duplex=False)
        self._stop = ctx.Event()
        self.proc = ctx.Process(target=bystander_main, name="hostile-bystander", daemon=True,
                                args=(url, user, password, sender, self._stop, cpu))
        self.proc.start()
        sender.close()
        self.result: tuple[list[list[Any]], dict[str, Any]] | None = None
        self.error: str | None = None

    def __enter__(self) -> Bystander:
        try:
            if not self._receiver.poll(SPAWN_SECONDS):
                raise RuntimeError(f"the bystander was not ready within {SPAWN_SECONDS:.0f} s")
            message = self._receiver.recv()
            if message[0] != "ready":
                raise RuntimeError(f"the bystander failed to start:\n{message[1]}")
        except BaseException:
            self.kill()
            raise
        return self

    def stop(self) -> None:
        """Stop echoing now (the figures are collected by ``collect``)."""
        self._stop.set()

    def collect(self) -> tuple[list[list[Any]], dict[str, Any]]:
        self._stop.set()
        if self.result is None and self.error is None:
            try:
                if not self._receiver.poll(ECHO_TIMEOUT + 10):
                    self.error = "the bystander did not report in time"
                else:
                    message = self._receiver.recv()
                    if message[0] == "echoes":
                        self.result = (message[1], message[2])
                    else:
                        self.error = str(message[1])
            except EOFError:
                self.error = "the bystander died without a report"
        if self.result is None:
            raise RuntimeError(self.error)
        return self.result

    def kill(self) -> None:
        self._stop.set()
        self.proc.join(3)
        if self.proc.is_alive():
            self.proc.kill()  # SIGKILL, to this PID only
            self.proc.join(5)

    def __exit__(self, *exc: Any) -> None:
        self.kill()


# -- the attacker -----------------------------------------------------------------------


def attacker_main(name: str, target: Target, seconds: float, conn: Any, cpu: int | None) -> None:
    """The attacker process: pinned, niced, runs one attack, sends its figures."""
    _pin(cpu)
    os.nice(ATTACKER_NICE)
    try:
        conn.send(("started", time.monotonic()))
        began, cpu = time.monotonic(), os.times()
        try:
            figures = ATTACKS[name].run(target, seconds)
        except BaseException:
            figures = {"error": traceback.format_exc(limit=6)}
        ended, used = time.monotonic(), os.times()
        # Was the attacker itself the bottleneck? (share of its CPU it used)
        figures["attacker_cpu"] = round((used.user + used.system - cpu.user - cpu.system)
                                        / max(0.001, ended - began), 2)
        figures["attacker_cpus"] = sorted(os.sched_getaffinity(0))
        conn.send(("done", figures, ended))
    finally:
        conn.close()
        os._exit(0)  # a client library's leftover threads must not hold the exit


@dataclass
class AttackerRun:
    figures: dict[str, Any]
    started_at: float
    ended_at: float
    status: str  # "finished", "killed ...", "died ..."


def run_attacker(name: str, target: Target, seconds: float, cpu: int | None) -> AttackerRun:
    """Run attack ``name`` in its own process for ``seconds``; kill it if it overruns."""
    ctx = _spawn()
    receiver, sender = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=attacker_main, name=f"hostile-{name}", daemon=True,
                       args=(name, target, seconds, sender, cpu))
    proc.start()
    sender.close()
    started_at = time.monotonic()
    try:
        if not receiver.poll(SPAWN_SECONDS):
            return AttackerRun({"error": "the attacker did not start"}, started_at,
                               time.monotonic(), f"killed: not started in {SPAWN_SECONDS:.0f} s")
        _, started_at = receiver.recv()
        if not receiver.poll(seconds + ATTACKER_GRACE):
            return AttackerRun({"error": "the attacker overran its time"}, started_at,
                               time.monotonic(),
                               f"killed: overran by {ATTACKER_GRACE:.0f} s")
        _, figures, ended_at = receiver.recv()
        return AttackerRun(figures, started_at, ended_at, "finished")
    except EOFError:
        return AttackerRun({"error": f"the attacker died (exit code {proc.exitcode})"},
                           started_at, time.monotonic(), "died")
    finally:
        proc.join(3)
        if proc.is_alive():
            proc.kill()  # SIGKILL, to this PID only
            proc.join(5)
        receiver.close()


# -- the server -------------------------------------------------------------------------


def prepare_database(directory: Path, server_root: Path | None = None) -> Path:
    """A database with the bystander's and the attacker's accounts (copied per attack),
    made by the CLI of the tree the server runs from (``server_root``: another checkout,
    e.g. ``git archive HEAD``; default this one)."""
    db = directory / "template.db"
    env = server_env(str(db))
    for user in (BYSTANDER, ATTACKER):
        if server_root is None:
            create_user(env, user, PASSWORD)
        else:  # create_user, run in the other tree
            subprocess.run([PYTHON, "-m", "flask", "--app", "wsgi", "users", "create", user,
                            "--password-stdin"], input=PASSWORD + "\n", text=True,
                           env=dict(env, PYTHONPATH=str(server_root)), cwd=server_root,
                           check=True, capture_output=True, timeout=60)
    return db


class HostileServer:
    """``python wsgi.py`` on a free port with a copy of ``template_db``, pinned to
    SERVER_CPU when ``pin``; a context manager that always stops it."""

    def __init__(self, workdir: Path, template_db: Path, pin: bool,
                 server_root: Path | None = None) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        db = workdir / "gateway.db"
        shutil.copyfile(template_db, db)
        port = free_port()
        env = server_env(str(db), GATEWAY_HOST="127.0.0.1", GATEWAY_PORT=str(port))
        script = "wsgi.py"
        if server_root is not None:  # another tree: its wsgi.py, its packages first
            script, env["PYTHONPATH"] = str(server_root / "wsgi.py"), str(server_root)
        cmd = [PYTHON, "-c", PIN_AND_EXEC, str(SERVER_CPU), script] if pin else [PYTHON, script]
        self.process = ServerProcess(cmd, env, port, str(workdir / "server.log"))
        self.port, self.url = port, self.process.url

    @property
    def pid(self) -> int:
        assert self.process.proc is not None
        return self.process.proc.pid

    def __enter__(self) -> HostileServer:
        try:
            self.process.start()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        proc = self.process.proc
        if proc is None:
            return
        if proc.poll() is None:
            self.process.stop(STOP_SECONDS)  # SIGTERM, then SIGKILL after the deadline
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def log(self) -> str:
        return self.process.log()


# -- one attack -------------------------------------------------------------------------


@dataclass
class Memory:
    """Server RSS in MB."""

    start: float | None = None  # with the bystander connected, before the warm-up
    before: float | None = None
    settled: bool = False
    settle_seconds: float = 0.0
    settle_state: str = ""
    peak: float | None = None
    after: float | None = None
    after_seconds: float = 0.0
    came_back: bool = False


@dataclass
class Result:
    attack: str
    seconds: float
    pinned: bool
    echoes: Echoes
    memory: Memory
    figures: dict[str, Any]
    attacker: str
    warmup: str
    tracebacks: int
    wall_seconds: float
    server_cpu: float | None = None  # share of one CPU the server used during the attack
    server_cpu_after: float | None = None  # and in the CPU_AFTER_SECONDS after it
    error: str | None = None  # the harness could not run the attack
    server_cpus: str | None = None  # the CPUs the server was allowed (Cpus_allowed_list)

    def failures(self) -> list[str]:
        """Every figure that missed, and by how much."""
        if self.error:
            return [f"the harness could not run the attack: {self.error}"]
        out: list[str] = []
        if "error" in self.figures:
            out.append("the attacker failed: " + self.figures["error"].strip().splitlines()[-1])
        e = self.echoes
        if e.sent == 0:
            out.append("the bystander sent no echo during the attack")
        if e.p99_ms is not None and e.p99_ms >= ECHO_P99_LIMIT_MS:
            out.append(f"bystander echo p99 {e.p99_ms:.1f} ms >= {ECHO_P99_LIMIT_MS:.0f} ms "
                       f"(over by {e.p99_ms - ECHO_P99_LIMIT_MS:.1f} ms)")
        if e.max_ms is not None and e.max_ms >= ECHO_MAX_LIMIT_MS:
            out.append(f"bystander echo max {e.max_ms:.1f} ms >= {ECHO_MAX_LIMIT_MS:.0f} ms "
                       f"(over by {e.max_ms - ECHO_MAX_LIMIT_MS:.1f} ms)")
        failed = sum(e.failures.values())
        if failed:
            out.append(f"{failed} of {e.sent} bystander echoes failed: {e.failures}"
                       + (f" (the bystander was disconnected: {e.disconnect_reason}; its client "
                          f"said {e.client_log[-3:]})" if e.disconnected else ""))
        m = self.memory
        if m.after is None or m.before is None:
            out.append("the server exited during the attack (no RSS to read)")
        elif not m.came_back:
            limit = m.before * (1 + RSS_TOLERANCE)
            out.append(f"server RSS {m.after:.1f} MB after {m.after_seconds:.0f} s is not within "
                       f"{RSS_TOLERANCE:.0%} of before {m.before:.1f} MB (limit {limit:.1f} MB, "
                       f"over by {m.after - limit:.1f} MB; peak {m.peak or 0:.1f} MB)")
        if "error" not in self.figures:
            out += ATTACKS[self.attack].check(self.figures)
        return out

    def notes(self) -> list[str]:
        """What is worth knowing but not asserted (the issue does not require it)."""
        out = []
        m = self.memory
        if m.before is not None and not m.settled:
            out.append(f"the server did not settle within {SETTLE_SECONDS:.0f} s after the "
                       f"warm-up ({m.settle_state}): the attack began on a busy server")
        if self.server_cpu_after is not None and self.server_cpu_after > 0.5:
            out.append(f"the server still used {self.server_cpu_after:.0%} of a CPU in the "
                       f"{CPU_AFTER_SECONDS:.0f} s after the attack stopped")
        attacker_cpu = self.figures.get("attacker_cpu")
        if attacker_cpu is not None and attacker_cpu >= 0.9:
            out.append(f"the attacker used {attacker_cpu:.0%} of its CPU: it may have been "
                       "its own bottleneck")
        if self.warmup != "finished":
            out.append(f"warm-up: {self.warmup}")
        if self.tracebacks:
            out.append(f"{self.tracebacks} traceback(s) in the server's log")
        return out

    def summary(self) -> str:
        if self.error or "error" in self.figures:
            return (self.error or self.figures["error"]).strip().splitlines()[-1][:120]
        return ATTACKS[self.attack].summary(self.figures)

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["failures"] = self.failures()
        data["notes"] = self.notes()
        return data


def run_attack(name: str, template_db: Path, workdir: Path, seconds: float = ATTACK_SECONDS,
               log: Callable[[str], None] | None = None,
               server_root: Path | None = None) -> Result:
    """Run attack ``name`` once, as the module docstring says, and return its figures
    (``server_root``: run the server of another tree, default this one)."""
    say = log or (lambda message: None)
    pinned = can_pin()
    server_pin, client_pin = (SERVER_CPU, CLIENT_CPU) if pinned else (None, None)
    began = time.monotonic()
    memory, echoes = Memory(), Echoes()
    figures: dict[str, Any] = {}
    status = warm_status = "not run"
    error = None
    tracebacks = 0
    server_cpu = server_cpu_after = server_cpus = None
    server = HostileServer(workdir, template_db, pin=server_pin is not None,
                           server_root=server_root)
    try:
        with server:
            sampler = RssSampler(server.pid)
            server_cpus = allowed_cpus(server.pid)
            try:
                with Bystander(server.url, BYSTANDER, PASSWORD, client_pin) as bystander:
                    memory.start = sampler.next_sample()
                    target = Target("127.0.0.1", server.port, ATTACKER, PASSWORD,
                                    cookie=cookie_header(login(server.url, ATTACKER, PASSWORD)))
                    say(f"{name}: warm-up {WARMUP_SECONDS} s")
                    warm = run_attacker(name, target, WARMUP_SECONDS, client_pin)
                    warm_status = warm.status + (" (error)" if "error" in warm.figures else "")
                    settle_began = time.monotonic()
                    memory.before, memory.settled, memory.settle_state = sampler.settle()
                    memory.settle_seconds = round(time.monotonic() - settle_began, 1)
                    say(f"{name}: attack {seconds} s (RSS before {_mb(memory.before)} MB)")
                    run = run_attacker(name, target, seconds, client_pin)
                    bystander.stop()
                    figures, status = run.figures, run.status
                    memory.peak = sampler.peak(run.started_at, run.ended_at)
                    server_cpu = sampler.cpu_share(run.started_at, run.ended_at)
                    if memory.before is not None:
                        memory.after, memory.after_seconds, memory.came_back = \
                            sampler.come_back(memory.before)
                    while (time.monotonic() < run.ended_at + CPU_AFTER_SECONDS
                           and sampler.next_sample() is not None):
                        pass  # samples up to CPU_AFTER_SECONDS after the attack (bounded)
                    server_cpu_after = sampler.cpu_share(run.ended_at,
                                                         run.ended_at + CPU_AFTER_SECONDS)
                    records, notes = bystander.collect()
                    echoes = Echoes.of(records, run.started_at, run.ended_at, notes)
            finally:
                sampler.stop()
            tracebacks = server.log().count("Traceback")
    except Exception as exc:  # the harness itself failed: say so, do not hide it
        error = f"{type(exc).__name__}: {exc}"
    return Result(attack=name, seconds=seconds, pinned=pinned, echoes=echoes, memory=memory,
                  figures=figures, attacker=status, warmup=warm_status, tracebacks=tracebacks,
                  wall_seconds=round(time.monotonic() - began, 1), error=error,
                  server_cpus=server_cpus,
                  server_cpu=None if server_cpu is None else round(server_cpu, 2),
                  server_cpu_after=None if server_cpu_after is None else round(server_cpu_after, 2))


# -- the table --------------------------------------------------------------------------


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"


def _mb(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


HEADER = ["attack", "echo p50 ms", "echo p99 ms", "echo max ms", "answered/sent",
          "RSS before MB", "RSS peak MB", "RSS after MB", "server CPU during / after",
          "attack figures", "result"]


def row(result: Result) -> list[str]:
    e, m = result.echoes, result.memory
    after = _mb(m.after)
    if m.after is not None:
        after += (f" ({m.after_seconds:.1f} s)" if m.came_back
                  else f" (not back in {m.after_seconds:.0f} s)")
    failures = result.failures()
    return [result.attack, _ms(e.p50_ms), _ms(e.p99_ms), _ms(e.max_ms),
            f"{e.answered}/{e.sent}", _mb(m.before) + ("" if m.settled else " (unsettled)"),
            _mb(m.peak), after, f"{_pct(result.server_cpu)} / {_pct(result.server_cpu_after)}",
            result.summary().replace("|", "/"),
            "pass" if not failures else f"FAIL ({len(failures)})"]


def table(results: list[Result]) -> str:
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    lines += ["| " + " | ".join(row(r)) + " |" for r in results]
    return "\n".join(lines)


def failure_report(results: list[Result]) -> str:
    lines = []
    for r in results:
        for failure in r.failures():
            lines.append(f"- {r.attack}: {failure}")
    return "\n".join(lines)


def notes_report(results: list[Result]) -> str:
    lines = []
    for r in results:
        for note in r.notes():
            lines.append(f"- {r.attack}: {note}")
    return "\n".join(lines)
