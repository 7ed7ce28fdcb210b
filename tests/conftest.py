"""Fixtures: an app in threading mode, its clients, users, and a leak check per test."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

import auth
from gateway import create_app
from gateway import socketio
from gateway import hub_for
from gateway.cluster.hub import Hub

from .support import wait_for

PASSWORD = "correct horse battery"
PASSWORD_HASH = auth.models._hasher.hash(PASSWORD)  # hashed once: Argon2 is slow on purpose


@pytest.fixture
def app_config(tmp_path: Any) -> dict[str, Any]:
    return {
        "GATEWAY_ASYNC_MODE": "threading",
        "GATEWAY_ENV": "development",
        "GATEWAY_DATABASE_URL": f"sqlite:///{tmp_path / 'test.db'}",
        "GATEWAY_RESUME_SECONDS": "5",
        "TESTING": True,
        "WTF_CSRF_ENABLED": False,
        "DEMO_PROGRESS_STEPS": 5,
        "DEMO_PROGRESS_SECONDS": 0.01,
    }


@pytest.fixture
def app(app_config: dict[str, Any]) -> Iterator[Flask]:
    threads_before = threading.active_count()
    app = create_app(app_config)
    with app.app_context():
        for name, admin in (("alice", False), ("bob", False), ("root", True)):
            user = auth.User(name=name, is_admin=admin, password_hash=PASSWORD_HASH)
            auth.db.session.add(user)
        auth.db.session.commit()
    yield app
    hub: Hub = hub_for(app)
    hub.shutdown()
    # Leak check: closing every session frees the registry and ends the app tasks.
    assert len(hub.registry) == 0
    wait_for(lambda: threading.active_count() <= threads_before, timeout=10,
             message=f"threads back to {threads_before} (now {threading.active_count()})")


@pytest.fixture
def hub(app: Flask) -> Hub:
    return hub_for(app)  # type: ignore[no-any-return]


def login_client(app: Flask, name: str) -> FlaskClient:
    client = app.test_client()
    response = client.post("/login", data={"name": name, "password": PASSWORD})
    assert response.status_code == 302, response.get_data(as_text=True)
    return client


@pytest.fixture
def set_limits(app: Flask):
    """``set_limits(EVENT_RATE=..., ...)``: change settings for sessions opened afterwards."""
    from gateway.core.session import SessionLimits

    def _set(**settings: Any) -> None:
        hub: Hub = hub_for(app)
        changed = dataclasses.replace(app.config["GATEWAY"], **settings)  # frozen: a copy
        app.config["GATEWAY"] = hub.settings = hub.connections.settings = changed
        hub.connections.limits = SessionLimits.from_settings(changed)

    return _set


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    """An HTTP client logged in as alice."""
    return login_client(app, "alice")


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


@pytest.fixture
def connect(app: Flask):
    """``connect(app_name, user="alice", **kw)`` -> (test client, Messages)."""
    opened = []

    def _connect(app_name: str | None = "echo", user: str | None = "alice",
                 auth_payload: Any = None, **kwargs: Any):
        flask_client = login_client(app, user) if user else app.test_client()
        payload = auth_payload if auth_payload is not None else {"app": app_name}
        sio = socketio.test_client(app, flask_test_client=flask_client, auth=payload, **kwargs)
        opened.append(sio)
        return sio, Messages(sio)

    yield _connect
    for sio in opened:
        if sio.is_connected():
            sio.disconnect()


@pytest.fixture
def refused(app: Flask):
    """``refused(auth_payload, user=..., flask_client=...)`` -> the CONNECT_ERROR data the
    server sent (``flask_client``: connect with that client's cookies instead)."""
    from socketio import packet

    def _refused(auth_payload: Any, user: str | None = "alice",
                 flask_client: FlaskClient | None = None) -> Any:
        if flask_client is None:
            flask_client = login_client(app, user) if user else app.test_client()
        sio = socketio.test_client(app, flask_test_client=flask_client, auth=auth_payload)
        assert not sio.is_connected(), "the connection was accepted"
        captured: list[Any] = []
        mock = socketio.server._send_packet  # the test client's own mock

        def spy(eio_sid: str, pkt: Any) -> None:
            if pkt.packet_type == packet.CONNECT_ERROR:
                captured.append(pkt.data)
            mock(eio_sid, pkt)

        socketio.server._send_packet = spy
        try:
            sio.connect(auth=auth_payload)
        finally:
            socketio.server._send_packet = mock
        assert not sio.is_connected() and len(captured) == 1
        return captured[0]

    return _refused
