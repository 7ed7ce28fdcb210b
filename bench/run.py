"""The benchmark driver: the gateway against bare Flask-SocketIO and Node socket.io.

    .venv/bin/python bench/run.py            # the full benchmark (make bench), ~13 min
    .venv/bin/python bench/run.py --quick    # tiny N, one repetition, ~30 s: a smoke check

For each repetition, each scenario and each server (the order of the servers rotates
per repetition, so the three are interleaved), it starts a fresh server pinned to CPU 0
(``taskset -c 0``), runs ``bench/load.mjs`` pinned to CPU 1, and reads the server's RSS
(/proc/PID/status) and CPU time (/proc/PID/stat) at the marks the load generator
reports. Figures are medians over the repetitions (failures: the worst). It prints a
table with the ratios gateway/bare and gateway/node, checks the targets of issue 6, and
writes bench/results/latest.json and latest.md (git-ignored). It stops only the
processes it started, by PID, always; every wait is bounded.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import secrets
import select
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from typing import Any

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PYTHON = sys.executable
SERVERS = ("gateway", "bare", "node")
USER = "bench"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")

# id -> (label, load scenario, params). Every loop in the load is bounded by these.
FULL: dict[str, tuple[str, str, dict[str, Any]]] = {
    "connect_small": ("connect 1,000 idle sessions", "connect",
                      {"n": 1000, "window": 100, "timeoutMs": 5000, "maxFailures": 100,
                       "rampMs": 60000, "settle_ms": 1500, "deadline_ms": 120000}),
    "connect_large": ("connect 10,000 sessions", "connect",
                      {"n": 10000, "window": 200, "timeoutMs": 5000, "maxFailures": 100,
                       "rampMs": 90000, "settle_ms": 1500, "deadline_ms": 180000}),
    "echo_1": ("event round trip, 1 client", "echo",
               {"clients": 1, "warmup": 200, "duration_ms": 4000, "max_ops": 200000,
                "deadline_ms": 60000}),
    "echo_50": ("event round trip, 50 clients", "echo",
                {"clients": 50, "warmup": 20, "duration_ms": 4000, "max_ops": 200000,
                 "deadline_ms": 60000}),
    "push": ("push 5,000 x 256 B to each of 10 clients", "push",
             {"clients": 10, "n": 5000, "size": 256, "timeout_ms": 60000,
              "deadline_ms": 120000}),
    "broadcast_small": ("send to everyone, 1,000 sessions", "broadcast",
                        {"n": 1000, "rounds": 3, "window": 100, "timeoutMs": 5000,
                         "maxFailures": 100, "rampMs": 60000, "timeout_ms": 30000,
                         "deadline_ms": 180000}),
    "broadcast_large": ("send to everyone, 5,000 sessions", "broadcast",
                        {"n": 5000, "rounds": 3, "window": 200, "timeoutMs": 5000,
                         "maxFailures": 100, "rampMs": 90000, "timeout_ms": 30000,
                         "deadline_ms": 240000}),
}
QUICK_PARAMS: dict[str, dict[str, Any]] = {
    "connect_small": {"n": 50, "settle_ms": 200},
    "connect_large": {"n": 200, "settle_ms": 200},
    "echo_1": {"warmup": 10, "duration_ms": 400},
    "echo_50": {"clients": 5, "warmup": 5, "duration_ms": 400},
    "push": {"clients": 2, "n": 200},
    "broadcast_small": {"n": 20, "rounds": 1},
    "broadcast_large": {"n": 50, "rounds": 1},
}
# Scenarios above 1,000 sessions that are not about connecting: the bare server gets
# the pool a user must give it to hold that many clients at all (eventlet's default is
# 1,024); the connect scenarios keep its defaults, failures included.
BARE_POOL_FOR = {"broadcast_large"}


def scenarios(quick: bool) -> dict[str, tuple[str, str, dict[str, Any]]]:
    if not quick:
        return FULL
    return {key: (label, kind, dict(params, **QUICK_PARAMS[key]))
            for key, (label, kind, params) in FULL.items()}


# -- processes -----------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def pinned(cpu: int, cmd: list[str]) -> list[str]:
    """``taskset -c CPU cmd`` when there are two CPUs to split (taskset execs: same PID)."""
    if shutil.which("taskset") and (os.cpu_count() or 1) >= 2:
        return ["taskset", "-c", str(cpu), *cmd]
    return cmd


def raise_fd_limit() -> int:
    """Children inherit it: 10,000 sockets on each side of the loopback."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else 65536
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return target


def proc_snapshot(pid: int) -> dict[str, float]:
    with open(f"/proc/{pid}/status") as f:
        rss_kb = next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime + stime
    return {"rss_kb": rss_kb, "cpu_s": cpu, "t": time.monotonic()}


class Bench:
    def __init__(self, workdir: str, verbose: bool) -> None:
        self.workdir = workdir
        self.verbose = verbose
        self.password = secrets.token_urlsafe(16)
        self.secret = secrets.token_urlsafe(32)
        self.db = os.path.join(workdir, "gateway.db")
        self.node = shutil.which("node") or "node"
        self.procs: list[subprocess.Popen[bytes]] = []  # everything started, to stop
        self.profilers: list[subprocess.Popen[bytes]] = []

    def log(self, message: str) -> None:
        if self.verbose:
            print(message, file=sys.stderr, flush=True)

    def gateway_env(self, port: int) -> dict[str, str]:
        env = dict(os.environ)
        env.update({
            "GATEWAY_SECRET_KEY": self.secret,
            "GATEWAY_DATABASE_URL": f"sqlite:///{self.db}",
            "GATEWAY_HOST": "127.0.0.1", "GATEWAY_PORT": str(port),
            "GATEWAY_ASYNC_MODE": "eventlet",
            "GATEWAY_APPS": "bench.gateway_apps",
            # One benchmark user holds every session, and the load is a flood by design:
            # lift the per-user cap and the event rate limit (the check itself still runs).
            "GATEWAY_MAX_SESSIONS_PER_USER": "1000000",
            "GATEWAY_EVENT_RATE": "1000000000",
            "GATEWAY_EVENT_BURST": "1000000000",
            # Every simulated user comes from 127.0.0.1, and a ramp has 200 handshakes in
            # flight at once: lift the per-address bound of connections without a session.
            "GATEWAY_MAX_ANONYMOUS_PER_ADDRESS": "1000000",
            "PYTHONPATH": ROOT, "PYTHONUNBUFFERED": "1",
        })
        return env

    def create_user(self) -> None:
        cmd = [PYTHON, "-m", "flask", "--app", "wsgi", "users", "create", USER,
               "--password-stdin"]
        subprocess.run(cmd, input=self.password + "\n", text=True, cwd=ROOT, check=True,
                       env=self.gateway_env(free_port()), capture_output=True, timeout=120)

    def start(self, kind: str, scenario: str) -> tuple[subprocess.Popen[bytes], str]:
        port = free_port()
        if kind == "gateway":
            cmd, env = [PYTHON, "wsgi.py"], self.gateway_env(port)
        else:
            env = dict(os.environ, BENCH_PORT=str(port), BENCH_SECRET=self.secret,
                       BENCH_USER=USER, BENCH_PASSWORD=self.password, PYTHONUNBUFFERED="1")
            if kind == "bare":
                cmd = [PYTHON, "bench/bare_app.py"]
                if scenario in BARE_POOL_FOR:
                    env["BENCH_BARE_MAX_SIZE"] = "20000"
            else:
                cmd = [self.node, "bench/node_server.mjs"]
        log = open(os.path.join(self.workdir, f"{kind}-{scenario}.log"), "ab")
        proc = subprocess.Popen(pinned(0, cmd), cwd=ROOT, env=env, stdout=log,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        log.close()
        self.procs.append(proc)
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"{kind} server exited at start-up; see {log.name}")
            try:
                with urllib.request.urlopen(url + "/healthz", timeout=1) as response:
                    if response.status == 200:
                        return proc, url
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{kind} server did not answer within 60 s; see {log.name}")
            time.sleep(0.05)  # poll interval of a bounded start-up wait

    def profile(self, pid: int, path: str) -> subprocess.Popen[bytes]:
        """Sample ``pid`` with py-spy until SIGINT (collapsed stacks, for reading)."""
        py_spy = shutil.which("py-spy") or os.path.join(os.path.dirname(PYTHON), "py-spy")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        proc = subprocess.Popen([py_spy, "record", "--pid", str(pid), "--format", "raw",
                                 "--rate", "250", "--nonblocking", "-o", path],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.procs.append(proc)
        self.profilers.append(proc)
        return proc

    def stop(self, proc: subprocess.Popen[bytes]) -> None:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
        if proc in self.procs:
            self.procs.remove(proc)

    def stop_all(self) -> None:
        for proc in list(self.procs):
            self.stop(proc)

    def load(self, kind: str, url: str, scenario: str, params: dict[str, Any],
             server_pid: int, profile: str = ""
             ) -> tuple[dict[str, Any], dict[str, dict[str, float]]]:
        """Run the load generator; snapshot the server at each of its marks (and with
        ``profile``, sample it with py-spy from the first mark to the second)."""
        config = {"kind": kind, "url": url, "user": USER, "password": self.password,
                  "scenario": scenario, "params": params}
        err = open(os.path.join(self.workdir, f"load-{kind}-{scenario}.log"), "ab")
        proc = subprocess.Popen(pinned(1, [self.node, "bench/load.mjs", json.dumps(config)]),
                                cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=err)
        err.close()
        self.procs.append(proc)
        assert proc.stdout is not None and proc.stdin is not None
        deadline = time.monotonic() + params["deadline_ms"] / 1000 + 30
        marks: dict[str, dict[str, float]] = {}
        buffer = b""
        outcome: dict[str, Any] | None = None
        try:
            while outcome is None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise RuntimeError("the load generator ran past its deadline")
                ready, _, _ = select.select([proc.stdout], [], [], min(remaining, 1.0))
                if not ready:
                    if proc.poll() is not None:
                        raise RuntimeError(f"the load generator exited ({proc.returncode})")
                    continue
                chunk = os.read(proc.stdout.fileno(), 65536)
                if not chunk:
                    raise RuntimeError(f"the load generator exited ({proc.wait(10)})")
                buffer += chunk
                while b"\n" in buffer and outcome is None:
                    line, buffer = buffer.split(b"\n", 1)
                    message = json.loads(line)
                    if "mark" in message:
                        marks[message["mark"]] = proc_snapshot(server_pid)
                        if profile and len(marks) == 1:
                            profiler = self.profile(server_pid, profile)
                            time.sleep(1)  # py-spy attaches
                        elif profile and len(marks) == 2:
                            profiler.send_signal(signal.SIGINT)  # writes the profile
                        proc.stdin.write(b"go\n")
                        proc.stdin.flush()
                    else:
                        outcome = message
            proc.wait(30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
            self.procs.remove(proc)
        if "error" in outcome:
            raise RuntimeError(f"load generator: {outcome['error']}")
        return outcome["result"], marks


# -- figures -----------------------------------------------------------------------

def figures(scenario_kind: str, result: dict[str, Any],
            marks: dict[str, dict[str, float]]) -> dict[str, Any]:
    """The figures of one run, from the load's result and the server's snapshots."""
    if scenario_kind == "connect":
        before, after = marks["before"], marks["connected"]
        ramped = max(result["ramped"], 1)  # the sessions opened between the two marks
        return {
            "connected": result["connected"], "failed": result["failed"],
            "rss_per_session_kb": (after["rss_kb"] - before["rss_kb"]) / ramped,
            "connect_rate": result["connect_rate"],
            "handshake_p99_ms": result["handshake_p99_ms"],
            "cpu_ms_per_connect": (after["cpu_s"] - before["cpu_s"]) * 1000 / ramped,
            "rss_mb": after["rss_kb"] / 1024,
        }
    cpu = marks["done"]["cpu_s"] - marks["ready"]["cpu_s"]
    if scenario_kind == "echo":
        return {
            "ops_per_s": result["ops_per_s"], "p50_ms": result["p50_ms"],
            "p99_ms": result["p99_ms"],
            "cpu_us_per_event": cpu * 1e6 / max(result["ops"], 1),
            "failed": result["errors"] + result["seq_errors"],
        }
    if scenario_kind == "push":
        return {
            "commands_per_s": result["commands_per_s"],
            "first_command_ms_max": result["first_command_ms_max"],
            "cpu_us_per_command": cpu * 1e6 / max(result["commands"], 1),
            "failed": result["errors"] + result["seq_errors"] + len(result["closed"])
            + (result["clients"] * result["n"] - result["commands"]),
        }
    return {
        "time_to_last_ms": result["time_to_last_ms"],
        "connected": result["connected"],
        "failed": result["failed"] + result["missing"] + result["seq_errors"],
        "cpu_ms_per_send": cpu * 1000 / max(len(result["rounds"]), 1),
    }


LOWER_IS_BETTER = {"rss_per_session_kb", "handshake_p99_ms", "cpu_ms_per_connect", "rss_mb",
                   "p50_ms", "p99_ms", "cpu_us_per_event", "first_command_ms_max",
                   "cpu_us_per_command", "time_to_last_ms", "failed", "cpu_ms_per_send"}


def median_figures(runs: list[dict[str, Any]]) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for key in runs[0]:
        values = [r[key] for r in runs if r.get(key) is not None]
        if not values:
            merged[key] = None
        elif key == "failed":
            merged[key] = max(values)  # the worst repetition, not the median
        else:
            merged[key] = statistics.median(values)
    return merged


def ratio(a: Any, b: Any) -> float | None:
    if a is None or b is None or b == 0:
        return None
    return a / b


def check_targets(table: dict[str, dict[str, dict[str, Any]]]) -> list[dict[str, Any]]:
    """The targets of issue 6, each with its measured value and margin."""
    def fig(scenario: str, server: str, key: str) -> Any:
        return table.get(scenario, {}).get(server, {}).get(key)

    checks = []

    def target(name: str, value: float | None, op: str, goal: float, unit: str = "x") -> None:
        if value is None:
            checks.append({"target": name, "value": None, "goal": f"{op} {goal}{unit}",
                           "pass": False, "margin": "not measured"})
            return
        passed = value >= goal if op == ">=" else value <= goal
        if goal:
            margin = (value / goal - 1) * 100 if op == ">=" else (1 - value / goal) * 100
            margin_text = f"{margin:+.0f}%"
        else:
            margin_text = f"{value:g} vs {goal:g}"
        checks.append({"target": name, "value": value, "goal": f"{op} {goal:g}{unit}",
                       "pass": passed, "margin": margin_text})

    target("push commands/s, gateway/bare",
           ratio(fig("push", "gateway", "commands_per_s"), fig("push", "bare", "commands_per_s")),
           ">=", 2)
    target("push commands/s, gateway/node (per-message rate)",
           ratio(fig("push", "gateway", "commands_per_s"), fig("push", "node", "commands_per_s")),
           ">=", 1)
    target("event round trip, 50 clients: ops/s gateway/bare",
           ratio(fig("echo_50", "gateway", "ops_per_s"), fig("echo_50", "bare", "ops_per_s")),
           ">=", 1.5)
    target("event round trip, 50 clients: p99 gateway/bare",
           ratio(fig("echo_50", "gateway", "p99_ms"), fig("echo_50", "bare", "p99_ms")),
           "<=", 1)
    target("RSS per idle session, gateway/bare (connect_small)",
           ratio(fig("connect_small", "gateway", "rss_per_session_kb"),
                 fig("connect_small", "bare", "rss_per_session_kb")), "<=", 0.5)
    failed = fig("connect_large", "gateway", "failed")
    target("connect_large on one worker: failed connections (gateway)",
           None if failed is None else float(failed), "<=", 0, unit="")
    target("send to everyone (broadcast_large): time to last client, gateway/bare",
           ratio(fig("broadcast_large", "gateway", "time_to_last_ms"),
                 fig("broadcast_large", "bare", "time_to_last_ms")), "<=", 1)
    return checks


def fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        if abs(value) >= 100:
            return f"{value:,.0f}"
        if abs(value) >= 10:
            return f"{value:.1f}"
        return f"{value:.2f}"
    return str(value)


def markdown(report: dict[str, Any]) -> str:
    lines = [f"# Benchmark results ({report['mode']}, {report['repetitions']} repetition(s))", "",
             f"{report['started']} · {report['machine']}", "",
             "| scenario | figure | gateway | bare | node | gateway/bare | gateway/node |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: |"]
    for entry in report["scenarios"].values():
        servers = entry["median"]
        for figure in next(iter(servers.values()), {}):
            values = [servers.get(s, {}).get(figure) for s in SERVERS]
            lines.append(f"| {entry['label']} | {figure} | " + " | ".join(fmt(v) for v in values)
                         + f" | {fmt(ratio(values[0], values[1]))}"
                         + f" | {fmt(ratio(values[0], values[2]))} |")
    lines += ["", "| target | measured | goal | result | margin |",
              "| --- | ---: | --- | --- | --- |"]
    for check in report["targets"]:
        lines.append(f"| {check['target']} | {fmt(check['value'])} | {check['goal']} | "
                     f"{'PASS' if check['pass'] else 'MISS'} | {check['margin']} |")
    if report["errors"]:
        lines += ["", "Errors:", *[f"- {e}" for e in report["errors"]]]
    if report["notes"]:
        lines += ["", *[f"- {n}" for n in report["notes"]]]
    return "\n".join(lines) + "\n"


def versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    from importlib import metadata

    for name in ("flask", "flask-socketio", "python-socketio", "python-engineio", "eventlet"):
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    try:
        found["node"] = subprocess.run(["node", "--version"], capture_output=True, text=True,
                                       timeout=10).stdout.strip()
    except OSError:
        pass
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        default=os.environ.get("BENCH_QUICK") == "1",
                        help="tiny N and one repetition (also BENCH_QUICK=1)")
    parser.add_argument("--repetitions", type=int, default=None, help="default 3 (quick: 1)")
    parser.add_argument("--scenarios", default="", help="comma-separated ids (default: all)")
    parser.add_argument("--servers", default=",".join(SERVERS))
    parser.add_argument("--out", default=os.path.join(ROOT, "bench", "results"),
                        help="folder for latest.json and latest.md")
    parser.add_argument("--reuse-servers", action=argparse.BooleanOptionalAction, default=None,
                        help="one server process per kind for all scenarios (default in "
                             "quick mode; the full run starts a fresh one per run)")
    parser.add_argument("--py-spy", metavar="DIR", default="",
                        help="profile the Python servers with py-spy (collapsed stacks in "
                             "DIR); distorts the figures, for reading only")
    parser.add_argument("--verbose", "-v", action="store_true")
    args = parser.parse_args(argv)

    chosen = scenarios(args.quick)
    if args.scenarios:
        chosen = {k: v for k, v in chosen.items() if k in args.scenarios.split(",")}
    servers = [s for s in SERVERS if s in args.servers.split(",")]
    repetitions = args.repetitions or (1 if args.quick else 3)
    reuse = args.quick if args.reuse_servers is None else args.reuse_servers
    fd_limit = raise_fd_limit()
    notes = []
    if fd_limit < 10_000 + 1000 and not args.quick:
        notes.append(f"open-file limit {fd_limit}: below what 10,000 connections need")
    if "broadcast_large" in chosen and "bare" in servers and not reuse:
        notes.append("bare, broadcast_large: eventlet pool raised (max_size=20000) so it can "
                     "hold the sessions at all; every other bare run uses the stack's defaults")
    if reuse:
        notes.append("servers reused across scenarios (quick mode): a smoke check, not figures")
    notes.append("gateway: GATEWAY_MAX_SESSIONS_PER_USER and GATEWAY_EVENT_RATE/BURST lifted "
                 "(one user holds every session and floods by design), and "
                 "GATEWAY_MAX_ANONYMOUS_PER_ADDRESS (every client comes from 127.0.0.1); "
                 "all else default")

    started = time.strftime("%Y-%m-%d %H:%M:%S")
    runs: dict[str, dict[str, list[dict[str, Any]]]] = {k: {s: [] for s in servers} for k in chosen}
    raw: list[dict[str, Any]] = []
    errors: list[str] = []
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="gateway-bench-") as workdir:
        bench = Bench(workdir, args.verbose)
        try:
            if "gateway" in servers:
                bench.create_user()
            for rep in range(repetitions):
                order = servers[rep % len(servers):] + servers[:rep % len(servers)]
                if reuse:  # one server per kind for every scenario (quick mode)
                    plan = [(server, list(chosen)) for server in order]
                else:  # a fresh server for every run, servers interleaved per scenario
                    plan = [(server, [key]) for key in chosen for server in order]
                for server, keys in plan:
                    proc = None
                    try:
                        proc, url = bench.start(server, keys[0] if len(keys) == 1 else "all")
                        for key in keys:
                            label, kind, params = chosen[key]
                            bench.log(f"[{time.monotonic() - t0:6.0f} s] rep {rep + 1}: "
                                      f"{key} on {server}")
                            try:
                                profile = ""
                                if args.py_spy and server != "node":
                                    profile = os.path.join(args.py_spy,
                                                           f"{server}-{key}-{rep + 1}.txt")
                                result, marks = bench.load(server, url, kind, params, proc.pid,
                                                           profile)
                                figs = figures(kind, result, marks)
                                runs[key][server].append(figs)
                                raw.append({"rep": rep, "scenario": key, "server": server,
                                            "result": result, "marks": marks, "figures": figs})
                            except Exception as exc:  # a failed run must not end the benchmark
                                errors.append(f"rep {rep + 1}, {key}, {server}: {exc}")
                                bench.log(errors[-1])
                    except Exception as exc:
                        errors.append(f"rep {rep + 1}, {server}: {exc}")
                        bench.log(errors[-1])
                    finally:
                        if proc is not None:
                            bench.stop(proc)
                        for profiler in bench.profilers:  # they write once the server is gone
                            try:
                                profiler.wait(30)
                            except subprocess.TimeoutExpired:
                                profiler.send_signal(signal.SIGINT)
                            bench.stop(profiler)
                        bench.profilers.clear()
        finally:
            bench.stop_all()

    table = {key: {s: median_figures(r) for s, r in per.items() if r} for key, per in runs.items()}
    report = {
        "mode": "quick" if args.quick else "full", "repetitions": repetitions,
        "reuse_servers": reuse,
        "started": started, "seconds": time.monotonic() - t0,
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.platform()}",
        "versions": versions(),
        "pinning": "server taskset -c 0, load taskset -c 1" if pinned(0, []) else "none",
        "scenarios": {key: {"label": chosen[key][0], "params": chosen[key][2],
                            "median": table[key]} for key in chosen},
        "targets": check_targets(table), "errors": errors, "notes": notes, "runs": raw,
    }
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "latest.json"), "w") as f:
        json.dump(report, f, indent=1)
    text = markdown(report)
    with open(os.path.join(args.out, "latest.md"), "w") as f:
        f.write(text)
    print(text)
    written = os.path.join(args.out, "latest.md")
    print(f"({report['seconds']:.0f} s; written to {written} and .json)")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
