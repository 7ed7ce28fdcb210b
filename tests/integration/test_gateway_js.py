"""The browser client, static/gateway.js itself, in Node against a real server: bounded
events in flight (event_memory), nothing sent vanishing silently, storage that fails, two
clients of one app in one page, and duplicated tabs (tests/helpers/node/gateway_js.mjs)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest

from tests.helpers.support import IN_CI
from tests.helpers.support import ROOT
from tests.helpers.support import ServerProcess
from tests.helpers.support import cookie_header
from tests.helpers.support import login
from tests.helpers.support import running_server

PASSWORD = "gateway-js-password"
SCRIPT = os.path.join(ROOT, "tests", "helpers", "node", "gateway_js.mjs")
EVENT_MEMORY = 4


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with running_server(tmp_path_factory, "gateway-js", ["gia"], PASSWORD,
                        GATEWAY_EVENT_MEMORY=str(EVENT_MEMORY)) as proc:
        yield proc


@pytest.fixture(scope="module")
def cookie(server: ServerProcess) -> str:
    return cookie_header(login(server.url, "gia", PASSWORD))


def run(server: ServerProcess, cookie: str, scenario: str) -> dict[str, Any]:
    node = shutil.which("node")
    if node is None:
        assert not IN_CI, "node is required in CI"
        pytest.skip("node is not installed")
    result = subprocess.run([node, SCRIPT, server.url, cookie, scenario], cwd=ROOT,
                            capture_output=True, text=True, timeout=60)
    lines = result.stdout.strip().splitlines()
    assert result.returncode == 0 and lines, result.stdout + result.stderr
    out: dict[str, Any] = json.loads(lines[-1])
    assert "error" not in out, out
    return out


def test_no_more_events_in_flight_than_the_session_remembers(server, cookie):
    out = run(server, cookie, "bounded")
    assert out["cut"] is True and "resumed" in out["statuses"]
    # on the wire: never more than EVENT_MEMORY unanswered, counting from the oldest
    assert out["maxSpan"] <= EVENT_MEMORY and out["maxOutstanding"] <= EVENT_MEMORY, out
    # every one answered with its own result, none result_forgotten, across the cut
    assert out["results"] == [{"ok": True, "result": f"n{i}"} for i in range(1, 21)]
    assert out.get("eventMemory") == EVENT_MEMORY and out.get("maxInFlight") <= EVENT_MEMORY
    assert out["emits"] >= 20 and out["pending"] == 0


def test_events_a_fresh_session_cannot_take_are_reported_lost(server, cookie):
    out = run(server, cookie, "lost")
    assert out["detail"]["reason"] == "forbidden"
    assert out["detail"]["lost"] == [{"id": 1, "name": "echo"}, {"id": 2, "name": "echo"}]
    assert out["pending"] == 0 and out["sessionAfter"] != out["sessionBefore"]


def test_an_error_for_an_event_sent_before_a_reload_is_reported(server, cookie):
    out = run(server, cookie, "failed")
    assert out["detail"]["failed"] == [{"id": 1, "name": "no.such.event",
                                        "code": "unknown_event"}]
    assert out["detail"]["again"] is True and out["statuses"][-1] == "resumed"
    assert out["pending"] == 0


def test_a_full_storage_falls_back_to_memory_and_drops_the_stale_copy(server, cookie):
    out = run(server, cookie, "quota")
    assert out["storedBefore"] == ["gateway:echo"]
    assert out["results"] == [{"ok": True, "result": t} for t in ("q1", "q2", "q3")]
    # the stored copy (state and journal) is gone: a reload starts afresh, never resumes
    # from a stale position
    assert out["storedAfter"] == [] and out["sameStorage"] is False
    assert out["memoryLastSeq"] == out["lastSeq"] == 4
    # warned once, on the console and in a status detail
    assert len([w for w in out["warnings"] if "storage is full" in w]) == 1, out["warnings"]
    assert out["warned"] == [{"status": "connected", "storage": "memory", "again": True}]
    assert out["storageDetail"] == "memory"


def test_two_clients_of_one_app_in_one_page_keep_apart(server, cookie):
    out = run(server, cookie, "two")
    assert out["keys"] == ["gateway:echo", "gateway:echo#2"]
    a, b = out["sessions"]
    assert a and b and a != b
    assert out["stored"] == {"gateway:echo": a, "gateway:echo#2": b}
    assert out["results"] == ["from a", "from b"]


def test_a_duplicated_client_opens_a_session_of_its_own(server, cookie):
    out = run(server, cookie, "duplicate")
    assert out["a"] and out["b"] and out["a"] != out["b"]
    assert out["detail"]["status"] == "connected" and out["detail"]["duplicate"] is True
    assert out["results"] == ["a1", "a2", "b1"]
    assert out["aStatuses"] == ["connecting", "connected"]  # never kicked, never resumed


def test_a_reused_event_id_makes_the_copy_start_a_session_of_its_own(server, cookie):
    out = run(server, cookie, "reused")
    assert out["refused"] == {"ok": False, "code": "unknown_event"}
    assert out["aStatus"] == "closed" and out["aReason"] == "kicked"
    assert out["reused"] == {"ok": False, "code": "event_id_reused"}
    assert out["detail"]["reason"] == "event_id_reused"
    assert out["sessionAfter"] != out["sessionBefore"]
    assert out["again"] == {"ok": True, "result": "b2"}
