"""Sequencing, replay buffer and exactly-once bookkeeping of one session (no IO).

Not thread-safe on their own: :class:`gateway.core.session.Session` guards them.
"""

from __future__ import annotations

import json
import time
from collections import OrderedDict
from collections import deque
from collections.abc import Callable
from typing import Any

from .errors import EVENT_ID_REUSED
from .errors import RESULT_FORGOTTEN
from .errors import ProtocolError
from .errors import ReplayOverflow

Command = dict[str, Any]  # {"seq": N, "name": STR, "args": OBJ}


_encode = json.JSONEncoder(allow_nan=False, separators=(",", ":")).encode


def command_size(name: str, args: dict[str, Any]) -> int:
    """Bytes a command takes on the wire (near enough), checking that it is JSON.

    Raises ``ValueError`` for NaN or Infinity (not JSON: a browser's JSON.parse, and so
    socket.io-client, fails on them) and ``TypeError`` for what JSON cannot hold.
    """
    return len(_encode(args)) + len(name) + 32  # "seq", "name", "args", the number


class CommandStream:
    """Numbers a session's commands 1, 2, 3, ... and keeps the unacknowledged ones,
    at most ``replay_limit`` of them and ``replay_bytes`` of their JSON."""

    def __init__(self, replay_limit: int, replay_bytes: int = 2 ** 62) -> None:
        self.replay_limit = replay_limit
        self.replay_bytes = replay_bytes
        self.last_seq = 0  # seq of the newest command
        self.acked = 0  # every command with seq <= acked was applied by the client
        self.size = 0  # bytes of the unacknowledged commands (command_size)
        self._unacked: deque[Command] = deque()  # seq ascending, acked < seq <= last_seq
        self._sizes: deque[int] = deque()  # command_size of each, in the same order

    def __len__(self) -> int:
        return len(self._unacked)

    def push(self, name: str, args: dict[str, Any], size: int = 0) -> Command:
        """Give the next seq to a command of ``size`` bytes and keep it until it is
        acknowledged."""
        if len(self._unacked) >= self.replay_limit:
            raise ReplayOverflow(
                f"{len(self._unacked)} commands are unacknowledged "
                f"(GATEWAY_REPLAY_LIMIT is {self.replay_limit})."
            )
        if self._unacked and self.size + size > self.replay_bytes:
            raise ReplayOverflow(
                f"{self.size} bytes of commands are unacknowledged "
                f"(GATEWAY_REPLAY_BYTES is {self.replay_bytes})."
            )
        self.last_seq += 1
        command = {"seq": self.last_seq, "name": name, "args": args}
        self._unacked.append(command)
        self._sizes.append(size)
        self.size += size
        return command

    def ack(self, seq: int) -> int:
        """Drop every command with seq <= ``seq``; return how many were dropped."""
        if seq > self.last_seq:
            raise ProtocolError(
                f"Ack for seq {seq}, but the newest command sent is {self.last_seq}."
            )
        dropped = 0
        while self._unacked and self._unacked[0]["seq"] <= seq:
            self._unacked.popleft()
            self.size -= self._sizes.popleft()
            dropped += 1
        self.acked = max(self.acked, seq)
        return dropped

    def can_resume_from(self, last_seq: int) -> bool:
        """Whether every command after ``last_seq`` is still here to be replayed."""
        return self.acked <= last_seq <= self.last_seq

    def replay_after(self, last_seq: int) -> list[Command]:
        """Acknowledge up to ``last_seq`` and return the commands after it, in order."""
        if not self.can_resume_from(last_seq):
            raise ProtocolError(f"Cannot replay from seq {last_seq}.")
        self.ack(last_seq)
        return list(self._unacked)




class EventLedger:
    """Remembers the acks of a session's recent events so a resent id is not run twice."""

    def __init__(self, memory: int) -> None:
        self.memory = memory
        self.highest = 0  # highest event id handled
        # id -> (digest of the event, its ack), oldest first
        self._acks: OrderedDict[int, tuple[bytes, dict[str, Any]]] = OrderedDict()

    def recall(self, event_id: int, digest: bytes = b"") -> dict[str, Any] | None:
        """The stored ack of an event already handled, or None if it is new. Raises
        ProtocolError ``event_id_reused`` when the id was another event's (``digest``
        differs: not a resend)."""
        kept = self._acks.get(event_id)
        if kept is not None:
            kept_digest, ack = kept
            if kept_digest != digest:
                raise ProtocolError(
                    f"Event id {event_id} was already used for another event; number "
                    "events from where this session is.", code=EVENT_ID_REUSED)
            return ack
        if event_id <= self.highest and self._acks and event_id < next(iter(self._acks)):
            raise ProtocolError(
                f"Event {event_id} was handled, too long ago for its result to be kept.",
                code=RESULT_FORGOTTEN)
        return None

    def record(self, event_id: int, ack: dict[str, Any], digest: bytes = b"") -> None:
        self._acks[event_id] = (digest, ack)
        self._acks.move_to_end(event_id)
        self.highest = max(self.highest, event_id)
        while len(self._acks) > self.memory:
            self._acks.popitem(last=False)


class TokenBucket:
    """Allows ``rate`` actions a second on average, in bursts of up to ``burst``."""

    def __init__(self, rate: float, burst: int,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self.burst = float(burst)
        self._clock = clock
        self._tokens = float(burst)
        self._stamp = clock()

    def full(self) -> bool:
        """Whether the bucket is (nearly) full: its user has kept within the rate for a
        whole burst's time."""
        return self._tokens >= self.burst - 1.0

    def take(self) -> bool:
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False
