"""Smoke test of the benchmark (bench/): its quickest mode runs every scenario against the
gateway, bare Flask-SocketIO and Node socket.io, and reports a figure for each.

No timing is asserted here: figures on a shared test machine mean nothing. The full
benchmark is ``make bench`` (bench/README.md).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest

from tests.helpers.support import IN_CI
from tests.helpers.support import PYTHON
from tests.helpers.support import ROOT

pytestmark = pytest.mark.real

SERVERS = ("gateway", "bare", "node")
SCENARIOS = ("connect_small", "connect_large", "echo_1", "echo_50", "push",
             "broadcast_small", "broadcast_large")


def test_quick_benchmark_reports_every_scenario_for_every_server(tmp_path):
    if shutil.which("node") is None or not os.path.isdir(
            os.path.join(ROOT, "node_modules", "socket.io")):
        assert not IN_CI, "node and the npm packages (npm ci) are required in CI"
        pytest.skip("node or node_modules/socket.io is missing (run npm ci)")
    run = subprocess.run([PYTHON, "bench/run.py", "--quick", "--out", str(tmp_path)],
                         cwd=ROOT, capture_output=True, text=True, timeout=180)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    report = json.loads((tmp_path / "latest.json").read_text())
    assert report["mode"] == "quick" and report["errors"] == []
    assert set(report["scenarios"]) == set(SCENARIOS)
    for key, entry in report["scenarios"].items():
        assert set(entry["median"]) == set(SERVERS), key
        for server, figures in entry["median"].items():
            assert figures, (key, server)
            for name, value in figures.items():
                assert isinstance(value, (int, float)), (key, server, name, value)
            assert figures["failed"] == 0, (key, server, figures)
            if "connected" in figures:
                assert figures["connected"] == entry["params"]["n"], (key, server, figures)
    assert len(report["targets"]) == 7
    # The printed table carries every scenario and both ratio columns.
    table = (tmp_path / "latest.md").read_text()
    assert "gateway/bare" in table and "gateway/node" in table
    for entry in report["scenarios"].values():
        assert entry["label"] in table
