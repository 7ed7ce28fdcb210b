"""``progress``: a long job that reports its progress, and survives reconnects."""

from __future__ import annotations

from flask import current_app

from gateway import Session
from gateway import gateway

STEPS = 40
STEP_SECONDS = 0.25


@gateway.app("progress", title="Progress",
             description="A ten-second job reporting progress; reload mid-way and it carries on.")
def progress(session: Session) -> None:
    steps = int(current_app.config.get("DEMO_PROGRESS_STEPS", STEPS))
    pause = float(current_app.config.get("DEMO_PROGRESS_SECONDS", STEP_SECONDS))
    session.send("output", kind="text", content=f"Working through {steps} steps…")
    for step in range(1, steps + 1):
        session.sleep(pause)
        session.send("progress", id="job", value=step, max=steps, label=f"Step {step} of {steps}")
    session.send("output", kind="text", content="Done: all steps completed.")
