"""End-to-end tests: a real Chromium, driven by Playwright, against a real server. Every
test here is marked ``real``, so ``-m "not real"`` leaves them out."""

from __future__ import annotations

import pytest

from tests.helpers.kinds import mark_folder


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    mark_folder(items, __file__, "real")
