"""Fixtures shared by every kind of test (unit, integration, e2e): an app in threading mode,
its clients, users, and a leak check per test. Helpers are in ``tests/helpers``."""

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
from gateway import hub_for
from gateway import socketio
from gateway.cluster.hub import Hub
from tests.helpers.support import wait_for
from tests.helpers.testapp import PASSWORD_HASH
from tests.helpers.testapp import Messages
from tests.helpers.testapp import login_client

#: The Redis and cluster fixtures (module-scoped) for the tests that use them.
pytest_plugins = ["tests.helpers.cluster"]


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
    return hub_for(app)


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
