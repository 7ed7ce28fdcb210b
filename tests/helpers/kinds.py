"""The kinds of test, one folder each (``tests/unit``, ``tests/integration``, ``tests/e2e``,
``tests/hostile``): each folder's conftest marks its own tests with ``mark_folder``."""

from __future__ import annotations

from pathlib import Path

import pytest


def in_folder(item: pytest.Item, conftest_file: str) -> bool:
    return Path(str(item.path)).is_relative_to(Path(conftest_file).parent)


def mark_folder(items: list[pytest.Item], conftest_file: str, *markers: str) -> None:
    """Add ``markers`` to every item under the folder of ``conftest_file``.

    A conftest's ``pytest_collection_modifyitems`` sees every collected item, not only
    its folder's: hence the path check."""
    for item in items:
        if in_folder(item, conftest_file):
            for marker in markers:
                if item.get_closest_marker(marker) is None:
                    item.add_marker(marker)
