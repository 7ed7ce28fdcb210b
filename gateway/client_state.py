"""The client's half of protocol v1's delivery, without IO: which session it holds, which
commands it has applied (each once, in seq order), and which events await their ack.

Every Python client of the gateway keeps its books here: ``GatewayClient``
(gateway/client.py), ``SessionTestClient`` (gateway/testing.py), and the tests' own
protocol clients. It does no IO and takes no lock: a client whose messages arrive on
several threads (python-socketio runs each handler in a thread of its own) holds its own
lock around it.

    state = ClientState()
    state.welcome(session_message)        # the `session` message of each connection
    for command in state.accept(batch):   # a `commands` batch, as it came
        apply(command)                    # new ones only, in seq order
    emit("ack", {"seq": state.last_seq})  # cumulative
    auth = {"app": name, "resume": state.resume_request()}
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from typing import Any

__all__ = ["ClientState", "KeepsBooks"]

Command = dict[str, Any]


class ClientState:
    """One tab's delivery books: its session, its commands, its unanswered events."""

    def __init__(self) -> None:
        self.session_id: str | None = None
        self.token: str | None = None
        self.last_seq = 0  # every command up to here was applied, once, in order
        self.duplicates = 0  # commands received again and dropped
        self._ahead: dict[int, Command] = {}  # seq -> command held until the gap before it fills
        self._next_id = 1
        self._pending: OrderedDict[int, Any] = OrderedDict()  # unanswered events by id
        #: The most events the session remembers the results of (its `session` message
        #: says): more must not await an ack at once, or a resend could find its result
        #: forgotten. None until told.
        self.event_memory: int | None = None

    # -- the session ---------------------------------------------------------------

    def welcome(self, message: dict[str, Any]) -> list[Any]:
        """Take a ``session`` message: its id and token become this state's.

        A fresh session (``resumed`` false) starts over: commands from seq 1 (unless this
        state never had a session, so that what it accepted already is this session's:
        its commands can overtake its ``session`` message), and event ids from 1. Returns
        the events that were awaiting an ack, oldest first: they belonged to the old
        session, which will never answer them."""
        abandoned: list[Any] = []
        if not message["resumed"]:
            if self.session_id is not None:
                self.last_seq = 0
                self._ahead.clear()
            abandoned = list(self._pending.values())
            self._pending.clear()
            self._next_id = 1
        self.session_id, self.token = message["session"], message["token"]
        memory = message.get("event_memory")
        self.event_memory = memory if isinstance(memory, int) and memory > 0 else None
        return abandoned

    def resume_from(self, session: str, token: str, last_seq: int) -> None:
        """Ask for a session this state did not follow (opened by another client): as if
        it had applied every command up to ``last_seq``."""
        self.session_id, self.token, self.last_seq = session, token, last_seq
        self._ahead.clear()

    def resume_request(self, last_seq: int | None = None,
                       token: str | None = None) -> dict[str, Any] | None:
        """The ``resume`` of the connect payload: ``None`` before any session. ``last_seq``
        and ``token`` override this state's (to test what the server makes of them)."""
        if self.session_id is None:
            return None
        return {"session": self.session_id, "token": token or self.token,
                "last_seq": self.last_seq if last_seq is None else last_seq}

    # -- commands ------------------------------------------------------------------

    def accept(self, commands: Iterable[Command]) -> list[Command]:
        """Take a batch as it came; return the commands it makes applicable, in seq order.

        A command at or below ``last_seq``, or already held, is a duplicate: counted and
        dropped. One past a gap is held until the gap fills (batches can arrive out of
        order when each is handled in its own thread)."""
        for command in commands:
            seq = command["seq"]
            if seq <= self.last_seq or seq in self._ahead:
                self.duplicates += 1
            else:
                self._ahead[seq] = command
        applied = []
        while self.last_seq + 1 in self._ahead:
            command = self._ahead.pop(self.last_seq + 1)
            self.last_seq = command["seq"]
            applied.append(command)
        return applied

    @property
    def held(self) -> int:
        """Commands held because an earlier one has not arrived (0 once all is delivered)."""
        return len(self._ahead)

    # -- events --------------------------------------------------------------------

    def next_event_id(self) -> int:
        """An id for a new event (ids grow per session)."""
        event_id, self._next_id = self._next_id, self._next_id + 1
        return event_id

    def track(self, event: Any) -> int:
        """Give ``event`` an id and keep it until ``settle``: it is resent after a resume."""
        event_id = self.next_event_id()
        self._pending[event_id] = event
        return event_id

    def settle(self, event_id: int, event: Any) -> bool:
        """Its ack came: forget the event. False when ``event`` is no longer the one kept
        under ``event_id`` (an ack of an abandoned event, or a second ack)."""
        if self._pending.get(event_id) is not event:
            return False
        del self._pending[event_id]
        return True

    def unsettled(self) -> list[tuple[int, Any]]:
        """The events still awaiting their ack, ``(id, event)``, oldest first."""
        return list(self._pending.items())

    @property
    def unacked_events(self) -> int:
        return len(self._pending)

    def has_room(self) -> bool:
        """Whether another event may be sent now: fewer than ``event_memory`` await
        their ack."""
        return self.event_memory is None or len(self._pending) < self.event_memory


class KeepsBooks:
    """A client whose ``state`` is its :class:`ClientState`: the books' figures, read
    (and, for tests that pose as a client, set) through it."""

    state: ClientState

    @property
    def session_id(self) -> str | None:
        return self.state.session_id

    @session_id.setter
    def session_id(self, value: str | None) -> None:
        self.state.session_id = value

    @property
    def token(self) -> str | None:
        return self.state.token

    @token.setter
    def token(self, value: str | None) -> None:
        self.state.token = value

    @property
    def last_seq(self) -> int:
        """Every command up to here was applied, once, in order."""
        return self.state.last_seq

    @property
    def duplicates(self) -> int:
        """Commands received again and dropped."""
        return self.state.duplicates
