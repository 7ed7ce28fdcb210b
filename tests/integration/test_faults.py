"""Fault tests: a proxy cuts the connection at random points while a session streams
10,000 commands and the client sends 1,000 events. Every command must be applied once,
in order, and every event handled once, with the official JS client and python-socketio."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from gateway.client import GatewayClient
from tests.helpers.chaos import CuttingProxy
from tests.helpers.support import IN_CI
from tests.helpers.support import ROOT
from tests.helpers.support import ServerProcess
from tests.helpers.support import cookie_header
from tests.helpers.support import login
from tests.helpers.support import running_server
from tests.helpers.support import wait_for

PASSWORD = "fault-test-password"
COMMANDS, EVENTS, CUTS = 10_000, 1_000, 200
STREAM_SECONDS = 60  # the stream is paced over this long, so the cuts land while it flows
GAPS = (0.005, 0.08)  # a cut comes this long (random) after each new connection


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with running_server(
        tmp_path_factory, "faults", ["fay"], PASSWORD,
        GATEWAY_APPS="tests.helpers.fault_app",
        GATEWAY_EVENT_RATE="10000", GATEWAY_EVENT_BURST="10000",
        GATEWAY_REPLAY_LIMIT="20000", GATEWAY_EVENT_MEMORY="2000",
        GATEWAY_LOG_LEVEL="WARNING",
        FLASK_FAULT_COMMANDS=str(COMMANDS), FLASK_FAULT_EVENTS=str(EVENTS),
        FLASK_FAULT_SECONDS=str(STREAM_SECONDS),
    ) as proc:
        yield proc


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


def report(capsys: pytest.CaptureFixture[str], label: str, cuts: int, while_streaming: Any,
           commands: int, duplicates: int, gaps: int, resumes: list[float]) -> None:
    """Print the figures of a run, past pytest's capture so every run shows them."""
    line = (f"{label}: cuts={cuts} (while streaming: {while_streaming}) commands={commands} "
            f"duplicates_dropped={duplicates} gaps={gaps} resumes={len(resumes)} "
            f"resume_p50={percentile(resumes, 0.5) * 1000:.1f}ms "
            f"resume_p99={percentile(resumes, 0.99) * 1000:.1f}ms")
    with capsys.disabled():
        print("\n" + line)


@pytest.mark.parametrize("transport", ["websocket", "polling"])
def test_python_client_under_random_cuts(server, transport, capsys):
    proxy = CuttingProxy(server.port)
    cookie = cookie_header(login(server.url, "fay", PASSWORD))
    client = GatewayClient(proxy.url, "stream", cookie=cookie, transports=[transport],
                           attempt_timeout=0.5, max_backoff=0.2)
    done = threading.Event()
    cuts = CUTS
    chaos = threading.Thread(target=proxy.run_chaos, args=(cuts, done, *GAPS), daemon=True)
    try:
        client.connect()
        chaos.start()
        pendings = []
        for n in range(1, EVENTS + 1):
            pendings.append(client.send("tally", {"n": n}))
            if n % 25 == 0:
                time.sleep(STREAM_SECONDS / 50)  # spreads the events over the stream; not a wait
        wait_for(lambda: client.applied and client.applied[-1]["name"] == "report",
                 timeout=180, interval=0.05, message="the final report")
        cuts_while_streaming = proxy.cuts
        done.set()
        chaos.join(30)
        # The last cut may leave a long-poll half open: python-engineio's client notices
        # only when its GET times out, max(ping_interval, ping_timeout) + 5 = 30 s (then its
        # write loop logs "packet queue is empty, aborting"), and then reconnects and
        # resends. The deadline covers that bound, twice over.
        wait_for(lambda: all(p.done.is_set() for p in pendings), timeout=75,
                 message="every event acknowledged")
    finally:
        done.set()
        client.close()
        proxy.close()
    report(capsys, f"python/{transport}", proxy.cuts, cuts_while_streaming, len(client.applied),
           client.duplicates, client.gaps, [r.seconds for r in client.resumes if r.seconds])
    assert proxy.cuts >= cuts
    assert all(r.resumed for r in client.resumes), [r for r in client.resumes if not r.resumed]
    assert client.gaps == 0
    ticks = [c["args"]["n"] for c in client.applied if c["name"] == "tick"]
    assert ticks == list(range(1, COMMANDS + 1))
    assert [c["seq"] for c in client.applied] == list(range(1, COMMANDS + 2))
    assert [p.ack for p in pendings] == [{"ok": True, "result": n} for n in range(1, EVENTS + 1)]
    assert client.applied[-1]["args"] == {"handled": EVENTS, "twice": 0}


def test_official_js_client_under_random_cuts(server, capsys):
    node = shutil.which("node")
    if node is None:
        assert not IN_CI, "node is required in CI"
        pytest.skip("node is not installed")
    proxy = CuttingProxy(server.port)
    cookie = cookie_header(login(server.url, "fay", PASSWORD))
    done = threading.Event()
    chaos = threading.Thread(target=proxy.run_chaos, args=(CUTS, done, *GAPS), daemon=True)
    chaos.start()
    script = os.path.join(ROOT, "tests", "helpers", "node", "faults.mjs")
    try:
        proc = subprocess.Popen([node, script, proxy.url, cookie, str(EVENTS),
                                 str(STREAM_SECONDS)], cwd=ROOT, stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        stream_end: list[int] = []

        def watch_stderr() -> None:
            for line in proc.stderr:
                if line.strip() == "report" and not stream_end:
                    stream_end.append(proxy.cuts)

        threading.Thread(target=watch_stderr, daemon=True).start()
        wait_for(lambda: (proxy.cuts >= CUTS and stream_end) or proc.poll() is not None,
                 timeout=180, interval=0.05, message=f"{CUTS} cuts and the end of the stream")
        done.set()
        proc.stdin.close()
        out = proc.stdout.read()
        proc.wait(30)
        err = ""
    finally:
        done.set()
        proxy.close()
    assert proc.returncode == 0, out + err
    cuts_while_streaming = stream_end[0] if stream_end else None
    result = json.loads(out.strip().splitlines()[-1])
    report(capsys, "node/websocket", proxy.cuts, cuts_while_streaming, result["applied"],
           result["duplicates"], result["gaps"], result["resumeSeconds"])
    assert proxy.cuts >= CUTS
    assert result["freshSessions"] == [], result["freshSessions"]
    assert result["gaps"] == 0 and result["ticksInOrder"] is True
    assert result["applied"] == COMMANDS + 1
    assert result["acks"] == EVENTS and result["badAcks"] == []
    assert result["report"] == {"handled": EVENTS, "twice": 0}
