"""Forcing an interleaving without timing: run another thread's step at the exact moment a
session (or registry) lets go of its lock.

Under the ``threading`` runtime a thread may be pre-empted right after it releases a lock,
before its next statement; another thread then runs. :func:`after_release` stands in for
that thread: it wraps a lock (or condition) so that ``step()`` runs once, the first time
the lock is released while ``when()`` holds, in the releasing thread, with the lock free.
A fixed implementation gives the step nothing to break; a broken one fails every run.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any


class _Preempting:
    def __init__(self, inner: Any, step: Callable[[], Any], when: Callable[[], bool]) -> None:
        self._inner = inner
        self._step = step
        self._when = when
        self._fired = False
        self._firing = threading.local()
        self.fired = threading.Event()

    def __enter__(self) -> Any:
        return self._inner.__enter__()

    def __exit__(self, *exc: Any) -> Any:
        result = self._inner.__exit__(*exc)
        if not self._fired and not getattr(self._firing, "on", False) and self._when():
            self._fired = True
            self._firing.on = True
            try:
                self._step()
            finally:
                self._firing.on = False
                self.fired.set()
        return result

    def disarm(self) -> bool:
        """Never run the step from now on; True if it had run."""
        fired, self._fired = self._fired, True
        return fired

    def __getattr__(self, name: str) -> Any:  # wait, notify, notify_all, acquire, release
        return getattr(self._inner, name)


def after_release(owner: Any, attribute: str, step: Callable[[], Any],
                  when: Callable[[], bool] = lambda: True) -> _Preempting:
    """Wrap ``owner.<attribute>`` (a lock or condition) so that ``step()`` runs once, right
    after the first release for which ``when()`` is true. Returns the wrapper (its
    ``fired`` event tells whether the step ran)."""
    wrapper = _Preempting(getattr(owner, attribute), step, when)
    setattr(owner, attribute, wrapper)
    return wrapper
