"""Protocol v1: parsing and validating what clients send (no IO, no Flask).

Every function here either returns a well-formed value or raises
:class:`ProtocolError` with the code the client must see.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any
from typing import TypeGuard

from .errors import BAD_REQUEST
from .errors import TOO_LARGE
from .errors import ProtocolError

EVENT_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
APP_NAME = EVENT_NAME
SESSION_ID = re.compile(r"[A-Za-z0-9_-]{8,64}")
TOKEN = re.compile(r"[A-Za-z0-9_-]{16,128}")
MAX_ID = 2**53 - 1  # largest integer a JavaScript client can count to exactly



@dataclass(frozen=True)
class ResumeRequest:
    session: str
    token: str
    last_seq: int


@dataclass(frozen=True)
class ConnectRequest:
    app: str
    resume: ResumeRequest | None


@dataclass(frozen=True)
class EventMessage:
    id: int
    name: str
    data: Any
    #: What the event is (its name and data), in 8 bytes: a resend carries the same; an
    #: event that reuses an id another event had does not.
    digest: bytes = b""


def _is_int(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def parse_connect(auth: Any) -> ConnectRequest:
    """Validate the ``auth`` payload of a connection."""
    if not isinstance(auth, dict):
        raise ProtocolError('The connection "auth" must be an object with an "app".')
    app = auth.get("app")
    if not isinstance(app, str) or not APP_NAME.fullmatch(app):
        raise ProtocolError('"app" must be the name of a session app.')
    resume = auth.get("resume")
    if resume is None:
        return ConnectRequest(app=app, resume=None)
    if not isinstance(resume, dict):
        raise ProtocolError('"resume" must be null or {"session", "token", "last_seq"}.')
    session, token, last_seq = resume.get("session"), resume.get("token"), resume.get("last_seq")
    if not isinstance(session, str) or not SESSION_ID.fullmatch(session):
        raise ProtocolError('"resume.session" is not a session id.')
    if not isinstance(token, str) or not TOKEN.fullmatch(token):
        raise ProtocolError('"resume.token" is not a resume token.')
    if not _is_int(last_seq) or not 0 <= last_seq <= MAX_ID:
        raise ProtocolError('"resume.last_seq" must be a non-negative integer.')
    return ConnectRequest(app=app, resume=ResumeRequest(session, token, last_seq))


def parse_event(message: Any, max_bytes: int) -> EventMessage:
    """Validate an ``event`` message: ``{"id": N, "name": STR, "data": ANY}``."""
    if not isinstance(message, dict):
        raise ProtocolError('An event must be an object {"id", "name", "data"}.')
    event_id, name = message.get("id"), message.get("name")
    if not _is_int(event_id) or not 1 <= event_id <= MAX_ID:
        raise ProtocolError('"id" must be a positive integer.')
    if not isinstance(name, str) or not EVENT_NAME.fullmatch(name):
        raise ProtocolError('"name" must match [a-z0-9][a-z0-9._-]{0,63}.')
    extra = set(message) - {"id", "name", "data"}
    if extra:
        raise ProtocolError(f"Unexpected field(s) in event: {', '.join(sorted(map(str, extra)))}.")
    data = message.get("data")
    try:
        encoded = json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode()
    except (TypeError, ValueError):
        raise ProtocolError('"data" must be JSON.') from None
    size = len(encoded)
    if size > max_bytes:
        raise ProtocolError(
            f"The event data is {size} bytes; the limit is {max_bytes}.", code=TOO_LARGE
        )
    digest = hashlib.blake2b(name.encode() + b"\0" + encoded, digest_size=8).digest()
    return EventMessage(id=event_id, name=name, data=data, digest=digest)


def parse_ack(message: Any) -> int:
    """Validate a cumulative ``ack`` message and return its seq."""
    if not isinstance(message, dict) or not _is_int(message.get("seq")):
        raise ProtocolError('An ack must be {"seq": N}.', code=BAD_REQUEST)
    seq: int = message["seq"]
    if not 0 <= seq <= MAX_ID:
        raise ProtocolError('"seq" must be a non-negative integer.')
    return seq


def ok(result: Any = None) -> dict[str, Any]:
    return {"ok": True, "result": result}


def failed(code: str, message: str) -> dict[str, Any]:
    return {"ok": False, "error": {"code": code, "message": message}}
