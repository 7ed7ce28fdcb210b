"""Debian's Chromium for the end-to-end tests, driven by Playwright."""

from __future__ import annotations

import shutil

import pytest

from .support import IN_CI

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-sync",
                 "--disable-quic"]


def chromium_path() -> str:
    """The path of Debian's chromium; skips the test when it is missing, except in CI."""
    chromium = shutil.which("chromium")
    if chromium is None:
        assert not IN_CI, "Debian's chromium is required in CI (make test installs it as root)"
        pytest.skip("chromium is not installed")
    return chromium
