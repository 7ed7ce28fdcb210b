"""Connections without a session: bounded in number, per address and in time (no IO)."""

from __future__ import annotations

from gateway.core.admission import STRIKES
from gateway.core.admission import Admission
from tests.helpers.fakes import ManualClock as Clock


def test_a_handshake_over_either_bound_is_refused():
    admission = Admission(max_total=3, max_per_address=2, deadline=10)
    assert admission.admit("a", "10.0.0.1") and admission.admit("b", "10.0.0.1")
    assert not admission.admit("c", "10.0.0.1")  # per address
    assert admission.admit("d", "10.0.0.2")
    assert not admission.admit("e", "10.0.0.3")  # in total
    assert admission.refused == 2 and admission.counts() == (3, 2)


def test_a_connection_with_a_session_leaves_room_and_is_not_swept():
    clock = Clock()
    admission = Admission(max_total=1, max_per_address=1, deadline=10, clock=clock)
    assert admission.admit("a", "x")
    admission.established("a")
    assert admission.state("a") == "session"
    assert admission.admit("b", "x")  # "a" no longer counts
    clock.now += 11
    assert admission.expired() == ["b"]


def test_a_connection_whose_session_ended_gets_a_fresh_deadline():
    clock = Clock()
    admission = Admission(max_total=10, max_per_address=10, deadline=10, clock=clock)
    admission.admit("a", "x")
    admission.established("a")
    clock.now += 50
    admission.released("a")
    assert admission.state("a") == "anonymous" and admission.expired() == []
    clock.now += 10
    assert admission.expired() == ["a"]
    admission.gone("a")
    assert admission.state("a") == "gone" and admission.counts() == (0, 0)
    admission.released("a")  # a late release of a closed connection changes nothing
    assert admission.counts() == (0, 0)


def test_strikes_close_an_anonymous_connection_only():
    admission = Admission(max_total=10, max_per_address=10, deadline=10)
    admission.admit("a", "x")
    assert not any(admission.strike("a") for _ in range(STRIKES - 1))
    assert admission.strike("a")
    admission.admit("b", "x")
    admission.established("b")
    assert not admission.strike("b")  # a session's misdeeds are its session's to count


def test_a_connection_whose_session_ended_is_charged_for_connect_attempts_only():
    admission = Admission(max_total=10, max_per_address=10, deadline=10)
    admission.admit("a", "x")
    admission.established("a")
    admission.released("a")
    assert not any(admission.strike("a") for _ in range(10 * STRIKES))  # events in flight
    assert not any(admission.strike("a", connect=True) for _ in range(STRIKES - 1))
    assert admission.strike("a", connect=True)
