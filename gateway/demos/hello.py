"""``hello``: asks a name, then greets."""

from __future__ import annotations

from gateway import Session
from gateway import gateway


@gateway.app("hello", title="Hello", description="Asks your name and greets you.")
def hello(session: Session) -> None:
    name = session.ask("input", kind="text", label="Your name")
    name = str(name).strip() or "stranger"
    session.send("output", kind="text", content=f"Hello, {name}!")
