"""``echo``: answers every ``echo`` event with the same text."""

from __future__ import annotations

from typing import Any

from gateway import GatewayError
from gateway import Session
from gateway import gateway
from gateway.core.errors import BAD_REQUEST


@gateway.app("echo", keep_open=True, title="Echo",
             description="Sends back whatever you type.")
def start(session: Session) -> None:
    session.send("output", kind="text", content="Type something: it comes straight back.")


@gateway.on("echo", app="echo")
def echo(session: Session, data: Any) -> str:
    if not isinstance(data, dict) or not isinstance(data.get("text"), str):
        raise GatewayError('echo needs {"text": STRING}.', code=BAD_REQUEST)
    text: str = data["text"]
    session.send("output", kind="text", content=text)
    return text
