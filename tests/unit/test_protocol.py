"""Validation of what clients send (protocol v1)."""

from __future__ import annotations

import pytest

from gateway.core.errors import ProtocolError
from gateway.core.protocol import parse_ack
from gateway.core.protocol import parse_connect
from gateway.core.protocol import parse_event

RESUME = {"session": "abcdefgh12345678", "token": "t" * 32, "last_seq": 3}


def test_connect_accepts_app_and_optional_resume():
    assert parse_connect({"app": "hello"}).resume is None
    request = parse_connect({"app": "hello", "resume": RESUME})
    assert request.resume is not None and request.resume.last_seq == 3


@pytest.mark.parametrize("auth", [
    None, "hello", [], {}, {"app": 3}, {"app": "Bad Name"}, {"app": "x" * 65},
    {"app": "hello", "resume": "x"},
    {"app": "hello", "resume": dict(RESUME, session="../etc")},
    {"app": "hello", "resume": dict(RESUME, token="short")},
    {"app": "hello", "resume": dict(RESUME, last_seq=-1)},
    {"app": "hello", "resume": dict(RESUME, last_seq=True)},
    {"app": "hello", "resume": dict(RESUME, last_seq=1.5)},
])
def test_connect_rejects_malformed_auth(auth):
    with pytest.raises(ProtocolError) as info:
        parse_connect(auth)
    assert info.value.code == "bad_request"


def test_event_is_parsed():
    event = parse_event({"id": 7, "name": "chat.say", "data": {"text": "hi"}}, 1000)
    assert (event.id, event.name, event.data) == (7, "chat.say", {"text": "hi"})


@pytest.mark.parametrize("message", [
    None, [], "event", {"name": "x"}, {"id": 0, "name": "x"}, {"id": "1", "name": "x"},
    {"id": True, "name": "x"}, {"id": 1, "name": "X"}, {"id": 1, "name": "-x"},
    {"id": 1, "name": "a" * 65}, {"id": 1, "name": "x", "extra": 1},
    {"id": 2**53, "name": "x"},
])
def test_malformed_events_are_bad_requests(message):
    with pytest.raises(ProtocolError) as info:
        parse_event(message, 1000)
    assert info.value.code == "bad_request"


def test_oversize_event_is_too_large():
    with pytest.raises(ProtocolError) as info:
        parse_event({"id": 1, "name": "x", "data": "a" * 2000}, 1000)
    assert info.value.code == "too_large"


def test_ack_must_carry_a_seq():
    assert parse_ack({"seq": 0}) == 0
    for bad in (None, {}, {"seq": "1"}, {"seq": -1}, {"seq": False}):
        with pytest.raises(ProtocolError):
            parse_ack(bad)
