"""Sending to a cluster's sessions from outside the server: a Celery task, a script.

Needs only ``redis`` (no Flask): ``from gateway import Emitter``.
"""

from __future__ import annotations

import uuid
from typing import Any

from ..core.errors import KICKED
from ..core.errors import LOGGED_OUT
from ..core.targets import Target
from .messages import Close
from .messages import Message
from .messages import Send
from .messages import encode
from .redis_bus import RedisStream


class Emitter:
    """Sends to a cluster's sessions from outside the server (a Celery task, a script).

    ``Emitter("redis://127.0.0.1:6379/0").send("toast", {"text": "hi"}, user_name="alice")``
    has the same addressing as ``gateway.send`` (``user=`` a user id, ``user_name=`` a
    user name). It returns the stream entry id of an
    accepted message, and raises :class:`~gateway.core.errors.BusUnavailable` when Redis
    cannot be reached: nothing is sent then.
    """

    def __init__(self, url: str, channel: str = "gateway") -> None:
        self._stream = RedisStream(url, channel)
        self.origin = f"emitter-{uuid.uuid4().hex[:12]}"

    def send(self, name: str, args: dict[str, Any] | None = None, *,
             session: str | None = None, user: str | int | None = None,
             user_name: str | None = None, topic: str | None = None,
             everyone: bool = False) -> str:
        target = Target.of(session=session, user=user, user_name=user_name, topic=topic,
                           everyone=everyone)
        return self.publish(Send.of(target, name, args))

    def close_user(self, user: str | int | None = None, reason: str = LOGGED_OUT,
                   message: str = "You were logged out.", *,
                   user_name: str | None = None) -> str:
        """Close every session of the user with id ``user`` (or, given ``user_name``
        instead, of the user with that name) on every worker."""
        return self.publish(Close(Target.of(user=user, user_name=user_name), reason, message))

    def kick(self, session_id: str,
             message: str = "An administrator ended the session.") -> str:
        return self.publish(Close(Target.of(session=session_id), KICKED, message))

    def publish(self, message: Message) -> str:
        """Publish ``message``; return its stream entry id."""
        return self._stream.publish(dict(encode(message), origin=self.origin))

    def close(self) -> None:
        self._stream.close()

    def __enter__(self) -> Emitter:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
