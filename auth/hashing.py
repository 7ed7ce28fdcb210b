"""Argon2 off the event loop: :func:`offload` runs a password hash or check in a real OS
thread when the process is monkey-patched (eventlet or gevent), directly otherwise, and
never more than :data:`MAX_CONCURRENT` of them at once per process.

An Argon2 computation takes tens of milliseconds of CPU on purpose. On an eventlet or
gevent worker it would hold the event loop that long, and every other connection of the
worker with it (ten logins a second took a bystander's echo to 600 ms). argon2-cffi
releases the GIL while it computes, so in a real thread the loop carries on. The bound
keeps a login loop from taking every core: the others wait their turn, and under
eventlet and gevent they wait cooperatively (a green semaphore), not holding the loop.

This is the one runtime-specific place of ``auth``: the runtime is detected, and
eventlet or gevent imported, only when that library is already loaded and has patched
``threading``, so a threading deployment never imports either.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable
from typing import Any
from typing import TypeVar

T = TypeVar("T")

#: Argon2 computations at once per process; the rest wait their turn.
MAX_CONCURRENT = 2

_gates: dict[str, Any] = {}  # runtime -> its semaphore, made on first use
_gates_lock = threading.Lock()


def runtime() -> str:
    """``"eventlet"`` or ``"gevent"`` when that library monkey-patched threading, else
    ``"threads"``."""
    if "eventlet" in sys.modules:
        from eventlet import patcher

        if patcher.is_monkey_patched("thread"):
            return "eventlet"
    if "gevent" in sys.modules:
        from gevent import monkey

        if monkey.is_module_patched("threading"):
            return "gevent"
    return "threads"


def _gate(kind: str) -> Any:
    """The semaphore bounding Argon2 for ``kind``: green under eventlet and gevent, so a
    waiting login yields to the loop instead of blocking it. Made on first use, not at
    import (an app imported before the worker patches, e.g. gunicorn ``--preload``, still
    gets the right one)."""
    gate = _gates.get(kind)
    if gate is None:
        with _gates_lock:
            gate = _gates.get(kind)
            if gate is None:
                if kind == "eventlet":
                    from eventlet.semaphore import BoundedSemaphore as Semaphore
                elif kind == "gevent":
                    from gevent.lock import BoundedSemaphore as Semaphore
                else:
                    Semaphore = threading.BoundedSemaphore
                gate = _gates[kind] = Semaphore(MAX_CONCURRENT)
    return gate


#: Niceness of the threads that run Argon2 for an event loop (Linux: per thread).
BACKGROUND_NICENESS = 19

_background = threading.local()


def _in_background(fn: Callable[..., T], *args: Any) -> T:
    """``fn(*args)`` in a pool thread that yields the CPU to the event loop's thread.

    In a real thread Argon2 no longer holds the loop, but it still competes for the CPU:
    on a worker with one core (a pinned worker, a small container), two hashes at the
    default priority took a third of it each, and a bystander's echo p99 from 4 ms to
    120 ms. At the lowest priority the hashes run on what the loop leaves: logins wait
    their turn under load, nobody else does. (On Linux ``setpriority`` on a thread id
    applies to that thread only; elsewhere this is a no-op.)
    """
    if not getattr(_background, "niced", False):
        _background.niced = True
        try:
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), BACKGROUND_NICENESS)
        except (AttributeError, OSError):
            pass  # not Linux, or not allowed: the default priority
    return fn(*args)


def offload(fn: Callable[..., T], *args: Any) -> T:
    """``fn(*args)`` in a real OS thread at the lowest priority under eventlet or gevent,
    else in this thread; at most :data:`MAX_CONCURRENT` at once. Its result or exception
    comes back as is."""
    kind = runtime()
    with _gate(kind):
        if kind == "eventlet":
            from eventlet import tpool

            return tpool.execute(_in_background, fn, *args)
        if kind == "gevent":
            import gevent

            return gevent.get_hub().threadpool.apply(
                _in_background, (fn, *args))
        return fn(*args)
