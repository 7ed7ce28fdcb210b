"""The worker's background work: periodic tasks, started with the hub, stopped at shutdown."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from ..core.session import Runtime

logger = logging.getLogger("gateway")

TaskContext = Callable[[Callable[[], None]], Callable[[], None]]


class Scheduler:
    """Runs ``every(name, interval, fn)`` tasks once started, in the runtime's tasks;
    ``task_context`` wraps each task (the Flask app context)."""

    def __init__(self, runtime: Runtime, task_context: TaskContext | None = None) -> None:
        self._runtime = runtime
        self._task_context = task_context
        self._periodic: list[tuple[str, float, Callable[[], object]]] = []
        self._stopping = threading.Event()
        self.started = False

    def every(self, name: str, interval: float, fn: Callable[[], object]) -> None:
        """Run ``fn`` every ``interval`` seconds (in an app context) once started."""
        self._periodic.append((name, interval, fn))
        if self.started:
            self._spawn_periodic(name, interval, fn)

    def start(self) -> None:
        self.started = True
        self._stopping.clear()
        for name, interval, fn in self._periodic:
            self._spawn_periodic(name, interval, fn)

    def stop(self) -> None:
        self._stopping.set()
        self.started = False

    def spawn(self, fn: Callable[[], None]) -> None:
        """Run ``fn`` in a task of the runtime, with the task context."""
        self._runtime.spawn(self._task_context(fn) if self._task_context else fn)

    def _spawn_periodic(self, name: str, interval: float, fn: Callable[[], object]) -> None:
        def loop() -> None:
            while not self._stopping.wait(interval):
                try:
                    fn()
                except Exception:  # a failing check must not end the loop
                    logger.exception("periodic task %s failed", name)
        self.spawn(loop)
