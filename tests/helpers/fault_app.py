"""The session app of the fault tests: streams numbered commands while counting events."""

from __future__ import annotations

from collections import Counter
from typing import Any

from flask import current_app

from gateway import Session
from gateway import gateway


@gateway.app("stream")
def stream(session: Session) -> None:
    total = int(current_app.config.get("FAULT_COMMANDS", 10_000))
    events = int(current_app.config.get("FAULT_EVENTS", 1_000))
    # Spread the stream over FAULT_SECONDS so the cuts land while it flows.
    pace = float(current_app.config.get("FAULT_SECONDS", 40)) / (total / 10)
    handled: Counter[int] = session.state.setdefault("handled", Counter())
    for n in range(1, total + 1):
        session.send("tick", n=n)
        if n % 10 == 0:
            session.sleep(pace)
    while len(handled) < events:
        session.sleep(0.02)
    session.send("report", handled=len(handled), twice=sum(1 for c in handled.values() if c > 1))


@gateway.on("tally", app="stream")
def tally(session: Session, data: Any) -> int:
    handled = session.state.setdefault("handled", Counter())
    handled[data["n"]] += 1
    return int(data["n"])


@gateway.app("closer", keep_open=True)
def closer(session: Session) -> None:
    """Logs from its on_close, so a test can see the callbacks ran at shutdown."""
    import logging

    session.on_close(lambda s: logging.getLogger("gateway").info(
        "on_close ran for session %s (%s)", s.id, s.close_reason))
    session.send("output", kind="text", content="ready")
