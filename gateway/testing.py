"""Test helpers for session apps: a protocol v1 client on Flask-SocketIO's test client.

It can drop its connection at any chosen point and resume, so an app's behaviour
across reconnects can be tested without a server:

    def test_survives_a_drop(app):
        tab = SessionTestClient(app, logged_in_flask_client, "progress")
        tab.wait_commands(3)
        tab.drop()                       # the session is detached, the app keeps running
        tab.connect()                    # resumes: the missed commands are replayed
        assert tab.session["resumed"]
"""

from __future__ import annotations

import time
from typing import Any

from flask import Flask
from flask.testing import FlaskClient

from .client_state import ClientState
from .client_state import KeepsBooks
from .web.extension import socketio

__all__ = ["SessionTestClient"]


class SessionTestClient(KeepsBooks):
    """One browser tab: connects with the login cookie of ``flask_client``."""

    def __init__(self, app: Flask, flask_client: FlaskClient, app_name: str,
                 connect: bool = True) -> None:
        self.app, self.flask_client, self.app_name = app, flask_client, app_name
        self.sio: Any = None
        self.session: dict[str, Any] | None = None  # the latest session message
        self.state = ClientState()  # session id, token, seqs, event ids
        self.applied: list[dict[str, Any]] = []  # commands applied once, in seq order
        self.closed: dict[str, Any] | None = None
        self.connect_error: Any = None
        if connect:
            self.connect()

    @property
    def connected(self) -> bool:
        return self.sio is not None and self.sio.is_connected()

    def connect(self, resume: bool = True, last_seq: int | None = None,
                token: str | None = None) -> SessionTestClient:
        """Connect; with ``resume`` ask for the current session back (overrides for tests)."""
        request = self.state.resume_request(last_seq, token) if resume else None
        self.sio = socketio.test_client(self.app, flask_test_client=self.flask_client,
                                        auth={"app": self.app_name, "resume": request})
        self.poll()
        return self

    def drop(self) -> None:
        """Lose the connection: the server detaches the session and keeps it."""
        self.poll()
        if self.connected:
            self.sio.disconnect()

    def poll(self) -> list[dict[str, Any]]:
        """Apply whatever arrived; return the commands applied by this call."""
        if self.sio is None:
            return []
        queue, self.sio.queue = self.sio.queue, []
        applied = []
        for message in queue:
            name = message["name"]
            data: Any = message["args"][0] if message["args"] else None
            if name == "session":
                self.session = data
                self.state.welcome(data)
            elif name == "commands":
                for command in data:
                    new = self.state.accept([command])
                    if self.state.held:  # in-process delivery leaves no room for a gap
                        raise AssertionError(f"gap: seq {command['seq']} after {self.last_seq}")
                    self.applied.extend(new)
                    applied.extend(new)
            elif name == "close":
                self.closed = data
        return applied

    def ack(self) -> None:
        """Acknowledge every command applied so far."""
        self.poll()
        if self.connected and self.last_seq:
            self.sio.emit("ack", {"seq": self.last_seq})

    def wait_commands(self, count: int, timeout: float = 10.0) -> list[dict[str, Any]]:
        """Wait until ``count`` commands were applied in all (app tasks run in the background)."""
        deadline = time.monotonic() + timeout
        while len(self.applied) < count:
            self.poll()
            if len(self.applied) >= count:
                break
            if time.monotonic() > deadline:
                raise AssertionError(f"{len(self.applied)} of {count} commands after {timeout} s")
            time.sleep(0.005)  # poll interval of a deadline wait
        return self.applied

    def emit_event(self, name: str, data: Any = None, event_id: int | None = None) -> Any:
        """Send an ``event`` and return its ack (``event_id`` to resend an old one)."""
        if event_id is None:
            event_id = self.state.next_event_id()
        ack = self.sio.emit("event", {"id": event_id, "name": name, "data": data}, callback=True)
        self.poll()
        return ack
