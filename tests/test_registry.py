"""SessionRegistry: every index stays consistent as sessions open, move, and close."""

from __future__ import annotations

from gateway.apps import AppSpec
from gateway.registry import SessionRegistry
from gateway.session import Session
from gateway.session import SessionLimits
from gateway.session import SessionUser

from .fakes import RecordingTransport
from .fakes import ThreadRuntime


def open_session(registry: SessionRegistry, user: SessionUser, sid: str) -> Session:
    session = Session(AppSpec("t", keep_open=True), user, transport=RecordingTransport(),
                      runtime=ThreadRuntime(), limits=SessionLimits(resume_seconds=30),
                      on_closed=registry.remove,
                      on_topic=lambda s, t, joined: (registry.join if joined else registry.leave)(s, t))
    registry.add(session, sid)
    session.attach(sid)
    return session


ALICE = SessionUser("1", "alice")
BOB = SessionUser("2", "bob")


def test_lookup_by_sid_id_user_and_name():
    registry = SessionRegistry()
    a1 = open_session(registry, ALICE, "s1")
    a2 = open_session(registry, ALICE, "s2")
    b1 = open_session(registry, BOB, "s3")
    assert registry.by_sid("s1") is a1 and registry.get(b1.id) is b1
    assert set(registry.for_user("1")) == {a1, a2}
    assert set(registry.for_user("alice")) == {a1, a2}
    assert registry.for_user("bob") == [b1]
    assert registry.count_for_user("1") == 2
    assert len(registry) == 3


def test_topics_follow_join_leave_and_close():
    registry = SessionRegistry()
    a = open_session(registry, ALICE, "s1")
    b = open_session(registry, BOB, "s2")
    a.join("lobby")
    b.join("lobby")
    assert set(registry.in_topic("lobby")) == {a, b}
    b.leave("lobby")
    assert registry.in_topic("lobby") == [a]
    a.close("kicked")
    assert registry.in_topic("lobby") == []
    assert registry.topics() == {}


def test_close_frees_every_index_and_leaves_a_tombstone():
    registry = SessionRegistry()
    a = open_session(registry, ALICE, "s1")
    a.close("expired")
    assert len(registry) == 0
    assert registry.by_sid("s1") is None and registry.get(a.id) is None
    assert registry.for_user("alice") == [] and registry.count_for_user("1") == 0
    assert registry.tombstone(a.id) == ("1", "expired")


def test_detach_and_rebind_move_the_sid():
    registry = SessionRegistry()
    a = open_session(registry, ALICE, "s1")
    assert registry.unbind("s1") is a
    assert a.detach("s1")
    assert registry.by_sid("s1") is None and registry.get(a.id) is a
    assert registry.counts() == {"attached": 0, "detached": 1}
    registry.rebind(a, None, "s9")
    assert registry.by_sid("s9") is a
    a.close()
    assert registry.by_sid("s9") is None
