"""The eventlet-specific pieces that bound one connection's share (no server)."""

from __future__ import annotations

import os

import pytest

from gateway.transport.eventlet import HeaderWaits
from gateway.transport.eventlet import apply_mask


def reference_mask(data: bytes, mask: bytes, offset: int = 0) -> bytes:
    """eventlet's own algorithm, byte by byte."""
    return bytes(b ^ mask[(offset + i) % 4] for i, b in enumerate(data))


@pytest.mark.parametrize("size", [0, 1, 3, 4, 5, 125, 126, 65_536, 100_003])
@pytest.mark.parametrize("offset", [0, 1, 2, 3, 7])
def test_apply_mask_is_eventlets_xor(size, offset):
    data, mask = os.urandom(size), os.urandom(4)
    assert apply_mask(data, mask, length=size, offset=offset) == reference_mask(data, mask, offset)
    assert apply_mask(data, tuple(mask), offset=offset) == reference_mask(data, mask, offset)


def test_header_waits_are_bounded_in_total_and_per_address():
    waits = HeaderWaits(max_total=3, max_per_address=2)
    assert waits.enter("a") and waits.enter("a") and not waits.enter("a")
    assert waits.enter("b") and not waits.enter("c")
    waits.leave("a")
    assert waits.enter("c") and waits.refused == 2
