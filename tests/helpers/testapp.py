"""The in-process app of the ``app`` fixture: its users' password, logging in with Flask's
test client, and what a Socket.IO test client received."""

from __future__ import annotations

from typing import Any

from flask import Flask
from flask.testing import FlaskClient

import auth

from .support import wait_for

PASSWORD = "correct horse battery"
PASSWORD_HASH = auth.models._hasher.hash(PASSWORD)  # hashed once: Argon2 is slow on purpose


def login_client(app: Flask, name: str) -> FlaskClient:
    client = app.test_client()
    response = client.post("/login", data={"name": name, "password": PASSWORD})
    assert response.status_code == 302, response.get_data(as_text=True)
    return client


class Messages:
    """Collects what a Socket.IO test client receives, for deadline waits."""

    def __init__(self, sio: Any) -> None:
        self.sio = sio
        self.items: list[dict[str, Any]] = []

    def drain(self) -> list[dict[str, Any]]:
        # Read the test client's queue directly: get_received() refuses once the
        # server has disconnected, and what came before the disconnect matters.
        queue, self.sio.queue = self.sio.queue, []
        self.items.extend(queue)
        return self.items

    def named(self, name: str) -> list[Any]:
        return [m["args"][0] for m in self.drain() if m["name"] == name]

    def commands(self) -> list[dict[str, Any]]:
        return [c for batch in self.named("commands") for c in batch]

    def wait_commands(self, count: int, timeout: float = 10) -> list[dict[str, Any]]:
        return wait_for(lambda: len(self.commands()) >= count and self.commands(), timeout,
                        message=f"{count} commands")

    def ack_all(self) -> None:
        cmds = self.commands()
        if cmds:
            self.sio.emit("ack", {"seq": cmds[-1]["seq"]})
