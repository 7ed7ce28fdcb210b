"""What travels on the bus, as typed values, and their wire form (JSON objects with a
``type``; the same as ``POST /api/v1/push`` writes for a send).

=====================  ======================  ==========================================
type                   value                   meaning
=====================  ======================  ==========================================
``send``               :class:`Send`           a command for the sessions ``to`` names
``close``              :class:`Close`          close the sessions ``to`` names
``presence``           :class:`PresenceUpdate` one change of one worker's presence
``gather``             :class:`Gather`         answer rows of ``what`` to the ``reply`` list
(heartbeat, local)     :class:`Snapshots`      every live worker's presence snapshot
=====================  ======================  ==========================================

A message another worker or an :class:`~gateway.cluster.emitter.Emitter` published
carries its ``origin``, so a worker skips its own.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..core.errors import BAD_REQUEST
from ..core.errors import GatewayError
from ..core.presence import PresenceSnapshot
from ..core.presence import PresenceUpdate
from ..core.targets import Target


@dataclass(frozen=True)
class Send:
    """A command for every session ``to`` names, on every worker."""

    to: Target
    name: str
    args: dict[str, Any]

    @classmethod
    def of(cls, to: Target, name: str, args: dict[str, Any] | None) -> Send:
        """Check a send's name and args (the Python API, HTTP API and CLI all come here)."""
        if not isinstance(name, str) or not name:
            raise GatewayError("A command name must be a non-empty string.", code=BAD_REQUEST)
        if args is not None and not isinstance(args, dict):
            raise GatewayError("A command's args must be an object.", code=BAD_REQUEST)
        return cls(to, name, args or {})


@dataclass(frozen=True)
class Close:
    """Close every session ``to`` names with ``reason``, telling them ``message``."""

    to: Target
    reason: str
    message: str | None


@dataclass(frozen=True)
class Gather:
    """Asks every worker for its ``what`` rows, to be pushed onto the ``reply`` list."""

    what: str
    reply: str


@dataclass(frozen=True)
class Snapshots:
    """Every live worker's presence (the heartbeat's read): not published, delivered."""

    snapshots: list[PresenceSnapshot]


Message = Send | Close | PresenceUpdate | Gather | Snapshots

#: The wire ``type`` of each message class.
TYPES: dict[type, str] = {Send: "send", Close: "close", PresenceUpdate: "presence",
                          Gather: "gather", Snapshots: "presence.snapshots"}


class MessageError(ValueError):
    """A bus entry that is not a message this version understands."""


def encode(message: Message) -> dict[str, Any]:
    """The wire form of ``message``."""
    if isinstance(message, Send):
        return {"type": "send", "to": message.to.to_dict(), "name": message.name,
                "args": message.args}
    if isinstance(message, Close):
        return {"type": "close", "to": message.to.to_dict(), "reason": message.reason,
                "message": message.message}
    if isinstance(message, PresenceUpdate):
        return {"type": "presence", "worker": message.worker, "version": message.version,
                "user": message.user, "topic": message.topic, "present": message.present}
    if isinstance(message, Gather):
        return {"type": "gather", "what": message.what, "reply": message.reply}
    raise TypeError(f"{type(message).__name__} is not published")


def encode_snapshot(snapshot: PresenceSnapshot) -> dict[str, Any]:
    return {"worker": snapshot.worker, "version": snapshot.version,
            "entries": [list(entry) for entry in snapshot.entries]}


def decode_snapshot(wire: Any) -> PresenceSnapshot:
    try:
        return PresenceSnapshot(str(wire["worker"]), int(wire["version"]),
                                [(topic, str(user_id), str(name))
                                 for topic, user_id, name in wire["entries"]])
    except (KeyError, TypeError, ValueError) as exc:
        raise MessageError(f"not a presence snapshot: {exc}") from None


def decode(wire: Any) -> Message:
    """The message a wire object stands for; :class:`MessageError` if it is none."""
    if not isinstance(wire, dict):
        raise MessageError("not an object")
    kind = wire.get("type")
    decoder = _DECODERS.get(kind) if isinstance(kind, str) else None
    if decoder is None:
        raise MessageError(f"unknown type {kind!r}")
    try:
        return decoder(wire)
    except (KeyError, TypeError, ValueError, GatewayError) as exc:
        raise MessageError(f"invalid {kind} message: {exc}") from None


_DECODERS: dict[str, Callable[[dict[str, Any]], Message]] = {
    "send": lambda w: Send(Target.from_dict(w["to"]), w["name"], w["args"]),
    "close": lambda w: Close(Target.from_dict(w["to"]), w["reason"], w.get("message")),
    "presence": lambda w: PresenceUpdate(w["worker"], w["version"], w["user"], w.get("topic"),
                                         w["present"]),
    "gather": lambda w: Gather(w["what"], w["reply"]),
}
