"""Argon2 off the event loop (auth.hashing): a real OS thread under eventlet or gevent, and
at most MAX_CONCURRENT computations at once (in fresh processes:
tests/integration/test_hashing_processes.py)."""

from __future__ import annotations

import os
import sys
import threading
import types
from typing import Any

import pytest

from auth import hashing
from tests.helpers.support import wait_for


@pytest.fixture(autouse=True)
def fresh_gates(monkeypatch):
    monkeypatch.setattr(hashing, "_gates", {})


def test_unpatched_it_runs_in_the_calling_thread():
    assert hashing.runtime() == "threads"
    assert hashing.offload(threading.get_ident) == threading.get_ident()
    with pytest.raises(ZeroDivisionError):  # exceptions come back as they are
        hashing.offload(lambda: 1 / 0)


def test_under_eventlet_it_runs_in_another_os_thread(monkeypatch):
    import eventlet  # a requirement of the project: always there
    from eventlet import patcher
    from eventlet import tpool

    monkeypatch.setattr(patcher, "is_monkey_patched", lambda module: module == "thread")
    assert "eventlet" in sys.modules and hashing.runtime() == "eventlet"
    try:
        assert hashing.offload(threading.get_ident) != threading.get_ident()
        assert hashing.offload(lambda a, b: a + b, 2, 3) == 5
        # At the lowest priority: the hash gets only the CPU the event loop leaves.
        niceness = hashing.offload(
            lambda: os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))
        assert niceness == hashing.BACKGROUND_NICENESS
        assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == 0  # not the loop's
        with pytest.raises(ZeroDivisionError):
            hashing.offload(lambda: 1 / 0)
        assert isinstance(hashing._gates["eventlet"], eventlet.semaphore.BoundedSemaphore)
    finally:
        tpool.killall()  # its worker threads


def test_under_gevent_it_runs_in_the_hubs_threadpool(monkeypatch):
    # gevent is not installed here: a stand-in with the three names auth.hashing uses.
    ran_in: list[int] = []

    class ThreadPool:
        def apply(self, fn: Any, args: tuple = ()) -> Any:
            result: list[Any] = []
            thread = threading.Thread(target=lambda: result.append(fn(*args)))
            thread.start()
            thread.join()
            ran_in.append(thread.ident)
            return result[0]

    gevent = types.ModuleType("gevent")
    gevent.get_hub = lambda: types.SimpleNamespace(threadpool=ThreadPool())
    gevent.monkey = types.SimpleNamespace(is_module_patched=lambda name: name == "threading")
    gevent.lock = types.SimpleNamespace(BoundedSemaphore=threading.BoundedSemaphore)
    monkeypatch.setitem(sys.modules, "gevent", gevent)
    monkeypatch.setitem(sys.modules, "gevent.monkey", gevent.monkey)
    monkeypatch.setitem(sys.modules, "gevent.lock", gevent.lock)
    if "eventlet" in sys.modules:  # not patched: gevent's turn
        from eventlet import patcher
        monkeypatch.setattr(patcher, "is_monkey_patched", lambda module: False)
    assert hashing.runtime() == "gevent"
    ident = hashing.offload(threading.get_ident)
    assert ident != threading.get_ident() and ran_in == [ident]


def test_at_most_two_computations_at_once_the_others_wait_their_turn():
    assert hashing.MAX_CONCURRENT == 2
    lock = threading.Lock()
    release = threading.Event()
    running, most, done = 0, 0, []

    def slow(n: int) -> int:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        release.wait(10)  # held until the test has seen two run at once
        with lock:
            running -= 1
        return n

    threads = [threading.Thread(target=lambda n=n: done.append(hashing.offload(slow, n)))
               for n in range(8)]
    for thread in threads:
        thread.start()
    wait_for(lambda: running == 2, 10, message="two computations running at once")
    release.set()
    for thread in threads:
        thread.join(10)
    assert sorted(done) == list(range(8))  # every one ran, in its turn
    assert most == 2
