"""Every code the gateway speaks, as a named constant, its exceptions, and the one error
payload shape used everywhere. A code is written as a string literal nowhere else."""

from __future__ import annotations

from typing import Any

# Connect refusals (CONNECT_ERROR message and data.code).
UNAUTHORIZED = "unauthorized"
UNKNOWN_APP = "unknown_app"
TOO_MANY_SESSIONS = "too_many_sessions"
BAD_REQUEST = "bad_request"
SERVER_SHUTDOWN = "server_shutdown"  # refused while the worker drains (retry elsewhere)

# Event ack errors.
UNKNOWN_EVENT = "unknown_event"
RATE_LIMITED = "rate_limited"
TOO_LARGE = "too_large"
INTERNAL_ERROR = "internal_error"
SESSION_CLOSED = "session_closed"
# A resent event that ran, but whose result is older than the session remembers
# (GATEWAY_EVENT_MEMORY; the `session` message tells clients the number so they never
# have more events than that waiting for an ack): it is not run again.
RESULT_FORGOTTEN = "result_forgotten"
# An event whose id this session already gave another event (a duplicated browser tab
# numbering from a copy of the original's storage): refused, never answered with the
# other event's result.
EVENT_ID_REUSED = "event_id_reused"

# Sends (Python API, HTTP API, CLI).
BUS_UNAVAILABLE = "bus_unavailable"  # the message queue cannot be reached: nothing was sent

# HTTP API errors besides the above.
FORBIDDEN = "forbidden"
NOT_FOUND = "not_found"
UNKNOWN_SESSION = "unknown_session"  # the admin API: no live session with that id
METHOD_NOT_ALLOWED = "method_not_allowed"

# Why a session closed (the ``close`` message's ``reason``).
CLOSED = "closed"  # its app finished
EXPIRED = "expired"  # detached longer than the resume window
LOGGED_OUT = "logged_out"
KICKED = "kicked"  # by an administrator, a newer tab, or for flooding
SLOW_CONSUMER = "slow_consumer"  # its replay buffer overflowed
CLOSE_REASONS = frozenset({CLOSED, EXPIRED, LOGGED_OUT, KICKED, SERVER_SHUTDOWN, SLOW_CONSUMER})

# Why a resume was not possible (``session`` with ``resumed: false``; also SSE ``reset``).
UNKNOWN = "unknown"  # no such session (ever, or forgotten)
REPLAY_OVERFLOW = "replay_overflow"  # commands were lost: start afresh
# and FORBIDDEN (another user's, or a wrong token) and EXPIRED.

EVENT_ERROR_CODES = frozenset(
    {BAD_REQUEST, UNKNOWN_EVENT, RATE_LIMITED, TOO_LARGE, INTERNAL_ERROR, SESSION_CLOSED,
     RESULT_FORGOTTEN, EVENT_ID_REUSED,
     BUS_UNAVAILABLE}  # a handler's send needed the cluster's bus, which is down
)


def error_payload(code: str, message: str) -> dict[str, Any]:
    """The error shape of acks, refusals and HTTP errors: ``{"code", "message"}``."""
    return {"code": code, "message": message}


class GatewayError(Exception):
    """Base of the gateway's own errors; carries a protocol error code."""

    code = INTERNAL_ERROR

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else self.code

    def payload(self) -> dict[str, Any]:
        return error_payload(self.code, self.message)


class ConfigError(GatewayError):
    """A setting is missing or invalid; raised before the server starts."""


class ProtocolError(GatewayError):
    """A client message does not follow protocol v1."""

    code = BAD_REQUEST


class SessionClosed(GatewayError):
    """The session is closed: raised in the app's blocking calls and on send."""

    code = SESSION_CLOSED

    def __init__(self, reason: str = CLOSED, message: str | None = None) -> None:
        super().__init__(message or f"The session is closed ({reason}).")
        self.reason = reason


class ReplayOverflow(GatewayError):
    """More unacknowledged commands than the replay limit allows."""

    code = SLOW_CONSUMER


class IllegalTransition(RuntimeError):
    """A session lifecycle transition that the state machine does not allow."""


class BusUnavailable(GatewayError):
    """The message queue cannot be reached: the send was not made (HTTP 503)."""

    code = BUS_UNAVAILABLE
