"""The delivery books every Python client keeps (gateway/client_state.py): commands applied
once and in seq order, events kept until their ack, the resume request."""

from __future__ import annotations

from gateway.client_state import ClientState


def commands(*seqs: int) -> list[dict]:
    return [{"seq": seq, "name": "output", "args": {"n": seq}} for seq in seqs]


def seqs(applied: list[dict]) -> list[int]:
    return [c["seq"] for c in applied]


def welcome(resumed: bool, session: str = "s1", token: str = "t1") -> dict:
    return {"session": session, "token": token, "resumed": resumed, "last_seq": 0}


def test_in_order_batches_are_applied_as_they_come():
    state = ClientState()
    assert seqs(state.accept(commands(1, 2))) == [1, 2]
    assert seqs(state.accept(commands(3))) == [3]
    assert state.accept([]) == []
    assert state.last_seq == 3 and state.duplicates == 0 and state.held == 0


def test_a_duplicate_is_counted_and_dropped():
    state = ClientState()
    state.accept(commands(1, 2, 3))
    assert seqs(state.accept(commands(2, 3, 4))) == [4]  # a replay overlapping what was applied
    assert state.last_seq == 4 and state.duplicates == 2


def test_a_gap_is_held_until_it_is_filled():
    state = ClientState()
    state.accept(commands(1))
    assert state.accept(commands(4, 5)) == []  # came ahead of 2 and 3
    assert state.held == 2 and state.last_seq == 1
    assert state.accept(commands(5)) == [] and state.duplicates == 1  # already held
    assert seqs(state.accept(commands(3, 2))) == [2, 3, 4, 5]  # in seq order, each once
    assert state.held == 0 and state.last_seq == 5


def test_the_resume_request_carries_the_session_and_last_seq():
    state = ClientState()
    assert state.resume_request() is None  # no session yet
    state.welcome(welcome(False))
    state.accept(commands(1, 2))
    assert state.resume_request() == {"session": "s1", "token": "t1", "last_seq": 2}
    assert state.resume_request(last_seq=1, token="x") == {"session": "s1", "token": "x",
                                                          "last_seq": 1}


def test_a_resumed_session_keeps_its_seqs_and_events():
    state = ClientState()
    state.welcome(welcome(False))
    state.accept(commands(1, 2))
    event = object()
    event_id = state.track(event)
    assert state.welcome(welcome(True)) == []
    assert state.last_seq == 2 and state.unsettled() == [(event_id, event)]
    assert seqs(state.accept(commands(2, 3))) == [3] and state.duplicates == 1


def test_a_fresh_session_starts_over_and_abandons_the_old_events():
    state = ClientState()
    state.welcome(welcome(False))
    state.accept(commands(1, 2, 4))  # 4 held
    first, second = object(), object()
    assert (state.track(first), state.track(second)) == (1, 2)
    abandoned = state.welcome(welcome(False, session="s2", token="t2"))
    assert abandoned == [first, second]  # the old session will never answer them
    assert state.last_seq == 0 and state.held == 0 and state.unacked_events == 0
    assert (state.session_id, state.token) == ("s2", "t2")
    assert state.next_event_id() == 1
    assert seqs(state.accept(commands(1))) == [1]  # the new session's seq 1 is new


def test_commands_that_overtake_the_first_session_message_are_kept():
    state = ClientState()
    assert seqs(state.accept(commands(1))) == [1]  # handled before the session message
    state.welcome(welcome(False))
    assert state.last_seq == 1 and seqs(state.accept(commands(2))) == [2]


def test_resume_from_another_clients_session():
    state = ClientState()
    state.accept(commands(1))
    state.resume_from("s9", "t9", 5)
    assert state.resume_request() == {"session": "s9", "token": "t9", "last_seq": 5}
    assert seqs(state.accept(commands(6))) == [6]


def test_an_event_is_kept_until_its_ack():
    state = ClientState()
    first, second = object(), object()
    one, two = state.track(first), state.track(second)
    assert state.unsettled() == [(one, first), (two, second)] and state.unacked_events == 2
    assert state.settle(one, first)
    assert not state.settle(one, first)  # a second ack
    assert not state.settle(two, first)  # not the event kept under that id
    assert state.unsettled() == [(two, second)]
    assert state.next_event_id() == 3  # ids keep growing
