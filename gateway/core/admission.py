"""Connections without a session: bounded in number and in time (no IO).

A connection is *anonymous* from its Engine.IO handshake until a gateway session is
attached to it, and again once that session has ended while the transport stays open.
Anonymous connections cost the worker memory and a green thread each and can be opened
by anyone, logged in or not, so:

- at most ``max_total`` of them exist at once on the worker, and at most
  ``max_per_address`` per client address (``GATEWAY_MAX_ANONYMOUS`` and
  ``GATEWAY_MAX_ANONYMOUS_PER_ADDRESS``); a handshake beyond is refused;
- each must get its session within ``deadline`` seconds (``GATEWAY_HANDSHAKE_SECONDS``),
  or :meth:`Admission.expired` names it for closing;
- what one sends before it has a session is counted (:meth:`Admission.strike`): a client
  that keeps sending what no honest client sends is closed at once.

The Socket.IO layer (:mod:`gateway.transport.guard`) feeds this from Engine.IO's events.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

#: Messages a connection may send that no honest client sends (a second CONNECT, an
#: event with no session, an undecodable packet) before it is closed.
STRIKES = 20


@dataclass(slots=True)
class _Pending:
    address: str
    deadline: float
    strikes: int = 0
    released: bool = False  # it had a session: packets still in flight are no strike


class Admission:
    """The anonymous connections of one worker, by Engine.IO sid."""

    def __init__(self, max_total: int, max_per_address: int, deadline: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.max_total = max_total
        self.max_per_address = max_per_address
        self.deadline = deadline
        self._clock = clock
        self._lock = threading.Lock()
        self._pending: dict[str, _Pending] = {}  # eio sid -> its address and deadline
        self._addresses: Counter[str] = Counter()  # address -> anonymous connections
        self._address_of: dict[str, str] = {}  # eio sid -> address, for every live connection
        self.refused = 0  # handshakes refused over a limit, since start

    def __len__(self) -> int:
        with self._lock:
            return len(self._pending)

    def full(self, address: str) -> bool:
        """Whether a handshake from ``address`` would be refused now (a cheap look before
        any work is done for it; :meth:`admit` decides)."""
        with self._lock:
            return (len(self._pending) >= self.max_total
                    or self._addresses[address] >= self.max_per_address)

    def admit(self, eio_sid: str, address: str) -> bool:
        """A new connection (Engine.IO handshake): False when it must be refused."""
        with self._lock:
            if len(self._pending) >= self.max_total \
                    or self._addresses[address] >= self.max_per_address:
                self.refused += 1
                return False
            self._address_of[eio_sid] = address
            self._add(eio_sid, address)
            return True

    def _add(self, eio_sid: str, address: str, released: bool = False) -> None:
        self._pending[eio_sid] = _Pending(address, self._clock() + self.deadline,
                                          released=released)
        self._addresses[address] += 1

    def _drop(self, eio_sid: str) -> None:
        pending = self._pending.pop(eio_sid, None)
        if pending is not None:
            self._addresses[pending.address] -= 1
            if self._addresses[pending.address] <= 0:
                del self._addresses[pending.address]

    def established(self, eio_sid: str) -> None:
        """A session is attached to the connection: it is no longer anonymous."""
        with self._lock:
            self._drop(eio_sid)

    def released(self, eio_sid: str) -> None:
        """The connection's session ended but the transport is open: anonymous again,
        with a fresh deadline (an honest client hangs up or opens a new session)."""
        with self._lock:
            address = self._address_of.get(eio_sid)
            if address is not None and eio_sid not in self._pending:
                self._add(eio_sid, address, released=True)

    def gone(self, eio_sid: str) -> None:
        """The connection closed."""
        with self._lock:
            self._drop(eio_sid)
            self._address_of.pop(eio_sid, None)

    def state(self, eio_sid: str) -> str:
        """``"anonymous"``, ``"session"`` (it has one) or ``"gone"`` (closed, or unknown)."""
        with self._lock:
            if eio_sid in self._pending:
                return "anonymous"
            return "session" if eio_sid in self._address_of else "gone"

    def strike(self, eio_sid: str, connect: bool = False) -> bool:
        """Count a packet of an anonymous connection that is not a successful CONNECT
        (``connect``: a CONNECT attempt); True when it must be closed now. A connection
        whose session ended is charged for CONNECT attempts only: the events and acks
        its client sent before it learnt of the end are still arriving, and the
        deadline bounds the rest."""
        with self._lock:
            pending = self._pending.get(eio_sid)
            if pending is None or (pending.released and not connect):
                return False
            pending.strikes += 1
            return pending.strikes >= STRIKES

    def expired(self) -> list[str]:
        """Anonymous connections past their deadline (they stay counted until
        :meth:`gone`, so a slow close cannot make room for more)."""
        now = self._clock()
        with self._lock:
            return [sid for sid, pending in self._pending.items() if pending.deadline <= now]

    def counts(self) -> tuple[int, int]:
        """(anonymous connections, distinct addresses among them)."""
        with self._lock:
            return len(self._pending), len(self._addresses)
