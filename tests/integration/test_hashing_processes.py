"""Argon2 off the event loop, each in a fresh Python process: an eventlet-patched one whose
loop keeps ticking through the hashes, and a threading deployment that never imports
eventlet."""

from __future__ import annotations

import subprocess

from tests.helpers.support import PYTHON
from tests.helpers.support import ROOT


def test_a_login_hash_does_not_hold_the_eventlet_loop():
    """In an eventlet-patched process, four Argon2 hashes run while a green ticker keeps
    ticking: the loop is never held for a hash's duration (about 0.3 s here)."""
    script = """
import eventlet
eventlet.monkey_patch()
import sys, time
from auth import hashing
from auth.models import _hasher
assert hashing.runtime() == "eventlet"
gaps, stop = [], []
def tick():
    last = time.perf_counter()
    while not stop:
        eventlet.sleep(0.005)
        now = time.perf_counter()
        gaps.append(now - last)
        last = now
ticker = eventlet.spawn(tick)
started = time.perf_counter()
hashes = [eventlet.spawn(hashing.offload, _hasher.hash, "a password") for _ in range(4)]
assert all(h.wait().startswith("$argon2") for h in hashes)
one = (time.perf_counter() - started) / 2  # two at a time
stop.append(1)
ticker.wait()
print(f"{max(gaps):.3f} {one:.3f}")
assert max(gaps) < min(0.1, one / 2), (max(gaps), one)
"""
    result = subprocess.run([PYTHON, "-c", script], cwd=ROOT, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_threading_deployment_never_imports_eventlet():
    script = ("import sys\nfrom auth.models import User\n"
              "u = User(); u.set_password('a long password')\n"
              "assert u.check_password('a long password')\n"
              "assert 'eventlet' not in sys.modules and 'gevent' not in sys.modules\n")
    result = subprocess.run([PYTHON, "-c", script], cwd=ROOT, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
