"""The bus: carries sends addressed to users, topics or everyone, and control messages.

Alone, a worker uses :class:`LocalBus`, which delivers in-process. A cluster bus
(Redis) publishes the same messages to every worker; each delivers to its own sessions.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .errors import GatewayError

KINDS = ("session", "user", "topic", "everyone")


@dataclass(frozen=True)
class Target:
    """Who a send is for: one session, a user's sessions, a topic, or everyone."""

    kind: str
    value: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"everyone": True} if self.kind == "everyone" else {self.kind: self.value}

    @classmethod
    def of(cls, session: str | None = None, user: str | int | None = None,
           topic: str | None = None, everyone: bool = False) -> Target:
        """Build a target from exactly one of the keyword arguments."""
        given = [(kind, value) for kind, value in
                 (("session", session), ("user", user), ("topic", topic)) if value is not None]
        if everyone:
            given.append(("everyone", None))
        if len(given) != 1:
            raise GatewayError(
                "Address a send to exactly one of session=, user=, topic= or everyone=True.",
                code="bad_request",
            )
        kind, value = given[0]
        return cls(kind, None if value is None else str(value))

    @classmethod
    def from_dict(cls, data: Any) -> Target:
        """Parse ``{"session": ID} | {"user": ID} | {"topic": NAME} | {"everyone": true}``."""
        if not isinstance(data, dict) or len(data) != 1:
            raise GatewayError('"to" must be one of {"session"}, {"user"}, {"topic"}, '
                               '{"everyone": true}.', code="bad_request")
        (kind, value), = data.items()
        if kind == "everyone" and value is True:
            return cls("everyone")
        if kind in KINDS[:3] and isinstance(value, (str, int)) and not isinstance(value, bool) \
                and str(value):
            return cls(kind, str(value))
        raise GatewayError(f'"to" has an invalid address {kind!r}.', code="bad_request")


Deliver = Callable[[dict[str, Any]], int]


class LocalBus:
    """The bus of a single worker: every message is delivered here and now."""

    name = "local"

    def __init__(self, deliver: Deliver) -> None:
        self._deliver = deliver

    @property
    def healthy(self) -> bool:
        return True

    def publish(self, message: dict[str, Any]) -> int:
        """Deliver ``message``; return how many local sessions it reached."""
        return self._deliver(message)

    def start(self) -> None:
        """Nothing to start for an in-process bus."""

    def stop(self) -> None:
        """Nothing to stop for an in-process bus."""
