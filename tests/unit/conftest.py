"""Unit tests: no real process, no socket but those of Flask-SocketIO's test client. Fakes,
the IO-free core, and the Flask app in threading mode (the fixtures of tests/conftest.py).
``make test-fast`` runs this folder alone.

A test that starts a process belongs in tests/integration (or tests/e2e with a browser):
here starting one fails the test, and a test marked ``real`` is refused at collection."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator

import pytest

from tests.helpers.kinds import in_folder


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    misplaced = [item.nodeid for item in items
                 if in_folder(item, __file__) and item.get_closest_marker("real")]
    if misplaced:
        raise pytest.UsageError("marked real but in tests/unit: " + ", ".join(misplaced))


@pytest.fixture(autouse=True)
def no_processes(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("a unit test started a process: move it to tests/integration")

    monkeypatch.setattr(subprocess.Popen, "_execute_child", refuse)
    yield
