"""CommandStream, EventLedger and TokenBucket, without a server."""

from __future__ import annotations

import pytest

from gateway.core.delivery import CommandStream
from gateway.core.delivery import EventLedger
from gateway.core.delivery import TokenBucket
from gateway.core.errors import ProtocolError
from gateway.core.errors import ReplayOverflow


def test_seq_starts_at_one_and_grows_by_one():
    stream = CommandStream(replay_limit=10)
    seqs = [stream.push("output", {"n": i})["seq"] for i in range(5)]
    assert seqs == [1, 2, 3, 4, 5]
    assert len(stream) == 5


def test_ack_is_cumulative_and_frees_the_buffer():
    stream = CommandStream(replay_limit=10)
    for i in range(6):
        stream.push("c", {"i": i})
    assert stream.ack(4) == 4
    assert len(stream) == 2
    assert stream.ack(2) == 0  # stale ack: nothing more to drop
    assert stream.acked == 4


def test_ack_beyond_last_seq_is_a_protocol_error():
    stream = CommandStream(replay_limit=10)
    stream.push("c", {})
    with pytest.raises(ProtocolError):
        stream.ack(2)


def test_replay_limit_bounds_the_buffer():
    stream = CommandStream(replay_limit=3)
    for _ in range(3):
        stream.push("c", {})
    with pytest.raises(ReplayOverflow):
        stream.push("c", {})
    assert stream.last_seq == 3  # the refused command took no seq
    stream.ack(1)
    assert stream.push("c", {})["seq"] == 4


def test_replay_after_returns_exactly_the_missing_commands():
    stream = CommandStream(replay_limit=10)
    for i in range(5):
        stream.push("c", {"i": i})
    stream.ack(1)
    assert [c["seq"] for c in stream.replay_after(3)] == [4, 5]
    assert stream.acked == 3
    assert not stream.can_resume_from(2)  # already acknowledged past it
    assert not stream.can_resume_from(6)  # never sent
    with pytest.raises(ProtocolError):
        stream.replay_after(2)


def test_ledger_answers_a_resent_event_from_memory():
    ledger = EventLedger(memory=2)
    assert ledger.recall(1) is None
    ledger.record(1, {"ok": True, "result": "a"})
    ledger.record(2, {"ok": True, "result": "b"})
    assert ledger.recall(1) == {"ok": True, "result": "a"}
    ledger.record(3, {"ok": True, "result": "c"})
    with pytest.raises(ProtocolError) as forgotten:
        ledger.recall(1)  # forgotten, and known to be old: never run twice
    assert forgotten.value.code == "result_forgotten"  # not bad_request: it did run
    assert ledger.recall(4) is None


def test_token_bucket_allows_bursts_then_the_rate():
    now = [0.0]
    bucket = TokenBucket(rate=2, burst=3, clock=lambda: now[0])
    assert [bucket.take() for _ in range(4)] == [True, True, True, False]
    now[0] += 0.5
    assert bucket.take() is True
    assert bucket.take() is False


def test_the_replay_buffer_is_bounded_in_bytes_too():
    from gateway.core.delivery import command_size

    stream = CommandStream(replay_limit=100, replay_bytes=1000)
    big = {"text": "x" * 400}
    size = command_size("output", big)
    stream.push("output", big, size)
    stream.push("output", big, size)
    with pytest.raises(ReplayOverflow, match="GATEWAY_REPLAY_BYTES"):
        stream.push("output", big, size)
    assert stream.size == 2 * size
    stream.ack(1)
    assert stream.size == size
    stream.push("output", big, size)  # room again once acknowledged


def test_command_size_refuses_what_is_not_json():
    from gateway.core.delivery import command_size

    for bad in (float("nan"), float("inf"), -float("inf")):
        with pytest.raises(ValueError):
            command_size("x", {"v": [1, {"w": bad}]})
    with pytest.raises(TypeError):
        command_size("x", {"v": object()})
    assert command_size("x", {"v": 1}) > len('{"v":1}')
