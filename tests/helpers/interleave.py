"""Forcing an interleaving without timing: run another thread's step at the exact moment a
session (or registry) lets go of its lock.

Under the ``threading`` runtime a thread may be pre-empted right after it releases a lock,
before its next statement; another thread then runs. :func:`after_release` stands in for
that thread: it wraps a lock (or condition) so that ``step()`` runs once, the first time
the lock is released while ``when()`` holds, in the releasing thread, with the lock free.
A fixed implementation gives the step nothing to break; a broken one fails every run.
:class:`PreemptionPoints` does the same at every point of one thread, for a model that
plays all the threads in one (tests/unit/test_model.py).
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


class PreemptionPoints:
    """Every pre-emption point of one thread, for a model that plays all the threads in one.

    Under the ``threading`` runtime a thread may lose the processor whenever it lets go of a
    lock; another thread then runs. :meth:`wrap` puts each lock of the code under test (a
    session's condition and flush lock, the registry's lock) behind a counter; a *point* is
    a release after which the thread holds none of them. :meth:`arm` schedules steps of
    "other threads", each at the ``skip``-th point after the one before (or after the
    arming), run there in this thread with every lock free, so it can block on nothing.
    Locks wrapped as ``inbound`` (a session's one-event-at-a-time lock, held while an event
    handler runs) may stay held at a point: a step that ``needs_inbound`` (an event, which
    would wait for them) is not run there. The step runs to its end, not pre-empted itself.
    (One thread has one identity: code that tells threads apart by ``get_ident`` sees the
    step as the pre-empted thread.)

    Nothing blocks: a wrapped lock that is not free raises AssertionError (one thread
    would wait forever), and so does a condition's ``wait``.
    """

    def __init__(self) -> None:
        self.held = 0  # wrapped locks held, inbound ones excepted
        self.inbound = 0  # inbound locks held
        self.enabled = False  # points count only while the model runs an operation
        self.fired = 0
        self._armed: list[tuple[int, Callable[[], Any], bool]] = []

    def wrap(self, lock: Any, inbound: bool = False) -> _Tracked:
        return _Tracked(self, lock, inbound)

    def arm(self, skip: int, step: Callable[[], Any], needs_inbound: bool = False) -> None:
        """Run ``step()`` at the ``skip``-th point after the previous step armed ran."""
        self._armed.append((skip, step, needs_inbound))

    def disarm(self) -> None:
        self._armed = []

    def _point(self) -> None:
        if self.held or not self.enabled or not self._armed:
            return
        skip, step, needs_inbound = self._armed[0]
        if needs_inbound and self.inbound:
            return
        if skip > 0:
            self._armed[0] = (skip - 1, step, needs_inbound)
            return
        self._armed.pop(0)
        self.enabled = False  # the step itself runs without pre-emption
        try:
            step()
        finally:
            self.fired += 1
            self.enabled = True


class _Tracked:
    def __init__(self, points: PreemptionPoints, inner: Any, inbound: bool) -> None:
        self._points = points
        self._inner = inner
        self._inbound = inbound

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        if not self._inner.acquire(blocking=False):
            raise AssertionError("a lock is taken that is not free: with every thread "
                                 "played in one, nothing would ever release it")
        if self._inbound:
            self._points.inbound += 1
        else:
            self._points.held += 1
        return True

    def release(self) -> None:
        self._inner.release()
        if self._inbound:
            self._points.inbound -= 1
        else:
            self._points.held -= 1
        self._points._point()

    def __enter__(self) -> bool:
        return self.acquire()

    def __exit__(self, *exc: Any) -> None:
        self.release()

    def wait(self, timeout: float | None = None) -> bool:
        raise AssertionError("a condition is waited on: with every thread played in one, "
                             "nothing would ever notify it")

    def __getattr__(self, name: str) -> Any:  # notify, notify_all
        return getattr(self._inner, name)
