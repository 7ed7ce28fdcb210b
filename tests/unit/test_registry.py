"""SessionRegistry: every index stays consistent as sessions open, move, and close."""

from __future__ import annotations

from gateway.core.apps import AppSpec
from gateway.core.registry import SessionRegistry
from gateway.core.session import Session
from gateway.core.session import SessionUser
from tests.helpers.fakes import RecordingTransport
from tests.helpers.fakes import ThreadRuntime
from tests.helpers.fakes import session_limits


def open_session(registry: SessionRegistry, user: SessionUser, sid: str) -> Session:
    session = Session(AppSpec("t", keep_open=True), user, transport=RecordingTransport(),
                      runtime=ThreadRuntime(), limits=session_limits(resume_seconds=30),
                      on_closed=registry.remove,
                      on_topic=lambda s, t, joined:
                      (registry.join if joined else registry.leave)(s, t))
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
    assert set(registry.for_user_name("alice")) == {a1, a2}
    assert registry.for_user_name("bob") == [b1] and registry.for_user("2") == [b1]
    assert registry.count_for_user("1") == 2
    assert len(registry) == 3


def test_ids_and_names_are_never_matched_against_each_other():
    # A user whose name is another user's id (or the other way round) is never taken
    # for that user: before, for_user("2") found bob, and for_user("1") found user 2.
    registry = SessionRegistry()
    bob = open_session(registry, BOB, "s1")  # id 2
    named_2 = open_session(registry, SessionUser("7", "2"), "s2")  # named "2"
    named_1 = open_session(registry, SessionUser("1", "alice"), "s3")
    assert registry.for_user("2") == [bob]
    assert registry.for_user_name("2") == [named_2]
    assert registry.for_user("7") == [named_2] and registry.for_user_name("7") == []
    assert registry.for_user("bob") == [] and registry.for_user_name("bob") == [bob]
    assert registry.for_user_name("1") == [] and registry.for_user("1") == [named_1]


def test_a_deleted_accounts_last_session_keeps_the_new_owner_of_its_name():
    registry = SessionRegistry()
    old = open_session(registry, SessionUser("1", "alice"), "s1")  # alice, deleted later
    new = open_session(registry, SessionUser("9", "alice"), "s2")  # the new alice
    old.close("logged_out")
    assert registry.for_user_name("alice") == [new]


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
    assert registry.for_user_name("alice") == [] and registry.count_for_user("1") == 0
    assert registry.for_user("1") == []
    assert registry.tombstone(a.id) == ("1", "expired")


def test_detach_and_rebind_move_the_sid():
    registry = SessionRegistry()
    a = open_session(registry, ALICE, "s1")
    assert registry.unbind("s1") is a
    assert a.detach("s1")
    assert registry.by_sid("s1") is None and registry.get(a.id) is a
    assert registry.counts() == {"attached": 0, "detached": 1}
    a.resume("s9", a._token, 0)  # a resume moves the session, then the registry follows
    assert registry.rebind(a, None, "s9")
    assert registry.by_sid("s9") is a
    a.close()
    assert registry.by_sid("s9") is None
