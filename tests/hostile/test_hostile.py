"""The hostile suite: each attack against a real ``python wsgi.py`` (eventlet) while a
logged-in bystander echoes (see ``tests/helpers/hostile/``: ``harness.py`` for how,
``attacks.py`` for what).

Every attack must leave the bystander's echoes p99 < 100 ms and max < 1 s with none
failed, and the server's RSS back within 10 % of what it was before; and show its own
figures (the flooder kicked and its transport closed, most slowloris connections, idle
WebSockets and handshakes closed or refused, the non-acking session closed
``slow_consumer``, every packed POST answered below 500).

Run alone: ``.venv/bin/pytest -m hostile`` (about 3-6 minutes; ``scripts/hostile.py``
prints the same figures as a table). ``HOSTILE_SERVER_ROOT=DIR`` runs the server of
another tree (e.g. ``git archive HEAD | tar -x -C DIR``) with this suite.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.helpers.hostile.attacks import ATTACKS
from tests.helpers.hostile.harness import run_attack
from tests.helpers.hostile.harness import table

pytestmark = [pytest.mark.real, pytest.mark.hostile]


@pytest.mark.parametrize("attack", list(ATTACKS))
def test_attack(attack, hostile_database, hostile_results, tmp_path):
    root = os.environ.get("HOSTILE_SERVER_ROOT")
    result = run_attack(attack, hostile_database, tmp_path,
                        server_root=Path(root) if root else None)
    hostile_results.append(result)
    print(table([result]))
    failures = result.failures()
    assert not failures, (
        f"{attack}: {len(failures)} figure(s) missed:\n- " + "\n- ".join(failures)
        + f"\nfigures: {json.dumps(result.as_dict(), default=str)}")
