"""In-memory stand-ins for the session's transport and runtime (unit tests only)."""

from __future__ import annotations

import dataclasses
import threading
import time
from typing import Any

from gateway.core.session import SessionLimits
from gateway.settings import Settings


def session_limits(**changes: Any) -> SessionLimits:
    """The default session limits (those of the default settings), with ``changes``."""
    return dataclasses.replace(SessionLimits.from_settings(Settings()), **changes)


class RecordingTransport:
    """Records what a session emits, per connection sid."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.sent: list[tuple[str, str, Any]] = []  # (sid, event, data)
        self.disconnected: list[str] = []
        self.hung_up: list[str] = []  # disconnected with their transport

    def emit(self, sid: str, event: str, data: Any) -> None:
        with self.lock:
            self.sent.append((sid, event, data))

    def disconnect(self, sid: str, hang_up: bool = False) -> None:
        with self.lock:
            self.disconnected.append(sid)
            if hang_up:
                self.hung_up.append(sid)

    def messages(self, sid: str, event: str) -> list[Any]:
        with self.lock:
            return [data for s, e, data in self.sent if s == sid and e == event]

    def commands(self, sid: str) -> list[dict[str, Any]]:
        return [c for batch in self.messages(sid, "commands") for c in batch]


class ThreadRuntime:
    """Runs tasks in daemon threads, and remembers them so tests can join them."""

    def __init__(self) -> None:
        self.threads: list[threading.Thread] = []

    def spawn(self, fn: Any, *args: Any) -> threading.Thread:
        thread = threading.Thread(target=fn, args=args, daemon=True)
        self.threads.append(thread)
        thread.start()
        return thread

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


class ManualRuntime:
    """Queues spawned tasks until the test runs them, like a green thread that has not yet run."""

    def __init__(self) -> None:
        self.tasks: list[tuple[Any, tuple[Any, ...]]] = []

    def spawn(self, fn: Any, *args: Any) -> None:
        self.tasks.append((fn, args))

    def sleep(self, seconds: float) -> None:
        """Nothing else runs until the test says so."""

    def run_pending(self) -> int:
        tasks, self.tasks = self.tasks, []
        for fn, args in tasks:
            fn(*args)
        return len(tasks)


class ManualClock:
    """A monotonic clock the test moves by hand (``clock.now += 1.0``)."""

    def __init__(self, now: float = 100.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now
