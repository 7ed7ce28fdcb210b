"""``chat``: everyone in the ``lobby`` topic sees what anyone says, and who comes and goes.

Presence works across the cluster: ``join(..., presence=True)`` has each session told
``presence`` {user, topic, present} when a user joins or leaves the lobby on any worker.
"""

from __future__ import annotations

import time
from typing import Any

from gateway import GatewayError
from gateway import Session
from gateway import gateway
from gateway.core.errors import BAD_REQUEST

TOPIC = "lobby"
MAX_TEXT = 2000


@gateway.app("chat", keep_open=True, title="Chat",
             description="A shared room: every open chat tab sees every message.")
def start(session: Session) -> None:
    session.join(TOPIC, presence=True)
    here = ", ".join(user["name"] for user in gateway.presence.members(TOPIC))
    session.send("output", kind="text",
                 content=f"You joined #{TOPIC} as {session.user.name}. Here: {here}.")


@gateway.on("chat.say", app="chat")
def say(session: Session, data: Any) -> int:
    text = data.get("text") if isinstance(data, dict) else None
    if not isinstance(text, str) or not text.strip():
        raise GatewayError('chat.say needs {"text": a non-empty string}.', code=BAD_REQUEST)
    return gateway.send("chat.message", {"user": session.user.name, "text": text[:MAX_TEXT],
                                         "at": time.time()}, topic=TOPIC)
