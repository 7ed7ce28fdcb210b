"""The hostile suite (attacks against a real server while a bystander echoes): its own kind,
run alone with ``-m hostile``. Every test here is marked ``real`` and ``hostile``. Fixtures:
the users' database (made once), and a table of every attack's figures at the end of the
run."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.hostile.harness import Result
from tests.helpers.hostile.harness import failure_report
from tests.helpers.hostile.harness import notes_report
from tests.helpers.hostile.harness import prepare_database
from tests.helpers.hostile.harness import table
from tests.helpers.kinds import mark_folder

_results: list[Result] = []


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    mark_folder(items, __file__, "real", "hostile")


@pytest.fixture(scope="session")
def hostile_database(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A database with the bystander's and the attacker's accounts; each attack's server
    gets its own copy."""
    root = os.environ.get("HOSTILE_SERVER_ROOT")  # another tree's server (and its CLI)
    return prepare_database(tmp_path_factory.mktemp("hostile-users"),
                            Path(root) if root else None)


@pytest.fixture
def hostile_results() -> list[Result]:
    return _results


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not _results:
        return
    terminalreporter.section("hostile suite figures")
    terminalreporter.write_line(table(_results))
    for title, report in (("Missed:", failure_report(_results)),
                          ("Notes (not asserted):", notes_report(_results))):
        if report:
            terminalreporter.write_line("")
            terminalreporter.write_line(title)
            terminalreporter.write_line(report)
